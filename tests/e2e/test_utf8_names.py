"""UTF-8 metric and label names on every way in, over real HTTP: bodies written by the real
prometheus_client (``escaping="allow-utf-8"``), client_golang-style protobuf, ``U__`` grouping
paths, the real OpenTelemetry SDK with ``receivers.otlp.utf8_names`` on and off; the refusals of
names that an escaping scheme would merge, with the store unchanged; a restart that replays them.

The names are read back from PrometheusProto scrapes, whose writer escapes per scheme (the text
writers' escaping, and the round trip through them, are tested with those writers)."""
from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from google.protobuf.internal.encoder import _VarintBytes
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.sdk.metrics import Counter, MeterProvider
from opentelemetry.sdk.metrics.export import (AggregationTemporality, MetricExportResult,
                                              PeriodicExportingMetricReader)
from opentelemetry.sdk.resources import Resource
from prometheus_client import CollectorRegistry, Gauge, Histogram
from prometheus_client import Counter as PromCounter
from prometheus_client.exposition import generate_latest as text_latest
from prometheus_client.openmetrics.exposition import generate_latest as om_latest

from otelgravel.formats.prom_protobuf import MetricFamily

from tests.redis_fixtures import needs_redis, redis_node  # noqa: F401
from tests.unit.formats.test_protobuf_exposition import decode

from .test_durable import kill9, same_ports, storage
from .test_redis_replicas import start_replicas, until

PROTOBUF = ("application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;"
            "encoding=delimited")
OPENMETRICS = "application/openmetrics-text; version=1.0.0; charset=utf-8"
TEXT = "text/plain; version=0.0.4; charset=utf-8"


def proto_scrape(gw, escaping: str | None = None) -> dict:
    """{family name: {labels frozenset: value}} from a PrometheusProto scrape."""
    accept = PROTOBUF + (f";escaping={escaping}" if escaping else "")
    status, data, headers = gw.request("GET", "/metrics", headers={"Accept": accept},
                                       base=gw.scrape_url)
    assert status == 200 and headers["Content-Type"].startswith("application/vnd.google.protobuf")
    out = {}
    for mf in decode(data):
        if mf.name in ("push_time_seconds", "push_failure_time_seconds"):
            continue
        series = out.setdefault(mf.name, {})
        for m in mf.metric:
            value = (m.gauge.value if m.HasField("gauge") else m.counter.value
                     if m.HasField("counter") else m.untyped.value if m.HasField("untyped")
                     else m.histogram.sample_count)
            series[frozenset((p.name, p.value) for p in m.label)] = value
    return out


def labels(**kw):
    return frozenset(kw.items())


def utf8_registry() -> CollectorRegistry:
    r = CollectorRegistry()
    Gauge("my.metric", "Dotted.", ["url.scheme"], registry=r).labels("https").set(2)
    PromCounter("http.requests", "Requests.", registry=r).inc(3)
    Histogram("req.dur", "Duration.", ["a.b"], buckets=[1], registry=r).labels("x").observe(0.5)
    return r


@pytest.mark.parametrize("content_type, render", [
    pytest.param(OPENMETRICS, lambda r: om_latest(r, escaping="allow-utf-8"), id="openmetrics"),
    pytest.param(TEXT, lambda r: text_latest(r, escaping="allow-utf-8"), id="text"),
    pytest.param("text/plain; version=1.0.0; charset=utf-8",
                 lambda r: text_latest(r, escaping="allow-utf-8"), id="text 1.0.0"),
])
def test_prometheus_client_utf8_bodies(gateway, content_type, render):
    body = render(utf8_registry())
    assert b'{"my.metric","url.scheme"="https"}' in body  # what the client writes
    status, answer, _ = gateway.push("/metrics/job/fn", body, headers={"Content-Type": content_type})
    assert status == 200, answer
    job = ("job", "fn")
    kept = proto_scrape(gateway, "allow-utf-8")
    assert kept["my.metric"] == {frozenset({job, ("url.scheme", "https")}): 2}
    assert kept["http.requests_total"] == {frozenset({job}): 3}
    assert kept["req.dur"] == {frozenset({job, ("a.b", "x")}): 1}
    assert proto_scrape(gateway) == {  # no scheme named: underscores
        "my_metric": {frozenset({job, ("url_scheme", "https")}): 2},
        "http_requests_total": {frozenset({job}): 3},
        "req_dur": {frozenset({job, ("a_b", "x")}): 1}}
    assert "U__my_2e_metric" in proto_scrape(gateway, "values")


