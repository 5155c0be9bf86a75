"""OtlpTranslator: OTLP requests → groups of families, with a fake clock and real protobufs."""
import math

import pytest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope, KeyValue
from opentelemetry.proto.metrics.v1 import metrics_pb2 as pb
from opentelemetry.proto.resource.v1.resource_pb2 import Resource

from otelgravel import model, nativehist
from otelgravel.core.store import Store
from otelgravel.model import COUNTER, GAUGE, HISTOGRAM, INF, INFO, SUMMARY, Exemplar
from otelgravel.translate.otlp import (CUMULATIVE, DELTA, OtlpTranslator, cumulative_at,
                                       exponential_to_buckets)

SEC = 1_000_000_000


# ---- request builders ------------------------------------------------------------------------

def kvs(attrs: dict) -> list:
    out = []
    for k, v in attrs.items():
        if isinstance(v, bool):
            out.append(KeyValue(key=k, value=AnyValue(bool_value=v)))
        elif isinstance(v, int):
            out.append(KeyValue(key=k, value=AnyValue(int_value=v)))
        elif isinstance(v, float):
            out.append(KeyValue(key=k, value=AnyValue(double_value=v)))
        else:
            out.append(KeyValue(key=k, value=AnyValue(string_value=v)))
    return out


def num(value, attrs=None, start=1, t=2, flags=0, exemplars=()):
    dp = pb.NumberDataPoint(attributes=kvs(attrs or {}), start_time_unix_nano=start * SEC,
                            time_unix_nano=t * SEC, flags=flags, exemplars=list(exemplars))
    if value is None:
        return dp
    if isinstance(value, int):
        dp.as_int = value
    else:
        dp.as_double = value
    return dp


def counter(name, *points, unit="", temporality=CUMULATIVE, monotonic=True, description=""):
    return pb.Metric(name=name, unit=unit, description=description, sum=pb.Sum(
        data_points=list(points), aggregation_temporality=temporality, is_monotonic=monotonic))


def updown(name, *points, unit="", temporality=CUMULATIVE):
    return counter(name, *points, unit=unit, temporality=temporality, monotonic=False)


def gauge(name, *points, unit=""):
    return pb.Metric(name=name, unit=unit, gauge=pb.Gauge(data_points=list(points)))


def hist(count, buckets, bounds, total=None, attrs=None, start=1, t=2, flags=0, exemplars=()):
    dp = pb.HistogramDataPoint(attributes=kvs(attrs or {}), start_time_unix_nano=start * SEC,
                               time_unix_nano=t * SEC, count=count, bucket_counts=buckets,
                               explicit_bounds=bounds, flags=flags, exemplars=list(exemplars))
    if total is not None:
        dp.sum = total
    return dp


def histogram(name, *points, unit="", temporality=CUMULATIVE):
    return pb.Metric(name=name, unit=unit, histogram=pb.Histogram(
        data_points=list(points), aggregation_temporality=temporality))


def exp(count, scale, pos_offset=0, pos=(), neg_offset=0, neg=(), zero=0, zero_threshold=0.0,
        total=None, attrs=None, start=1, t=2):
    dp = pb.ExponentialHistogramDataPoint(
        attributes=kvs(attrs or {}), start_time_unix_nano=start * SEC, time_unix_nano=t * SEC,
        count=count, scale=scale, zero_count=zero, zero_threshold=zero_threshold,
        positive=pb.ExponentialHistogramDataPoint.Buckets(offset=pos_offset, bucket_counts=pos),
        negative=pb.ExponentialHistogramDataPoint.Buckets(offset=neg_offset, bucket_counts=neg))
    if total is not None:
        dp.sum = total
    return dp


def exphist(name, *points, unit="", temporality=DELTA):
    return pb.Metric(name=name, unit=unit, exponential_histogram=pb.ExponentialHistogram(
        data_points=list(points), aggregation_temporality=temporality))


def summary(name, count, total, quantiles, attrs=None, t=2):
    dp = pb.SummaryDataPoint(attributes=kvs(attrs or {}), time_unix_nano=t * SEC, count=count,
                             sum=total, quantile_values=[
                                 pb.SummaryDataPoint.ValueAtQuantile(quantile=q, value=v)
                                 for q, v in quantiles])
    return pb.Metric(name=name, summary=pb.Summary(data_points=[dp]))


def rm(*metrics, service="svc", instance="inst-1", scope=("lib", "1.0"), **resource):
    attrs = dict(resource)
    if service is not None:
        attrs["service.name"] = service
    if instance is not None:
        attrs["service.instance.id"] = instance
    return pb.ResourceMetrics(
        resource=Resource(attributes=kvs(attrs)),
        scope_metrics=[pb.ScopeMetrics(scope=InstrumentationScope(name=scope[0], version=scope[1]),
                                       metrics=list(metrics))])


