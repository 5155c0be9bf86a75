"""The real opentelemetry-sdk exporting OTLP/HTTP (protobuf) to the real gateway.

Each "invocation" is its own MeterProvider with its own Resource (a random service.instance.id),
flushed and shut down, the way a serverless function runs once and exits.
"""
from __future__ import annotations

import uuid

import pytest
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.sdk.metrics import (Counter, Histogram, MeterProvider, ObservableCounter,
                                       ObservableUpDownCounter, UpDownCounter)
from opentelemetry.sdk.metrics.export import (AggregationTemporality, MetricExportResult,
                                              PeriodicExportingMetricReader)
from opentelemetry.sdk.resources import Resource
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_om

OM_ACCEPT = "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"

DELTA = {Counter: AggregationTemporality.DELTA, Histogram: AggregationTemporality.DELTA,
         UpDownCounter: AggregationTemporality.DELTA, ObservableCounter: AggregationTemporality.DELTA,
         ObservableUpDownCounter: AggregationTemporality.DELTA}


class CheckedExporter(OTLPMetricExporter):
    """Records each export's result: force_flush() reports success even when the gateway refuses."""

    def __init__(self, **kw):
        super().__init__(**kw)
        self.results = []

    def export(self, metrics_data, timeout_millis=10_000, **kw):
        result = super().export(metrics_data, timeout_millis, **kw)
        self.results.append(result)
        return result


def invoke(gateway, service, body, *, temporality=None, compression=None, instance=None,
           scope=("handler", "1.0")):
    """One function invocation: its own provider/resource; ``body(meter, flush)`` records."""
    exporter = CheckedExporter(endpoint=gateway.otlp_url + "/v1/metrics",
                               preferred_temporality=temporality or {},
                               compression=compression)
    reader = PeriodicExportingMetricReader(exporter, export_interval_millis=3_600_000)
    resource = Resource.create({"service.name": service,
                                "service.instance.id": instance or str(uuid.uuid4()),
                                "cloud.region": "eu-west-1"})
    provider = MeterProvider(resource=resource, metric_readers=[reader])
    meter = provider.get_meter(*scope)

    def flush():
        provider.force_flush(10_000)
        assert exporter.results and all(r == MetricExportResult.SUCCESS for r in exporter.results), \
            "the gateway refused an export"

    try:
        body(meter, flush)
        flush()
    finally:
        provider.shutdown()


def series(samples: dict, name: str, **labels) -> list:
    """[(labels dict, value)] of the samples called ``name`` whose labels include ``labels``."""
    want = set(labels.items())
    return [(dict(k), v) for (n, k), v in samples.items() if n == name and want <= k]


def one(samples, name, **labels):
    found = series(samples, name, **labels)
    assert len(found) == 1, f"{name} {labels}: {found}"
    return found[0][1]


def requests_and_duration(meter, flush):
    meter.create_counter("http.server.requests", unit="{request}").add(1, {"route": "/a"})
    meter.create_histogram("http.server.duration", unit="ms").record(7, {"route": "/a"})


@pytest.mark.parametrize("temporality,compression", [
    ("delta", None), ("cumulative", None), ("delta", Compression.Gzip),
    ("cumulative", Compression.Deflate),
])
def test_five_invocations_fold_into_one_series(gateway, temporality, compression):
    service = f"checkout-{temporality}"
    for _ in range(5):
        invoke(gateway, service, requests_and_duration, compression=compression,
               temporality=DELTA if temporality == "delta" else None)
    for openmetrics in (False, True):
        samples = gateway.samples(openmetrics=openmetrics)
        found = series(samples, "http_server_requests_total", job=service)
        assert [(labels["route"], value) for labels, value in found] == [("/a", 5.0)]
        assert "instance" not in found[0][0] and "clear_mode" not in found[0][0]
        assert found[0][0]["otel_scope_name"] == "handler"
        assert one(samples, "http_server_duration_milliseconds_count", job=service, route="/a") == 5
        assert one(samples, "http_server_duration_milliseconds_sum", job=service, route="/a") == 35
        le10 = one(samples, "http_server_duration_milliseconds_bucket", job=service, route="/a", le="10.0")
        assert le10 == 5
        assert one(samples, "http_server_duration_milliseconds_bucket", job=service, route="/a", le="5.0") == 0
        target = series(samples, "target_info", job=service)
        assert [labels.get("cloud_region") for labels, _ in target] == ["eu-west-1"]
        assert all("service_instance_id" not in labels for labels, _ in target)


