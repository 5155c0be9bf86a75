"""Connection limits for aiohttp's low-level server: header, request and idle timeouts, a bound on
open connections, and the file-descriptor limit raised to the hard limit at start.

Why a subclass: aiohttp's ``RequestHandler`` (the protocol of one connection) only has an idle
timer (``keepalive_timeout``, which we use for ``idle_timeout``); nothing cuts a client that sends
its headers one byte a second (slowloris) or stalls in the middle of a body, and nothing bounds the
connections, so 20,000 idle sockets used up the process's file descriptors and every push failed.
``LimitedRequestHandler`` adds, per connection, what Go's ``http.Server`` has:

- ``read_header_timeout``: from a request's first byte (or the accept) to the end of its headers;
- ``read_timeout``: from a request's first byte to the end of its body;
- ``max_connections``: a connection over the bound is closed at accept (``abort``), counted, and
  logged once per ``SHED_LOG_INTERVAL`` with the count; the others are served as ever.

A timeout closes the connection (as Go does; the request is not complete, there is nobody to answer).
It watches ``data_received`` and reads two of the handler's attributes (``_request_count``, the
number of requests whose headers were parsed, and ``_messages``, their queue with each body's
stream), public in spirit but not in name; ``LimitedServer`` creates these handlers in place of
``web.Server``'s (it reads ``web.Server``'s ``_loop`` and ``_kwargs``). ``CountedRequestHandler``
(the base, and the handler when every limit but ``idle_timeout`` is off) counts the open
connections and those its idle timer closes by wrapping ``_process_keepalive``. Everything is in
this one module so that an aiohttp upgrade has one place to check (tests/reliability pins the
behaviour).

``ConnectionCount`` holds one server's counts as plain integers (open, shed, closed per timeout);
the service hands it to ``Stats.connections``, which the telemetry and the status API read.
"""
from __future__ import annotations

import asyncio
import logging
import resource
from aiohttp import web
from aiohttp.web_protocol import RequestHandler

from .config import HttpLimits

log = logging.getLogger("otelgravel.http")

SHED_LOG_INTERVAL = 10.0


TIMEOUTS = ("read_header_timeout", "read_timeout", "idle_timeout")


class ConnectionCount:
    """Open connections of one server, those shed at accept (logged once per interval) and those
    each timeout closed, since start. ``server`` names it in the telemetry (the component whose
    limits apply), ``endpoint`` in the logs."""

    def __init__(self, endpoint: str, limit: int, server: str = ""):
        self.endpoint = endpoint
        self.server = server
        self.limit = limit
        self.open = 0
        self.shed = 0
        self.timed_out = dict.fromkeys(TIMEOUTS, 0)
        self._unlogged = 0
        self._log_handle: asyncio.TimerHandle | None = None

    def shed_one(self, loop: asyncio.AbstractEventLoop) -> None:
        self.shed += 1
        self._unlogged += 1
        if self._log_handle is None:  # the first of a burst at once, the rest once per interval
            self._flush()
            self._log_handle = loop.call_later(SHED_LOG_INTERVAL, self._flush_later)

    def _flush_later(self) -> None:
        self._log_handle = None
        if self._unlogged:
            self._flush()

    def _flush(self) -> None:
        log.warning("connections shed", extra={"fields": {
            "endpoint": self.endpoint, "shed": self._unlogged, "shed_total": self.shed,
            "max_connections": self.limit}})
        self._unlogged = 0

    def close(self) -> None:
        if self._log_handle is not None:
            self._log_handle.cancel()
            self._log_handle = None


_aiohttp_data_received = RequestHandler.data_received  # called directly: cheaper than super()


class CountedRequestHandler(RequestHandler):
    """aiohttp's connection protocol, counting the open connections and the idle_timeout closes
    (aiohttp's keep-alive timer, ``_process_keepalive``, closes an idle connection)."""

    __slots__ = ("_count",)

    def __init__(self, manager: "LimitedServer", **kwargs):
        super().__init__(manager, **kwargs)
        self._count = manager.count

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._count.open += 1
        super().connection_made(transport)

    def connection_lost(self, exc: BaseException | None) -> None:
        self._count.open -= 1
        super().connection_lost(exc)

    def _process_keepalive(self) -> None:
        closing = self._force_close
        super()._process_keepalive()
        if self._force_close and not closing:
            self._count.timed_out["idle_timeout"] += 1