def req(*resource_metrics):
    return ExportMetricsServiceRequest(resource_metrics=list(resource_metrics))


SCOPE = (("otel_scope_name", "lib"), ("otel_scope_version", "1.0"))
JOB = (("job", "svc"),)


def lab(**kw):
    return tuple(sorted({**dict(SCOPE), **kw}.items()))


def families(translation, group=JOB):
    """{name: Family} of the first entry for ``group``."""
    for g, fams in translation.groups:
        if g == group:
            return {f.name: f for f in fams}
    return {}


def only_point(translation, name, group=JOB):
    fam = families(translation, group)[name]
    assert len(fam.points) == 1, fam
    return fam.points[0]


class FakeStore:
    """Just enough of the store to total SUM points and keep REPLACE ones, committing like the
    receiver does (every family accepted unless its name is in ``refuse``)."""

    def __init__(self):
        self.values = {}

    def push(self, translation, refuse=()):
        for group, fams in translation.groups:
            for fam in fams:
                if fam.name in refuse:
                    continue
                self.apply(group, fam)
                translation.commit(fam)

    def apply(self, group, fam):
        for p in fam.points:
            key = (group, fam.name, p.labels)
            if p.mode == model.SUM:
                if p.buckets is not None:
                    old = self.values.get(key)
                    if old is None:
                        self.values[key] = (list(p.buckets), p.count)
                    else:
                        bounds = sorted({le for le, _ in old[0]} | {le for le, _ in p.buckets})
                        self.values[key] = ([(le, cumulative_at(old[0], le) + cumulative_at(p.buckets, le))
                                             for le in bounds], old[1] + p.count)
                else:
                    self.values[key] = self.values.get(key, 0.0) + p.value
            else:
                self.values[key] = p.value

    def corrections(self, expired):
        for group, fams in expired:
            for fam in fams:
                self.apply(group, fam)


# ---- grouping, names, labels -----------------------------------------------------------------

@pytest.mark.parametrize("resource,keep,group", [
    ({"service.name": "api"}, False, (("job", "api"),)),
    ({"service.name": "api", "service.namespace": "shop"}, False, (("job", "shop/api"),)),
    ({"service.name": "api", "service.instance.id": "i-9"}, False, (("job", "api"),)),
    ({"service.name": "api", "service.instance.id": "i-9"}, True,
     (("instance", "i-9"), ("job", "api"))),
    ({"service.name": "api"}, True, (("instance", ""), ("job", "api"))),
    ({}, False, (("job", "unknown_service"),)),
])
def test_group_from_resource(resource, keep, group):
    t = OtlpTranslator(keep_instance=keep)
    r = rm(gauge("g", num(1.0)), service=None, instance=None, **resource)
    out = t.translate(req(r), now=100)
    assert [g for g, _ in out.groups] == [group]
    point = families(out, group)["g"].points[0]
    assert "job" not in dict(point.labels) and "instance" not in dict(point.labels)


def test_names_types_help_unit_and_labels():
    t = OtlpTranslator()
    r = rm(counter("http.server.requests", num(1, {"route": "/a", "http.method": "GET"}),
                   unit="{request}", description="Requests served"),
           histogram("http.server.duration", hist(1, [0, 1, 0], [5.0, 10.0], total=7.0),
                     unit="ms", temporality=DELTA),
           gauge("mem.util", num(0.5), unit="1"),
           updown("queue.size", num(3), unit="{item}"))
    out = t.translate(req(r), now=100)
    fams = families(out)
    assert [(f.name, f.type, f.unit, f.help) for f in fams.values()] == [
        ("http_server_requests", COUNTER, "", "Requests served"),
        ("http_server_duration_milliseconds", HISTOGRAM, "milliseconds", ""),
        ("mem_util_ratio", GAUGE, "ratio", ""),
        ("queue_size", GAUGE, "", ""),
    ]
    assert fams["http_server_requests"].points[0].labels == lab(route="/a", http_method="GET")
    assert out.rejected == 0 and out.errors == []


def test_scope_labels_only_when_non_empty_and_job_attribute_dropped():
    t = OtlpTranslator()
    r = rm(gauge("g", num(1.0, {"job": "evil", "a": "1"})), scope=("only-name", ""))
    out = t.translate(req(r), now=0)
    assert only_point(out, "g").labels == (("a", "1"), ("otel_scope_name", "only-name"))
    r = rm(gauge("g", num(1.0)), scope=("", ""))
    assert only_point(t.translate(req(r), now=0), "g").labels == ()


