"""The ``pushgateway`` receiver: the Pushgateway's push API, plus Gravel's bare ``/metrics``.

Thin on purpose: read the body, pick the parser by Content-Type, hand the batch and the grouping
key to the processor, answer. Parsing and aggregation live in ``formats`` and ``core``.
"""
from __future__ import annotations

import logging
import time
from functools import lru_cache

from aiohttp import web

from ..errors import GravelError, LimitError
from ..formats.decoding import decode_body
from ..formats.negotiation import push_format
from ..formats.openmetrics import parse_openmetrics
from ..formats.prom_protobuf import parse_prom_protobuf
from ..formats.prom_text import parse_prom_text
from ..http_errors import error_response
from ..processor import GravelProcessor
from ..telemetry.counters import Stats, batch_points
from .grouping import parse_grouping_key

log = logging.getLogger("otelgravel.pushgateway")

_PARSERS = {"text": parse_prom_text, "openmetrics": parse_openmetrics,
            "protobuf": parse_prom_protobuf}

# A function instance pushes to the same path with the same headers again and again: both are
# read once per distinct value (errors are not cached; the caches are bounded). The path cache is
# large because an LRU smaller than the set of pushing groups misses on every round-robin push.
_grouping_key = lru_cache(maxsize=65536)(parse_grouping_key)
_parser_for = lru_cache(maxsize=64)(lambda content_type: _PARSERS[push_format(content_type)])


class PushgatewayReceiver:
    def __init__(self, processor: GravelProcessor, *, admin_api: bool = False,
                 max_body: int = 16 << 20, wipe=None, stats: Stats | None = None):
        self.processor = processor
        self.stats = stats if stats is not None else Stats()
        self.admin_api = admin_api
        self.max_body = max_body
        self._wipe = wipe or processor.wipe  # the service also resets the OTLP source memory

    def routes(self) -> list[web.RouteDef]:
        routes = [
            web.put("/metrics", self.push),
            web.post("/metrics", self.push),
            web.put("/metrics/job{tail:.*}", self.push),
            web.post("/metrics/job{tail:.*}", self.push),
            web.delete("/metrics/job{tail:.*}", self.delete),
            web.get("/-/healthy", self.healthy),
            web.get("/-/ready", self.healthy),
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
        try:
            group = self._group(request)
            content = request.content
            if content.is_eof():  # all of the body has arrived (most pushes): take it as it is
                raw = content.read_nowait()
            else:
                raw = await request.read()
            body = decode_body(raw, request.headers.get("Content-Encoding"), self.max_body)
            batch = _parser_for(request.headers.get("Content-Type"))(body)
            self.processor.push(group, batch, now)
        except GravelError as exc:
            self.processor.refused(group, now)
            self.stats.refused("pushgateway", exc, batch_points(batch), group, request.remote, now)
            log.log(logging.WARNING if isinstance(exc, LimitError) else logging.DEBUG,
                    "push refused", extra={"fields": {"path": request.path, "reason": str(exc)}})
            return error_response(exc)
        self.stats.accepted("pushgateway", batch_points(batch))
        return web.Response(status=200)

    async def delete(self, request: web.Request) -> web.Response:
        try:
            group = self._group(request)
        except GravelError as exc:
            return error_response(exc)
        self.processor.delete(group)
        return web.Response(status=202)

    async def wipe(self, request: web.Request) -> web.Response:
        self._wipe()
        return web.Response(status=202)

    async def healthy(self, request: web.Request) -> web.Response:
        return web.Response(text="OK\n")
