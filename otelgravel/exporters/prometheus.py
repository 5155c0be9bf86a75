"""The ``prometheus`` exporter: ``GET /metrics`` in the format the scraper prefers (PrometheusProto,
OpenMetrics, text; SPEC 10), gzip if asked (Prometheus always asks). A large scrape is compressed
in a thread: zlib lets go of the GIL, so pushes go on meanwhile (30 MB of text, 260,000 series:
about 50 ms that the event loop would otherwise stand still)."""
from __future__ import annotations

import asyncio
import time
import zlib

from aiohttp import web

from ..formats.exposition import write_openmetrics, write_text
from ..formats.negotiation import OPENMETRICS, PROTOBUF, negotiate, wants_gzip
from ..formats.protobuf_exposition import write_protobuf
from ..telemetry.counters import Stats

GZIP_IN_THREAD = 64 << 10  # bytes: below this, the hop to a thread costs more than it spares


def _gzip(data: bytes) -> bytes:
    gz = zlib.compressobj(1, zlib.DEFLATED, 31)
    return gz.compress(data) + gz.flush()


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
            if len(data) < GZIP_IN_THREAD:
                data = _gzip(data)
            else:
                data = await asyncio.get_running_loop().run_in_executor(None, _gzip, data)
            headers["Content-Encoding"] = "gzip"
        self.stats.scraped(chosen.kind, time.perf_counter() - start)
        return web.Response(body=data, headers=headers)
