"""Connection floods: idle keep-alive connections and slowloris clients do not stop pushes, and
each is closed by its own timeout (shortened by config here); connections over max_connections
are shed at accept and logged once with a count. Every close is counted in the gateway's own
telemetry (``otelgravel_http_server_connections_*``), scraped after the flood for exact counts.
Loopback only; bounded in count and time."""
from __future__ import annotations

import asyncio
import json
import re
import resource
import time

from tests.e2e.test_telemetry import samples, value

IDLE = 5000
SLOW = 50
SHED = "otelgravel_http_server_connections_shed_total"
TIMED_OUT = "otelgravel_http_server_connections_timed_out_total"
ACTIVE = "otelgravel_http_server_active_connections"


def connection_counts(gw, server="pushgateway") -> dict:
    """The telemetry's connection counts of one server, by what closed them."""
    table = samples(gw)
    counts = {timeout: value(table, TIMED_OUT, server=server, timeout=timeout)
              for timeout in ("read_header_timeout", "read_timeout", "idle_timeout")}
    counts["shed"] = value(table, SHED, server=server)
    counts["open"] = value(table, ACTIVE, server=server)
    return counts


async def _connect(host, port):
    return await asyncio.open_connection(host, port)


async def _push(host, port, n) -> tuple[int, float]:
    """One push on a new connection: (status, seconds)."""
    start = time.monotonic()
    reader, writer = await _connect(host, port)
    body = f"flood_pushes_total {n}\n".encode()
    writer.write(b"POST /metrics/job/flood HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                 b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
    status = int((await reader.readline()).split()[1])
    writer.close()
    return status, time.monotonic() - start


async def _closed_at(reader, start, reset_ok=False) -> float:
    """Seconds from ``start`` until the gateway closes this connection. ``reset_ok``: for a client
    still sending when it is cut off (a slowloris), for which a reset is a close too: bytes that
    reached the gateway's socket after it last read it are unread at the close, and the kernel
    then answers RST, not FIN. Seen when the gateway is descheduled between a read and the sweep
    (SIGSTOP for a few seconds makes it happen to all 50; TcpExtTCPAbortOnClose counts them)."""
    try:
        while await reader.read(1024):
            pass
    except ConnectionResetError:
        if not reset_ok:
            raise
    return time.monotonic() - start


async def _keepalive(host, port):
    reader, writer = await _connect(host, port)
    # the idle timer starts when the gateway has answered, after this: on a loaded machine this
    # client may read the answer seconds later, which made the close look early
    sent = time.monotonic()
    writer.write(b"GET /-/healthy HTTP/1.1\r\nHost: x\r\n\r\n")
    head = await reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head
    await reader.readexactly(int(re.search(rb"Content-Length: (\d+)", head).group(1)))
    return reader, writer, sent


async def _slowloris(host, port, stop: asyncio.Event):
    start = time.monotonic()  # before the gateway's accept, where its deadline starts
    reader, writer = await _connect(host, port)
    header = b"PUT /metrics/job/slow HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 1000
    async def trickle():
        for byte in header:  # one byte every 0.2 s, never the end of the headers
            if stop.is_set() or writer.is_closing():
                return
            try:
                writer.write(bytes([byte]))
                await writer.drain()
            except ConnectionError:
                return
            await asyncio.sleep(0.2)
    sender = asyncio.create_task(trickle())
    closed = await _closed_at(reader, start, reset_ok=True)
    sender.cancel()
    writer.close()
    return closed


def test_idle_and_slowloris_floods_do_not_stop_pushes(gateway_factory):
    assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] > IDLE + SLOW + 200
    # read_header_timeout leaves the ten pushes 4.5 s inside the slowloris flood (3 s was tight
    # on a loaded machine), and closes those well before idle_timeout
    gw = gateway_factory(["receivers.pushgateway.idle_timeout=15s",
                          "receivers.pushgateway.read_header_timeout=5s",
                          "receivers.pushgateway.read_timeout=5s"])
    host, port = gw.url[len("http://"):].rsplit(":", 1)

    async def flood():
        idle = []
        for i in range(0, IDLE, 250):  # in batches, so that the backlog never overflows
            idle += await asyncio.gather(*(_keepalive(host, port) for _ in range(250)))
        opened = time.monotonic()
        stop = asyncio.Event()
        slow = [asyncio.create_task(_slowloris(host, port, stop)) for _ in range(SLOW)]
        await asyncio.sleep(0.5)  # the slowloris clients are connected and trickling
        pushes = []
        for n in range(10):
            pushes.append(await _push(host, port, n))
        pushed = time.monotonic()
        assert all(not t.done() for t in slow), "a slowloris connection closed before its timeout"
        closed_idle = await asyncio.wait_for(
            asyncio.gather(*(_closed_at(r, t) for r, _, t in idle)), 60)
        slow_closed = await asyncio.wait_for(asyncio.gather(*slow), 30)
        stop.set()
        for _, w, _ in idle:
            w.close()
        return pushes, closed_idle, slow_closed, pushed - opened

    pushes, closed_idle, slow_closed, pushing = asyncio.run(flood())
    assert [s for s, _ in pushes] == [200] * 10
    assert max(t for _, t in pushes) < 2.0, pushes  # not held up (1 s was tight under load)
    assert pushing < 15, "the pushes took longer than the idle timeout: the test proves nothing"
    # closed by idle_timeout (15 s after their response), not before, and not much later
    assert 14 < min(closed_idle) and max(closed_idle) < 15 + 20, (min(closed_idle), max(closed_idle))
    # closed by read_header_timeout (5 s from their first byte) though they kept sending, well
    # before the idle timeout (which would close a connection stuck in its headers too)
    assert 4.5 < min(slow_closed) and max(slow_closed) < 12, (min(slow_closed), max(slow_closed))
    assert gw.push("/metrics/job/after", "after_total 1\n")[0] == 200
    # every idle connection closed by idle_timeout, every slowloris one by read_header_timeout
    # (the pushes said Connection: close)
    assert connection_counts(gw) == {"read_header_timeout": SLOW, "read_timeout": 0,
                                     "idle_timeout": IDLE, "shed": 0, "open": 0}


