"""The PrometheusProto writer: read back with the client_model message classes and our parser."""
import math


from otelgravel import nativehist
from otelgravel.core.store import Store
from otelgravel.formats.prom_protobuf import parse_prom_protobuf
from otelgravel.formats.protobuf_exposition import write_protobuf
from otelgravel.model import (COUNTER, GAUGE, HISTOGRAM, INF, INFO, STATESET, SUM, Family,
                              NativeHistogram, Point)
from tests.reliability.strict_scrape import decode_delimited as decode

G = (("job", "fn"),)


def labels(metric) -> dict:
    return {p.name: p.value for p in metric.label}


def created(msg) -> float:
    return msg.created_timestamp.seconds + msg.created_timestamp.nanos / 1e9


def test_every_type_as_client_golang_writes_it(full_store):
    families = {f.name: f for f in decode(write_protobuf(full_store(100.25), now=200))}
    # MetricType: COUNTER 0, GAUGE 1, SUMMARY 2, UNTYPED 3, HISTOGRAM 4, GAUGE_HISTOGRAM 5
    assert {n: f.type for n, f in families.items()} == {
        "req_total": 0, "temp_celsius": 1, "lat_seconds": 4, "rpc": 2, "build_info": 1,
        "state": 1, "queue": 5, "misc": 3, "push_time_seconds": 1,
        "push_failure_time_seconds": 1}
    assert list(families) == sorted(families, key=lambda n: n.removesuffix("_total")
                                    .removesuffix("_info"))  # the store's order
    req = families["req_total"].metric[0]
    assert labels(req) == {"job": "fn", "route": '/a"b\\c'} and req.counter.value == 3
    assert created(req.counter) == 100.25
    assert req.counter.exemplar.value == 1.0 and labels(req.counter.exemplar) == {"trace_id": "abc"}
    assert families["req_total"].help == "Requests.\nAll of them."
    assert families["temp_celsius"].unit == "celsius"
    assert families["temp_celsius"].metric[0].gauge.value == 21.5
    h = families["lat_seconds"].metric[0].histogram
    assert h.sample_count == 3 and h.sample_sum == 2.2 and created(h) == 100.25
    assert [(b.upper_bound, b.cumulative_count) for b in h.bucket] == [(0.1, 1), (1.0, 2)]
    assert h.bucket[1].exemplar.value == 0.5
    assert not h.HasField("schema")  # classic: no native field at all
    s = families["rpc"].metric[0].summary
    assert (s.sample_count, s.sample_sum, created(s)) == (2, 5, 100.25)
    assert [(q.quantile, q.value) for q in s.quantile] == [(0.5, 1.5), (0.9, 3)]
    assert families["build_info"].metric[0].gauge.value == 1
    assert [labels(m)["state"] for m in families["state"].metric] == ["a", "b"]
    q = families["queue"].metric[0].histogram
    assert q.sample_count == 5 and not q.HasField("created_timestamp")
    assert math.isnan(families["misc"].metric[0].untyped.value)
    assert families["push_time_seconds"].metric[0].gauge.value == 100.25


def test_our_parser_reads_back_what_was_stored(full_store, plain):
    store = full_store()
    parsed = {f.name: f for f in parse_prom_protobuf(write_protobuf(store, now=200))}
    for family in store.sorted_families():
        got = parsed[family.name if family.type != INFO else "build_info"]
        if family.type in (INFO, STATESET):
            continue  # exposed as gauges
        want = [s.point for s in family.sorted_series()]
        for w, g in zip(want, got.points):
            assert plain((w.value, w.buckets, w.sum, w.count, w.quantiles)) == \
                   plain((g.value, g.buckets, g.sum, g.count, g.quantiles)), family.name


def test_cached_until_the_series_changes(full_store):
    store = full_store()
    first = write_protobuf(store, now=200)
    assert write_protobuf(store, now=300) == first
    series = store.get("req", (("job", "fn"), ("route", '/a"b\\c')))
    assert series.pb is not None
    store.apply([Family("req", COUNTER, points=[Point((("route", '/a"b\\c'),), SUM, 2)])], G, 101)
    again = {f.name: f for f in decode(write_protobuf(store, now=300))}
    assert again["req_total"].metric[0].counter.value == 5


def native(schema=3, zt=0.001, zc=2, pos=None, neg=None):
    return NativeHistogram(schema, zt, zc, pos or {}, neg or {})


def test_native_histograms_as_spans_and_deltas():
    store = Store()
    h = native(pos={1: 3, 2: 1, 7: 4, -5: 2}, neg={3: 1})
    store.apply([Family("n", HISTOGRAM, points=[
        Point((("a", "1"),), SUM, native=h, sum=12.5, count=13),
        Point((("a", "2"),), SUM, native=native(zt=0, zc=0), sum=0, count=0),
    ])], G, 50)
    [fam, *_] = decode(write_protobuf(store, now=60))
    one, empty = fam.metric
    m = one.histogram
    assert (m.schema, m.zero_threshold, m.zero_count, m.sample_count, m.sample_sum) == \
           (3, 0.001, 2, 13, 12.5)
    assert not m.bucket and created(m) == 50
    spans = [(s.offset, s.length) for s in m.positive_span]
    assert nativehist.from_spans(spans, deltas=list(m.positive_delta)) == h.positive
    spans = [(s.offset, s.length) for s in m.negative_span]
    assert nativehist.from_spans(spans, deltas=list(m.negative_delta)) == h.negative
    # no observations: still recognisable as native (Prometheus 2.x looks at the zero threshold,
    # 3.x at the spans)
    e = empty.histogram
    assert e.zero_threshold > 0 and [(s.offset, s.length) for s in e.positive_span] == [(0, 0)]


def test_a_family_of_both_kinds_is_two_messages_native_first():
    store = Store()
    store.apply([Family("mixed", HISTOGRAM, points=[
        Point((("a", "1"),), SUM, buckets=[(1.0, 1), (INF, 1)], sum=1, count=1),
        Point((("a", "2"),), SUM, native=native(pos={1: 1}), sum=1, count=3)])], G, 50)
    fams = [f for f in decode(write_protobuf(store, now=60)) if f.name == "mixed"]
    assert [[labels(m)["a"] for m in f.metric] for f in fams] == [["2"], ["1"]]
    assert fams[0].metric[0].histogram.HasField("schema")
    assert not fams[1].metric[0].histogram.HasField("schema")


def test_windowed_series_are_read_at_scrape_time():
    from otelgravel.clearmode import parse_clear_mode
    store = Store()
    mode = parse_clear_mode("max5m")
    store.apply([Family("g", GAUGE, points=[Point((), mode, 4.0)])], G, 10)
    store.apply([Family("g", GAUGE, points=[Point((), mode, 2.0)])], G, 11)
    fams = {f.name: f for f in decode(write_protobuf(store, now=12))}
    assert fams["g"].metric[0].gauge.value == 4.0