class LimitedRequestHandler(CountedRequestHandler):
    """aiohttp's connection protocol with header and request deadlines and the connection bound.

    A request only writes down when its deadline falls (``deadline``, 0 = none); the server's
    sweep (``LimitedServer._sweep``) closes the connections past theirs. A timer per request
    (``call_at`` + ``cancel``) cost about 10% of the push throughput under wrk; a float per
    request and one sweep per tick cost next to nothing (``bench/limits_probe.py`` times it).
    """

    __slots__ = ("_manager", "_limits", "_header_timeout", "_read_timeout", "_shed", "deadline",
                 "waiting_for", "_request_start", "_body")

    def __init__(self, manager: "LimitedServer", **kwargs):
        super().__init__(manager, **kwargs)
        self._manager = manager
        limits = self._limits = manager.limits
        self._header_timeout = limits.read_header_timeout or limits.read_timeout
        self._read_timeout = limits.read_timeout
        self._shed = False
        self.deadline = 0.0          # loop time by which the awaited part must have arrived
        self.waiting_for = ""        # "headers" or "body"
        self._request_start = 0.0
        self._body = None  # the stream of the request whose body is arriving, if any

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        count = self._count
        if count.limit and count.open >= count.limit:
            self._shed = True
            transport.abort()  # before aiohttp sees it: no handler task, no timers
            count.shed_one(self._loop)
            return
        super().connection_made(transport)
        self._manager.watch(self)
        self._start_request()

    def connection_lost(self, exc: BaseException | None) -> None:
        if self._shed:
            return
        self.deadline = 0.0
        self._manager.unwatch(self)
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        body = self._body
        if not self.deadline and body is None and data:
            self._start_request()  # the first byte of the next request on a kept-alive connection
        before = self._request_count
        _aiohttp_data_received(self, data)
        if self._request_count != before:  # headers complete
            messages = self._messages
            body = messages[-1][1] if messages else None
            if body is not None and not body.is_eof():
                self._body = body
                read_timeout = self._read_timeout
                self.deadline = self._request_start + read_timeout if read_timeout else 0.0
                self.waiting_for = "body"
            else:
                self._body = None
                self.deadline = 0.0
        elif body is not None and body.is_eof():
            self._body = None
            self.deadline = 0.0

    def _start_request(self) -> None:
        self._request_start = now = self._loop.time()
        timeout = self._header_timeout
        self.deadline = now + timeout if timeout else 0.0
        self.waiting_for = "headers"

    def too_slow(self) -> None:
        part = self.waiting_for
        self.deadline = 0.0
        timeout = ("read_header_timeout" if part == "headers" and self._limits.read_header_timeout
                   else "read_timeout")
        self._count.timed_out[timeout] += 1
        log.debug("connection closed: request too slow", extra={"fields": {
            "endpoint": self._count.endpoint, "waiting_for": part, "timeout": timeout}})
        self.force_close()


class LimitedServer(web.Server):
    """``web.Server`` whose connections are ``LimitedRequestHandler``s, swept for deadlines.

    The sweep runs every tenth of the shortest timeout (at most once a second, at least every
    50 ms), so a connection is closed at most that late after its deadline.
    """

    def __init__(self, handler, *, limits: HttpLimits, endpoint: str, server: str = "", **kwargs):
        kwargs["keepalive_timeout"] = limits.idle_timeout
        super().__init__(handler, **kwargs)
        self.limits = limits
        self.count = ConnectionCount(endpoint, limits.max_connections, server)
        timeouts = [t for t in (limits.read_header_timeout, limits.read_timeout) if t]
        self._tick = min(1.0, max(0.05, min(timeouts) / 10)) if timeouts else 0.0
        self._watched: set[LimitedRequestHandler] = set()
        self._sweeper: asyncio.TimerHandle | None = None

    def __call__(self) -> RequestHandler:
        limits = self.limits
        if not (limits.read_header_timeout or limits.read_timeout or limits.max_connections):
            # no deadline and no bound: aiohttp's own handler, counted
            return CountedRequestHandler(self, loop=self._loop, **self._kwargs)
        return LimitedRequestHandler(self, loop=self._loop, **self._kwargs)

    def watch(self, handler: LimitedRequestHandler) -> None:
        if not self._tick:
            return
        self._watched.add(handler)
        if self._sweeper is None:
            self._sweeper = self._loop.call_later(self._tick, self._sweep)

    def unwatch(self, handler: LimitedRequestHandler) -> None:
        self._watched.discard(handler)

    def _sweep(self) -> None:
        now = self._loop.time()
        for handler in [h for h in self._watched if h.deadline and h.deadline <= now]:
            handler.too_slow()
        self._sweeper = self._loop.call_later(self._tick, self._sweep) if self._watched else None

    async def shutdown(self, timeout: float | None = None) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        await super().shutdown(timeout)


def raise_fd_limit() -> tuple[int, int]:
    """Raise the soft RLIMIT_NOFILE to the hard limit, as Go's runtime does; (soft, hard) after."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError) as exc:  # e.g. an unlimited hard limit macOS refuses
            log.warning("cannot raise the file descriptor limit",
                        extra={"fields": {"soft": soft, "hard": hard, "error": exc}})
    return soft, hard
