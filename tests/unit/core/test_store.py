"""The store's aggregation, all-or-nothing application, groups and expiry, on a fake clock."""
import pytest

from otelgravel.clearmode import parse_clear_mode
from otelgravel.core.store import Store
from otelgravel.errors import ConflictError, InputError, LimitError
from otelgravel.model import (COUNTER, FAMILY, GAUGE, GAUGEHISTOGRAM, HISTOGRAM, INF, INFO, REPLACE,
                              STATESET, SUM, SUMMARY, Batch, Family, NativeHistogram, Point)

G1 = (("job", "fn"),)
G2 = (("instance", "b"), ("job", "fn"))


def counter(name, value, labels=(), mode=SUM):
    return Family(name, COUNTER, points=[Point(labels, mode, value)])


def gauge(name, value, labels=(), mode=REPLACE):
    return Family(name, GAUGE, points=[Point(labels, mode, value)])


def hist(name, buckets, total, labels=(), mode=SUM):
    return Family(name, HISTOGRAM, points=[Point(labels, mode, buckets=buckets, sum=total,
                                                 count=buckets[-1][1])])


def value(store, name, labels):
    return store.get(name, labels).point.value


def snapshot(store):
    return {(f.name, k): (s.group.labels, s.point.value, s.point.buckets, s.point.sum, s.point.count)
            for f in store.sorted_families() for k, s in f.series.items()}


def test_sum_adds_and_replace_keeps_latest():
    store = Store()
    store.apply([counter("req", 1), gauge("temp", 5)], G1, now=1)
    store.apply([counter("req", 1), gauge("temp", 7)], G1, now=2)
    assert value(store, "req", G1) == 2
    assert value(store, "temp", G1) == 7
    assert store.groups[G1].push_time == 2


def test_grouping_labels_override_body_labels():
    store = Store()
    store.apply([counter("req", 1, (("job", "other"), ("route", "/a")))], G1, now=1)
    assert store.get("req", (("job", "fn"), ("route", "/a"))) is not None
    assert store.series_count == 1


def test_family_mode_keeps_only_the_latest_push_within_the_group():
    store = Store()
    info = lambda v: Family("build_info", GAUGE, points=[Point((("version", v),), FAMILY, 1)])
    store.apply([info("1.0")], G1, now=1)
    store.apply([info("0.9")], G2, now=1)
    store.apply([info("1.1")], G1, now=2)
    keys = sorted(store.families["build_info"].series)
    assert keys == [(("instance", "b"), ("job", "fn"), ("version", "0.9")),
                    (("job", "fn"), ("version", "1.1"))]


def test_histograms_with_different_layouts_merge_into_a_valid_histogram():
    store = Store()
    store.apply([hist("lat", [(0.1, 1), (1.0, 3), (INF, 4)], 2.5)], G1, now=1)
    store.apply([hist("lat", [(0.5, 2), (5.0, 5), (INF, 6)], 9.0)], G1, now=2)
    p = store.get("lat", G1).point
    assert [le for le, _ in p.buckets] == [0.1, 0.5, 1.0, 5.0, INF]
    counts = [c for _, c in p.buckets]
    assert counts == sorted(counts), "cumulative counts never decrease"
    assert counts == [1, 3, 5, 8, 10]
    assert p.buckets[-1][1] == p.count == 10
    assert p.sum == 11.5


def test_same_layout_histograms_add_bucketwise():
    store = Store()
    for _ in range(5):
        store.apply([hist("lat", [(0.1, 0), (1.0, 1), (INF, 1)], 0.5)], G1, now=1)
    p = store.get("lat", G1).point
    assert p.buckets == [(0.1, 0), (1.0, 5), (INF, 5)] and p.count == 5 and p.sum == 2.5


def test_summary_adds_sum_and_count_and_keeps_latest_quantiles():
    store = Store()
    for q in (1.0, 2.0):
        store.apply([Family("s", SUMMARY, points=[Point((), SUM, sum=q, count=1, quantiles=[(0.5, q)])])],
                    G1, now=1)
    p = store.get("s", G1).point
    assert (p.sum, p.count, p.quantiles) == (3.0, 2, [(0.5, 2.0)])


