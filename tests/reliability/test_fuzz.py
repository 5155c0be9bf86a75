"""Fuzzing each receiver from valid seeds: mutations, truncations, random bytes, under each
Content-Type and Content-Encoding. No answer is a 5xx; a refused request leaves the scrape
byte-identical; every scrape after an accepted one parses with both prometheus_client parsers.
Bounded: a fixed random seed and a fixed number of requests per seed, on loopback."""
from __future__ import annotations

import gzip
import http.client
import random
import re
import zlib

import pytest
from google.protobuf.internal.encoder import _VarintBytes
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_om
from prometheus_client.parser import text_string_to_metric_families as parse_text

from otelgravel.formats.prom_protobuf import MetricFamily
from tests.e2e.conftest import OM_ACCEPT
from tests.e2e.test_otlp_http import sample_request, to_otlp_json

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
    return b"".join(_VarintBytes(m.ByteSize()) + m.SerializeToString() for m in families)


PROTO_CT = "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited"
# receiver -> (seeds as (body, its content type), the other content types to try)
SEEDS = {
    "pushgateway": ([(TEXT, "text/plain; version=0.0.4"), (TEXT, None),
                     (OPENMETRICS, "application/openmetrics-text; version=1.0.0"),
                     (_protobuf(), PROTO_CT)],
                    ["application/x-what", "application/openmetrics-text", PROTO_CT, "text/plain"]),
    "otlp": ([(sample_request("fuzz").SerializeToString(), "application/x-protobuf"),
              (to_otlp_json(sample_request("fuzz-json")), "application/json")],
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

    def scrapes() -> tuple[bytes, bytes]:
        text = scrape.request("GET", "/metrics", headers={"Accept": "text/plain"})
        om = scrape.request("GET", "/metrics", headers={"Accept": OM_ACCEPT})
        assert text[0] == om[0] == 200
        list(parse_text(text[1].decode()))
        list(parse_om(om[1].decode()))  # strict: raises on anything OpenMetrics forbids
        return text[1], om[1]

    last = scrapes()
    statuses: dict[int, int] = {}
    n = 0
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
                assert scrapes() == last, ("a refused request changed the store", status, answer,
                                           headers, mutated[:300])
            else:
                last = scrapes()
    assert statuses.get(200, 0) >= len(seeds) and sum(v for k, v in statuses.items() if k >= 400)
