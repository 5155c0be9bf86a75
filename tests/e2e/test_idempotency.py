"""Idempotency-Key over real HTTP: the dedupe table, replicas on a real redis-server, restarts of
the file backend (log replay and snapshot), the deterministic bound, and the real clients
(prometheus_client's push_to_gateway handler, the OpenTelemetry SDK exporter's headers)."""
from __future__ import annotations

import gzip
import signal
import time
import uuid

import pytest
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest, ExportMetricsServiceResponse)
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricExportResult, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from prometheus_client import CollectorRegistry, Counter, push_to_gateway
from prometheus_client.exposition import default_handler

from tests.redis_fixtures import cli, needs_redis, redis_node  # noqa: F401

from .test_durable import kill9, same_ports, segments, storage
from .test_otlp_http import delta_counter, gauge, resource_metrics
from .test_redis_replicas import replica_sets, start_replicas, until, wait_ready

ONE = "# TYPE c counter\nc 1\n"
FIVE = "# TYPE c counter\nc 5\n"
PATH = "/metrics/job/idem"


NS = [""]


@pytest.fixture(autouse=True)
def key_namespace():
    """The session's gateway is wiped between tests, its keys are not (a wipe keeps them, so a
    retried push is still answered as the first was): every test's keys are its own."""
    NS[0] = uuid.uuid4().hex[:8] + "-"


def keyed(gw, key, body=ONE, path=PATH, method="POST", headers=None, raw=False):
    """(status, body text, Idempotent-Replayed) of one push sent with ``key`` (None: no header),
    in the test's namespace unless ``raw``."""
    h = dict(headers or {})
    if key is not None:
        if not raw:
            key = '"' + NS[0] + key[1:] if key.startswith('"') else NS[0] + key
        h["Idempotency-Key"] = key
    status, text, answer = gw.push(path, body, method=method, headers=h)
    return status, text.decode(), answer.get("Idempotent-Replayed")


def total(gw, job="idem"):
    return gw.value("c_total", job=job) or 0


# (what is sent, one row per request: key, body, path, extra headers) -> (status, replayed)
# per request, and the counter's total afterwards. Each row starts from an empty gateway.
K = "0d9e4f3c-5b7a-4c62-8f11-2e6b9a7d4c10"
DEDUPE = [
    ("same key, same body: counted once, the retry says it was replayed",
     [(K, ONE, PATH, {}), (K, ONE, PATH, {})], [(200, None), (200, "true")], 1),
    ("the same body gzip-compressed is the same request (the decoded body is hashed)",
     [(K, ONE, PATH, {}), (K, gzip.compress(ONE.encode()), PATH, {"Content-Encoding": "gzip"})],
     [(200, None), (200, "true")], 1),
    ("the draft's quoted form names the same key",
     [(K, ONE, PATH, {}), (f'"{K}"', ONE, PATH, {})], [(200, None), (200, "true")], 1),
    ("same key, other body: 422, nothing changes",
     [(K, ONE, PATH, {}), (K, FIVE, PATH, {})], [(200, None), (422, None)], 1),
    ("same key, other path: 422",
     [(K, ONE, PATH, {}), (K, ONE, PATH + "/instance/a", {})], [(200, None), (422, None)], 1),
    ("same key, other Content-Type: 422",
     [(K, ONE, PATH, {}), (K, ONE, PATH, {"Content-Type": "text/plain; version=0.0.4"})],
     [(200, None), (422, None)], 1),
    ("no key: every push counts", [(None, ONE, PATH, {})] * 3, [(200, None)] * 3, 3),
    ("two keys: each once", [("a", ONE, PATH, {}), ("b", ONE, PATH, {}), ("a", ONE, PATH, {})],
     [(200, None), (200, None), (200, "true")], 2),
    ("a refused push leaves no key: its retry is decided afresh",
     [(None, ONE, PATH, {}), (K, "# TYPE c gauge\nc 1\n", PATH, {}),
      (K, "# TYPE c gauge\nc 1\n", PATH, {}), (K, ONE, PATH, {})],
     [(200, None), (400, None), (400, None), (200, None)], 2),
]


@pytest.mark.parametrize("name, sends, answers, expected", DEDUPE, ids=[d[0] for d in DEDUPE])
def test_the_dedupe_table(gateway, name, sends, answers, expected):
    got = [keyed(gateway, key, body, path, headers=h)[::2] for key, body, path, h in sends]
    assert got == answers
    assert total(gateway) == expected


def test_the_422_names_the_key(gateway):
    assert keyed(gateway, "k-422", ONE)[0] == 200
    status, text, _ = keyed(gateway, "k-422", FIVE)
    assert status == 422 and f"Idempotency-Key '{NS[0]}k-422'" in text, text


@pytest.mark.parametrize("value", ["", " ", "a b", "x" * 256, "é", "tab\there", '"open', '"a"b"',
                                   '"bad\\escape"', '""'])
def test_a_malformed_key_is_400_naming_the_header(gateway, value):
    status, text, _ = keyed(gateway, value, ONE, raw=True)
    assert status == 400 and "Idempotency-Key" in text, (value, status, text)
    assert total(gateway) == 0


