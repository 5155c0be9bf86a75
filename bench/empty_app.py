"""The framework ceiling: an aiohttp app that answers 200 to any PUT/POST and does nothing else.

    python bench/empty_app.py --port PORT [--host 127.0.0.1]

It reads the request body (any real handler has to) and answers an empty 200,
on uvloop when it is importable, with access logging off (as otelgravel's
hot path should be). ``GET /-/ready`` answers 200 for the readiness poll.
"""

from __future__ import annotations

import argparse
import asyncio

from aiohttp import web


async def _push(request: web.Request) -> web.Response:
    await request.read()
    return web.Response(status=200)


async def _ready(request: web.Request) -> web.Response:
    return web.Response(status=200, text="OK")


def make_app() -> web.Application:
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_get("/-/ready", _ready)
    app.router.add_route("PUT", "/{tail:.*}", _push)
    app.router.add_route("POST", "/{tail:.*}", _push)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    loop_name = "asyncio"
    try:
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
        loop_name = "uvloop"
    except ImportError:
        pass
    print(f"empty aiohttp handler on {args.host}:{args.port} ({loop_name})", flush=True)
    web.run_app(make_app(), host=args.host, port=args.port, access_log=None, print=None)


if __name__ == "__main__":
    main()
