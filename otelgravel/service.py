"""Build the pipeline from the config, serve it, and shut it down in order.

Receivers and the exporter are routes; routes that share an endpoint share one HTTP server (the
Pushgateway convention: push and scrape on one port), served by ``http_server.Router``. Every
change goes through the state backend (``otelgravel.state``: memory, or ``storage.directory``).
A background tick expires series whether or not anyone scrapes. SIGTERM/SIGINT: stop accepting,
finish in-flight requests, refuse the rest, write the last snapshot, exit 0.
"""
from __future__ import annotations

import asyncio
import logging
import signal
import time
from functools import partial

from aiohttp import web

from . import __version__, listen
from .auth.security import Security
from .config import Config, Endpoint, HttpLimits
from .core.store import Store
from .exporters.prometheus import PrometheusExporter
from .http_limits import LimitedServer, raise_fd_limit
from .http_server import AnswerRound, InFlight, Router
from .processor import GravelProcessor, Rule
from .receivers.otlp import otlp_routes
from .receivers.pushgateway import PushgatewayReceiver
from .state import EXPIRE, Applier, KeyTable, MemoryBackend, Record, StateBackend
from .state.file import FileBackend
from .status.routes import StatusRoutes
from .telemetry.counters import Stats
from .telemetry.meter import Telemetry
from .translate.otlp import OtlpTranslator

log = logging.getLogger("otelgravel")


VERSION = __version__  # otelgravel/__init__.py: known in a plain checkout too
EXPIRY_TICK_SECONDS = 1.0
SHUTDOWN_GRACE_SECONDS = 10.0


class _OwnServer(Endpoint):
    """An endpoint that never shares its server (equal to no ``Endpoint``, port 0 included):
    the telemetry's ``GET /metrics`` is not the exporter's."""