def test_the_longest_key_and_every_visible_character_are_accepted(gateway):
    assert keyed(gateway, "x" * 255, ONE, raw=True)[0] == 200
    visible = "".join(chr(c) for c in range(0x21, 0x7F))
    assert keyed(gateway, visible, ONE, raw=True)[0] == 200
    assert keyed(gateway, visible, ONE, raw=True)[::2] == (200, "true")
    assert total(gateway) == 2


def test_the_header_twice_is_400(gateway):
    import http.client
    host, port = gateway.url[len("http://"):].rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    conn.putrequest("POST", PATH)
    conn.putheader("Idempotency-Key", "a")
    conn.putheader("Idempotency-Key", "b")
    conn.putheader("Content-Length", str(len(ONE)))
    conn.endheaders(ONE.encode())
    response = conn.getresponse()
    assert response.status == 400 and b"more than once" in response.read()
    conn.close()


def test_delete_and_put_take_keys_too(gateway):
    assert keyed(gateway, None, ONE)[0] == 200
    assert keyed(gateway, "del-1", None, method="DELETE")[::2] == (202, None)
    assert keyed(gateway, None, ONE)[0] == 200
    # the retried DELETE does not delete the push that came after the first one
    assert keyed(gateway, "del-1", None, method="DELETE")[::2] == (202, "true")
    assert total(gateway) == 1
    assert keyed(gateway, "put-1", ONE, method="PUT")[::2] == (200, None)
    assert keyed(gateway, "put-1", ONE, method="PUT")[::2] == (200, "true")
    assert keyed(gateway, "put-1", ONE, method="POST")[0] == 422  # another method
    assert total(gateway) == 2


# ---- the real clients ---------------------------------------------------------------------------

def key_handler(key):
    """push_to_gateway's ``handler``: the default one, with an Idempotency-Key header added."""
    def handler(url, method, timeout, headers, data):
        return default_handler(url, method, timeout, [*headers, ("Idempotency-Key", key)], data)
    return handler


def test_prometheus_client_push_to_gateway_with_a_key_handler(gateway):
    registry = CollectorRegistry()
    Counter("jobs", "jobs done", registry=registry).inc()
    key = str(uuid.uuid4())
    for _ in range(3):  # the function's platform retries the invocation: same key
        push_to_gateway(gateway.url, job="pc", registry=registry, handler=key_handler(key))
    assert gateway.value("jobs_total", job="pc") == 1
    push_to_gateway(gateway.url, job="pc", registry=registry, handler=key_handler(str(uuid.uuid4())))
    assert gateway.value("jobs_total", job="pc") == 2


def test_the_otel_sdk_exporter_with_a_key_header(gateway):
    """One exporter per invocation (a function's), its key the invocation id: a retried
    invocation exports the same request with the same key and counts once."""
    results = []

    def invocation(invocation_id):
        exporter = OTLPMetricExporter(endpoint=gateway.otlp_url + "/v1/metrics",
                                      headers={"Idempotency-Key": invocation_id})
        export = exporter.export
        exporter.export = lambda data, *a, **kw: results.append(export(data, *a, **kw)) or results[-1]
        reader = PeriodicExportingMetricReader(exporter, export_interval_millis=3_600_000)
        provider = MeterProvider(resource=Resource.create({"service.name": "fnk"}),
                                 metric_readers=[reader])
        provider.get_meter("m").create_counter("runs").add(1)
        provider.shutdown()  # exports once

    first = str(uuid.uuid4())
    invocation(first)
    assert results == [MetricExportResult.SUCCESS]
    assert gateway.value("runs_total", job="fnk", otel_scope_name="m") == 1
    # The retry has new timestamps, so it is another request: 422, the exporter gives up (a 4xx),
    # and the count is still 1. The SDK's own retries of one export (a 503, a broken connection)
    # send the same body with the same key: those are the replays, tested below over raw HTTP.
    invocation(first)
    assert results[-1] == MetricExportResult.FAILURE
    assert gateway.value("runs_total", job="fnk", otel_scope_name="m") == 1
    invocation(str(uuid.uuid4()))
    assert gateway.value("runs_total", job="fnk", otel_scope_name="m") == 2


def test_an_otlp_export_retried_with_its_key_is_answered_the_same(gateway):
    # a delta counter of 3, and a gauge that conflicts with a family pushed as text: the
    # partial success (1 point rejected) is answered again, byte for byte
    assert keyed(gateway, None, "# TYPE clash counter\nclash 1\n", "/metrics/job/otlp-svc")[0] == 200
    body = ExportMetricsServiceRequest(resource_metrics=[resource_metrics(
        "otlp-svc", delta_counter("jobs", 3), gauge("clash", 2.0))]).SerializeToString()
    headers = {"Content-Type": "application/x-protobuf", "Idempotency-Key": "otlp-1"}
    first = gateway.request("POST", "/v1/metrics", body, headers, base=gateway.otlp_url)
    again = gateway.request("POST", "/v1/metrics", body, headers, base=gateway.otlp_url)
    assert first[0] == again[0] == 200 and first[1] == again[1]
    assert ExportMetricsServiceResponse.FromString(first[1]).partial_success.rejected_data_points == 1
    assert first[2].get("Idempotent-Replayed") is None and again[2]["Idempotent-Replayed"] == "true"
    assert gateway.value("jobs_total", job="otlp-svc", otel_scope_name="lib") == 3


