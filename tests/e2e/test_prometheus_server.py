"""A real Prometheus (Debian's ``prometheus`` package) scrapes the real gateway.

The test starts Prometheus on a free loopback port with a 1s scrape interval and ``honor_labels: true``
(the Pushgateway convention: the pushed ``job``/``instance`` win over the target's), pushes counters,
and polls Prometheus' HTTP API (bounded deadlines) until PromQL returns the aggregated values.
Prometheus asks for OpenMetrics first; the ``_created`` series (written by the gateway only in
OpenMetrics) and the family-keyed metadata show that it got and parsed OpenMetrics.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from datetime import datetime
from pathlib import Path

import pytest

PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
DEADLINE = 60.0   # seconds for any one condition to become true
POLL = 0.2        # seconds between two polls of Prometheus' API
_STAMP = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$")

pytestmark = pytest.mark.skipif(not os.access(PROMETHEUS, os.X_OK),
                                reason=f"needs a Prometheus server binary ({PROMETHEUS} not found; "
                                       "`apt-get install prometheus`)")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def poll(condition, what: str, deadline: float = DEADLINE, on_timeout=lambda: ""):
    """Call condition() until it returns something truthy (then return it), at most `deadline` seconds."""
    end = time.monotonic() + deadline
    waiter = threading.Event()
    last = None
    while time.monotonic() < end:
        last = condition()
        if last:
            return last
        waiter.wait(POLL)
    raise AssertionError(f"timed out after {deadline:.0f}s waiting for {what}; last={last!r}\n{on_timeout()}")


class Prometheus:
    def __init__(self, workdir: Path, target: str, flags=()):
        self.workdir = workdir
        self.flags = list(flags)
        self.config = workdir / "prometheus.yml"
        self.config.write_text(f"""
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: gateway
    honor_labels: true
    metrics_path: /metrics
    static_configs:
      - targets: ["{target}"]
""")
        self.logfile = workdir / "prometheus.log"
        self.proc = None
        self.url = None

    def start(self) -> None:
        for attempt in range(3):  # the free port may be taken between asking and binding
            port = free_port()
            self.url = f"http://127.0.0.1:{port}"
            data = self.workdir / f"data{attempt}"
            with open(self.logfile, "ab") as log:
                self.proc = subprocess.Popen(
                    [PROMETHEUS, f"--config.file={self.config}", f"--storage.tsdb.path={data}",
                     f"--web.listen-address=127.0.0.1:{port}", "--log.level=info", *self.flags],
                    stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                    start_new_session=True)
            try:
                poll(self._ready, "Prometheus /-/ready", deadline=30, on_timeout=self.log)
                return
            except AssertionError:
                exited = self.proc.poll() is not None
                self.stop()
                if not exited or attempt == 2:
                    raise

    def _ready(self):
        if self.proc.poll() is not None:
            raise AssertionError(f"prometheus exited with {self.proc.returncode}:\n{self.log()}")
        try:
            with urllib.request.urlopen(self.url + "/-/ready", timeout=2) as resp:
                return resp.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def log(self) -> str:
        try:
            return self.logfile.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def api(self, path: str, **params) -> dict:
        url = f"{self.url}/api/v1/{path}"
        if params:
            url += "?" + urllib.parse.urlencode(params)
        with urllib.request.urlopen(url, timeout=10) as resp:
            answer = json.load(resp)
        assert answer["status"] == "success", answer
        return answer["data"]

    def query(self, promql: str) -> list[dict]:
        data = self.api("query", query=promql)
        assert data["resultType"] == "vector", data
        return data["result"]

    def scalar(self, promql: str):
        result = self.query(promql)
        return float(result[0]["value"][1]) if len(result) == 1 else None

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        except ProcessLookupError:
            pass


@pytest.fixture
def prometheus_for(tmp_path):
    """prometheus_for(gateway) starts a Prometheus scraping that gateway (or ``target=`` host:port),
    with extra command-line ``flags``; always killed at the end."""
    started = []

    def start(gateway, flags=(), target=None):
        target = target or urllib.parse.urlsplit(gateway.scrape_url).netloc
        prom = Prometheus(tmp_path, target, flags)
        started.append(prom)
        prom.start()
        return prom

    try:
        yield start
    finally:
        for prom in started:
            prom.stop()


def wait_target_up(prom: Prometheus, after: float = 0.0) -> dict:
    """The single active target, once it is up, scraped after `after` (Unix s), and without error."""
    def check():
        targets = prom.api("targets", state="active")["activeTargets"]
        if len(targets) != 1:
            return None
        t = targets[0]
        if t["health"] != "up":
            return None
        return t if _rfc3339(t["lastScrape"]) > after else None

    return poll(check, "the gateway target to be up", on_timeout=prom.log)


def _rfc3339(stamp: str) -> float:
    """Go's RFC 3339 with nanoseconds (``2024-05-01T12:34:56.123456789Z``) → Unix seconds."""
    match = _STAMP.match(stamp)
    assert match, stamp
    head, frac, tz = match.groups()
    tz = "+00:00" if tz == "Z" else tz
    return datetime.fromisoformat(f"{head}.{(frac or '0')[:6].ljust(6, '0')}{tz}").timestamp()


