"""Fuzzing each receiver from valid seeds: mutations, truncations, random bytes, under each
Content-Type and Content-Encoding. No answer is a 5xx; a refused request leaves the scrape
byte-identical; every scrape after an accepted one parses with both prometheus_client parsers
(text 0.0.4, OpenMetrics, text 1.0.0) and its PrometheusProto form passes the strict checks of
``strict_scrape`` (names per escaping scheme, each in turn; types; buckets; native histogram
spans and counts; created timestamps). Bounded: a fixed random seed and a fixed number of
requests per seed, on loopback."""
from __future__ import annotations

import gzip
import http.client
import random
import re
import zlib

import pytest
from google.protobuf.internal.encoder import _VarintBytes
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.metrics.v1 import metrics_pb2 as pb

from otelgravel.formats.prom_protobuf import MetricFamily
from tests.e2e.conftest import OM_ACCEPT
from tests.e2e.test_otlp_http import NOW_NS, resource_metrics, sample_request, to_otlp_json
from tests.reliability.strict_scrape import ESCAPINGS, check_every_format

PER_SEED = 120
TEXT = b"""# HELP http_requests_total Requests.
# TYPE http_requests_total counter
http_requests_total{method="get",path="/a\\"b\\\\c\\n"} 3 1700000000000
http_requests_total{method="post"} 1
# TYPE temp gauge
temp{room="kitchen"} -21.5
# TYPE lat histogram
lat_bucket{le="0.1"} 1
lat_bucket{le="1"} 3
lat_bucket{le="+Inf"} 4
lat_sum 2.5
lat_count 4
# TYPE rpc summary
rpc{quantile="0.5"} 0.2
rpc{quantile="0.99"} 1.5
rpc_sum 10
rpc_count 20
loose 7
"""
OPENMETRICS = b"""# TYPE jobs counter
# HELP jobs Jobs done.
jobs_total{queue="q"} 5 # {trace_id="abc"} 1 1700000000.5
jobs_created{queue="q"} 1700000000
# TYPE build info
build_info{version="1.2"} 1
# TYPE state stateset
state{state="a"} 1
state{state="b"} 0
# TYPE wait histogram
wait_bucket{le="1.0"} 2
wait_bucket{le="+Inf"} 3
wait_count 3
wait_sum 4.5
# TYPE depth gaugehistogram
depth_bucket{le="5.0"} 1
depth_bucket{le="+Inf"} 2
depth_gcount 2
depth_gsum 7
# EOF
"""


def _protobuf() -> bytes:
    families = [
        MetricFamily(name="go_jobs_total", help="Jobs.", type=0, metric=[
            {"label": [{"name": "queue", "value": "q1"}], "counter": {"value": 3}}]),
        MetricFamily(name="go_wait_seconds", type=4, metric=[{"histogram": {
            "sample_count": 2, "sample_sum": 1.5, "bucket": [
                {"upper_bound": 0.5, "cumulative_count": 1}, {"upper_bound": 1, "cumulative_count": 2}]}}]),
        MetricFamily(name="go_rpc", type=2, metric=[{"summary": {
            "sample_count": 4, "sample_sum": 2, "quantile": [{"quantile": 0.5, "value": 0.3}]}}]),
        MetricFamily(name="go_temp", type=1, metric=[{"gauge": {"value": 20}}]),
    ]
    return _delimited(families)


def _delimited(families) -> bytes:
    return b"".join(_VarintBytes(m.ByteSize()) + m.SerializeToString() for m in families)


def _native_protobuf() -> bytes:
    """client_golang's native histograms: integer deltas, float counts, an empty one, and a
    family of one native and one classic series."""
    span = {"offset": -2, "length": 2}
    return _delimited([
        MetricFamily(name="go_native_seconds", type=4, metric=[
            {"label": [{"name": "route", "value": "a"}], "histogram": {
                "sample_count": 6, "sample_sum": 3.5, "schema": 3, "zero_threshold": 1e-128,
                "zero_count": 1, "positive_span": [span, {"offset": 1, "length": 1}],
                "positive_delta": [1, 1, -1], "negative_span": [{"offset": 0, "length": 1}],
                "negative_delta": [1]}},
            {"label": [{"name": "route", "value": "b"}], "histogram": {
                "sample_count_float": 2.5, "sample_sum": 1.25, "schema": 0, "zero_threshold": 0.001,
                "zero_count_float": 0.5, "positive_span": [span], "positive_count": [1.5, 0.5]}},
            {"label": [{"name": "route", "value": "c"}], "histogram": {
                "schema": 1, "zero_threshold": 1e-128, "positive_span": [{"offset": 0, "length": 0}]}},
            {"label": [{"name": "route", "value": "d"}], "histogram": {
                "sample_count": 2, "sample_sum": 1, "bucket": [
                    {"upper_bound": 0.5, "cumulative_count": 1}, {"upper_bound": 1, "cumulative_count": 2}]}},
        ]),
        MetricFamily(name="go_gauge_native", type=5, metric=[{"histogram": {
            "sample_count": 3, "sample_sum": -1, "schema": -1, "zero_threshold": 0.5,
            "negative_span": [{"offset": 1, "length": 2}], "negative_delta": [2, -1]}}]),
    ])