def test_target_info_from_other_resource_attributes():
    t = OtlpTranslator()
    r = rm(gauge("g", num(1.0)), **{"telemetry.sdk.language": "python", "cloud.region": "eu",
                                   "service.namespace": "shop"})
    out = t.translate(req(r), now=0)
    target = families(out, (("job", "shop/svc"),))["target"]
    assert target.type == INFO
    assert target.points == [model.Point((("cloud_region", "eu"), ("telemetry_sdk_language", "python")),
                                         model.FAMILY, 1.0)]
    # nothing but service.* attributes: no target_info at all
    out = t.translate(req(rm(gauge("g", num(1.0)))), now=0)
    assert "target" not in families(out)


# ---- temporality → clear modes, per-source state ---------------------------------------------

# Each step: (instance, value, start second); the expected total after all steps.
CUMULATIVE_CASES = [
    ("one process 1 then 3", [("a", 1, 1), ("a", 3, 1)], 3),
    ("1 then 3, plus another process 1", [("a", 1, 1), ("a", 3, 1), ("b", 1, 1)], 4),
    ("five invocations of 1", [(f"i{n}", 1, 1) for n in range(5)], 5),
    ("repeated export of the same value adds nothing", [("a", 2, 1), ("a", 2, 1), ("a", 2, 1)], 2),
    ("a drop is a reset: the whole new value counts", [("a", 5, 1), ("a", 2, 1)], 7),
    ("a new start time is a reset", [("a", 5, 1), ("a", 6, 9)], 11),
    ("an unknown start time is not a reset", [("a", 5, 0), ("a", 6, 0)], 6),
    ("a known start after an unknown one continues", [("a", 5, 0), ("a", 6, 3)], 6),
]


@pytest.mark.parametrize("case,steps,total", CUMULATIVE_CASES, ids=[c[0] for c in CUMULATIVE_CASES])
def test_cumulative_monotonic_sums_become_increments(case, steps, total):
    t = OtlpTranslator()
    store = FakeStore()
    for now, (instance, value, start) in enumerate(steps):
        out = t.translate(req(rm(counter("c", num(value, {"k": "v"}, start=start, t=start + 10)),
                                 instance=instance)), now=now)
        assert out.rejected == 0, out.errors
        point = only_point(out, "c")
        assert point.mode == model.SUM
        store.push(out)
    assert store.values == {(JOB, "c", lab(k="v")): total}


def test_delta_sums_add_up_and_nothing_is_remembered():
    t = OtlpTranslator()
    store = FakeStore()
    for n in range(5):
        out = t.translate(req(rm(counter("c", num(1), temporality=DELTA), instance=f"i{n}")), now=n)
        store.push(out)
    assert store.values == {(JOB, "c", SCOPE): 5}
    assert len(t) == 0


def test_commit_only_what_the_store_accepted():
    t = OtlpTranslator()
    r = req(rm(counter("c", num(4))))
    first = t.translate(r, now=0)
    assert only_point(first, "c").value == 4
    # the family was refused: nothing committed, so the same export counts again in full
    again = t.translate(r, now=1)
    assert only_point(again, "c").value == 4
    assert len(t) == 0
    again.commit(families(again)["c"])
    assert len(t) == 1
    assert only_point(t.translate(r, now=2), "c").value == 0


def test_refused_family_leaves_other_families_committed():
    t = OtlpTranslator()
    store = FakeStore()
    store.push(t.translate(req(rm(counter("a", num(2)), counter("b", num(2)))), now=0), refuse={"b"})
    store.push(t.translate(req(rm(counter("a", num(3)), counter("b", num(3)))), now=1))
    assert store.values == {(JOB, "a", SCOPE): 3, (JOB, "b", SCOPE): 3}


def test_same_source_twice_in_one_request_diffs_against_the_first():
    t = OtlpTranslator()
    r = req(rm(counter("c", num(1))), rm(counter("c", num(3))))
    out = t.translate(r, now=0)
    # both resources are the same source and the same series: folded into one SUM point
    assert only_point(out, "c").value == 3


def test_two_invocations_in_one_request_fold_into_one_series():
    t = OtlpTranslator()
    r = req(rm(counter("c", num(1), temporality=DELTA), instance="a"),
            rm(counter("c", num(2), temporality=DELTA), instance="b"),
            rm(gauge("g", num(1.0)), instance="a"), rm(gauge("g", num(7.0)), instance="b"))
    out = t.translate(r, now=0)
    assert len(out.groups) == 1
    assert only_point(out, "c").value == 3
    assert only_point(out, "g").value == 7.0


