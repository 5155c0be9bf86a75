"""What the HTTP limits add per request, without the rest of the gateway: an empty push handler
(read the body, answer 200) behind aiohttp's own ``web.Server`` (``--mode aiohttp``) or behind
otelgravel's ``LimitedServer`` with the default limits (``--mode on``: read_header_timeout,
read_timeout, idle_timeout, max_connections; the deadline bookkeeping in ``data_received``, the
sweep, the connection count).

    python bench/limits_probe.py --port PORT --mode on|aiohttp

``scenario_limits`` loads both with the same wrk push load and divides each process's CPU time
by the requests it answered. ``GET /-/ready`` answers 200 for the readiness poll.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from aiohttp import web  # noqa: E402

from otelgravel.config import HttpLimits  # noqa: E402
from otelgravel.http_limits import LimitedServer  # noqa: E402

MODES = ("on", "aiohttp")


async def _handle(request: web.BaseRequest) -> web.Response:
    await request.read()
    return web.Response(status=200, text="OK" if request.path == "/-/ready" else "")


async def _serve(mode: str, host: str, port: int) -> None:
    if mode == "on":
        server = LimitedServer(_handle, limits=HttpLimits(), endpoint=f"{host}:{port}",
                               access_log=None)
    else:
        server = web.Server(_handle, access_log=None, keepalive_timeout=HttpLimits().idle_timeout)
    runner = web.ServerRunner(server, handle_signals=True)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    print(f"limits probe ({mode}) on {host}:{port}", flush=True)
    await asyncio.Event().wait()


def bookkeeping(calls: int = 20_000, repeat: int = 9, connections: int = 16) -> dict:
    """The limits' own work, timed in-process without the noise of the rest of a request:

    - ``data_received_us``: what ``LimitedRequestHandler.data_received`` adds to aiohttp's (one
      request per chunk, its body in it, as a push arrives on a kept-alive connection): the
      deadline written at the request's first byte, the headers-complete check, the deadline
      cleared. aiohttp's parsing is replaced by a stub doing what the check reads (a request
      counted, its payload queued, at EOF), the same stub timed alone, the difference kept;
      the best of ``repeat`` runs of ``calls`` calls, as ``timeit`` advises.
    - ``sweep_us``: one sweep over ``connections`` connections, none past its deadline (the
      sweep runs once per tick: every second with the defaults).
    """
    import timeit

    from otelgravel import http_limits

    class _Eof:
        def is_eof(self) -> bool:
            return True

    eof = _Eof()

    def stub(self, data: bytes) -> None:  # aiohttp's parser, reduced to what the wrapper reads
        self._request_count += 1
        self._messages.clear()
        self._messages.append((None, eof))

    async def measure() -> dict:
        server = LimitedServer(_handle, limits=HttpLimits(), endpoint="probe", access_log=None)
        handlers = [server() for _ in range(connections)]
        original = http_limits._aiohttp_data_received  # what the wrapper calls
        http_limits._aiohttp_data_received = stub
        try:
            h = handlers[0]
            data = b"PUT /metrics/job/x HTTP/1.1\r\nContent-Length: 4\r\n\r\nx 1\n"
            limited = type(h).data_received
            with_limits = min(timeit.repeat(lambda: limited(h, data), number=calls, repeat=repeat))
            alone = min(timeit.repeat(lambda: stub(h, data), number=calls, repeat=repeat))
        finally:
            http_limits._aiohttp_data_received = original
        loop = asyncio.get_running_loop()
        for handler in handlers:
            handler.deadline = loop.time() + 3600.0
            server._watched.add(handler)
        sweep = min(timeit.repeat(server._sweep, number=1000, repeat=repeat)) / 1000
        if server._sweeper is not None:
            server._sweeper.cancel()
        return {"data_received_us": round((with_limits - alone) / calls * 1e6, 3),
                "stub_us": round(alone / calls * 1e6, 3),
                "sweep_us": round(sweep * 1e6, 3), "sweep_connections": connections}

    return asyncio.run(measure())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--mode", choices=MODES, required=True)
    args = parser.parse_args()
    loop_factory = None
    try:  # as the gateway runs
        import uvloop
        loop_factory = uvloop.new_event_loop
    except ImportError:
        pass
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        runner.run(_serve(args.mode, args.host, args.port))


if __name__ == "__main__":
    main()