def test_cumulative_one_process_1_then_3_plus_another_1(gateway):
    def twice(meter, flush):
        c = meter.create_counter("jobs.done")
        c.add(1, {"kind": "x"})
        flush()                  # exports 1
        c.add(2, {"kind": "x"})  # the next export says 3

    def once(meter, flush):
        meter.create_counter("jobs.done").add(1, {"kind": "x"})

    invoke(gateway, "worker", twice)
    invoke(gateway, "worker", once)
    assert one(gateway.samples(), "jobs_done_total", job="worker", kind="x") == 4


def test_sync_gauge_keeps_the_last_value(gateway):
    for value in range(1000, 1005):
        invoke(gateway, "gauged", lambda meter, flush, v=value:
               meter.create_gauge("memory.used", unit="By").set(v))
    samples = gateway.samples(openmetrics=True)
    assert one(samples, "memory_used_bytes", job="gauged") == 1004


def test_updowncounter_sums_the_latest_value_of_each_invocation(gateway):
    def queue(n):
        def body(meter, flush):
            q = meter.create_up_down_counter("queue.items", unit="{item}")
            q.add(n)
            flush()
            q.add(-1)            # this invocation now holds n - 1
        return body

    for n in (3, 5):
        invoke(gateway, "queued", queue(n))
    assert one(gateway.samples(), "queue_items", job="queued") == (3 - 1) + (5 - 1)


def test_exponential_histograms_from_three_invocations(gateway, monkeypatch):
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION",
                       "base2_exponential_bucket_histogram")
    for temporality, service in ((DELTA, "exp-delta"), (None, "exp-cumulative")):
        for value in (7.0, 120.0, 0.25):
            invoke(gateway, service, lambda meter, flush, v=value:
                   meter.create_histogram("rpc.latency", unit="s").record(v, {"op": "get"}),
                   temporality=temporality)
    text = gateway.scrape(OM_ACCEPT)
    families = {f.name: f for f in parse_om(text)}  # raises if the output is not valid OpenMetrics
    assert families["rpc_latency_seconds"].type == "histogram"
    for service in ("exp-delta", "exp-cumulative"):
        samples = gateway.samples(openmetrics=True)
        assert one(samples, "rpc_latency_seconds_count", job=service, op="get") == 3
        assert one(samples, "rpc_latency_seconds_sum", job=service, op="get") == pytest.approx(127.25)
        buckets = sorted((float(labels["le"]), v) for labels, v in
                         series(samples, "rpc_latency_seconds_bucket", job=service, op="get"))
        assert buckets[-1] == (float("inf"), 3)
        assert [v for _, v in buckets] == sorted(v for _, v in buckets)  # cumulative
        # each value sits in a bucket whose le is within one grid step (2^(1/8)) above it
        for value in (0.25, 7.0, 120.0):
            le, count = next((le, c) for le, c in buckets if le >= value)
            assert le <= value * 2 ** (1 / 8) * 1.000001
            assert count == sum(1 for v in (7.0, 120.0, 0.25) if v <= value)
        assert len(buckets) <= 4  # only populated buckets plus +Inf


def test_clear_mode_attribute_max5m_over_three_invocations(gateway):
    for value in (300, 900, 500):
        invoke(gateway, "windowed", lambda meter, flush, v=value:
               meter.create_gauge("queue.depth").set(v, {"clear_mode": "max5m"}))
    samples = gateway.samples(openmetrics=True)
    found = series(samples, "queue_depth", job="windowed")
    assert [v for _, v in found] == [900]
    assert "clear_mode" not in found[0][0]


def test_a_server_rule_windows_an_otlp_gauge(gateway_factory):
    gw = gateway_factory(sets=["processors.gravel.rules=[{metric: '^memory_', clear_mode: mean5m}]"])
    for value in (100, 300):
        invoke(gw, "ruled", lambda meter, flush, v=value:
               meter.create_gauge("memory.used", unit="By").set(v))
    found = series(gw.samples(openmetrics=True), "memory_used_bytes", job="ruled")
    assert [v for _, v in found] == [200]


def test_keep_instance_makes_one_series_per_invocation(gateway_factory):
    gw = gateway_factory(sets=["receivers.otlp.keep_instance=true"])
    for instance in ("i-1", "i-2"):
        invoke(gw, "kept", requests_and_duration, temporality=DELTA, instance=instance)
    found = series(gw.samples(), "http_server_requests_total", job="kept")
    assert sorted((labels["instance"], v) for labels, v in found) == [("i-1", 1), ("i-2", 1)]