def test_windowed_observations_of_one_series_are_separate_pushes():
    t = OtlpTranslator()
    r = req(*[rm(gauge("g", num(v, {"clear_mode": "max5m"})), instance=f"i{v}")
              for v in (300.0, 900.0, 500.0)])
    out = t.translate(r, now=0)
    assert [g for g, _ in out.groups] == [JOB, JOB, JOB]
    values = [fams[0].points[0].value for _, fams in out.groups]
    assert values == [300.0, 900.0, 500.0]
    assert all(fams[0].points[0].mode == model.ClearMode("window", "max5m", "max", 0.0, 300.0)
               for _, fams in out.groups)


def test_gauges_replace():
    t = OtlpTranslator()
    store = FakeStore()
    for n, v in enumerate([1000, 1001, 1002, 1003, 1004]):
        out = t.translate(req(rm(gauge("g", num(float(v))), instance=f"i{n}")), now=n)
        assert only_point(out, "g").mode == model.REPLACE
        store.push(out)
    assert store.values == {(JOB, "g", SCOPE): 1004.0}
    assert len(t) == 0


def test_a_server_rule_decides_a_gauges_mode_and_an_attribute_still_wins():
    from otelgravel.clearmode import parse_clear_mode
    rules = {"mem_used": parse_clear_mode("mean5m"), "c": parse_clear_mode("replace")}
    t = OtlpTranslator(rule_for=rules.get)
    out = t.translate(req(rm(gauge("mem.used", num(3.0)), gauge("other", num(1.0)),
                             counter("c", num(2), temporality=DELTA),
                             gauge("mem.used", num(4.0, {"clear_mode": "max1m", "k": "v"})))), now=0)
    points = {(f.name, p.labels): p.mode.text for _, fams in out.groups for f in fams for p in f.points}
    assert points[("mem_used", SCOPE)] == "mean5m"
    assert points[("other", SCOPE)] == "replace"
    assert points[("c", SCOPE)] == "sum"  # a counter's increments stay sums whatever the rules say
    assert [m for (n, labels), m in points.items() if n == "mem_used" and labels != SCOPE] == ["max1m"]


def test_non_monotonic_cumulative_is_the_sum_of_live_sources_and_expires():
    t = OtlpTranslator(source_ttl=60)
    store = FakeStore()
    key = (JOB, "q", SCOPE)
    store.push(t.translate(req(rm(updown("q", num(5)), instance="a")), now=0))
    store.push(t.translate(req(rm(updown("q", num(3)), instance="b")), now=30))
    assert store.values[key] == 8
    store.push(t.translate(req(rm(updown("q", num(2)), instance="a")), now=40))
    assert store.values[key] == 5
    assert t.expire(now=89) == []            # b was seen at 30, a at 40: both live
    expired = t.expire(now=90)               # b's 3 goes away
    assert expired == [(JOB, [model.Family("q", GAUGE, points=[model.Point(SCOPE, model.SUM, -3.0)])])]
    store.corrections(expired)
    assert store.values[key] == 2
    assert len(t) == 1
    store.corrections(t.expire(now=1000))
    assert store.values[key] == 0
    assert len(t) == 0


def test_non_monotonic_delta_is_a_sum():
    t = OtlpTranslator()
    out = t.translate(req(rm(updown("q", num(-2), temporality=DELTA))), now=0)
    p = only_point(out, "q")
    assert (p.mode, p.value, families(out)["q"].type) == (model.SUM, -2.0, GAUGE)


def test_source_state_is_bounded_and_expires():
    t = OtlpTranslator(source_ttl=10, max_sources=50)
    store = FakeStore()
    for n in range(1000):
        store.push(t.translate(req(rm(counter("c", num(1)), instance=f"i{n}")), now=n * 0.01))
        assert len(t) <= 50
    assert store.values == {(JOB, "c", SCOPE): 1000}
    t.expire(now=9.99 + 9.99)
    assert 0 < len(t) < 50
    t.expire(now=100)
    assert len(t) == 0


def test_ttl_forgets_and_a_returning_source_counts_in_full():
    t = OtlpTranslator(source_ttl=10)
    store = FakeStore()
    store.push(t.translate(req(rm(counter("c", num(3)))), now=0))
    t.expire(now=5)
    store.push(t.translate(req(rm(counter("c", num(4)))), now=5))  # +1, seen at 5
    t.expire(now=14)
    assert len(t) == 1
    t.expire(now=15)
    assert len(t) == 0
    assert store.values[(JOB, "c", SCOPE)] == 4


