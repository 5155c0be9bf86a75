"""The gateway's own telemetry (SPEC 7) on service.telemetry.metrics.address, read with
prometheus_client's parser after real pushes, refusals and scrapes."""
import re
import time

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.metrics.v1 import metrics_pb2 as pb
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_om
from prometheus_client.parser import text_string_to_metric_families as parse_text

from tests.redis_fixtures import needs_redis, redis_node  # noqa: F401

from .conftest import OM_ACCEPT

ACCEPTED = [("/metrics/job/a", "x 1\n")] * 4 + [
    ("/metrics/job/b", "y 2\n"),
    ("/metrics/job/c", "z 3\n"),
    ("/metrics/job/a", "x 1\nw 5\n"),
]  # 4 series (x, w in a; y in b; z in c), 8 points
REFUSED = [
    ("/metrics/job/a", "x{ 1\n", b"line 1"),                               # parse error
    ("/metrics/job/b", "# TYPE y counter\ny 1\n", b"family 'y' is an unknown"),  # conflict
    ("/metrics/job/d", "v 1\n", b"over the limit max_series=10"),          # series limit
]


def telemetry(gw, accept="text/plain"):
    status, body, headers = gw.request("GET", "/metrics", headers={"Accept": accept},
                                       base=gw.telemetry_url)
    assert status == 200, body
    return body.decode(), headers["Content-Type"]


def samples(gw) -> dict:
    text, _ = telemetry(gw)
    return {(s.name, frozenset(s.labels.items())): s.value
            for f in parse_text(text) for s in f.samples}


def value(table, name, **labels):
    return table.get((name, frozenset(labels.items())))


def test_counts_after_pushes_refusals_and_scrapes(gateway_factory):
    gw = gateway_factory(["processors.gravel.max_series=10"])
    for path, body in ACCEPTED:
        assert gw.push(path, body)[0] == 200
    for path, body, message in REFUSED:
        status, answer, _ = gw.push(path, body)
        assert status == 400 and message in answer, answer
    gw.scrape("text/plain")
    shown = [s for f in parse_text(gw.scrape("text/plain")) for s in f.samples]
    assert gw.request("GET", "/no/such/path/12345")[0] == 404

    t = samples(gw)
    requests = {o: value(t, "otelgravel_receiver_requests_total", receiver="pushgateway", outcome=o)
                for o in ("accepted", "refused", "limited", "too_large", "unauthorized", "forbidden",
                          "unavailable")}
    assert requests == {"accepted": 7, "refused": 2, "limited": 1, "too_large": 0,
                        "unauthorized": 0, "forbidden": 0, "unavailable": 0}
    points = {o: value(t, "otelgravel_receiver_points_total", receiver="pushgateway", outcome=o)
              for o in ("accepted", "refused", "limited")}
    assert points == {"accepted": 8, "refused": 1, "limited": 1}  # the parse error had no points
    assert value(t, "otelgravel_receiver_requests_total", receiver="otlp", outcome="accepted") == 0
    assert value(t, "otelgravel_exporter_scrapes_total", format="text") == 2
    assert value(t, "otelgravel_exporter_scrapes_total", format="openmetrics") == 0
    assert value(t, "otelgravel_exporter_scrape_duration_seconds_count", format="text") == 2
    # 4 pushed series and the push_time_seconds and push_failure_time_seconds of 3 groups
    assert value(t, "otelgravel_store_series") == len(shown) == 4 + 2 * 3
    assert value(t, "otelgravel_store_groups") == 3
    assert value(t, "otelgravel_store_series_limit") == 10
    assert value(t, "otelgravel_store_expired_series_total") == 0

    duration = "otelgravel_http_server_request_duration_seconds_count"
    push_route = dict(http_route="/metrics/job{tail}", http_request_method="POST")
    assert value(t, duration, **push_route, http_response_status_code="200") == 7
    assert value(t, duration, **push_route, http_response_status_code="400") == 3
    assert value(t, duration, http_route="/metrics", http_request_method="GET",
                 http_response_status_code="200") == 2
    assert value(t, duration, http_route="", http_request_method="GET",
                 http_response_status_code="404") == 1
    assert not [k for k in t if any("12345" in v for _, v in k[1])]  # never the raw path
    info = [dict(k[1]) for k in t if k[0] == "target_info"]
    assert len(info) == 1 and info[0]["service_name"] == "otelgravel" and info[0]["service_version"]