# UTF-8 names (SPEC 10): refused until the parsers take them, then written per escaping scheme
UTF8_TEXT = ('# TYPE "http.server.duration" counter\n'
             '{"http.server.duration", "url.scheme"="https", "ü"="x"} 3\n'
             '{"my.gauge"} 1.5\n').encode()


def _utf8_protobuf() -> bytes:
    return _delimited([MetricFamily(name="go.utf8.seconds_total", type=0, metric=[
        {"label": [{"name": "url.scheme", "value": "https"}], "counter": {"value": 2}}])])


def _exponential_otlp(temporality: int) -> bytes:
    """OTLP exponential histograms: positive and negative buckets, a zero bucket, a negative
    offset, min/max; a second point of the same series at a finer scale (merged, downscaled)."""
    buckets = pb.ExponentialHistogramDataPoint.Buckets
    points = [pb.ExponentialHistogramDataPoint(
        time_unix_nano=NOW_NS, start_time_unix_nano=NOW_NS - 10**9, count=9, sum=12.5, scale=scale,
        zero_count=1, zero_threshold=0.001, min=-2.0, max=8.0,
        positive=buckets(offset=-3, bucket_counts=[1, 0, 3, 2]),
        negative=buckets(offset=1, bucket_counts=[1, 1])) for scale in (2, 5)]
    metric = pb.Metric(name="request.size", unit="By", exponential_histogram=pb.ExponentialHistogram(
        aggregation_temporality=temporality, data_points=points))
    return ExportMetricsServiceRequest(
        resource_metrics=[resource_metrics("fuzz-exp", metric)]).SerializeToString()


PROTO_CT = "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited"
# receiver -> (seeds as (body, its content type), the other content types to try)
SEEDS = {
    "pushgateway": ([(TEXT, "text/plain; version=0.0.4"), (TEXT, None),
                     (OPENMETRICS, "application/openmetrics-text; version=1.0.0"),
                     (_protobuf(), PROTO_CT), (_native_protobuf(), PROTO_CT),
                     (UTF8_TEXT, "text/plain; version=1.0.0"), (_utf8_protobuf(), PROTO_CT)],
                    ["application/x-what", "application/openmetrics-text", PROTO_CT, "text/plain"]),
    "otlp": ([(sample_request("fuzz").SerializeToString(), "application/x-protobuf"),
              (to_otlp_json(sample_request("fuzz-json")), "application/json"),
              (_exponential_otlp(1), "application/x-protobuf"),
              (_exponential_otlp(2), "application/x-protobuf")],
             ["application/json", "application/x-protobuf", "text/plain"]),
}
# Tokens that once broke something, or that parsers treat specially.
TOKENS = [b"NaN", b"+Inf", b"-Inf", b"-1", b"1e400", b"1" * 5000, b"\\ud800", b'"\\ud800"',
          b"\xff\xfe", b"\x00", b"\r", b"\xe2\x80\xa8", b"\xc2\x85", b"{", b"}", b'"', b"#",
          b"# EOF\n", b"# TYPE x counter\n", b'le="-1"', b"quantile=\"2\"", b",", b"=", b"\n",
          b"99999999999999999999", b"1e-400", b"\t", b" ", b"_total", b"_sum", b"_count"]


_NUMBER = re.compile(rb"(?<![A-Za-z_])[-+]?[0-9][0-9.eE+-]*")