@pytest.mark.parametrize("second, error, fragment", [
    ([counter("ok", 1), gauge("req", 1)], ConflictError, "family 'req' is a counter"),
    ([counter("ok", 1), gauge("req_total", 1)], ConflictError, "'req_total', which family 'req' already exposes"),
    ([counter("ok", 1), counter("req", 1, (("job", "fn"),))], None, None),
    ([counter("ok", 1), counter("req", -1)], InputError, "negative"),
    ([counter("ok", 1), counter("dup", 1, (("a", "1"),)), ], None, None),
    ([counter("ok", 1), Family("x", GAUGE, points=[Point((("job", "a"),), REPLACE, 1), Point((("job", "b"),), REPLACE, 2)])],
     InputError, "appears twice"),
    ([counter("ok", 1), gauge("m", 1, mode=parse_clear_mode("mean5m")), hist("h", [(INF, 1)], 1, mode=parse_clear_mode("max1m"))],
     InputError, "windowed modes apply to single values"),
    # OpenMetrics counts observations in integers; Prometheus validates a native histogram's count
    ([hist("h", [(1.0, 0.5), (INF, 1.5)], 1.5)], InputError, "count 0.5: OpenMetrics counts"),
    ([Family("g", GAUGEHISTOGRAM, points=[Point((), SUM, buckets=[(INF, 2)], sum=1, count=2.5)])],
     InputError, "count 2.5"),
    ([Family("n", HISTOGRAM, points=[Point((), SUM, native=NativeHistogram(0, 0.001, 0.5, {1: 1.5}),
                                           sum=1, count=2.0)])], InputError, "count 0.5"),
    ([Family("n", HISTOGRAM, points=[Point((), SUM, native=NativeHistogram(0, 0.001, 1, {1: 1}),
                                           sum=1, count=3)])], InputError, "count 3 but 2 observations"),
    ([Family("n", HISTOGRAM, points=[Point((), SUM, native=NativeHistogram(0, 0.001, 1, {1: 1}),
                                           sum=float("nan"), count=3)])], None, None),
])
def test_a_refused_push_changes_nothing(second, error, fragment):
    store = Store()
    store.apply([counter("req", 1)], G1, now=1)
    before = snapshot(store)
    if error is None:
        store.apply(second, G1, now=2)
        return
    with pytest.raises(error, match=fragment):
        store.apply(second, G1, now=2)
    assert snapshot(store) == before
    assert store.groups[G1].push_time == 1
    assert "ok" not in store.families


@pytest.mark.parametrize("ftype", [INFO, STATESET])
@pytest.mark.parametrize("mode", ["sum", "max5m"])
def test_info_and_stateset_values_are_never_added(ftype, mode):
    store = Store()
    with pytest.raises(InputError, match="cannot be added up"):
        store.apply([Family("x", ftype, points=[Point((("x", "a"),), parse_clear_mode(mode), 1)])], G1, now=1)
    assert store.series_count == 0


def test_a_series_belongs_to_one_group():
    store = Store()
    store.apply([counter("req", 1, (("instance", "b"),))], G1, now=1)
    with pytest.raises(ConflictError, match="already pushed by group"):
        store.apply([counter("req", 1)], G2, now=2)
    assert value(store, "req", G2) == 1


def test_delete_group_removes_its_series_and_push_time_only():
    store = Store()
    store.apply([counter("req", 1)], G1, now=1)
    store.apply([counter("req", 2)], G2, now=1)
    assert store.delete_group(G1)
    assert store.get("req", G1) is None and value(store, "req", G2) == 2
    assert G1 not in store.groups and store.series_count == 1
    store.delete_group(G2)
    assert store.families == {} and store.series_count == 0


def test_type_can_change_once_the_family_is_gone():
    store = Store()
    store.apply([counter("x", 1)], G1, now=1)
    store.delete_group(G1)
    store.apply([gauge("x", 1)], G1, now=2)
    assert store.families["x"].type == GAUGE


def test_max_series_refuses_the_whole_push():
    store = Store(max_series=4)  # a, b, and the group's push_time_seconds, push_failure_time_seconds
    store.apply([counter("a", 1)], G1, now=1)
    with pytest.raises(LimitError, match="max_series=4"):
        store.apply([counter("b", 1), counter("c", 1)], G1, now=2)
    assert store.series_count == 1 and store.limit_refusals == 1
    store.apply([counter("a", 1), counter("b", 1)], G1, now=3)
    assert store.series_count == 2 and store.limit_refusals == 1