def test_lru_eviction_of_non_monotonic_sources_yields_corrections():
    t = OtlpTranslator(max_sources=2)
    store = FakeStore()
    for n, inst in enumerate("abc"):
        store.push(t.translate(req(rm(updown("q", num(10)), instance=inst)), now=n))
    assert len(t) == 2
    store.corrections(t.expire(now=3))
    assert store.values[(JOB, "q", SCOPE)] == 20


# ---- histograms ------------------------------------------------------------------------------

def test_delta_histogram_points():
    t = OtlpTranslator()
    out = t.translate(req(rm(histogram("h", hist(3, [1, 2, 0], [5.0, 10.0], total=19.0),
                                       temporality=DELTA))), now=0)
    p = only_point(out, "h")
    assert (p.mode, p.buckets, p.sum, p.count) == (model.SUM, [(5.0, 1.0), (10.0, 3.0), (INF, 3.0)], 19.0, 3.0)


def test_cumulative_histogram_increments_and_resets():
    t = OtlpTranslator()
    store = FakeStore()
    bounds = [5.0, 10.0]
    out = t.translate(req(rm(histogram("h", hist(1, [0, 1, 0], bounds, total=7.0)))), now=0)
    store.push(out)
    out = t.translate(req(rm(histogram("h", hist(3, [1, 2, 0], bounds, total=18.0)))), now=1)
    p = only_point(out, "h")
    assert (p.buckets, p.sum, p.count) == ([(5.0, 1.0), (10.0, 2.0), (INF, 2.0)], 11.0, 2.0)
    store.push(out)
    # a new start time: the whole new value counts
    out = t.translate(req(rm(histogram("h", hist(1, [0, 0, 1], bounds, total=50.0, start=7)))), now=2)
    p = only_point(out, "h")
    assert (p.buckets, p.count) == ([(5.0, 0.0), (10.0, 0.0), (INF, 1.0)], 1.0)
    store.push(out)
    # a bucket that drops with the same count is a reset too
    out = t.translate(req(rm(histogram("h", hist(1, [1, 0, 0], bounds, total=1.0, start=7)))), now=3)
    assert only_point(out, "h").buckets == [(5.0, 1.0), (10.0, 1.0), (INF, 1.0)]
    store.push(out)
    assert store.values[(JOB, "h", SCOPE)] == ([(5.0, 2.0), (10.0, 4.0), (INF, 5.0)], 5.0)


def test_cumulative_histogram_from_many_invocations():
    t = OtlpTranslator()
    store = FakeStore()
    for n in range(5):
        store.push(t.translate(req(rm(histogram("h", hist(1, [0, 1, 0], [5.0, 10.0], total=7.0)),
                                      instance=f"i{n}")), now=n))
    assert store.values[(JOB, "h", SCOPE)] == ([(5.0, 0.0), (10.0, 5.0), (INF, 5.0)], 5.0)


def test_histogram_without_sum_or_buckets():
    t = OtlpTranslator()
    out = t.translate(req(rm(histogram("h", hist(4, [], []), temporality=DELTA))), now=0)
    p = only_point(out, "h")
    assert (p.buckets, p.sum, p.count) == ([(INF, 4.0)], None, 4.0)


# ---- exponential histograms ------------------------------------------------------------------

def test_exponential_histogram_on_the_common_grid():
    # scale 0: positive bucket i is (2^i, 2^(i+1)]; at the target scale 3 the bounds are the same
    dp = exp(6, 0, pos_offset=1, pos=[1, 0, 2], neg_offset=0, neg=[1], zero=2)
    got = exponential_to_buckets(dp, 3)
    # negative bucket 0 is [-2, -1): le=-1; zero: le=0; positive 1: (2, 4], 3: (8, 16]
    assert got == [(-1.0, 1.0), (0.0, 3.0), (4.0, 4.0), (16.0, 6.0), (INF, 6.0)]


def test_exponential_histograms_of_different_scales_share_bounds():
    # the value 3.0 recorded at scale 5 and at scale 3 lands in the same grid bucket
    def index(v, scale):
        return math.ceil(math.log2(v) * 2 ** scale) - 1
    fine = exponential_to_buckets(exp(1, 5, pos_offset=index(3.0, 5), pos=[1]), 3)
    same = exponential_to_buckets(exp(1, 3, pos_offset=index(3.0, 3), pos=[1]), 3)
    coarse = exponential_to_buckets(exp(1, 1, pos_offset=index(3.0, 1), pos=[1]), 3)
    assert fine == same
    assert fine[0][0] == 2 ** (13 / 8) and 3.0 <= fine[0][0] <= 3.0 * 2 ** (1 / 8)
    assert coarse == [(4.0, 1.0), (INF, 1.0)]  # scale 1: (2^(3/2), 4], a grid point
    assert {le for le, _ in coarse} <= {2 ** (i / 8) for i in range(32)} | {INF}


