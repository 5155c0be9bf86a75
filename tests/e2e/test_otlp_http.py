"""OTLP/HTTP at the wire: protobuf vs JSON vs compressed bodies, bad input, conflicts, removals.

Requests are built by hand with opentelemetry-proto so that each test controls every field.
"""
from __future__ import annotations

import base64
import gzip
import json
import zlib

import pytest
from google.protobuf import json_format
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest, ExportMetricsServiceResponse)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope, KeyValue
from opentelemetry.proto.metrics.v1 import metrics_pb2 as pb
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_om

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
OM_ACCEPT = "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"
NOW_NS = 1_700_000_000 * 10**9
TRACE_ID = bytes(range(16))
SPAN_ID = bytes(range(8, 16))


def attrs(**kw):
    return [KeyValue(key=k.replace("__", "."), value=AnyValue(string_value=v)) for k, v in kw.items()]


def resource_metrics(service, *metrics, instance="inst-1"):
    return pb.ResourceMetrics(
        resource=Resource(attributes=attrs(service__name=service, service__instance__id=instance)),
        scope_metrics=[pb.ScopeMetrics(scope=InstrumentationScope(name="lib"), metrics=list(metrics))])


def gauge(name, value, t=NOW_NS, flags=0, **labels):
    return pb.Metric(name=name, gauge=pb.Gauge(data_points=[pb.NumberDataPoint(
        attributes=attrs(**labels), time_unix_nano=t, as_double=value, flags=flags)]))


def delta_counter(name, *values, temporality=1, **labels):
    return pb.Metric(name=name, sum=pb.Sum(
        aggregation_temporality=temporality, is_monotonic=True,
        data_points=[pb.NumberDataPoint(attributes=attrs(**labels), time_unix_nano=NOW_NS, as_int=v)
                     for v in values]))


def sample_request(service):
    """A counter with an exemplar, a histogram and a gauge."""
    orders = pb.Metric(name="orders", unit="{order}", description="Orders placed", sum=pb.Sum(
        aggregation_temporality=1, is_monotonic=True, data_points=[pb.NumberDataPoint(
            attributes=attrs(shop="eu"), start_time_unix_nano=NOW_NS - 10**9,
            time_unix_nano=NOW_NS, as_int=2, exemplars=[pb.Exemplar(
                time_unix_nano=NOW_NS, as_int=1, trace_id=TRACE_ID, span_id=SPAN_ID)])]))
    latency = pb.Metric(name="checkout.latency", unit="ms", histogram=pb.Histogram(
        aggregation_temporality=1, data_points=[pb.HistogramDataPoint(
            attributes=attrs(shop="eu"), time_unix_nano=NOW_NS, count=3, sum=23.0,
            bucket_counts=[1, 2, 0], explicit_bounds=[5.0, 10.0])]))
    temperature = gauge("room.temperature", 21.5)
    temperature.unit = "Cel"
    return ExportMetricsServiceRequest(resource_metrics=[
        resource_metrics(service, orders, latency, temperature)])


def to_otlp_json(message) -> bytes:
    """OTLP JSON: lowerCamelCase, enums as integers, hex ids, int64 as strings *and* numbers,
    plus an unknown field that must be ignored."""
    tree = json.loads(json_format.MessageToJson(message, use_integers_for_enums=True))

    def walk(node):
        if isinstance(node, dict):
            for key, value in list(node.items()):
                if key in ("traceId", "spanId"):
                    node[key] = base64.b64decode(value).hex()
                elif key == "timeUnixNano":
                    node[key] = int(value)  # a number here, a string elsewhere
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)
    walk(tree)
    tree["someFutureField"] = {"x": 1}
    return json.dumps(tree).encode()


def post(gateway, body: bytes, content_type=PROTOBUF, encoding=None):
    headers = {"Content-Type": content_type} if content_type else {}
    if encoding:
        headers["Content-Encoding"] = encoding
    return gateway.request("POST", "/v1/metrics", body, headers, base=gateway.otlp_url)


def partial(body: bytes, content_type=PROTOBUF):
    """(rejected_data_points, error_message) of a 200 answer, decoded in its content type."""
    if content_type == JSON:
        response = json_format.Parse(body.decode(), ExportMetricsServiceResponse())
    else:
        response = ExportMetricsServiceResponse.FromString(body)
    return response.partial_success.rejected_data_points, response.partial_success.error_message