def test_client_golang_style_protobuf_push_with_utf8_names(gateway):
    family = MetricFamily(name="http.server.active", type=1, metric=[
        {"label": [{"name": "url.scheme", "value": "https"}, {"name": "x.名前", "value": "値"}],
         "gauge": {"value": 4}}])
    body = _VarintBytes(family.ByteSize()) + family.SerializeToString()
    status, answer, _ = gateway.push("/metrics/job/fn", body, headers={"Content-Type": PROTOBUF})
    assert status == 200, answer
    assert proto_scrape(gateway, "allow-utf-8")["http.server.active"] == {
        frozenset({("job", "fn"), ("url.scheme", "https"), ("x.名前", "値")}): 4}
    assert proto_scrape(gateway)["http_server_active"] == {
        frozenset({("job", "fn"), ("url_scheme", "https"), ("x___", "値")}): 4}


def test_u_escaped_grouping_path(gateway):
    path = "/metrics/job/fn/U__url_2e_scheme/https/U__in_xxx_valid/kept"
    assert gateway.push(path, "up 1\n")[0] == 200
    assert proto_scrape(gateway, "allow-utf-8")["up"] == {
        labels(job="fn", **{"url.scheme": "https", "U__in_xxx_valid": "kept"}): 1}
    assert proto_scrape(gateway)["up"] == {
        labels(job="fn", url_scheme="https", U__in_xxx_valid="kept"): 1}
    assert gateway.request("DELETE", path)[0] == 202  # the same path names the same group
    assert "up" not in proto_scrape(gateway)


# (receiver content type, path, body, fragment of the 400)
REFUSALS = [
    pytest.param(OPENMETRICS, "/metrics/job/b", '{"my.metric"} 2\n# EOF\n',
                 "family 'my.metric' would be written 'my_metric' for a scraper asking "
                 "escaping=underscores (the default when a scraper names none), as family "
                 "'my_metric' is", id="family written like an existing one"),
    pytest.param(TEXT, "/metrics/job/b", '{"x","a.b"="1",a_b="2"} 1\n',
                 "label names 'a.b' and 'a_b' would both be written 'a_b'",
                 id="label names written alike"),
    pytest.param(TEXT, "/metrics/job/b/a_b/g", '{"x","a.b"="1"} 1\n',
                 "label names 'a.b' and 'a_b' would both be written 'a_b'",
                 id="label name written like a grouping label"),
    pytest.param(TEXT, "/metrics/job/b/U__a_2e_b/1/a_b/2", "x 1\n",
                 "label names 'a.b' and 'a_b' would both be written 'a_b'",
                 id="grouping labels written alike"),
    pytest.param(TEXT, "/metrics/job/b", '{"a.b} 1\n', "unterminated quoted name",
                 id="unterminated quote"),
    pytest.param(TEXT, "/metrics/job/b", '{""} 1\n', "empty metric name", id="empty name"),
    pytest.param(OPENMETRICS, "/metrics/job/b", 'a{"b.c"} 1\n# EOF\n',
                 "metric name given twice: 'a' and 'b.c'", id="name twice"),
    pytest.param(TEXT, "/metrics/job/b", b'{"a\xff"} 1\n', "not valid UTF-8", id="invalid UTF-8"),
    pytest.param(TEXT, "/metrics/job/b", '{"x","名前"="1"} 1\n',
                 "label name '名前' would be written '__' for a scraper asking escaping=underscores",
                 id="label name written with the reserved prefix"),
    pytest.param(PROTOBUF, "/metrics/job/b", "1st",
                 "label name '1st' would be written '__st' for a scraper asking escaping=dots",
                 id="protobuf label name written with the reserved prefix"),
]


@pytest.mark.parametrize("content_type, path, body, fragment", REFUSALS)
def test_refusals_name_what_is_wrong_and_change_nothing(gateway, content_type, path, body,
                                                        fragment):
    if content_type == PROTOBUF:  # body: a label name
        family = MetricFamily(name="g", type=1, metric=[
            {"label": [{"name": body, "value": "v"}], "gauge": {"value": 1}}])
        body = _VarintBytes(family.ByteSize()) + family.SerializeToString()
    assert gateway.push("/metrics/job/a", "# TYPE my_metric gauge\nmy_metric 1\n")[0] == 200
    before = gateway.scrape(TEXT)
    status, answer, _ = gateway.push(path, body, headers={"Content-Type": content_type})
    assert status == 400 and fragment in answer.decode(), answer
    assert b"JSON" not in answer  # a body opening with {"name" is not taken for JSON
    assert gateway.scrape(TEXT) == before


def test_the_first_of_two_colliding_families_wins_and_keeps_winning(gateway):
    """In log order: whichever comes first stays; the other is refused until it is gone."""
    om = {"Content-Type": OPENMETRICS}
    assert gateway.push("/metrics/job/a", '{"my.metric"} 1\n# EOF\n', headers=om)[0] == 200
    status, answer, _ = gateway.push("/metrics/job/b", "my_metric 2\n")
    assert status == 400 and b"family 'my.metric' would be written 'my_metric'" in answer
    assert gateway.request("DELETE", "/metrics/job/a")[0] == 202
    assert gateway.push("/metrics/job/b", "my_metric 2\n")[0] == 200
    status, _, _ = gateway.push("/metrics/job/a", '{"my.metric"} 1\n# EOF\n', headers=om)
    assert status == 400