# (max_series, max_groups, pushes before, the push, refused with): whatever kind, the series that
# would be the limit's first one too many is refused, and the refusal names the limit.
_EMPTY = []
LIMITS = [
    pytest.param(4, None, [(G1, [counter("a", 1)])], (G1, [counter("b", 1)]), None,
                 id="4th exposed series fits"),
    pytest.param(3, None, [(G1, [counter("a", 1)])], (G1, [counter("b", 1)]), "max_series=3",
                 id="4th exposed series: a pushed one"),
    pytest.param(3, None, [(G1, [counter("a", 1)])], (G2, _EMPTY), "max_series=3",
                 id="an empty push to a new group adds its 2 gauges"),
    pytest.param(4, None, [(G1, _EMPTY)], (G2, _EMPTY), None, id="two empty groups fit in 4"),
    pytest.param(5, None, [(G1, _EMPTY), (G2, _EMPTY)], (((("job", "c"),)), _EMPTY), "max_series=5",
                 id="the 3rd empty group would make 6"),
    pytest.param(100, 2, [(G1, _EMPTY), (G2, _EMPTY)], (((("job", "c"),)), _EMPTY), "max_groups=2",
                 id="max_groups"),
    pytest.param(100, 2, [(G1, _EMPTY), (G2, _EMPTY)], (G2, [counter("a", 1)]), None,
                 id="max_groups: an existing group still pushes"),
    pytest.param(3, None, [], (G1, [counter("a", 1), counter("b", 1)]), "max_series=3",
                 id="new group and its series together"),
]


@pytest.mark.parametrize("max_series, max_groups, before, push, refusal", LIMITS)
def test_limits_count_every_exposed_series_and_the_groups(max_series, max_groups, before, push,
                                                           refusal):
    store = Store(max_series=max_series, max_groups=max_groups)
    for group, batch in before:
        store.apply(batch, group, now=1)
    state = (snapshot(store), sorted(store.groups), store.exposed_count)
    if refusal is None:
        store.apply(push[1], push[0], now=2)
        assert store.exposed_count <= max_series
        return
    with pytest.raises(LimitError, match=refusal):
        store.apply(push[1], push[0], now=2)
    assert (snapshot(store), sorted(store.groups), store.exposed_count) == state
    with pytest.raises(LimitError, match=refusal):  # OTLP's check of a whole export says the same
        store.check_capacity([push])


def test_expire_after_drops_idle_series_and_then_idle_groups():
    store = Store(expire_after=2)
    store.apply([counter("a", 1), counter("b", 1)], G1, now=0)
    store.apply([counter("b", 1)], G1, now=1.5)
    assert store.expire(now=2.5) == 1  # "a" idle for 2.5s, "b" for 1s
    assert store.get("a", G1) is None and value(store, "b", G1) == 2
    assert G1 in store.groups
    store.expire(now=3.6)
    assert store.series_count == 0 and store.families == {} and store.groups == {}


def test_expiry_is_off_by_default():
    store = Store()
    store.apply([counter("a", 1)], G1, now=0)
    assert store.expire(now=1e9) == 0 and store.series_count == 1


def test_failure_time_marks_existing_groups_only():
    store = Store()
    store.record_failure(G1, now=5)
    assert store.groups == {}
    store.apply([counter("a", 1)], G1, now=6)
    assert store.groups[G1].failure_time == 0
    store.record_failure(G1, now=7)
    assert (store.groups[G1].push_time, store.groups[G1].failure_time) == (6, 7)


def test_metadata_without_samples_creates_nothing():
    store = Store()
    store.apply([Family("empty", COUNTER)], G1, now=1)
    assert store.families == {} and store.series_count == 0


def test_check_capacity_counts_new_series_across_pushes_once():
    store = Store(max_series=7)  # 3 series, 2 groups with 2 gauges each
    store.apply([counter("a", 1)], G1, now=1)
    store.check_capacity([(G1, [counter("a", 1), counter("b", 1)]), (G2, [counter("b", 1)])])
    with pytest.raises(LimitError, match="adds 5"):  # 3 series and G2's 2 gauges
        store.check_capacity([(G1, [counter("b", 1), counter("c", 1)]), (G2, [counter("b", 1)])])
    assert store.series_count == 1 and store.limit_refusals == 1