def wait_value(prom: Prometheus, promql: str, expected: float) -> float:
    poll(lambda: prom.scalar(promql) == expected, f"`{promql}` == {expected}",
         on_timeout=lambda: f"last result: {prom.query(promql)}\n{prom.log()}")
    return prom.scalar(promql)


def push(gateway, path, body, method="POST"):
    status, reply, _ = gateway.push(path, body, method)
    assert status == 200, (path, status, reply)


def test_prometheus_scrapes_aggregated_counters(gateway, prometheus_for):
    counter = "# TYPE requests counter\n# HELP requests Requests handled.\nrequests{{route=\"/a\"}} {}\n"
    # three invocations of job fn (PUT and POST alike), one from another instance, one other job
    push(gateway, "/metrics/job/fn", counter.format(1), "PUT")
    push(gateway, "/metrics/job/fn", counter.format(2), "POST")
    push(gateway, "/metrics/job/fn", counter.format(3), "PUT")
    push(gateway, "/metrics/job/fn/instance/b", counter.format(4))
    push(gateway, "/metrics/job/other", counter.format(100))
    push(gateway, "/metrics/job/fn", 'fn_info{version="1.0",clear_mode="family"} 1\n')
    push(gateway, "/metrics/job/fn", 'fn_info{version="1.1",clear_mode="family"} 1\n')

    prom = prometheus_for(gateway)
    target = wait_target_up(prom)
    assert target["lastError"] == "", target
    assert target["labels"]["job"] == "gateway"
    assert target["scrapeUrl"] == gateway.scrape_url + "/metrics"

    assert wait_value(prom, 'sum(requests_total{job="fn"})', 10) == 10
    # honor_labels: the pushed job and instance are kept, the target's fill in only what is missing
    per_instance = {r["metric"]["instance"]: float(r["value"][1])
                    for r in prom.query('requests_total{job="fn",route="/a"}')}
    assert per_instance == {"b": 4.0, target["labels"]["instance"]: 6.0}, per_instance
    assert prom.scalar('requests_total{job="other"}') == 100
    # family semantics: only the latest version; clear_mode never reaches Prometheus
    infos = [r["metric"] for r in prom.query('fn_info{job="fn"}')]
    assert [m["version"] for m in infos] == ["1.1"], infos
    assert prom.query('{__name__=~".+",clear_mode!=""}') == []
    assert prom.query('{__name__=~".+",clearmode!=""}') == []

    # more invocations while Prometheus is scraping: the next scrapes see the new totals
    pushed_at = time.time()
    for _ in range(5):
        push(gateway, "/metrics/job/fn", counter.format(1))
    assert wait_value(prom, 'sum(requests_total{job="fn"})', 15) == 15
    assert wait_value(prom, 'requests_total{job="fn",instance="b"}', 4) == 4
    target = wait_target_up(prom, after=pushed_at)
    assert target["health"] == "up" and target["lastError"] == "", target


def test_prometheus_negotiates_and_parses_openmetrics(gateway, prometheus_for):
    push(gateway, "/metrics/job/fn", "# TYPE jobs counter\n# HELP jobs Jobs run.\njobs 2\n")
    push(gateway, "/metrics/job/fn", "# TYPE jobs counter\njobs 3\n", "PUT")
    hist = ('# TYPE lat histogram\nlat_bucket{{le="0.5"}} {a}\nlat_bucket{{le="+Inf"}} {b}\n'
            'lat_sum {s}\nlat_count {b}\n')
    push(gateway, "/metrics/job/fn", hist.format(a=1, b=2, s=1.5))
    push(gateway, "/metrics/job/fn", hist.format(a=0, b=1, s=3))
    # what the gateway serves Prometheus' Accept header must itself be strict OpenMetrics
    gateway.samples(openmetrics=True)

    prom = prometheus_for(gateway)
    target = wait_target_up(prom)
    assert target["lastError"] == "", target

    assert wait_value(prom, 'jobs_total{job="fn"}', 5) == 5
    # `_created` is written by the gateway only in OpenMetrics: its presence shows the format used
    created = prom.scalar('jobs_created{job="fn"}')
    assert created is not None and created > 1.7e9, prom.query('{job="fn"}')
    assert prom.scalar('lat_count{job="fn"}') == 3
    assert prom.scalar('lat_sum{job="fn"}') == 4.5
    assert prom.scalar('lat_bucket{job="fn",le="0.5"}') == 1
    assert prom.scalar('lat_bucket{job="fn",le="+Inf"}') == 3
    assert prom.scalar('histogram_quantile(1, lat_bucket{job="fn"})') is not None

    # OpenMetrics metadata is keyed by family name (text 0.0.4 would say `jobs_total`)
    meta = prom.api("targets/metadata", metric="jobs")
    assert [(m["type"], m["help"]) for m in meta] == [("counter", "Jobs run.")], meta
    assert prom.api("targets/metadata", metric="jobs_total") == []
    meta = prom.api("targets/metadata", metric="lat")
    assert [m["type"] for m in meta] == ["histogram"], meta
    # push_time_seconds reaches Prometheus with the group's labels
    assert prom.scalar('push_time_seconds{job="fn"}') > 1.7e9
    assert prom.query("up") and prom.scalar('up{job="gateway"}') == 1