@pytest.mark.parametrize("scale", [-2, 0, 3, 8, 20])
def test_exponential_downscaling_keeps_counts_and_bounds_cover_values(scale):
    values = [0.001, 0.5, 1.0, 1.7, 3.0, 1234.5]
    idx = [math.ceil(math.log2(v) * 2 ** scale) - 1 for v in values]
    lo = min(idx)
    counts = [0] * (max(idx) - lo + 1)
    for i in idx:
        counts[i - lo] += 1
    got = exponential_to_buckets(exp(len(values), scale, pos_offset=lo, pos=counts), 3)
    assert got[-1] == (INF, float(len(values)))
    for v in values:  # each value is counted at a bound within one grid step (or exact coarser bucket)
        assert cumulative_at(got, v * 2 ** max(1 / 8, 2 ** -scale)) >= sum(1 for w in values if w <= v)


def test_exponential_histogram_zero_threshold_bucket_is_on_the_grid():
    got = exponential_to_buckets(exp(2, 3, zero=2, zero_threshold=1e-3), 3)
    le = got[0][0]
    assert le >= 1e-3 and le / 2 ** (1 / 8) < 1e-3 and math.log2(le) * 8 == round(math.log2(le) * 8)


def test_exponential_histogram_on_a_classic_grid_delta_from_three_invocations():
    t = OtlpTranslator(exp_histogram_scale=3)
    store = FakeStore()
    for n, v in enumerate([7.0, 7.0, 12.0]):
        i = math.ceil(math.log2(v) * 2 ** 20) - 1
        out = t.translate(req(rm(exphist("d", exp(1, 20, pos_offset=i, pos=[1], total=v), unit="ms"),
                                 instance=f"i{n}")), now=n)
        assert out.rejected == 0, out.errors
        store.push(out)
    buckets, count = store.values[(JOB, "d_milliseconds", SCOPE)]
    assert count == 3.0
    assert [c for _, c in buckets] == [2.0, 3.0, 3.0]
    assert buckets[0][0] == 2 ** (23 / 8)   # 7.0 <= 7.34
    assert buckets[1][0] == 2 ** (29 / 8)   # 12.0 <= 12.34


def test_cumulative_exponential_histogram_on_a_classic_grid_that_downscales_is_not_a_reset():
    t = OtlpTranslator(exp_histogram_scale=3)
    store = FakeStore()
    # first export: one value at scale 3 bucket 8 (2, 2.18]; then the SDK downscales to 0 after
    # recording 100: bucket 1 (2, 4] holds the first value, bucket 6 (64, 128] the new one
    store.push(t.translate(req(rm(exphist("e", exp(1, 3, pos_offset=8, pos=[1]),
                                          temporality=CUMULATIVE))), now=0))
    out = t.translate(req(rm(exphist("e", exp(2, 0, pos_offset=1, pos=[1, 0, 0, 0, 0, 1]),
                                     temporality=CUMULATIVE))), now=1)
    p = only_point(out, "e")
    assert p.count == 1.0 and p.buckets == [(4.0, 0.0), (128.0, 1.0), (INF, 1.0)]
    store.push(out)
    assert store.values[(JOB, "e", SCOPE)][1] == 2.0


SCOPE_LABELS = tuple(sorted(JOB + SCOPE))


def _apply(store, translation, now):
    for group, fams in translation.groups:
        store.apply(fams, group, now)
    translation.commit_all()  # the per-source memory takes what was applied


def test_exponential_histograms_stay_native_and_merge_at_the_smaller_scale():
    # scale 4 and scale 2, both DELTA: the stored series is at schema 2 with every count kept
    t = OtlpTranslator()
    store = Store()
    fine = exp(6, 4, pos_offset=10, pos=[1, 2, 0, 3], zero=0)       # OTLP indexes 10..13
    coarse = exp(4, 2, pos_offset=2, pos=[1, 0, 2], zero=1, neg_offset=0, neg=[0])
    for n, dp in enumerate((fine, coarse)):
        out = t.translate(req(rm(exphist("h", dp), instance=f"i{n}")), now=n)
        assert out.rejected == 0, out.errors
        p = only_point(out, "h")
        assert p.buckets is None and p.native.schema == (4, 2)[n]
        _apply(store, out, n)
    stored = store.get("h", SCOPE_LABELS).point
    h = stored.native
    assert h.schema == 2 and stored.count == 10
    assert nativehist.total(h) == 10 and h.zero_count == 1
    # Prometheus index = OTLP index + 1; scale 4 -> 2 merges 4 buckets: OTLP i -> i >> 2
    assert h.positive == {3: 1 + 2 + 1, 4: 3, 5: 2}
    # the classic view for the text formats keeps every count too
    assert nativehist.to_classic(h, stored.count)[-1] == (INF, 10.0)