def _mutate(rng: random.Random, body: bytes) -> bytes:
    choice = rng.randrange(10)
    data = bytearray(body)
    numbers = list(_NUMBER.finditer(body)) if choice >= 7 else None
    if numbers:  # a value, timestamp or bound replaced by a token (the most fruitful mutation)
        match = rng.choice(numbers)
        data[match.start():match.end()] = rng.choice(TOKENS)
    elif choice == 0 and data:  # flip a few bytes
        for _ in range(rng.randint(1, 8)):
            data[rng.randrange(len(data))] = rng.randrange(256)
    elif choice == 1:  # truncate
        del data[rng.randrange(len(data) + 1):]
    elif choice == 2:  # insert a token
        at = rng.randrange(len(data) + 1)
        data[at:at] = rng.choice(TOKENS)
    elif choice == 3 and data:  # replace a token-sized range by a token
        at = rng.randrange(len(data))
        data[at:at + rng.randint(1, 12)] = rng.choice(TOKENS)
    elif choice == 4:  # duplicate a slice
        a = rng.randrange(len(data) + 1)
        b = min(len(data), a + rng.randint(1, 200))
        data[b:b] = data[a:b]
    elif choice == 5:  # random bytes
        data = bytearray(rng.randbytes(rng.randint(0, 300)))
    else:  # delete a range
        a = rng.randrange(len(data) + 1)
        del data[a:a + rng.randint(1, 50)]
    return bytes(data)


def _encode(rng: random.Random, body: bytes) -> tuple[bytes, str | None]:
    encoding = rng.choice([None, None, "identity", "gzip", "deflate", "gzip-lie", "br"])
    if encoding == "gzip":
        return gzip.compress(body), "gzip"
    if encoding == "deflate":
        return zlib.compress(body), "deflate"
    if encoding == "gzip-lie":  # says gzip, is not; or a gzip stream cut short
        return (body if rng.random() < 0.5 else gzip.compress(body)[:-5]), "gzip"
    return body, encoding


class _Client:
    """Keep-alive HTTP on loopback, reconnecting when the gateway closes the connection."""

    def __init__(self, url: str):
        self.host, port = url[len("http://"):].rsplit(":", 1)
        self.port = int(port)
        self.conn = None

    def request(self, method, path, body=None, headers=None) -> tuple[int, bytes]:
        for attempt in range(2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
            try:
                self.conn.request(method, path, body=body, headers=headers or {})
                response = self.conn.getresponse()
                return response.status, response.read()
            except (ConnectionError, http.client.HTTPException):
                self.conn.close()
                self.conn = None
                if attempt:
                    raise
        raise AssertionError("unreachable")


@pytest.mark.parametrize("receiver", sorted(SEEDS))
def test_fuzzed_requests_never_5xx_and_refusals_change_nothing(gateway_factory, receiver):
    gw = gateway_factory()
    push = _Client(gw.url if receiver == "pushgateway" else gw.otlp_url)
    scrape = _Client(gw.scrape_url)
    seeds, other_types = SEEDS[receiver]
    rng = random.Random(f"otelgravel-fuzz-{receiver}")

    def get(accept: str) -> tuple[int, bytes]:
        return scrape.request("GET", "/metrics", headers={"Accept": accept})

    def scrapes() -> tuple[bytes, bytes]:
        """After an accepted push: every format checked, the protobuf and text 1.0.0 ones in
        each escaping in turn; the text and OpenMetrics bodies returned."""
        return check_every_format(get, ESCAPINGS[n % len(ESCAPINGS)])[:2]

    def unchanged() -> tuple[bytes, bytes]:
        """After a refusal: the text and OpenMetrics bodies (the store must be as it was)."""
        return get("text/plain")[1], get(OM_ACCEPT)[1]

    n = 0
    last = scrapes()
    statuses: dict[int, int] = {}
    for body, content_type in seeds:
        for i in range(PER_SEED):
            n += 1
            mutated = body if i == 0 else _mutate(rng, body)
            data, encoding = _encode(rng, mutated)
            ctype = content_type if rng.random() < 0.8 else rng.choice(other_types)
            headers = {}
            if ctype is not None:
                headers["Content-Type"] = ctype
            if encoding is not None:
                headers["Content-Encoding"] = encoding
            path = f"/metrics/job/fuzz-{n}" if receiver == "pushgateway" else "/v1/metrics"
            status, answer = push.request("POST", path, data, headers)
            statuses[status] = statuses.get(status, 0) + 1
            assert status < 500, (status, answer, headers, mutated[:300], gw.log[-1:])
            if status >= 400:
                assert unchanged() == last, ("a refused request changed the store", status, answer,
                                           headers, mutated[:300])
            else:
                last = scrapes()
    assert statuses.get(200, 0) >= len(seeds) and sum(v for k, v in statuses.items() if k >= 400)
