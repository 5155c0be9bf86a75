"""The one ``MeterProvider`` of the gateway, and ``GET /metrics`` on ``service.telemetry.metrics.address``.

The provider has a ``PrometheusMetricReader`` that registers into a registry of our own (not
prometheus_client's global one) and the resource ``service.name=otelgravel``, ``service.version``
(exported as ``target_info``). Every counter and gauge is an *observable* instrument whose callback
reads ``Stats`` and the store when the endpoint is scraped: the request path never calls the SDK.

The histograms (request, scrape and state-sync durations) are the exception: the SDK has no
observable histogram, and ``Histogram.record`` costs about 20 µs a call here (measured with
timeit on this machine: as much as a whole push), so the edges fill ``BucketHistogram`` rows and a
prometheus_client collector registered in the same registry renders them at collection. The
process collector (memory, CPU, open files) is prometheus_client's, in the same registry.
"""
from __future__ import annotations

from aiohttp import web
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.resources import Resource
from prometheus_client import CollectorRegistry, ProcessCollector
from prometheus_client.core import HistogramMetricFamily
from prometheus_client.exposition import choose_encoder

from .counters import BucketHistogram, Stats


def _format_bound(bound: float) -> str:
    return "+Inf" if bound == float("inf") else repr(float(bound))


class _HistogramCollector:
    """Renders ``BucketHistogram``s as Prometheus histograms when the registry is collected."""

    def __init__(self, histograms: list[tuple[str, str, BucketHistogram]]):
        self._histograms = histograms

    def collect(self):
        for name, help_, histogram in self._histograms:
            family = HistogramMetricFamily(name, help_, labels=histogram.labelnames)
            for labels, buckets, _count, sum_ in histogram.rows():
                family.add_metric([str(v) for v in labels],
                                  [(_format_bound(b), c) for b, c in buckets], sum_)
            yield family


def _observe(mapping: dict, names: tuple[str, ...]):
    """A callback observing ``{(value of each name, ...): number}`` as one point per key (a key
    of one name may be the value itself)."""
    if len(names) == 1:
        def callback(options: CallbackOptions):
            return [Observation(v, {names[0]: key}) for key, v in list(mapping.items())]
        return callback

    def callback(options: CallbackOptions):
        return [Observation(v, dict(zip(names, key))) for key, v in list(mapping.items())]
    return callback


def _per_server(connections: dict, rows):
    """A callback observing ``rows(count) -> [(value, attributes)]`` of each server's
    ``ConnectionCount``, with the ``server`` attribute."""
    def callback(options: CallbackOptions):
        return [Observation(v, {"server": server, **attrs})
                for server, count in list(connections.items()) for v, attrs in rows(count)]
    return callback


def _one(read):
    def callback(options: CallbackOptions):
        return [Observation(read())]
    return callback


