"""AnswerRound (http_server.py): the answers to the writes of one turn of the event loop are held
to the next turn and released together; a request that closes its connection, and a read, are
answered at once. In process, over real HTTP on loopback through the gateway's Router."""
from __future__ import annotations

import asyncio
import contextlib

import aiohttp
from aiohttp import web

from otelgravel.http_server import AnswerRound, InFlight, Router


def test_held_until_the_turn_ends_then_all_released_together():
    async def main():
        answers = AnswerRound()
        waiters = [answers.wait() for _ in range(5)]
        assert not any(w.done() for w in waiters)   # the turn has not ended
        await asyncio.sleep(0)                       # the next turn: the release ran
        assert all(w.done() for w in waiters)
        assert answers.rounds == 1
        later = answers.wait()                       # a new turn, a new round
        await asyncio.sleep(0)
        assert later.done() and answers.rounds == 2
    asyncio.run(main())


def test_a_cancelled_request_cancels_no_other():
    async def main():
        answers = AnswerRound()
        order = []

        async def request(name):
            await answers.wait()
            order.append(name)
        tasks = [asyncio.ensure_future(request(n)) for n in "abc"]
        await asyncio.sleep(0)       # each is waiting now
        tasks[1].cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        assert order == ["a", "c"] and tasks[1].cancelled()
    asyncio.run(main())


@contextlib.asynccontextmanager
async def _served(answers):
    """The Router on a real loopback server, and a client session (kept-alive connections)."""
    async def put(request):
        await request.read()
        return web.Response(text="ok")

    async def get(request):
        return web.Response(text="got")
    routes = [web.put("/metrics/job{tail:.*}", put), web.get("/metrics", get)]
    runner = web.ServerRunner(web.Server(Router(routes, InFlight(), answers=answers)),
                              handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    try:
        async with aiohttp.ClientSession() as session:
            yield session, f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


def test_kept_alive_writes_are_held_and_answered():
    async def main():
        answers = AnswerRound()
        async with _served(answers) as (session, url):
            async def push(i):
                async with session.put(f"{url}/metrics/job/j{i}", data=b"x 1\n") as r:
                    return r.status, await r.text()
            answered = await asyncio.gather(*(push(i) for i in range(40)))
        assert answered == [(200, "ok")] * 40
        assert 1 <= answers.rounds <= 40
    asyncio.run(main())


def test_a_push_that_closes_its_connection_and_a_read_are_not_held():
    async def main():
        answers = AnswerRound()
        async with _served(answers) as (session, url):
            async with session.put(f"{url}/metrics/job/j", data=b"x 1\n",
                                   headers={"Connection": "close"}) as r:
                assert r.status == 200
            async with session.get(f"{url}/metrics") as r:
                assert r.status == 200 and await r.text() == "got"
            assert answers.rounds == 0
            async with session.put(f"{url}/metrics/job/j", data=b"x 1\n") as r:
                assert r.status == 200
            assert answers.rounds == 1
    asyncio.run(main())
