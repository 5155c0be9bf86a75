"""Thin aiohttp handlers over ``views`` (data), ``page`` (HTML) and ``redact`` (the config).

JSON answers have the Pushgateway's envelope ``{"status": "success", "data": ...}`` and escape
``<``, ``>`` and ``&`` as ``\\u003c``... (as Go's encoding/json does), so a label value holding
markup stays inert wherever the JSON is pasted.
"""
from __future__ import annotations

import json
import time

from aiohttp import web

from . import page, views
from .redact import redact

_NO_STORE = {"Cache-Control": "no-cache, no-store, must-revalidate",
             "X-Content-Type-Options": "nosniff"}


def _json(data) -> web.Response:
    text = json.dumps({"status": "success", "data": data}, ensure_ascii=False,
                      separators=(",", ":"))
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return web.Response(text=text, content_type="application/json", headers=_NO_STORE)


class StatusRoutes:
    def __init__(self, store, stats, config, version: str, start_time: float):
        self.store = store
        self.stats = stats
        self.config = config
        self.version = version
        self.start_time = start_time

    def routes(self) -> list[web.RouteDef]:
        return [web.get("/", self.page), web.get("/api/v1/status", self.status),
                web.get("/api/v1/metrics", self.metrics),
                web.get("/api/v1/refusals", self.refusals)]

    def _limits(self) -> dict:
        c = self.config
        limits = {"max_series": c.gravel.max_series,
                  "max_groups": getattr(c.gravel, "max_groups", None),
                  "expire_after_seconds": c.gravel.expire_after}
        if c.pushgateway is not None:
            limits["pushgateway_max_body_size"] = c.pushgateway.max_body_size
        if c.otlp is not None:
            limits["otlp_max_body_size"] = c.otlp.max_body_size
        return limits

    def _status(self, now: float) -> dict:
        return views.status(self.store, self.stats, version=self.version,
                            start_time=self.start_time, now=now,
                            config=redact(self.config.document), limits=self._limits())

    async def status(self, request: web.Request) -> web.Response:
        return _json(self._status(time.time()))

    async def metrics(self, request: web.Request) -> web.Response:
        return _json(views.metrics(self.store, time.time()))

    async def refusals(self, request: web.Request) -> web.Response:
        return _json(views.refusals(self.stats))

    async def page(self, request: web.Request) -> web.Response:
        query = request.query.get("q", "")[:200]
        groups, matched = views.group_rows(self.store, query)
        html = page.render(self._status(time.time()), groups, matched,
                           views.refusals(self.stats), query)
        return web.Response(text=html, content_type="text/html",
                            headers={**_NO_STORE, "Content-Security-Policy": page.CSP,
                                     "X-Frame-Options": "DENY"})