def test_connections_over_max_connections_are_shed_and_logged(gateway_factory):
    gw = gateway_factory(["receivers.pushgateway.max_connections=100"])
    host, port = gw.url[len("http://"):].rsplit(":", 1)

    async def flood():
        conns = [await _connect(host, port) for _ in range(150)]
        await asyncio.sleep(0.5)
        shed = 0
        for reader, _ in conns[100:]:
            try:
                if await asyncio.wait_for(reader.read(1), 5) == b"":
                    shed += 1
            except ConnectionError:
                shed += 1
        for _, writer in conns:
            writer.close()
        await asyncio.sleep(0.5)  # the gateway sees the closes
        return shed, await _push(host, port, 1)

    shed, (status, _) = asyncio.run(flood())
    assert shed == 50 and status == 200
    lines = [line for line in gw.log if "connections shed" in line]
    assert len(lines) == 1 and "max_connections=100" in lines[0], lines  # once per interval
    total = re.search(r"shed_total=(\d+)", lines[0])
    assert total and int(total.group(1)) >= 1
    assert connection_counts(gw) == {"read_header_timeout": 0, "read_timeout": 0,
                                     "idle_timeout": 0, "shed": 50, "open": 0}


def test_every_timeout_and_shed_connection_is_counted(gateway_factory):
    """Each way a connection is closed, a known number of times, in the telemetry and the status
    API: over max_connections (shed at accept), silent or stuck in its headers
    (read_header_timeout), stuck in its body (read_timeout), kept alive and unused
    (idle_timeout)."""
    gw = gateway_factory(["receivers.pushgateway.max_connections=20",
                          "receivers.pushgateway.read_header_timeout=1s",
                          "receivers.pushgateway.read_timeout=2s",
                          "receivers.pushgateway.idle_timeout=4s"])  # after the others
    host, port = gw.url[len("http://"):].rsplit(":", 1)

    async def closed(reader) -> None:
        while await asyncio.wait_for(reader.read(1024), 30):
            pass

    async def flood():
        silent = [await _connect(host, port) for _ in range(20)]
        over = [await _connect(host, port) for _ in range(5)]
        await asyncio.gather(*(closed(r) for r, _ in over))           # shed at once
        await asyncio.gather(*(closed(r) for r, _ in silent))         # read_header_timeout
        stuck = []
        for i in range(5):
            reader, writer = await _connect(host, port)
            if i < 3:  # part of the headers
                writer.write(b"PUT /metrics/job/x HTTP/1.1\r\nHost: x\r\nX-A: ")
            else:      # the headers and part of the body
                writer.write(b"PUT /metrics/job/x HTTP/1.1\r\nHost: x\r\n"
                             b"Content-Length: 100\r\n\r\nx_total 1\n")
            stuck.append((reader, writer))
        idle = [await _keepalive(host, port) for _ in range(4)]           # idle_timeout
        await asyncio.gather(*(closed(r) for r, _ in stuck), *(closed(r) for r, _, _ in idle))
        for _, writer in silent + over + stuck:
            writer.close()
        for _, writer, _ in idle:
            writer.close()

    asyncio.run(flood())
    want = {"read_header_timeout": 23, "read_timeout": 2, "idle_timeout": 4, "shed": 5}
    assert connection_counts(gw) == {**want, "open": 0}
    status, body, _ = gw.request("GET", "/api/v1/status", base=gw.scrape_url)
    assert status == 200
    rows = {row["server"]: row for row in json.loads(body)["data"]["connections"]}
    # (the test's exporter shares the push server: the status request is the one open connection)
    assert rows["pushgateway"] == {"server": "pushgateway", "open": 1, "max_connections": 20,
                                   "shed": 5, "timed_out": {"read_header_timeout": 23,
                                                            "read_timeout": 2, "idle_timeout": 4}}
    assert rows["telemetry"]["max_connections"] == 10000