def test_exponential_histogram_finer_than_schema_8_is_downscaled_to_8():
    t = OtlpTranslator()
    i = math.ceil(math.log2(7.0) * 2 ** 20) - 1
    out = t.translate(req(rm(exphist("d", exp(1, 20, pos_offset=i, pos=[1], total=7.0)))), now=0)
    h = only_point(out, "d").native
    assert h.schema == 8 and list(h.positive.values()) == [1]
    [(index, _)] = h.positive.items()
    assert nativehist.upper_bound(index - 1, 8) < 7.0 <= nativehist.upper_bound(index, 8)


def test_cumulative_native_histogram_counts_its_increase():
    t = OtlpTranslator()
    store = Store()
    out = t.translate(req(rm(exphist("e", exp(1, 3, pos_offset=8, pos=[1]),
                                     temporality=CUMULATIVE))), now=0)
    _apply(store, out, 0)
    # the SDK downscaled to 0 after recording 100: bucket 1 (2, 4] holds the first value
    out = t.translate(req(rm(exphist("e", exp(2, 0, pos_offset=1, pos=[1, 0, 0, 0, 0, 1]),
                                     temporality=CUMULATIVE))), now=1)
    p = only_point(out, "e")
    assert p.count == 1.0 and p.native.schema == 0 and p.native.positive == {7: 1}
    _apply(store, out, 1)
    stored = store.get("e", SCOPE_LABELS).point
    assert stored.count == 2.0 and stored.native.positive == {2: 1, 7: 1}


def test_a_scale_prometheus_cannot_hold_becomes_classic():
    out = OtlpTranslator().translate(req(rm(exphist("e", exp(1, -6, pos_offset=0, pos=[1])))), now=0)
    p = only_point(out, "e")
    assert p.native is None and p.buckets[-1] == (INF, 1.0)


# ---- summaries, removals, exemplars, clear_mode ----------------------------------------------

def test_summary_replaces_with_quantiles():
    t = OtlpTranslator()
    out = t.translate(req(rm(summary("s", 10, 55.0, [(0.99, 9.0), (0.5, 5.0)]))), now=0)
    p = only_point(out, "s")
    assert families(out)["s"].type == SUMMARY
    assert (p.mode, p.quantiles, p.sum, p.count) == (model.REPLACE, [(0.5, 5.0), (0.99, 9.0)], 55.0, 10.0)


def test_no_recorded_value_removes_the_series_and_forgets_the_source():
    t = OtlpTranslator()
    t.translate(req(rm(counter("c", num(5, {"k": "v"})))), now=0).commit_all()
    assert len(t) == 1
    out = t.translate(req(rm(counter("c", num(None, {"k": "v"}, flags=1)))), now=1)
    assert out.removals == [(JOB, "c", lab(k="v"))]
    assert out.rejected == 0 and "c" not in families(out)
    assert len(t) == 0


def test_exemplars_latest_with_hex_ids():
    ex_old = pb.Exemplar(time_unix_nano=5 * SEC, as_double=1.0, trace_id=bytes(range(16)),
                         span_id=bytes(range(8)))
    ex_new = pb.Exemplar(time_unix_nano=6 * SEC, as_int=2, trace_id=b"\xab" * 16, span_id=b"\xcd" * 8,
                         filtered_attributes=kvs({"user.id": "u1"}))
    t = OtlpTranslator()
    out = t.translate(req(rm(counter("c", num(1, exemplars=[ex_new, ex_old]), temporality=DELTA))), now=0)
    assert only_point(out, "c").exemplar == Exemplar(
        (("span_id", "cd" * 8), ("trace_id", "ab" * 16), ("user_id", "u1")), 2.0, 6.0)
    out = t.translate(req(rm(histogram("h", hist(2, [1, 1], [5.0], exemplars=[ex_old, ex_new]),
                                       temporality=DELTA))), now=0)
    assert only_point(out, "h").bucket_exemplars == {
        5.0: Exemplar((("span_id", "cd" * 8), ("trace_id", "ab" * 16), ("user_id", "u1")), 2.0, 6.0)}
    # gauges carry no exemplars (OTel spec)
    out = t.translate(req(rm(gauge("g", num(1.0, exemplars=[ex_old])))), now=0)
    assert only_point(out, "g").exemplar is None