# ---- the bound ------------------------------------------------------------------------------------

def test_the_count_bound_forgets_the_oldest_key_first(gateway_factory):
    gw = gateway_factory(["processors.gravel.max_idempotency_keys=3"])
    for i in range(5):
        assert keyed(gw, f"k{i}")[::2] == (200, None)
    assert keyed(gw, "k4")[::2] == (200, "true")
    assert keyed(gw, "k2")[::2] == (200, "true")
    assert keyed(gw, "k1")[::2] == (200, None)  # forgotten: outside the bound, counted again
    assert total(gw) == 6
    from .test_telemetry import samples, value  # the gateway's own telemetry, parsed
    assert value(samples(gw), "otelgravel_receiver_requests_total", receiver="pushgateway",
                 outcome="replayed") == 2


def test_the_age_bound_is_the_pushes_time_not_a_clock_at_apply(gateway_factory):
    gw = gateway_factory(["processors.gravel.idempotency_key_ttl=1s"])
    assert keyed(gw, "old")[::2] == (200, None)
    assert keyed(gw, "old")[::2] == (200, "true")
    time.sleep(1.3)
    assert keyed(gw, "old")[::2] == (200, None)  # older than 1 s of push time: applied again
    assert total(gw) == 2


# ---- replicas on Redis -------------------------------------------------------------------------

@needs_redis
def test_a_key_first_on_replica_a_then_on_b_counts_once(gateway_factory, redis_node):
    a, b = start_replicas(gateway_factory, [redis_node.address], 2,
                          "processors.gravel.max_idempotency_keys=4")
    assert keyed(a, "ab-1")[::2] == (200, None)
    assert keyed(b, "ab-1")[::2] == (200, "true")
    assert keyed(b, "ab-1", FIVE)[0] == 422
    for gw in (a, b):
        assert until(lambda: total(gw) == 1, timeout=2), total(gw)
    # the bound is the same on every replica: keys pushed round-robin, the oldest forgotten alike
    for i in range(6):
        assert keyed((a, b)[i % 2], f"r{i}")[0] == 200
    assert [keyed(b, f"r{i}")[2] for i in (2, 3, 4, 5)] == ["true"] * 4  # the 4 newest
    assert keyed(a, "r1")[2] is None   # forgotten: applied again, and r2 (the oldest) goes
    assert keyed(b, "r2")[2] is None   # ... on b too: the log order decided it for both
    for gw in (a, b):
        assert until(lambda: total(gw) == 9, timeout=2), total(gw)


@needs_redis
def test_keys_survive_in_the_redis_snapshot_for_a_replica_started_later(gateway_factory, redis_node):
    a = start_replicas(gateway_factory, [redis_node.address], 1,
                       "processors.gravel.storage.snapshot_interval=500ms")[0]
    assert keyed(a, "snap-1")[0] == 200
    for i in range(30):
        assert keyed(a, None, path="/metrics/job/other")[0] == 200
    # two snapshots later the log behind the older one is trimmed: the keyed entry (the first) too
    assert until(lambda: int(cli(redis_node.port, "xlen", "{og:p0}:log").strip()) < 31, timeout=8)
    late = gateway_factory(replica_sets([redis_node.address]))
    wait_ready(late)
    assert keyed(late, "snap-1")[::2] == (200, "true")
    assert until(lambda: total(late) == 1 and total(a) == 1, timeout=2)


# ---- the file backend across restarts -------------------------------------------------------------

@pytest.mark.parametrize("how", ["kill -9 (the log replayed)", "SIGTERM (the last snapshot)",
                                 "kill -9 after snapshots"])
def test_keys_survive_a_restart_of_the_file_backend(gateway_factory, tmp_path, how):
    state = tmp_path / "state"
    more = {"snapshot_interval": "200ms"} if "after snapshots" in how else {}
    gw = gateway_factory(storage(state, **more))
    assert keyed(gw, "file-1")[0] == 200
    assert keyed(gw, "file-2", FIVE)[0] == 200
    if more:  # every record in the snapshot, the log empty: the keys come from the snapshot
        assert until(lambda: "snapshot written" in "\n".join(gw.log) and
                     not any(p.stat().st_size for p in segments(state)), timeout=10), gw.log
    if how.startswith("SIGTERM"):
        gw.proc.send_signal(signal.SIGTERM)
        assert gw.proc.wait(20) == 0
    else:
        kill9(gw)
    again = gateway_factory(storage(state) + same_ports(gw))
    assert keyed(again, "file-1")[::2] == (200, "true")
    assert keyed(again, "file-2", FIVE)[::2] == (200, "true")
    assert keyed(again, "file-2", ONE)[0] == 422
    assert total(again) == 6
