"""Native histograms fuzzed field by field (bytes mutations rarely get past the protobuf decoder):
OTLP exponential histograms and client_golang protobuf pushes with native-histogram fields, with
random schemas/scales, offsets, spans, deltas, zero buckets, counts that disagree with their
buckets, NaN/negative/infinite sums and thresholds, odd created timestamps, integer and float
counts, native and classic series in one family; pushed to a few series so that they merge
(downscaled, zero buckets widened). No answer is a 5xx, a refusal changes nothing, and after an
accepted push every scrape format passes ``strict_scrape``. Bounded: a fixed seed and count."""
from __future__ import annotations

import random
import time

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.metrics.v1 import metrics_pb2 as pb

from otelgravel.formats.prom_protobuf import MetricFamily
from tests.e2e.conftest import OM_ACCEPT
from tests.e2e.test_otlp_http import attrs, resource_metrics
from tests.reliability.strict_scrape import ESCAPINGS, check_every_format
from tests.reliability.test_fuzz import PROTO_CT, _Client, _delimited

PUSHES = 400
_NAN, _INF = float("nan"), float("inf")


def _pick(rng: random.Random, usual, *odd):
    """``usual`` most of the time, else one of the odd values."""
    return usual if rng.random() < 0.9 or not odd else rng.choice(odd)


def _counts(rng: random.Random) -> list[int]:
    n = rng.choice([0, 1, 2, 3, 5, 8, 20])
    return [_pick(rng, rng.randint(0, 5), 0, 1 << 40) for _ in range(n)]


def _otlp(rng: random.Random) -> bytes:
    now_ns = time.time_ns()
    positive, negative = _counts(rng), _counts(rng)
    zero = _pick(rng, rng.randint(0, 3), 0, 1 << 40)
    count = sum(positive) + sum(negative) + zero + _pick(rng, 0, 1, -1)
    buckets = pb.ExponentialHistogramDataPoint.Buckets
    point = pb.ExponentialHistogramDataPoint(
        attributes=attrs(route=rng.choice("ab")),
        time_unix_nano=_pick(rng, now_ns, 0, now_ns + 10**15),
        start_time_unix_nano=_pick(rng, now_ns - 10**9, 0, now_ns + 10**12),
        count=max(count, 0), scale=_pick(rng, rng.randint(-4, 8), -12, -5, 9, 20, 25),
        zero_count=zero, zero_threshold=_pick(rng, rng.choice([0.0, 1e-9, 0.01]), _NAN, -1.0, 1e300),
        positive=buckets(offset=_pick(rng, rng.randint(-20, 20), -(1 << 31), (1 << 31) - 100),
                         bucket_counts=positive),
        negative=buckets(offset=rng.randint(-20, 20), bucket_counts=negative),
        flags=_pick(rng, 0, 1))
    if rng.random() < 0.8:
        point.sum = _pick(rng, rng.uniform(-10, 100), _NAN, _INF, -_INF, -5.0)
    if rng.random() < 0.3:
        point.min, point.max = -1.0, 50.0
    metric = pb.Metric(name=rng.choice(["req.size", "req.size", "latency"]),
                       unit=rng.choice(["By", "", "s"]),
                       exponential_histogram=pb.ExponentialHistogram(
                           aggregation_temporality=rng.choice([1, 1, 2]), data_points=[point]))
    return ExportMetricsServiceRequest(resource_metrics=[resource_metrics(
        "native-fuzz", metric, instance=rng.choice(["i1", "i2"]))]).SerializeToString()


def _spans_and_deltas(rng: random.Random) -> tuple[list, list, list]:
    spans, deltas, counts, previous = [], [], [], 0
    for i in range(rng.choice([0, 1, 1, 2, 3])):
        length = rng.choice([0, 1, 2, 4])
        offset = rng.randint(-5, 5) if i == 0 else _pick(rng, rng.randint(0, 4), -1)
        spans.append({"offset": offset, "length": length})
        for _ in range(length):
            c = _pick(rng, rng.randint(0, 6), 0)
            deltas.append(_pick(rng, c - previous, -3))
            previous += deltas[-1]
            counts.append(previous)
    return spans, deltas, counts