def series(samples, name, **labels):
    want = set(labels.items())
    return sorted((dict(k).get("shop", ""), v) for (n, k), v in samples.items()
                  if n == name and want <= k)


def family_names(gateway):
    return {f.name for f in parse_om(gateway.scrape(OM_ACCEPT))} - {
        "push_time_seconds", "push_failure_time_seconds"}


# ---- the same data in every encoding --------------------------------------------------------

ENCODINGS = [
    ("proto", PROTOBUF, None, lambda m: m.SerializeToString()),
    ("proto-gzip", PROTOBUF, "gzip", lambda m: gzip.compress(m.SerializeToString())),
    ("proto-deflate", PROTOBUF, "deflate", lambda m: zlib.compress(m.SerializeToString())),
    ("json", JSON, None, to_otlp_json),
    ("json-gzip", JSON, "gzip", lambda m: gzip.compress(to_otlp_json(m))),
]


def test_json_and_compressed_bodies_give_the_same_totals(gateway):
    for service, content_type, encoding, encode in ENCODINGS:
        for _ in range(2):
            status, body, headers = post(gateway, encode(sample_request(service)), content_type, encoding)
            assert status == 200, body
            assert headers["Content-Type"].startswith(content_type)
            assert partial(body, content_type) == (0, "")
    samples = gateway.samples(openmetrics=True)
    for service, *_ in ENCODINGS:
        got = (series(samples, "orders_total", job=service),
               series(samples, "checkout_latency_milliseconds_count", job=service),
               series(samples, "checkout_latency_milliseconds_sum", job=service),
               series(samples, "checkout_latency_milliseconds_bucket", job=service, le="5.0"),
               series(samples, "checkout_latency_milliseconds_bucket", job=service, le="10.0"),
               series(samples, "room_temperature_celsius", job=service))
        assert got == ([("eu", 4)], [("eu", 6)], [("eu", 46)], [("eu", 2)], [("eu", 6)], [("", 21.5)]), service
    # the hex ids of the JSON body became the same exemplar as the protobuf bytes
    text = gateway.scrape(OM_ACCEPT)
    for service in ("proto", "json"):
        line = next(l for l in text.splitlines()
                    if l.startswith("orders_total{") and f'job="{service}"' in l)
        assert f'span_id="{SPAN_ID.hex()}",trace_id="{TRACE_ID.hex()}"' in line, line
    families = {f.name: f for f in parse_om(text)}
    assert families["orders"].type == "counter"
    assert families["orders"].documentation == "Orders placed"
    assert families["checkout_latency_milliseconds"].unit == "milliseconds"


def test_empty_requests_are_fine(gateway):
    for body, content_type in ((b"", PROTOBUF), (b"", JSON), (b"{}", JSON),
                               (ExportMetricsServiceRequest().SerializeToString(), PROTOBUF)):
        status, answer, _ = post(gateway, body, content_type)
        assert status == 200, answer
        assert partial(answer, content_type) == (0, "")


# ---- bad input ------------------------------------------------------------------------------

def _json(tree) -> bytes:
    return json.dumps(tree).encode()