# ---- PrometheusProto (SPEC 10) -----------------------------------------------------------------

NATIVE_FLAGS = ("--enable-feature=native-histograms",)
PROTO_CONTENT_TYPE = ("application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; "
                      "encoding=delimited")


class RecordingProxy:
    """A loopback HTTP proxy between Prometheus and the gateway that records, per scrape, the
    Accept header Prometheus sent and the Content-Type the gateway answered (the request log)."""

    def __init__(self, upstream: str):
        import http.server

        self.upstream = upstream
        self.exchanges: list[tuple[str, str]] = []
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() in ("accept", "accept-encoding", "user-agent")}
                req = urllib.request.Request(proxy.upstream + self.path, headers=headers)
                with urllib.request.urlopen(req, timeout=10) as resp:
                    body = resp.read()
                    status = resp.status
                    answer = dict(resp.headers.items())
                proxy.exchanges.append((self.headers.get("Accept", ""),
                                        answer.get("Content-Type", "")))
                self.send_response(status)
                for k in ("Content-Type", "Content-Encoding"):
                    if k in answer:
                        self.send_header(k, answer[k])
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.address = f"127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def recording_proxy():
    proxies = []

    def start(gateway):
        proxy = RecordingProxy(gateway.scrape_url)
        proxies.append(proxy)
        return proxy

    yield start
    for proxy in proxies:
        proxy.close()


def test_prometheus_with_native_histograms_scrapes_protobuf(gateway, prometheus_for,
                                                           recording_proxy):
    push(gateway, "/metrics/job/fn", "# TYPE jobs counter\n# HELP jobs Jobs run.\njobs 2\n")
    push(gateway, "/metrics/job/fn", "# TYPE jobs counter\njobs 3\n")
    hist = ('# TYPE lat histogram\nlat_bucket{{le="0.5"}} {a}\nlat_bucket{{le="+Inf"}} {b}\n'
            'lat_sum {s}\nlat_count {b}\n')
    push(gateway, "/metrics/job/fn", hist.format(a=1, b=2, s=1.5))
    push(gateway, "/metrics/job/fn", hist.format(a=0, b=1, s=3))
    push(gateway, "/metrics/job/fn", '# TYPE rpc summary\nrpc{quantile="0.5"} 0.2\nrpc_sum 4\n'
                                     'rpc_count 8\n')
    proxy = recording_proxy(gateway)
    prom = prometheus_for(gateway, NATIVE_FLAGS, target=proxy.address)
    target = wait_target_up(prom)
    assert target["lastError"] == "", target

    assert wait_value(prom, 'jobs_total{job="fn"}', 5) == 5
    assert prom.scalar('lat_count{job="fn"}') == 3
    assert prom.scalar('lat_bucket{job="fn",le="0.5"}') == 1
    assert prom.scalar('lat_bucket{job="fn",le="+Inf"}') == 3
    assert prom.scalar('rpc_count{job="fn"}') == 8
    assert prom.scalar('rpc{job="fn",quantile="0.5"}') == 0.2
    assert prom.scalar('push_time_seconds{job="fn"}') > 1.7e9
    # what went over the wire: Prometheus asked protobuf first, the gateway answered protobuf
    accept, content_type = proxy.exchanges[-1]
    assert accept.startswith("application/vnd.google.protobuf;proto=io.prometheus.client."
                             "MetricFamily;encoding=delimited,"), accept
    assert content_type == PROTO_CONTENT_TYPE, proxy.exchanges
    # protobuf metadata is keyed by the exposed family name, as in text 0.0.4 (OpenMetrics: `jobs`)
    meta = prom.api("targets/metadata", metric="jobs_total")
    assert [(m["type"], m["help"]) for m in meta] == [("counter", "Jobs run.")], meta