def _native_histogram(rng: random.Random) -> dict:
    pspans, pdeltas, pcounts = _spans_and_deltas(rng)
    nspans, ndeltas, ncounts = _spans_and_deltas(rng)
    zero = rng.randint(0, 3)
    total = sum(pcounts) + sum(ncounts) + zero
    h = {"schema": _pick(rng, rng.randint(-4, 8), -6, 9, 10),
         "zero_threshold": _pick(rng, rng.choice([1e-128, 0.001]), 0.0, _NAN, -1.0, _INF, 2.0),
         "sample_sum": _pick(rng, rng.uniform(-5, 50), _NAN, -_INF, 0.0),
         "positive_span": pspans, "negative_span": nspans}
    if rng.random() < 0.2:  # float counts
        h.update(sample_count_float=total + _pick(rng, 0.0, 0.5, -1.0), zero_count_float=zero,
                 positive_count=[float(c) for c in pcounts],
                 negative_count=[float(c) for c in ncounts])
    else:
        h.update(sample_count=max(0, total + _pick(rng, 0, 1, -1)), zero_count=zero,
                 positive_delta=pdeltas, negative_delta=ndeltas)
    if rng.random() < 0.2:
        seconds = _pick(rng, int(time.time()) - 5, 0, -1, int(time.time()) + 10**6)
        h["created_timestamp"] = {"seconds": seconds, "nanos": _pick(rng, 5, 999_999_999)}
    return h


def _classic_histogram(rng: random.Random) -> dict:
    c1 = rng.randint(0, 3)
    return {"sample_count": c1 + rng.randint(0, 2), "sample_sum": rng.uniform(0, 9),
            "bucket": [{"upper_bound": 0.5, "cumulative_count": c1}]}


def _protobuf(rng: random.Random) -> bytes:
    metrics = []
    for route in rng.sample("abc", rng.randint(1, 3)):
        h = _native_histogram(rng) if rng.random() < 0.8 else _classic_histogram(rng)
        metrics.append({"label": [{"name": "route", "value": route}], "histogram": h})
    name, type_ = rng.choice([("go_native_seconds", 4), ("go_gnative", 5)])
    family = MetricFamily(name=name, type=_pick(rng, type_, 9 - type_), metric=metrics)
    return _delimited([family])


def _diff(before: bytes, after: bytes) -> list[str]:
    import difflib
    return list(difflib.unified_diff(before.decode().splitlines(), after.decode().splitlines(),
                                     n=0, lineterm=""))[:20]


def test_fuzzed_native_histograms_scrape_valid_in_every_format(gateway_factory):
    gw = gateway_factory()
    pushgateway, otlp, scrape = _Client(gw.url), _Client(gw.otlp_url), _Client(gw.scrape_url)
    rng = random.Random("otelgravel-native-fuzz")

    def get(accept: str) -> tuple[int, bytes]:
        return scrape.request("GET", "/metrics", headers={"Accept": accept})

    def without_failure_times(bodies) -> tuple[bytes, ...]:
        """The scrapes but for push_failure_time_seconds (a refused push to a group sets it)."""
        return tuple(b"".join(line for line in body.splitlines(True)
                              if not line.startswith(b"push_failure_time_seconds{"))
                     for body in bodies)

    def unchanged():
        return without_failure_times([get("text/plain")[1], get(OM_ACCEPT)[1]])

    last = unchanged()
    statuses: dict[int, int] = {}
    for n in range(PUSHES):
        if n % 2:
            body = _otlp(rng)
            status, answer = otlp.request("POST", "/v1/metrics", body,
                                          {"Content-Type": "application/x-protobuf"})
        else:
            body = _protobuf(rng)
            method = rng.choice(["POST", "PUT"])
            status, answer = pushgateway.request(method, f"/metrics/job/n{rng.randint(0, 2)}", body,
                                                 {"Content-Type": PROTO_CT})
        statuses[status] = statuses.get(status, 0) + 1
        assert status < 500, (status, answer, body[:300], gw.log[-1:])
        if status >= 400:
            now = unchanged()
            assert now == last, ("a refused push changed the store", answer, body[:300],
                                 _diff(last[0], now[0]))
            continue
        try:
            last = without_failure_times(check_every_format(get, ESCAPINGS[n % len(ESCAPINGS)])[:2])
        except Exception as exc:
            raise AssertionError(f"push {n} ({status} {answer[:200]!r}) made the scrape invalid: "
                                 f"{exc}; the push: {body[:400]!r}") from exc
    assert statuses.get(200, 0) > PUSHES // 4 and sum(v for k, v in statuses.items() if k >= 400) > 20, \
        statuses
