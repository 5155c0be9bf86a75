"""The ``pushgateway`` receiver: the Pushgateway's push API, plus Gravel's bare ``/metrics``.

Thin on purpose: read the body, pick the parser by Content-Type, submit the push (grouping key,
body, the parsed batch) to the state layer as a record, answer. Parsing and aggregation live in
``formats`` and ``core``; durability and log order in ``state``.
"""
from __future__ import annotations

import logging
import time
from functools import lru_cache

from aiohttp import web

from .. import hints
from ..errors import GravelError, LimitError, ParseError, StateUnavailable
from ..formats.decoding import decode_body
from ..formats.negotiation import push_format
from ..http_errors import error_response
from ..state import DELETE, FAILURE, PUSH, WIPE, Record, Replayed, StateBackend
from ..state.applier import PARSERS
from ..telemetry.counters import Stats, batch_points
from .grouping import parse_grouping_key
from .idempotency import REPLAYED, fingerprint, request_key

log = logging.getLogger("otelgravel.pushgateway")

# A function instance pushes to the same path with the same headers again and again: both are
# read once per distinct value (errors are not cached; the caches are bounded). The path cache is
# large because an LRU smaller than the set of pushing groups misses on every round-robin push.
_grouping_key = lru_cache(maxsize=65536)(parse_grouping_key)
_format_for = lru_cache(maxsize=64)(
    lambda content_type: (push_format(content_type), PARSERS[push_format(content_type)]))


class PushgatewayReceiver:
    def __init__(self, state: StateBackend, *, admin_api: bool = False,
                 max_body: int = 16 << 20, stats: Stats | None = None,
                 elsewhere: dict[str, str] | None = None):
        self.state = state
        self.elsewhere = {} if elsewhere is None else elsewhere  # component -> URL, for hints
        self.stats = stats if stats is not None else Stats()
        self.admin_api = admin_api
        self.max_body = max_body

    def routes(self) -> list[web.RouteDef]:
        routes = [
            web.put("/metrics", self.push),
            web.post("/metrics", self.push),
            web.put("/metrics/job{tail:.*}", self.push),
            web.post("/metrics/job{tail:.*}", self.push),
            web.delete("/metrics/job{tail:.*}", self.delete),
            web.get("/-/healthy", self.healthy),
            web.get("/-/ready", self.ready),
        ]
        if self.admin_api:
            routes.append(web.put("/api/v1/admin/wipe", self.wipe))
        return routes

    @staticmethod
    def _group(request: web.Request):
        path = request.raw_path.split("?", 1)[0]
        return _grouping_key(path[len("/metrics"):])

    async def push(self, request: web.Request) -> web.Response:
        now = time.time()
        group = ()
        batch = ()
        body = b""
        try:
            group = self._group(request)
            key = request_key(request)
            content = request.content
            if content.is_eof():  # all of the body has arrived (most pushes): take it as it is
                raw = content.read_nowait()
            else:
                raw = await request.read()
            body = decode_body(raw, request.headers.get("Content-Encoding"), self.max_body)
            fmt, parse = _format_for(request.headers.get("Content-Type"))
            batch = parse(body)
        except GravelError as exc:  # refused before the state: a FAILURE record marks the group
            if isinstance(exc, ParseError):
                exc = hints.push_body(exc, body, self.elsewhere)
            await self._refused(group, now)
            return self._refusal(request, exc, group, batch, now)
        record = Record(PUSH, now, group, fmt, body, batch, key,
                        b"" if key is None else fingerprint(request, body))
        try:  # a refusal by the store is recorded by the applier itself
            result = await self.state.submit(record)
        except GravelError as exc:
            return self._refusal(request, exc, group, batch, now)
        if key is not None and type(result) is Replayed:  # applied before: nothing again
            self.stats.count_request("pushgateway", "replayed")
            return web.Response(status=200, headers=REPLAYED)
        self.stats.accepted("pushgateway", batch_points(batch))
        return web.Response(status=200)

    def _refusal(self, request: web.Request, exc: GravelError, group, batch,
                 now: float) -> web.Response:
        self.stats.refused("pushgateway", exc, batch_points(batch), group, request.remote, now)
        log.log(logging.WARNING if isinstance(exc, (LimitError, StateUnavailable)) else logging.DEBUG,
                "push refused", extra={"fields": {"path": request.path, "reason": str(exc)}})
        return error_response(exc)

    async def delete(self, request: web.Request) -> web.Response:
        try:
            group = self._group(request)
            key = request_key(request)
        except GravelError as exc:
            return error_response(exc)
        record = Record(DELETE, time.time(), group, key=key,
                        fingerprint=b"" if key is None else fingerprint(request, b""))
        try:
            result = await self.state.submit(record)
        except GravelError as exc:
            return error_response(exc)
        if key is not None and type(result) is Replayed:
            self.stats.count_request("pushgateway", "replayed")
            return web.Response(status=202, headers=REPLAYED)
        return web.Response(status=202)

    async def wipe(self, request: web.Request) -> web.Response:
        try:
            await self.state.submit(Record(WIPE, time.time()))
        except GravelError as exc:
            return error_response(exc)
        return web.Response(status=202)

    async def _refused(self, group, now: float) -> None:
        if group in self.state.applier.store.groups:  # only a known group has a failure time
            try:
                await self.state.submit(Record(FAILURE, now, group))
            except GravelError:
                pass  # push_failure_time is best effort; the push's own answer says what failed

    async def healthy(self, request: web.Request) -> web.Response:
        return web.Response(text="OK\n")

    async def ready(self, request: web.Request) -> web.Response:
        if not self.state.ready:
            problem = self.state.problem  # e.g. Redis refusing the credentials
            return web.Response(status=503, text=f"state not restored yet{': ' + problem if problem else ''}\n")
        return web.Response(text="OK\n")