class SdkInvocation:
    """One serverless invocation with the real OTel SDK, exporting one counter."""

    def __init__(self, otlp_url):
        self.exporter = OTLPMetricExporter(endpoint=otlp_url + "/v1/metrics",
                                           preferred_temporality={
                                               Counter: AggregationTemporality.DELTA})
        results = self.results = []
        export = self.exporter.export
        self.exporter.export = lambda *a, **kw: results.append(export(*a, **kw)) or results[-1]
        self.provider = MeterProvider(
            resource=Resource.create({"service.name": "svc", "service.version": "1.2",
                                      "service.instance.id": str(uuid.uuid4())}),
            metric_readers=[PeriodicExportingMetricReader(self.exporter, 3_600_000)])

    def run(self):
        meter = self.provider.get_meter("handler", "1.0")
        meter.create_counter("http.server.requests", unit="{request}").add(
            2, {"url.scheme": "https"})
        meter.create_histogram("http.server.duration", unit="ms").record(7, {"url.scheme": "https"})
        self.provider.force_flush(10_000)
        self.provider.shutdown()
        assert self.results and all(r == MetricExportResult.SUCCESS for r in self.results)


SCOPE = {("otel_scope_name", "handler"), ("otel_scope_version", "1.0"), ("job", "svc")}


@pytest.mark.parametrize("utf8, kept", [
    pytest.param(True, {"http.server.requests_total": {frozenset(SCOPE | {("url.scheme", "https")}): 2},
                        "http.server.duration_milliseconds": {
                            frozenset(SCOPE | {("url.scheme", "https")}): 1},
                        "target_info": {"service.version", "telemetry.sdk.name"}},
                 id="utf8_names: true"),
    pytest.param(False, {"http_server_requests_total": {frozenset(SCOPE | {("url_scheme", "https")}): 2},
                         "http_server_duration_milliseconds": {
                             frozenset(SCOPE | {("url_scheme", "https")}): 1},
                         "target_info": {"service_version", "telemetry_sdk_name"}},
                 id="utf8_names: false (default)"),
])
def test_otel_sdk_names_with_utf8_names(gateway_factory, utf8, kept):
    gw = gateway_factory([f"receivers.otlp.utf8_names={'true' if utf8 else 'false'}"])
    SdkInvocation(gw.otlp_url).run()
    got = proto_scrape(gw, "allow-utf-8")
    [info] = got.pop("target_info")
    assert kept.pop("target_info") <= {name for name, _ in info}
    assert got == kept
    # a scraper naming no scheme sees legacy names either way
    assert set(proto_scrape(gw)) == {"http_server_requests_total",
                                     "http_server_duration_milliseconds", "target_info"}


def test_a_restart_replays_utf8_pushes_and_their_refusals(gateway_factory, tmp_path):
    """Records carry the raw body: the replay parses the quoted names again, in log order."""
    state = tmp_path / "state"
    gw = gateway_factory(storage(state))
    om = {"Content-Type": OPENMETRICS}
    assert gw.push("/metrics/job/fn/U__a_2e_b/1", '{"my.metric","c.d"="x"} 1\n# EOF\n',
                   headers=om)[0] == 200
    assert gw.push("/metrics/job/other", "my_metric 2\n")[0] == 400
    before = proto_scrape(gw, "allow-utf-8")
    assert before == {"my.metric": {labels(job="fn", **{"a.b": "1", "c.d": "x"}): 1}}
    kill9(gw)
    again = gateway_factory(storage(state) + same_ports(gw))
    assert proto_scrape(again, "allow-utf-8") == before
    assert again.push("/metrics/job/other", "my_metric 2\n")[0] == 400


@needs_redis
def test_replicas_race_colliding_names_and_agree_on_the_winner(gateway_factory, redis_node):
    """Two replicas on one Redis log: the first of two colliding families in log order wins,
    the other replica's push is refused, and both replicas hold the same state."""
    a, b = start_replicas(gateway_factory, [redis_node.address], 2)
    for i in range(5):
        bodies = [(a, f'{{"race.{i}"}} 1\n# EOF\n', OPENMETRICS), (b, f"race_{i} 1\n", TEXT)]
        barrier = threading.Barrier(2)

        def push(gw, body, content_type):
            barrier.wait()
            return gw.push(f"/metrics/job/r{i}{content_type[0]}", body,
                           headers={"Content-Type": content_type})[0]

        with ThreadPoolExecutor(2) as pool:
            statuses = list(pool.map(lambda x: push(*x), bodies))
        assert sorted(statuses) == [200, 400], statuses
        won = f"race.{i}" if statuses[0] == 200 else f"race_{i}"
        for gw in (a, b):
            assert until(lambda: won in proto_scrape(gw, "allow-utf-8"), timeout=5)
    assert proto_scrape(a, "allow-utf-8") == proto_scrape(b, "allow-utf-8")
