"""Build the pipeline from the config, serve it, and shut it down in order.

Receivers and the exporter are routes; routes that share an endpoint share one HTTP server (the
Pushgateway convention: push and scrape on one port), served by ``http_server.Router``. A background tick expires series whether
or not anyone scrapes. SIGTERM/SIGINT: stop accepting, finish in-flight requests, exit 0.
"""
from __future__ import annotations

import asyncio
import logging
import signal
import time

from aiohttp import web

from . import persistence
from .auth.security import Security
from .config import Config, Endpoint
from .core.store import Store
from .exporters.prometheus import PrometheusExporter
from .http_server import InFlight, Router
from .processor import GravelProcessor, Rule
from .receivers.otlp import otlp_routes
from .receivers.pushgateway import PushgatewayReceiver
from .translate.otlp import OtlpTranslator

log = logging.getLogger("otelgravel")

EXPIRY_TICK_SECONDS = 1.0
SHUTDOWN_GRACE_SECONDS = 10.0


class Service:
    def __init__(self, config: Config):
        self.config = config
        self.store = Store(max_series=config.gravel.max_series,
                           expire_after=config.gravel.expire_after)
        self.processor = GravelProcessor(self.store, [Rule(p, m) for p, m in config.gravel.rules])
        self.translator: OtlpTranslator | None = None
        self._routes: dict[Endpoint, list] = {}
        self._max_body: dict[Endpoint, int] = {}
        self._by_endpoint: dict[Endpoint, list[str]] = {}  # endpoint -> components served there
        self._runners: list[web.ServerRunner] = []
        self._ticker: asyncio.Task | None = None
        self._saver: asyncio.Task | None = None
        self._saving: asyncio.Task | None = None
        self._in_flight = InFlight()
        self.security = Security(config)  # ConfigError for a file that does not load

        exporter = PrometheusExporter(self.store)
        self._add("prometheus", config.prometheus.endpoint,
                  self.security.guard("prometheus", exporter.routes(), config.prometheus.auth), 1 << 20)
        if config.pushgateway is not None:
            pg = config.pushgateway
            receiver = PushgatewayReceiver(self.processor, admin_api=pg.admin_api,
                                           max_body=pg.max_body_size, wipe=self.wipe)
            self._add("pushgateway", pg.endpoint,
                      self.security.guard("pushgateway", receiver.routes(), pg.auth), pg.max_body_size)
        if config.otlp is not None:
            o = config.otlp
            self.translator = OtlpTranslator(keep_instance=o.keep_instance,
                                             source_ttl=o.source_ttl, max_sources=o.max_sources,
                                             rule_for=self.processor.rule_mode)
            self._add("otlp", o.endpoint, self.security.guard(
                "otlp", otlp_routes(self.processor, self.translator, max_body=o.max_body_size),
                o.auth), o.max_body_size)

    def wipe(self) -> None:
        self.processor.wipe()
        if self.translator is not None:
            self.translator.reset()

    def _add(self, component: str, endpoint: Endpoint, routes: list, max_body: int) -> None:
        self._routes.setdefault(endpoint, []).extend(routes)
        self._max_body[endpoint] = max(self._max_body.get(endpoint, 0), max_body)
        self._by_endpoint.setdefault(endpoint, []).append(component)

    async def start(self) -> None:
        path = self.config.gravel.persistence_file
        if path:
            saved = persistence.load(path)  # PersistenceError: the caller exits, naming the file
            if saved is not None:
                snapshot, otlp_sources = saved
                self.store.restore(snapshot)
                if self.translator is not None and otlp_sources is not None:
                    self.translator.restore(otlp_sources)
                log.info("restored", extra={"fields": {"file": path, "series": self.store.series_count}})
            self._saver = asyncio.create_task(self._save_every(path, self.config.gravel.persistence_interval))
        loop = asyncio.get_running_loop()
        for endpoint, routes in self._routes.items():
            max_body = self._max_body[endpoint]

            def make_request(message, payload, protocol, writer, task, max_body=max_body):
                # The wire cap; compressed bodies are capped again after decoding by the receivers.
                return web.BaseRequest(message, payload, protocol, writer, task, loop,
                                       client_max_size=max_body)

            router = Router(routes, self._in_flight)
            # auto_decompress off: the receivers decode bodies themselves, under the size cap
            server = web.Server(router, request_factory=make_request, access_log=None,
                                auto_decompress=False)
            runner = web.ServerRunner(server, handle_signals=False,
                                      shutdown_timeout=SHUTDOWN_GRACE_SECONDS)
            await runner.setup()
            site = web.TCPSite(runner, endpoint.host, endpoint.port, reuse_address=True,
                               ssl_context=self.security.ssl_context(endpoint))
            await site.start()
            self._runners.append(runner)
            host, port = runner.addresses[0][:2]  # the real port when the config said 0
            bound = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
            log.info("listening", extra={"fields": {
                "components": ",".join(self._by_endpoint[endpoint]), "endpoint": bound,
                "scheme": "https" if self.security.ssl_context(endpoint) else "http"}})
        self._ticker = asyncio.create_task(self._tick())

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(EXPIRY_TICK_SECONDS)
            now = time.time()
            try:
                dropped = self.processor.expire(now)
                if self.translator is not None:
                    for group, families in self.translator.expire(now):
                        self.processor.push_each(group, families, now)
            except Exception:  # the tick must survive anything; the request paths stay correct
                log.exception("expiry failed")
                continue
            if dropped:
                log.debug("expired", extra={"fields": {"series": dropped}})

    async def _save_every(self, path: str, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            # shielded: stop() cancels this loop, never a save half-way (it waits for it instead)
            self._saving = asyncio.create_task(self._save(path))
            await asyncio.shield(self._saving)

    async def _save(self, path: str) -> None:
        try:
            count = await persistence.save(
                self.store, path, self.translator.snapshot() if self.translator is not None else None)
        except OSError as exc:  # a full disk must not take the gateway down; say so and go on
            log.error("persisting failed", extra={"fields": {"file": path, "error": exc}})
            return
        log.info("persisted", extra={"fields": {"file": path, "series": count}})

    async def stop(self) -> None:
        """Stop listening, let in-flight requests finish (bodies still arriving included), close.

        aiohttp's own cleanup stops reading from open connections at once, which would drop a
        push whose body is still on its way; so the listeners close first and we wait here.
        """
        for task in (self._ticker, self._saver):
            if task is not None:
                task.cancel()
        for runner in self._runners:
            for site in list(runner.sites):
                await site.stop()
        if not await self._in_flight.wait(SHUTDOWN_GRACE_SECONDS):
            log.warning("in-flight requests abandoned",
                        extra={"fields": {"requests": self._in_flight.count}})
        if self.config.gravel.persistence_file:
            if self._saving is not None:
                await self._saving  # a periodic save still writing: let it finish first
            await self._save(self.config.gravel.persistence_file)
        for runner in self._runners:
            await runner.cleanup()
        log.info("stopped", extra={"fields": {"series": self.store.series_count}})


async def run(config: Config) -> None:
    service = Service(config)
    await service.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    loop.add_signal_handler(signal.SIGHUP, service.security.reload)  # certificates, credentials
    log.info("ready", extra={"fields": {"series_limit": config.gravel.max_series}})
    await stop.wait()
    log.info("shutting down", extra={"fields": {}})
    await service.stop()
