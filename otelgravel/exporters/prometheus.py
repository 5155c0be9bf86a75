"""The ``prometheus`` exporter: ``GET /metrics`` in the format the scraper prefers (PrometheusProto,
OpenMetrics, text; SPEC 10), gzip if asked (Prometheus always asks).

A large scrape does not hold the pushes: it is rendered in pieces (a family, or 4,096 series of a
large one) and lets the event loop run between pieces every ``TURN`` seconds (at 260,000 series,
every series changed, rendering takes 0.6 to 0.8 s that pushes would otherwise wait), and it is
compressed in a thread (zlib lets go of the GIL: 50 ms for 30 MB of text)."""
from __future__ import annotations

import asyncio
import time
import zlib

from aiohttp import web

from ..formats.exposition import exposition_pieces
from ..formats.negotiation import OPENMETRICS, PROTOBUF, negotiate, wants_gzip
from ..formats.protobuf_exposition import protobuf_pieces
from ..telemetry.counters import Stats

GZIP_IN_THREAD = 64 << 10  # bytes: below this, the hop to a thread costs more than it spares
TURN = 0.005  # seconds of rendering before the pushes waiting meanwhile get their turn


async def _rendered(pieces) -> list:
    """The pieces' parts, letting the event loop run every TURN seconds of rendering."""
    out: list = []
    extend = out.extend
    clock = time.perf_counter
    turn = clock() + TURN
    for piece in pieces:
        extend(piece)
        if clock() >= turn:
            await asyncio.sleep(0)
            turn = clock() + TURN
    return out


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
            data = b"".join(await _rendered(protobuf_pieces(self.store, now, chosen.escaping)))
        else:
            om = chosen.kind == OPENMETRICS
            data = "".join(await _rendered(exposition_pieces(self.store, now, om,
                                                             chosen.escaping))).encode()
        headers = {"Content-Type": chosen.content_type}
        if wants_gzip(request.headers.get("Accept-Encoding")):
            if len(data) < GZIP_IN_THREAD:
                data = _gzip(data)
            else:
                data = await asyncio.get_running_loop().run_in_executor(None, _gzip, data)
            headers["Content-Encoding"] = "gzip"
        self.stats.scraped(chosen.kind, time.perf_counter() - start)
        return web.Response(body=data, headers=headers)