def test_groups_emptied_by_windows_or_metadata_only_pushes_expire_too():
    store = Store(expire_after=10)
    store.apply([Family("w", GAUGE, points=[Point((), parse_clear_mode("mean1s"), 1.0)])], G1, now=0)
    store.apply([Family("meta_only", COUNTER)], G2, now=0)
    store.apply([counter("kept", 1)], (("job", "busy"),), now=0)
    store.expire(now=2)  # the window is empty: its series goes, its group stays until idle
    assert store.series_count == 1 and G1 in store.groups and G2 in store.groups
    store.apply([counter("kept", 1)], (("job", "busy"),), now=9)
    store.expire(now=10.5)
    assert set(store.groups) == {(("job", "busy"),)} and store.series_count == 1


def test_a_snapshot_restores_the_same_scrape_and_behaviour():
    import pickle
    from otelgravel.formats.exposition import write_openmetrics
    store = Store(expire_after=100)
    store.apply([counter("req", 3, (("route", "/a"),)), gauge("temp", 5),
                 hist("lat", [(0.1, 1), (INF, 2)], 0.5),
                 Family("w", GAUGE, points=[Point((), parse_clear_mode("max5m"), 7.0)])], G1, now=10)
    store.apply([counter("req", 1)], G2, now=20)
    store.apply([counter("zzz_old", 1)], G2, now=5)  # an older update in a later family
    store.record_failure(G2, now=21)
    restored = Store(expire_after=100)
    restored.restore(pickle.loads(pickle.dumps(store.snapshot())))
    assert write_openmetrics(restored, now=30) == write_openmetrics(store, now=30)
    assert restored.series_count == store.series_count == 6
    restored.apply([counter("req", 1, (("route", "/a"),))], G1, now=40)  # same group: adds
    assert restored.get("req", (("job", "fn"), ("route", "/a"))).point.value == 4
    with pytest.raises(ConflictError):
        restored.apply([gauge("req", 1)], G1, now=41)  # the family's type came back too
    restored.expire(now=108)  # expire_after 100: the update at 5 is gone, whatever its family
    assert restored.get("zzz_old", G2) is None and restored.series_count == 5
    restored.expire(now=125)  # only what was last updated at 40 is left
    assert [f.name for f in restored.sorted_families()] == ["req"] and restored.series_count == 1


def test_restore_refuses_what_is_not_a_snapshot():
    with pytest.raises(ValueError, match="not a snapshot"):
        Store().restore({"version": 99})


# ---- a group remembers the series of its last push of a known shape ---------------------------

SHAPE = object()


def shaped(*families):
    return Batch(families, shape=SHAPE)


def test_a_known_shape_is_applied_without_looking_anything_up_again(monkeypatch):
    store = Store()
    store.apply(shaped(counter("req", 1), gauge("temp", 5)), G1, now=1)
    monkeypatch.setattr(store, "_validate", None)  # a full validation would now fail
    store.apply(shaped(counter("req", 2), gauge("temp", 7)), G1, now=2)
    assert (value(store, "req", G1), value(store, "temp", G1)) == (3, 7)
    with pytest.raises(InputError, match="counter req.* has the negative value -1: "):
        store.apply(shaped(counter("req", -1), gauge("temp", 9)), G1, now=3)
    assert (value(store, "req", G1), value(store, "temp", G1)) == (3, 7)  # nothing applied


def test_a_known_shape_is_checked_again_once_a_series_was_dropped():
    store = Store()
    info = lambda v: Family("build_info", GAUGE, points=[Point((("version", v),), FAMILY, 1)])
    store.apply(shaped(info("1.0"), counter("req", 1)), G1, now=1)
    store.apply([info("1.1")], G1, now=2)  # no shape: the family snapshot drops version 1.0
    store.apply(shaped(info("1.0"), counter("req", 1)), G1, now=3)
    assert sorted(v for _, v in (k[-1] for k in store.families["build_info"].series)) == ["1.0"]
    assert value(store, "build_info", G1 + (("version", "1.0"),)) == 1
    assert value(store, "req", G1) == 2


def test_a_known_shape_recreates_series_that_expired_meanwhile():
    store = Store(expire_after=10)
    store.apply(shaped(counter("a", 1), counter("b", 1)), G1, now=0)
    store.apply([counter("a", 1)], G1, now=8)  # keeps the group alive, not b
    assert store.expire(now=11) == 1 and store.get("b", G1) is None
    store.apply(shaped(counter("a", 1), counter("b", 5)), G1, now=12)
    assert (value(store, "a", G1), value(store, "b", G1)) == (3, 5)
    assert store.series_count == 2
