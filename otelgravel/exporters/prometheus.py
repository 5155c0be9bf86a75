"""The ``prometheus`` exporter: ``GET /metrics`` in the format the scraper prefers, gzip if asked."""
from __future__ import annotations

import time
import zlib

from aiohttp import web

from ..formats.exposition import write_openmetrics, write_text
from ..formats.negotiation import (OPENMETRICS_CONTENT_TYPE, TEXT_CONTENT_TYPE, scrape_format,
                                   wants_gzip)
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
        format_ = scrape_format(request.headers.get("Accept"))
        if format_ == "openmetrics":
            body, content_type = write_openmetrics(self.store, now), OPENMETRICS_CONTENT_TYPE
        else:
            body, content_type = write_text(self.store, now), TEXT_CONTENT_TYPE
        data = body.encode()
        headers = {"Content-Type": content_type}
        if wants_gzip(request.headers.get("Accept-Encoding")):
            gz = zlib.compressobj(1, zlib.DEFLATED, 31)
            data = gz.compress(data) + gz.flush()
            headers["Content-Encoding"] = "gzip"
        self.stats.scraped(format_, time.perf_counter() - start)
        return web.Response(body=data, headers=headers)
