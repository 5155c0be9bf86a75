"""The requests the benchmark sends: one push body and one OTLP request, built once.

Both gateways receive byte-identical push bodies. The body is a typical
function push in Prometheus text 0.0.4, as ``prometheus_client`` would
write it: two counters, a gauge, a histogram with five buckets (``+Inf``
included, plus ``_sum`` and ``_count``) and an info-style gauge. It carries
no ``clear_mode`` label: on the Pushgateway that would be just one more
label, so the two gateways would no longer do the same work; otelgravel
applies its defaults (counter and histogram add up, gauges replace).
"""

from __future__ import annotations

import time

PUSH_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
OTLP_CONTENT_TYPE = "application/x-protobuf"

TEXT_ACCEPT = "text/plain"
OPENMETRICS_ACCEPT = "application/openmetrics-text;version=1.0.0"

BENCH_JOB = "bench"

_BUCKETS = ("0.05", "0.1", "0.25", "0.5", "+Inf")

# The invocation's duration, in the gauge and the histogram's _sum: bench/push.lua gives each
# request another value (0.001 to 0.997), as every invocation measures its own.
VARYING_VALUE = "0.137"


def push_body() -> bytes:
    """The function push body: 11 sample lines (2 counters, 1 gauge, 5 buckets + _sum + _count, 1 info gauge)."""
    lines = [
        "# HELP fn_invocations_total Invocations of the function.",
        "# TYPE fn_invocations_total counter",
        "fn_invocations_total 1",
        "# HELP fn_errors_total Invocations that raised.",
        "# TYPE fn_errors_total counter",
        "fn_errors_total 0",
        "# HELP fn_last_duration_seconds Duration of the last invocation.",
        "# TYPE fn_last_duration_seconds gauge",
        f"fn_last_duration_seconds {VARYING_VALUE}",
        "# HELP fn_duration_seconds Invocation duration.",
        "# TYPE fn_duration_seconds histogram",
    ]
    cumulative = 0
    for le, count in zip(_BUCKETS, (0, 0, 1, 0, 0)):
        cumulative += count
        lines.append(f'fn_duration_seconds_bucket{{le="{le}"}} {cumulative}')
    lines += [
        f"fn_duration_seconds_sum {VARYING_VALUE}",
        "fn_duration_seconds_count 1",
        "# HELP fn_build_info Build of the function.",
        "# TYPE fn_build_info gauge",
        'fn_build_info{version="1.2.3"} 1',
    ]
    return ("\n".join(lines) + "\n").encode()


def push_samples() -> int:
    """Sample lines in one push body."""
    return sum(1 for line in push_body().decode().splitlines() if line and not line.startswith("#"))


def push_path(group: int) -> str:
    return f"/metrics/job/{BENCH_JOB}/instance/{group}"


def otlp_request(points: int = 1000, metrics: int = 10) -> bytes:
    """An ExportMetricsServiceRequest of ``points`` DELTA monotonic sum points.

    ``metrics`` sums of ``points // metrics`` points each; every point of a
    metric has its own attribute set (``route``), so the request makes
    ``points`` distinct series. One resource (its own service.instance.id,
    as a serverless invocation would have), one scope.
    """
    from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
        ExportMetricsServiceRequest,
    )
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
    from opentelemetry.proto.metrics.v1 import metrics_pb2

    def kv(key: str, value: str) -> KeyValue:
        return KeyValue(key=key, value=AnyValue(string_value=value))

    if points % metrics:
        raise ValueError("points must be a multiple of metrics")
    now = time.time_ns()
    start = now - 10 * 1_000_000_000
    req = ExportMetricsServiceRequest()
    rm = req.resource_metrics.add()
    rm.resource.attributes.extend(
        [kv("service.name", "bench-otlp"), kv("service.instance.id", "bench-instance-0001")]
    )
    sm = rm.scope_metrics.add()
    sm.scope.name = "otelgravel.bench"
    sm.scope.version = "1.0.0"
    per_metric = points // metrics
    for m in range(metrics):
        metric = sm.metrics.add()
        metric.name = f"bench.requests.{m}"
        metric.unit = "{request}"
        metric.description = "Requests handled."
        metric.sum.aggregation_temporality = metrics_pb2.AGGREGATION_TEMPORALITY_DELTA
        metric.sum.is_monotonic = True
        for i in range(per_metric):
            dp = metric.sum.data_points.add()
            dp.attributes.extend([kv("route", f"/api/v1/item/{i}"), kv("method", "GET")])
            dp.start_time_unix_nano = start
            dp.time_unix_nano = now
            dp.as_int = 1 + (i % 7)
    return req.SerializeToString()


def otlp_request_points(body: bytes) -> int:
    from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
        ExportMetricsServiceRequest,
    )

    req = ExportMetricsServiceRequest.FromString(body)
    return sum(
        len(m.sum.data_points) + len(m.gauge.data_points) + len(m.histogram.data_points)
        for rm in req.resource_metrics
        for sm in rm.scope_metrics
        for m in sm.metrics
    )