_VALID = sample_request("never-applied").SerializeToString()
BAD_REQUESTS = [
    ("garbage protobuf", PROTOBUF, None, b"\xff\xff\xff\xff\xff", 400),
    ("truncated protobuf", PROTOBUF, None, _VALID[: len(_VALID) // 2], 400),
    ("broken JSON", JSON, None, b'{"resourceMetrics": [', 400),
    ("JSON not an object", JSON, None, b"[1, 2]", 400),
    ("JSON wrong type for a list", JSON, None, _json({"resourceMetrics": "nope"}), 400),
    ("JSON wrong type for a value", JSON, None, _json({"resourceMetrics": [{"scopeMetrics": [{"metrics": [
        {"name": "x", "gauge": {"dataPoints": [{"asDouble": "abc", "timeUnixNano": "1"}]}}]}]}]}), 400),
    ("JSON trace id not hex", JSON, None, _json({"resourceMetrics": [{"scopeMetrics": [{"metrics": [
        {"name": "x", "sum": {"dataPoints": [{"asInt": "1", "timeUnixNano": "1", "exemplars": [
            {"asInt": "1", "traceId": "not-hex"}]}]}}]}]}]}), 400),
    ("JSON not UTF-8", JSON, None, b'{"resourceMetrics": "\xff"}', 400),
    ("JSON key with a lone surrogate escape", JSON, None,
     b'{"resourceMetrics": [{"\\ud800": 1}]}', 400),
    ("JSON error quoting a lone surrogate", JSON, None, b'{"resourceMetrics": [{"scopeMetrics": '
     b'[{"metrics": [{"name": "x", "histogram": {"dataPoints": [{"explicitBounds": ["\\ud800"]}]}}]}]}]}',
     400),
    ("JSON enum written 1e400", JSON, None, b'{"resourceMetrics": [{"scopeMetrics": [{"metrics": '
     b'[{"name": "x", "sum": {"aggregationTemporality": 1e400}}]}]}]}', 400),
    ("gzip that is not", PROTOBUF, "gzip", b"this is not gzip", 400),
    ("deflate that is not", JSON, "deflate", b"\x00\x01garbage", 400),
    ("unknown encoding", PROTOBUF, "br-nope", _VALID, 415),
    ("text/plain", "text/plain", None, _VALID, 415),
    ("protobuf of another kind", "application/vnd.google.protobuf", None, _VALID, 415),
    ("oversize after decompression", PROTOBUF, "gzip", gzip.compress(b"\x00" * (17 << 20)), 413),
    ("oversize on the wire", PROTOBUF, None, b"\x00" * (17 << 20), 413),
]


@pytest.mark.parametrize("case,content_type,encoding,body,status", BAD_REQUESTS,
                         ids=[c[0] for c in BAD_REQUESTS])
def test_bad_requests_are_refused_whole(gateway, case, content_type, encoding, body, status):
    got, answer, _ = post(gateway, body, content_type, encoding)
    assert got == status, answer
    assert family_names(gateway) == set()  # nothing applied


def test_wrong_method_is_405(gateway):
    for method in ("GET", "PUT", "DELETE"):
        status, body, headers = gateway.request(method, "/v1/metrics", base=gateway.otlp_url)
        assert status == 405 and headers["Allow"] == "POST" and b"Method Not Allowed" in body


def zero_timestamp():
    return gauge("zero.ts", 1.0, t=0)


def unspecified_temporality():
    return delta_counter("no.temporality", 1, 2, temporality=0)


def invalid_clear_mode():
    return gauge("bad.mode", 1.0, clear_mode="summary5m")


def nan_counter():
    m = delta_counter("nan.counter", 1)
    m.sum.data_points[0].as_double = float("nan")
    return m


def bad_buckets():
    return pb.Metric(name="bad.buckets", histogram=pb.Histogram(aggregation_temporality=1, data_points=[
        pb.HistogramDataPoint(time_unix_nano=NOW_NS, count=9, bucket_counts=[1, 1], explicit_bounds=[1.0])]))


@pytest.mark.parametrize("make,rejected,fragment", [
    (zero_timestamp, 1, "time_unix_nano"),
    (unspecified_temporality, 2, "temporality"),
    (invalid_clear_mode, 1, "summary5m"),
    (nan_counter, 1, "finite"),
    (bad_buckets, 1, "add up"),
])
@pytest.mark.parametrize("content_type", [PROTOBUF, JSON])
def test_bad_points_are_partial_success_and_the_rest_applies(gateway, make, rejected, fragment,
                                                             content_type):
    message = ExportMetricsServiceRequest(resource_metrics=[
        resource_metrics("partial", make(), gauge("good.one", 7.0))])
    body = to_otlp_json(message) if content_type == JSON else message.SerializeToString()
    status, answer, headers = post(gateway, body, content_type)
    assert status == 200, answer
    assert headers["Content-Type"].startswith(content_type)
    got_rejected, message_text = partial(answer, content_type)
    assert got_rejected == rejected
    assert fragment in message_text
    assert family_names(gateway) == {"good_one"}
    assert gateway.value("good_one", job="partial", otel_scope_name="lib") == 7.0


# ---- conflicts with text pushes, removals ---------------------------------------------------

def test_type_conflict_between_text_and_otlp(gateway):
    status, _, _ = gateway.push("/metrics/job/text", "# TYPE conflicted gauge\nconflicted 1\n")
    assert status == 200
    message = ExportMetricsServiceRequest(resource_metrics=[
        resource_metrics("otlp", delta_counter("conflicted", 1, shop="eu"), gauge("fine", 2.0))])
    status, answer, _ = post(gateway, message.SerializeToString())
    assert status == 200, answer
    rejected, text = partial(answer)
    assert rejected == 1 and "conflicted" in text
    samples = gateway.samples(openmetrics=True)  # the scrape stays valid
    assert samples[("conflicted", frozenset({("job", "text")}))] == 1
    assert gateway.value("fine", job="otlp", otel_scope_name="lib") == 2.0

    # the other way round: a family that came over OTLP refuses a text push of another type
    message = ExportMetricsServiceRequest(resource_metrics=[
        resource_metrics("otlp", delta_counter("otlp.first", 3))])
    assert partial(post(gateway, message.SerializeToString())[1]) == (0, "")
    status, answer, _ = gateway.push("/metrics/job/text", "# TYPE otlp_first gauge\notlp_first 9\n")
    assert status == 400, answer
    assert gateway.value("otlp_first_total", job="otlp", otel_scope_name="lib") == 3
    assert gateway.value("otlp_first", job="text") is None


def test_refused_family_does_not_advance_cumulative_state(gateway):
    """A cumulative counter refused by the store is counted in full once it is accepted."""
    status, _, _ = gateway.push("/metrics/job/text", "# TYPE late gauge\nlate 1\n")
    assert status == 200

    def cumulative(value):
        m = delta_counter("late", value, temporality=2)
        m.sum.data_points[0].start_time_unix_nano = NOW_NS - 10**9
        return ExportMetricsServiceRequest(resource_metrics=[resource_metrics("cum", m)])

    assert partial(post(gateway, cumulative(5).SerializeToString())[1])[0] == 1
    assert gateway.request("DELETE", "/metrics/job/text")[0] == 202
    assert partial(post(gateway, cumulative(7).SerializeToString())[1]) == (0, "")
    assert gateway.value("late_total", job="cum", otel_scope_name="lib") == 7


def test_no_recorded_value_removes_the_series(gateway):
    message = ExportMetricsServiceRequest(resource_metrics=[resource_metrics(
        "flags", gauge("doors", 1.0, room="a"), gauge("doors", 2.0, room="b"))])
    assert post(gateway, message.SerializeToString())[0] == 200
    assert gateway.value("doors", job="flags", otel_scope_name="lib", room="a") == 1.0
    gone = pb.Metric(name="doors", gauge=pb.Gauge(data_points=[pb.NumberDataPoint(
        attributes=attrs(room="a"), time_unix_nano=NOW_NS, flags=1)]))
    message = ExportMetricsServiceRequest(resource_metrics=[resource_metrics("flags", gone)])
    status, answer, _ = post(gateway, message.SerializeToString())
    assert (status, partial(answer)) == (200, (0, ""))
    assert gateway.value("doors", job="flags", otel_scope_name="lib", room="a") is None
    assert gateway.value("doors", job="flags", otel_scope_name="lib", room="b") == 2.0


def test_the_series_limit_answers_429_and_applies_nothing(gateway_factory):
    gw = gateway_factory(["processors.gravel.max_series=4"])  # hits and the group's two gauges
    first = ExportMetricsServiceRequest(resource_metrics=[resource_metrics(
        "svc", delta_counter("hits", 1, route="/a"))])
    assert post(gw, first.SerializeToString())[0] == 200
    over = ExportMetricsServiceRequest(resource_metrics=[resource_metrics(
        "svc", delta_counter("hits", 1, route="/a"), delta_counter("misses", 1, route="/b"),
        delta_counter("errors", 1, route="/c"))])
    status, body, _ = post(gw, over.SerializeToString())
    assert status == 429, body
    assert "max_series=4" in body.decode(errors="replace")
    samples = gw.samples()
    hits = [v for k, v in samples.items() if k[0] == "hits_total"]
    assert hits == [1] and not [k for k in samples if k[0] in ("misses_total", "errors_total")]
