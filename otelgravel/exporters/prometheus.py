"""The ``prometheus`` exporter: ``GET /metrics`` in the format the scraper prefers (PrometheusProto,
OpenMetrics, text; SPEC 10), gzip if asked."""
from __future__ import annotations

import time
import zlib

from aiohttp import web

from ..formats.exposition import write_openmetrics, write_text
from ..formats.negotiation import OPENMETRICS, PROTOBUF, negotiate, wants_gzip
from ..formats.protobuf_exposition import write_protobuf
from ..telemetry.counters import Stats


class PrometheusExporter:
    def __init__(self, store, stats: Stats | None = None):
        self.store = store
        self.stats = stats if stats is not None else Stats()

    def routes(self) -> list[web.RouteDef]:
        return [web.get("/metrics", self.scrape)]

    async def scrape(self, request: web.Request) -> web.Response:
        start = time.perf_counter()
        now = time.time()
        chosen = negotiate(request.headers.get("Accept"))
        if chosen.kind == PROTOBUF:
            data = write_protobuf(self.store, now, chosen.escaping)
        elif chosen.kind == OPENMETRICS:
            data = write_openmetrics(self.store, now, chosen.escaping).encode()
        else:
            data = write_text(self.store, now, chosen.escaping).encode()
        headers = {"Content-Type": chosen.content_type}
        if wants_gzip(request.headers.get("Accept-Encoding")):
            gz = zlib.compressobj(1, zlib.DEFLATED, 31)
            data = gz.compress(data) + gz.flush()
            headers["Content-Encoding"] = "gzip"
        self.stats.scraped(chosen.kind, time.perf_counter() - start)
        return web.Response(body=data, headers=headers)