@pytest.mark.parametrize("metric,mode,value", [
    (gauge("g", num(5.0, {"clear_mode": "max5m"})), model.ClearMode("window", "max5m", "max", 0.0, 300.0), 5.0),
    (gauge("g", num(5.0, {"clearmode": "sum"})), model.SUM, 5.0),
    (counter("g", num(5, {"clear_mode": "replace"})), model.REPLACE, 5.0),
    (counter("g", num(5, {"clear_mode": "sum"})), model.SUM, 5.0),
    (counter("g", num(5, {"clear_mode": "p99_1m"})), model.ClearMode("window", "p99_1m", "quantile", 0.99, 60.0), 5.0),
])
def test_clear_mode_attribute_overrides_and_is_removed(metric, mode, value):
    t = OtlpTranslator()
    out = t.translate(req(rm(metric)), now=0)
    p = only_point(out, "g")
    assert (p.mode, p.value, p.labels) == (mode, value, SCOPE)


# ---- rejections ------------------------------------------------------------------------------

REJECTIONS = [
    ("unspecified temporality", counter("c", num(1), num(2, {"a": "b"}), temporality=0), 2, "unspecified"),
    ("unspecified histogram temporality", histogram("h", hist(1, [1], []), temporality=0), 1, "unspecified"),
    ("zero timestamp", gauge("g", num(1.0, t=0)), 1, "time_unix_nano"),
    ("no value", gauge("g", num(None)), 1, "no value"),
    ("NaN counter", counter("c", num(float("nan"))), 1, "finite"),
    ("negative counter", counter("c", num(-1), temporality=DELTA), 1, "negative"),
    ("invalid clear_mode", gauge("g", num(1.0, {"clear_mode": "summary5m"})), 1, "summary5m"),
    ("zero window", gauge("g", num(1.0, {"clear_mode": "sum0s"})), 1, "sum0s"),
    ("window on a histogram", histogram("h", hist(1, [1], [], attrs={"clear_mode": "max5m"}),
                                        temporality=DELTA), 1, "windowed"),
    ("le attribute", histogram("h", hist(1, [1], [], attrs={"le": "1"}), temporality=DELTA), 1, '"le"'),
    ("bucket count mismatch", histogram("h", hist(5, [1, 1], [1.0]), temporality=DELTA), 1, "add up"),
    ("bucket/bounds lengths", histogram("h", hist(1, [1], [1.0]), temporality=DELTA), 1, "bucket_counts"),
    ("bounds not increasing", histogram("h", hist(2, [1, 1, 0], [2.0, 1.0]), temporality=DELTA), 1, "increasing"),
    ("exp count mismatch", exphist("e", exp(9, 0, pos=[1])), 1, "add up"),
    ("exp scale out of range", exphist("e", exp(1, 40, pos=[1])), 1, "scale"),
    ("quantile out of range", summary("s", 1, 1.0, [(1.5, 1.0)]), 1, "quantile"),
    ("unusable name", gauge("...", num(1.0)), 1, "name"),
]


@pytest.mark.parametrize("case,metric,rejected,fragment", REJECTIONS, ids=[c[0] for c in REJECTIONS])
def test_rejected_points_are_counted_with_a_reason(case, metric, rejected, fragment):
    t = OtlpTranslator()
    out = t.translate(req(rm(metric, gauge("ok", num(1.0)))), now=0)
    assert out.rejected == rejected
    assert any(fragment in e for e in out.errors), out.errors
    fams = families(out)
    assert list(fams) == ["ok"]  # the good metric still goes through; the bad one adds nothing
    assert len(t) == 0


def test_one_name_with_two_types_in_one_request():
    t = OtlpTranslator()
    out = t.translate(req(rm(gauge("x", num(1.0)), counter("x", num(1), num(2, {"a": "b"})))), now=0)
    assert out.rejected == 2
    assert families(out)["x"].type == GAUGE
    assert "counter" in out.errors[0] and "gauge" in out.errors[0]


def test_empty_request():
    out = OtlpTranslator().translate(req(), now=0)
    assert (out.groups, out.rejected, out.removals) == ([], 0, [])


def test_reset_forgets_every_source():
    t = OtlpTranslator()
    r5, r7 = req(rm(counter("c", num(5)))), req(rm(counter("c", num(7))))
    t.translate(r5, now=0).commit_all()
    assert only_point(t.translate(r7, now=1), "c").value == 2
    t.reset()
    assert len(t) == 0
    assert only_point(t.translate(r7, now=2), "c").value == 7