class Telemetry:
    """The MeterProvider, its instruments and the registry the endpoint renders.

    ``store`` is read by duck type (``exposed_count``, ``groups``, ``max_series``,
    ``max_groups``, ``expired_series``, ``expired_groups``); ``extra_gauges`` adds ``(name, unit, help, read)``
    gauges of other components (requests in flight, OTLP sources).
    """

    def __init__(self, stats: Stats, store, version: str, extra_gauges=()):
        self.stats = stats
        self.registry = CollectorRegistry(auto_describe=False)
        reader = PrometheusMetricReader(registry=self.registry, scope_info_enabled=False)
        resource = Resource.create({"service.name": "otelgravel", "service.version": version})
        self.provider = MeterProvider(metric_readers=[reader], resource=resource,
                                      shutdown_on_exit=False)
        meter = self.provider.get_meter("otelgravel", version)
        counter, gauge = meter.create_observable_counter, meter.create_observable_gauge
        counter("otelgravel.receiver.requests", [_observe(stats.requests, ("receiver", "outcome"))],
                unit="{request}",
                description="Requests to a receiver by outcome: accepted, refused (bad input or "
                            "conflict), limited (series limit), too_large, unauthorized, forbidden.")
        counter("otelgravel.receiver.points", [_observe(stats.points, ("receiver", "outcome"))],
                unit="{point}",
                description="Series points received, by outcome (OTLP: refused includes the "
                            "points of a partial success).")
        counter("otelgravel.receiver.otlp.partial_success",
                [_one(lambda: stats.otlp_partial_success)], unit="{request}",
                description="OTLP exports answered 200 with rejected data points.")
        counter("otelgravel.receiver.auth_failures",
                [_observe(stats.auth_failures, ("receiver", "reason"))], unit="{request}",
                description="Requests refused by an authenticator, by reason.")
        gauge("otelgravel.store.series", [_one(lambda: store.exposed_count)], unit="{series}",
              description="Series a scrape shows (at most: empty windows show nothing), each "
                          "group's push_time_seconds and push_failure_time_seconds included: "
                          "what max_series bounds.")
        gauge("otelgravel.store.groups", [_one(lambda: len(store.groups))], unit="{group}",
              description="Groups (grouping keys) the gateway holds.")
        gauge("otelgravel.store.series_limit", [_one(lambda: store.max_series)], unit="{series}",
              description="processors::gravel::max_series: pushes past it are refused.")
        if store.max_groups is not None:
            gauge("otelgravel.store.groups_limit", [_one(lambda: store.max_groups)],
                  unit="{group}", description="processors::gravel::max_groups.")
        counter("otelgravel.store.expired_series", [_one(lambda: store.expired_series)],
                unit="{series}", description="Series removed by expiry (expire_after, windows).")
        counter("otelgravel.store.expired_groups", [_one(lambda: store.expired_groups)],
                unit="{group}", description="Empty idle groups removed by expiry.")
        connections = stats.connections
        counter("otelgravel.http_server.connections.shed", [_per_server(
            connections, lambda c: [(c.shed, {})])], unit="{connection}",
            description="Connections closed at accept because max_connections were open.")
        counter("otelgravel.http_server.connections.timed_out", [_per_server(
            connections, lambda c: [(n, {"timeout": t}) for t, n in c.timed_out.items()])],
            unit="{connection}",
            description="Connections closed by a timeout: read_header_timeout, read_timeout "
                        "(the request was incomplete) or idle_timeout (kept alive, unused).")
        gauge("otelgravel.http_server.active_connections", [_per_server(
            connections, lambda c: [(c.open, {})])], unit="{connection}",
            description="Open connections of each HTTP server.")
        gauge("otelgravel.http_server.connections_limit", [_per_server(
            connections, lambda c: [(c.limit, {})] if c.limit else [])], unit="{connection}",
            description="max_connections of each HTTP server (when it has one).")
        counter("otelgravel.exporter.scrapes", [_observe(stats.scrapes, ("format",))],
                unit="{scrape}", description="Scrapes of the exporter, by format.")
        for name, unit, help_, read in extra_gauges:
            gauge(name, [_one(read)], unit=unit, description=help_)
        self.registry.register(_HistogramCollector([
            ("otelgravel_http_server_request_duration_seconds",
             "Duration of HTTP requests, by route template, method and status.",
             stats.request_duration),
            ("otelgravel_exporter_scrape_duration_seconds",
             "Time to render a scrape of the exporter, by format.", stats.scrape_duration),
            ("otelgravel_state_sync_duration_seconds",
             "Time to make a record durable (fsync, Redis), by backend.",
             stats.state_sync_duration),
        ]))
        ProcessCollector(registry=self.registry)

    def render(self, accept: str | None) -> tuple[bytes, str]:
        """The registry in the format ``Accept`` prefers (text 0.0.4 or OpenMetrics)."""
        encoder, content_type = choose_encoder(accept or "")
        return encoder(self.registry), content_type

    def routes(self) -> list[web.RouteDef]:
        async def metrics(request: web.Request) -> web.Response:
            body, content_type = self.render(request.headers.get("Accept"))
            return web.Response(body=body, headers={"Content-Type": content_type})
        return [web.get("/metrics", metrics)]

    def shutdown(self) -> None:
        self.provider.shutdown()