class Service:
    def __init__(self, config: Config):
        self.config = config
        self.store = Store(max_series=config.gravel.max_series,
                           expire_after=config.gravel.expire_after,
                           max_groups=config.gravel.max_groups)
        self.processor = GravelProcessor(self.store, [Rule(p, m) for p, m in config.gravel.rules])
        self.translator: OtlpTranslator | None = None
        self._routes: dict[Endpoint, list] = {}
        self._max_body: dict[Endpoint, int] = {}
        self._limits: dict[Endpoint, HttpLimits] = {}
        self._limits_of: dict[Endpoint, str] = {}
        self._by_endpoint: dict[Endpoint, list[str]] = {}  # endpoint -> components served there
        self.bound: dict[str, str] = {}  # component -> its URL as bound: the hints in 404s and 400s
        self._runners: list[web.ServerRunner] = []
        self._ticker: asyncio.Task | None = None
        self._in_flight = InFlight()
        self._answers = AnswerRound()  # one for all listeners: a turn of the loop serves them all
        self.security = Security(config)  # ConfigError for a file that does not load
        self.stats = Stats()  # the edges' counts: the status page and the telemetry read them
        self.telemetry: Telemetry | None = None

        if config.otlp is not None:
            o = config.otlp
            self.translator = OtlpTranslator(keep_instance=o.keep_instance,
                                             source_ttl=o.source_ttl, max_sources=o.max_sources,
                                             rule_for=self.processor.rule_mode,
                                             utf8_names=o.utf8_names)
        self.applier = Applier(self.processor, self.translator,
                               KeyTable(config.gravel.max_idempotency_keys,
                                        config.gravel.idempotency_key_ttl))
        self.state: StateBackend = _backend(config)
        kind = "redis" if config.gravel.storage.redis is not None else "file"
        self.state.observe_sync = partial(self.stats.state_sync_duration.observe, (kind,))

        exporter = PrometheusExporter(self.store, self.stats)
        self._add("prometheus", config.prometheus.endpoint, exporter.routes(), 1 << 20,
                  config.prometheus.limits)
        status = StatusRoutes(self.store, self.stats, config, VERSION, time.time())
        self._add("status", config.prometheus.endpoint, status.routes(), 1 << 20)
        if config.pushgateway is not None:
            pg = config.pushgateway
            receiver = PushgatewayReceiver(self.state, admin_api=pg.admin_api,
                                           max_body=pg.max_body_size, stats=self.stats,
                                           elsewhere=self.bound)
            self._add("pushgateway", pg.endpoint, receiver.routes(), pg.max_body_size, pg.limits)
        if config.otlp is not None:
            self._add("otlp", o.endpoint,
                      otlp_routes(self.state, max_body=o.max_body_size, stats=self.stats),
                      o.max_body_size, o.limits)
        if config.telemetry_address is not None:
            self.telemetry = self._telemetry()
            address = _OwnServer(config.telemetry_address.host, config.telemetry_address.port)
            self._add("telemetry", address, self.telemetry.routes(), 1 << 16)

    def _telemetry(self) -> Telemetry:
        gauges = [("otelgravel.http_server.active_requests", "{request}",
                   "Requests in their handlers (bodies still arriving included).",
                   lambda: self._in_flight.count)]
        if self.translator is not None:
            gauges.append(("otelgravel.receiver.otlp.sources", "{source}",
                           "Cumulative OTLP sources remembered for differencing.",
                           lambda: len(self.translator)))
        return Telemetry(self.stats, self.store, VERSION, gauges)

    def _add(self, component: str, endpoint: Endpoint, routes: list, max_body: int,
             limits: HttpLimits | None = None) -> None:
        if limits is not None:  # a shared server: the first that names its limits
            self._limits.setdefault(endpoint, limits)
            self._limits_of.setdefault(endpoint, component)  # names the server in telemetry
        self._routes.setdefault(endpoint, []).extend(self.security.guard(component, routes, self.stats))
        self._max_body[endpoint] = max(self._max_body.get(endpoint, 0), max_body)
        self._by_endpoint.setdefault(endpoint, []).append(component)

    async def start(self) -> None:
        await self.state.open(self.applier)
        loop = asyncio.get_running_loop()
        fds, _ = raise_fd_limit()
        for endpoint, routes in self._routes.items():
            max_body = self._max_body[endpoint]

            def make_request(message, payload, protocol, writer, task, max_body=max_body):
                # The wire cap; compressed bodies are capped again after decoding by the receivers.
                return web.BaseRequest(message, payload, protocol, writer, task, loop,
                                       client_max_size=max_body)

            timed = self.telemetry is not None and not isinstance(endpoint, _OwnServer)
            router = Router(routes, self._in_flight,
                            self.stats.request_duration if timed else None, elsewhere=self.bound,
                            answers=self._answers)
            # auto_decompress off: the receivers decode bodies themselves, under the size cap
            limits = self._limits.get(endpoint, HttpLimits())
            name = self._limits_of.get(endpoint, self._by_endpoint[endpoint][0])
            server = LimitedServer(router, limits=limits, endpoint=str(endpoint), server=name,
                                   request_factory=make_request, access_log=None,
                                   auto_decompress=False)
            self.stats.connections[name] = server.count
            runner = web.ServerRunner(server, handle_signals=False,
                                      shutdown_timeout=SHUTDOWN_GRACE_SECONDS)
            await runner.setup()
            self._runners.append(runner)
            ssl_context = self.security.ssl_context(endpoint)
            # every address the host resolves to (localhost: 127.0.0.1 and ::1), one port
            for sock in listen.bind(listen.addresses(endpoint.host, endpoint.port), endpoint.port):
                await web.SockSite(runner, sock, ssl_context=ssl_context).start()
            shown = [f"[{a[0]}]:{a[1]}" if ":" in a[0] else f"{a[0]}:{a[1]}" for a in runner.addresses]
            bound = shown[0]  # the real port when the config said 0
            also = {"addresses": ",".join(shown)} if len(shown) > 1 else {}
            scheme = "https" if ssl_context else "http"
            for component in self._by_endpoint[endpoint]:
                self.bound[component] = f"{scheme}://{bound}"
            log.info("listening", extra={"fields": {
                "components": ",".join(self._by_endpoint[endpoint]), "endpoint": bound, **also,
                "scheme": scheme,
                "max_connections": limits.max_connections, "max_open_files": fds}})
        self._ticker = asyncio.create_task(self._tick())

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(EXPIRY_TICK_SECONDS)
            now = time.time()
            # Expiry changes the state, so it is a record too: applied in log order, replayed
            # the same (and, on Redis, the same on every replica).
            try:
                dropped = 0
                # (not while the backend cannot take records: the tick would only fail)
                if self.state.ready and self.state.available and self.applier.expiry_due(now):
                    dropped = await self.state.submit(Record(EXPIRE, now))
            except Exception:  # the tick must survive anything; the request paths stay correct
                log.exception("expiry failed")
                continue
            if dropped:
                log.debug("expired", extra={"fields": {"series": dropped}})

    async def stop(self) -> None:
        """Stop listening, answer the requests in flight, refuse any other, then close the state.

        aiohttp's own cleanup stops reading from open connections at once, which would drop a
        push whose body is still on its way; so the listeners close first and we wait here.
        From then on a request arriving on a kept-alive connection gets 503 and Connection:
        close (``InFlight.closing``), and the state refuses what comes after ``close`` (a request
        still in flight after the grace period): no push is answered 200 after the final
        snapshot was taken without it.
        """
        if self._ticker is not None:
            self._ticker.cancel()
        self._in_flight.closing = True
        for runner in self._runners:
            for site in list(runner.sites):
                await site.stop()
        if not await self._in_flight.wait(SHUTDOWN_GRACE_SECONDS):
            log.warning("in-flight requests abandoned",
                        extra={"fields": {"requests": self._in_flight.count}})
        await self.state.close()
        for runner in self._runners:
            await runner.cleanup()
        if self.telemetry is not None:
            self.telemetry.shutdown()
        # series: pushed; exposed: what a scrape shows (with each group's push_time_seconds and
        # push_failure_time_seconds), the figure max_series bounds
        log.info("stopped", extra={"fields": {"series": self.store.series_count,
                                              "exposed": self.store.exposed_count}})


def _backend(config: Config) -> StateBackend:
    storage = config.gravel.storage
    if storage.redis is not None:
        from .state.redis_backend import RedisBackend  # redis-py is imported only when used
        from .state.redis_log import RedisLog
        redis = storage.redis
        return RedisBackend(
            RedisLog(redis.addresses, username=redis.username, password=redis.password,
                     ca_file=redis.ca_file, key_prefix=redis.key_prefix,
                     wait_replicas=redis.wait_replicas, wait_timeout=redis.wait_timeout),
            snapshot_interval=storage.snapshot_interval,
            snapshot_log_size=storage.snapshot_log_size)
    if storage.directory:
        return FileBackend(storage.directory, storage.sync, storage.sync_interval,
                           storage.snapshot_interval, storage.snapshot_log_size)
    return MemoryBackend()


async def run(config: Config) -> None:
    service = Service(config)
    await service.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    loop.add_signal_handler(signal.SIGHUP, service.security.reload)  # certificates, credentials
    loop_name = "uvloop" if type(loop).__module__.startswith("uvloop") else "asyncio"
    log.info("ready", extra={"fields": {"series_limit": config.gravel.max_series, "loop": loop_name}})
    await stop.wait()
    log.info("shutting down", extra={"fields": {}})
    await service.stop()