def test_openmetrics_when_asked_and_parsable(gateway_factory):
    gw = gateway_factory()
    assert gw.push("/metrics/job/a", "x 1\n")[0] == 200
    text, content_type = telemetry(gw, OM_ACCEPT)
    assert content_type.startswith("application/openmetrics-text")
    names = {f.name for f in parse_om(text)}
    assert {"otelgravel_receiver_requests", "otelgravel_store_series",
            "otelgravel_http_server_request_duration_seconds", "target"} <= names


def _export(*metrics, job="svc") -> bytes:
    resource = Resource(attributes=[KeyValue(key="service.name", value=AnyValue(string_value=job))])
    request = ExportMetricsServiceRequest()
    rm = request.resource_metrics.add(resource=resource)
    rm.scope_metrics.add(metrics=list(metrics))
    return request.SerializeToString()


def _gauge(name, value):
    point = pb.NumberDataPoint(as_double=value, time_unix_nano=time.time_ns())
    return pb.Metric(name=name, gauge=pb.Gauge(data_points=[point]))


def test_otlp_partial_success_and_refusal_counts(gateway_factory):
    gw = gateway_factory()
    headers = {"Content-Type": "application/x-protobuf"}
    assert gw.push("/metrics/job/svc", "# TYPE clash counter\nclash 1\n")[0] == 200
    status, _, _ = gw.request("POST", "/v1/metrics", _export(_gauge("ok", 1), _gauge("clash", 2)),
                              headers, base=gw.otlp_url)
    assert status == 200  # partial success: "clash" is a counter in the gateway
    status, _, _ = gw.request("POST", "/v1/metrics", b"\xff\xff not protobuf", headers,
                              base=gw.otlp_url)
    assert status == 400
    t = samples(gw)
    assert value(t, "otelgravel_receiver_requests_total", receiver="otlp", outcome="accepted") == 1
    assert value(t, "otelgravel_receiver_requests_total", receiver="otlp", outcome="refused") == 1
    assert value(t, "otelgravel_receiver_points_total", receiver="otlp", outcome="accepted") == 1
    assert value(t, "otelgravel_receiver_points_total", receiver="otlp", outcome="refused") == 1
    assert value(t, "otelgravel_receiver_otlp_partial_success_total") == 1
    assert value(t, "otelgravel_http_server_request_duration_seconds_count", http_route="/v1/metrics",
                 http_request_method="POST", http_response_status_code="400") == 1


def test_empty_address_turns_it_off(gateway_factory):
    gw = gateway_factory(["service.telemetry.metrics.address="])
    assert gw.telemetry_url is None
    assert not any(re.search(r"components=\S*telemetry", line) for line in gw.log)
    assert gw.push("/metrics/job/a", "x 1\n")[0] == 200


SYNCS = "otelgravel_state_sync_duration_seconds_count"


def test_each_fsync_round_of_the_log_is_timed(gateway_factory, tmp_path):
    """storage.directory: sync: always times each group-commit round (backend="file"), as many
    rounds as pushes at most and at least one; without a directory nothing is timed."""
    gw = gateway_factory([f"processors.gravel.storage.directory={tmp_path / 'state'}",
                          "processors.gravel.storage.sync=always"])
    for i in range(5):
        assert gw.push(f"/metrics/job/s{i}", "x 1\n")[0] == 200
    t = samples(gw)
    assert 1 <= value(t, SYNCS, backend="file") <= 5, t
    assert value(t, "otelgravel_state_sync_duration_seconds_sum", backend="file") > 0
    assert value(t, SYNCS, backend="redis") is None

    memory = gateway_factory()
    assert memory.push("/metrics/job/m", "x 1\n")[0] == 200
    assert not any(name == SYNCS for name, _ in samples(memory))


@needs_redis
def test_each_redis_append_round_trip_is_timed(gateway_factory, redis_node):
    gw = gateway_factory([f"processors.gravel.storage.redis.addresses=[{redis_node.address}]"])
    deadline = time.monotonic() + 20
    while gw.request("GET", "/-/ready")[0] != 200 and time.monotonic() < deadline:
        time.sleep(0.02)
    for i in range(3):
        assert gw.push(f"/metrics/job/r{i}", "x 1\n")[0] == 200
    t = samples(gw)
    assert 1 <= value(t, SYNCS, backend="redis") <= 3, t
    assert value(t, SYNCS, backend="file") is None