def _otel_invocation(gateway, value: float) -> None:
    """One serverless invocation with the real OTel SDK: its own MeterProvider, DELTA
    temporality, exponential buckets through a View; records one value, exports, exits."""
    import uuid

    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    from opentelemetry.sdk.metrics import Histogram, MeterProvider
    from opentelemetry.sdk.metrics.export import (AggregationTemporality,
                                                  PeriodicExportingMetricReader)
    from opentelemetry.sdk.metrics.view import ExponentialBucketHistogramAggregation, View
    from opentelemetry.sdk.resources import Resource

    exporter = OTLPMetricExporter(endpoint=gateway.otlp_url + "/v1/metrics",
                                  preferred_temporality={Histogram: AggregationTemporality.DELTA})
    reader = PeriodicExportingMetricReader(exporter, export_interval_millis=3_600_000)
    provider = MeterProvider(
        resource=Resource.create({"service.name": "svc", "service.instance.id": str(uuid.uuid4())}),
        metric_readers=[reader],
        views=[View(instrument_name="latency", aggregation=ExponentialBucketHistogramAggregation())])
    try:
        provider.get_meter("handler").create_histogram("latency", unit="ms").record(value)
        assert provider.force_flush(10_000)
    finally:
        provider.shutdown()


def _native_push(count: int, zero: int, deltas: list) -> bytes:
    """What client_golang/push sends for a histogram with NativeHistogramBucketFactor 1.1
    (schema 3), built from the client_model schema."""
    from google.protobuf.internal.encoder import _VarintBytes

    from otelgravel.formats.prom_protobuf import MetricFamily

    mf = MetricFamily(name="go_latency_seconds", help="Latency.", type=4)
    h = mf.metric.add().histogram
    h.sample_count, h.sample_sum, h.schema = count, 1.5 * count, 3
    h.zero_threshold, h.zero_count = 2.938735877055719e-39, zero
    span = h.positive_span.add()
    span.offset, span.length = 0, len(deltas)
    h.positive_delta.extend(deltas)
    raw = mf.SerializeToString()
    return _VarintBytes(len(raw)) + raw


def test_prometheus_reads_native_histograms_over_protobuf(gateway, prometheus_for,
                                                         recording_proxy):
    from tests.reliability.strict_scrape import decode_delimited

    values = [3.0, 5.0, 11.0]
    for v in values:
        _otel_invocation(gateway, v)
    # a client_golang-style push twice: natives add up bucket by bucket (sum, the default)
    headers = {"Content-Type": PROTO_CONTENT_TYPE}
    for body in (_native_push(3, 1, [1, 0]), _native_push(2, 0, [0, 2])):
        status, reply, _ = gateway.push("/metrics/job/go", body, headers=headers)
        assert status == 200, reply
    # the schema the gateway holds (the SDK's scale 20 is downscaled to 8, at most)
    status, data, answer = gateway.request(
        "GET", "/metrics", headers={"Accept": PROTO_CONTENT_TYPE}, base=gateway.scrape_url)
    assert answer["Content-Type"] == PROTO_CONTENT_TYPE
    schemas = {}
    for mf in decode_delimited(data):
        for m in mf.metric:
            if m.histogram.HasField("schema"):
                schemas[mf.name] = m.histogram.schema
    schema = schemas["latency_milliseconds"]
    assert -4 <= schema <= 8 and schemas["go_latency_seconds"] == 3

    proxy = recording_proxy(gateway)
    prom = prometheus_for(gateway, NATIVE_FLAGS, target=proxy.address)
    assert wait_target_up(prom)["lastError"] == ""
    assert wait_value(prom, 'histogram_count(latency_milliseconds{job="svc"})', 3) == 3
    assert prom.scalar('histogram_sum(latency_milliseconds{job="svc"})') == sum(values)
    median = prom.scalar('histogram_quantile(0.5, latency_milliseconds{job="svc"})')
    error = 2 ** (2 ** -schema) - 1  # a bucket's relative width at this schema
    assert abs(median - 5.0) / 5.0 <= error, (median, schema)
    # no classic series: it is one native series
    assert prom.query('latency_milliseconds_bucket{job="svc"}') == []
    assert wait_value(prom, 'histogram_count(go_latency_seconds{job="go"})', 5) == 5
    assert prom.scalar('histogram_sum(go_latency_seconds{job="go"})') == 7.5
    assert proxy.exchanges[-1][1] == PROTO_CONTENT_TYPE
