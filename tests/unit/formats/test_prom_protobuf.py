"""parse_prom_protobuf: delimited MetricFamily messages → Batch, strict, message-numbered errors."""
import random

import pytest
from google.protobuf.internal.encoder import _VarintBytes
from google.protobuf.json_format import ParseDict

from otelgravel.errors import ParseError
from otelgravel.formats.prom_protobuf import MetricFamily, parse_prom_protobuf
from otelgravel.model import (COUNTER, GAUGE, GAUGEHISTOGRAM, HISTOGRAM, INF, REPLACE, SUM,
                              SUMMARY, UNKNOWN, ClearMode, Exemplar, Family, NativeHistogram,
                              Point)


def message(spec: dict) -> bytes:
    """One family (as a dict in the proto's field names) → its serialized MetricFamily."""
    return ParseDict(spec, MetricFamily()).SerializeToString()


def delimited(*specs) -> bytes:
    """What client_golang/push sends: each message preceded by its varint length."""
    out = bytearray()
    for spec in specs:
        raw = spec if isinstance(spec, bytes) else message(spec)
        out += _VarintBytes(len(raw)) + raw
    return bytes(out)


def labels(**kv):
    return [{"name": k, "value": v} for k, v in kv.items()]


MEAN_5M = ClearMode("window", "mean5m", "mean", 0.0, 300.0)

GOOD = [
    pytest.param([], [], id="empty body"),
    pytest.param(
        [{"name": "requests_total", "help": "Requests.", "type": "COUNTER",
          "metric": [{"label": labels(path="/b", code="200"), "counter": {"value": 3}},
                     {"counter": {"value": 0}, "timestamp_ms": "1700000000000"}]}],
        [Family("requests", COUNTER, "Requests.", "", [
            Point((("code", "200"), ("path", "/b")), value=3.0),
            Point((), value=0.0)])],
        id="counter drops _total, labels sorted, timestamp dropped"),
    pytest.param(
        [{"name": "jobs", "type": "COUNTER", "metric": [{"counter": {"value": 1.5}}]}],
        [Family("jobs", COUNTER, points=[Point((), value=1.5)])],
        id="counter without _total keeps its name"),
    pytest.param(
        [{"name": "temp_celsius", "type": "GAUGE", "unit": "celsius",
          "metric": [{"label": labels(room="a"), "gauge": {"value": -4.25}}]}],
        [Family("temp_celsius", GAUGE, unit="celsius", points=[Point((("room", "a"),),
                                                                     value=-4.25)])],
        id="gauge with unit"),
    pytest.param(
        [{"name": "x", "type": "UNTYPED", "metric": [{"untyped": {"value": 7}}]}],
        [Family("x", UNKNOWN, points=[Point((), value=7.0)])],
        id="untyped is unknown"),
    pytest.param(
        [{"name": "x", "metric": [{"counter": {"value": 7}}]}],
        [Family("x", COUNTER, points=[Point((), value=7.0)])],
        id="missing type defaults to COUNTER as in proto2"),
    pytest.param(
        [{"name": "g", "type": "GAUGE",
          "metric": [{"label": labels(clear_mode="mean5m", a="1"), "gauge": {"value": 2}},
                     {"label": labels(clearmode="replace", a="2"), "gauge": {"value": 3}},
                     {"label": labels(a="3"), "gauge": {"value": 4}}]}],
        [Family("g", GAUGE, points=[Point((("a", "1"),), MEAN_5M, value=2.0),
                                    Point((("a", "2"),), REPLACE, value=3.0),
                                    Point((("a", "3"),), None, value=4.0)])],
        id="clear_mode and clearmode set the mode and are removed"),
    pytest.param(
        [{"name": "lat_seconds", "type": "HISTOGRAM",
          "metric": [{"histogram": {"sample_count": "4", "sample_sum": 1.5, "bucket": [
              {"upper_bound": 1, "cumulative_count": "3"},
              {"upper_bound": 0.5, "cumulative_count": "1"}]}}]}],
        [Family("lat_seconds", HISTOGRAM, points=[Point(
            (), buckets=[(0.5, 1.0), (1.0, 3.0), (INF, 4.0)], sum=1.5, count=4.0)])],
        id="histogram: buckets sorted, +Inf appended from sample_count"),
    pytest.param(
        [{"name": "h", "type": "HISTOGRAM",
          "metric": [{"histogram": {"sample_count": "2", "sample_sum": 3, "bucket": [
              {"upper_bound": 1, "cumulative_count": "1"},
              {"upper_bound": "Infinity", "cumulative_count": "2"}]}}]}],
        [Family("h", HISTOGRAM, points=[Point((), buckets=[(1.0, 1.0), (INF, 2.0)], sum=3.0,
                                              count=2.0)])],
        id="histogram: explicit +Inf kept"),
    pytest.param(
        [{"name": "h", "type": "HISTOGRAM", "metric": [{"histogram": {}}]}],
        [Family("h", HISTOGRAM, points=[Point((), buckets=[(INF, 0.0)], sum=0.0, count=0.0)])],
        id="histogram: empty classic histogram"),
    pytest.param(
        [{"name": "h", "type": "HISTOGRAM", "metric": [{"histogram": {
            "sample_count_float": 2.5, "sample_sum": 1, "bucket": [
                {"upper_bound": 1, "cumulative_count_float": 1.5}]}}]}],
        [Family("h", HISTOGRAM, points=[Point((), buckets=[(1.0, 1.5), (INF, 2.5)], sum=1.0,
                                              count=2.5)])],
        id="histogram: float counts override integer counts"),
    pytest.param(
        [{"name": "h", "type": "HISTOGRAM", "metric": [{"histogram": {
            "sample_count": "1", "sample_sum": 1, "schema": 3, "zero_threshold": 1e-128,
            "positive_span": [{"offset": 0, "length": 1}], "positive_delta": ["1"],
            "bucket": [{"upper_bound": 1, "cumulative_count": "1"}]}}]}],
        [Family("h", HISTOGRAM, points=[Point((), native=NativeHistogram(3, 1e-128, 0.0, {0: 1}),
                                              sum=1.0, count=1.0)])],
        id="histogram: native and classic buckets: the native ones are kept"),
    # what client_golang sends with NativeHistogramBucketFactor 1.1 (schema 3), after observing
    # 0, 1, 1.5, 1.5, 2.5 and -3: spans with gaps, deltas, one negative bucket
    pytest.param(
        [{"name": "lat", "type": "HISTOGRAM", "metric": [{"label": labels(route="/a"), "histogram": {
            "sample_count": "6", "sample_sum": 3.5, "schema": 3,
            "zero_threshold": 2.938735877055719e-39, "zero_count": "1",
            "positive_span": [{"offset": 0, "length": 1}, {"offset": 4, "length": 1},
                              {"offset": 5, "length": 1}],
            "positive_delta": ["1", "1", "-1"],
            "negative_span": [{"offset": 13, "length": 1}], "negative_delta": ["1"]}}]}],
        [Family("lat", HISTOGRAM, points=[Point((("route", "/a"),), native=NativeHistogram(
            3, 2.938735877055719e-39, 1.0, {0: 1, 5: 2, 11: 1}, {13: 1}), sum=3.5, count=6.0)])],
        id="native histogram: spans and deltas"),
    pytest.param(
        [{"name": "lat", "type": "HISTOGRAM", "metric": [{"histogram": {
            "sample_count_float": 2.5, "sample_sum": 1, "schema": -1, "zero_count_float": 0.5,
            "positive_span": [{"offset": -2, "length": 2}], "positive_count": [1.5, 0.5]}}]}],
        [Family("lat", HISTOGRAM, points=[Point((), native=NativeHistogram(
            -1, 0.0, 0.5, {-2: 1.5, -1: 0.5}), sum=1.0, count=2.5)])],
        id="native float histogram: absolute counts"),
    pytest.param(
        [{"name": "lat", "type": "HISTOGRAM", "metric": [{"histogram": {
            "sample_count": "0", "schema": 3, "zero_threshold": 1e-128,
            "positive_span": [{"offset": 0, "length": 0}]}}]}],
        [Family("lat", HISTOGRAM, points=[Point((), native=NativeHistogram(3, 1e-128),
                                                sum=0.0, count=0.0)])],
        id="native histogram without observations"),
    pytest.param(
        [{"name": "gh", "type": "GAUGE_HISTOGRAM", "metric": [{"histogram": {
            "sample_count": "1", "sample_sum": 2, "bucket": [
                {"upper_bound": 5, "cumulative_count": "1"}]}}]}],
        [Family("gh", GAUGEHISTOGRAM, points=[Point((), buckets=[(5.0, 1.0), (INF, 1.0)],
                                                    sum=2.0, count=1.0)])],
        id="gauge histogram"),
    pytest.param(
        [{"name": "rpc", "type": "SUMMARY", "metric": [{"label": labels(m="get"), "summary": {
            "sample_count": "10", "sample_sum": 5.5,
            "quantile": [{"quantile": 0.99, "value": 3}, {"quantile": 0.5, "value": 1}]}}]}],
        [Family("rpc", SUMMARY, points=[Point((("m", "get"),), quantiles=[(0.5, 1.0), (0.99, 3.0)],
                                              sum=5.5, count=10.0)])],
        id="summary: quantiles sorted"),
    pytest.param(
        [{"name": "c_total", "type": "COUNTER", "metric": [{"counter": {
            "value": 2, "exemplar": {"label": labels(trace_id="abc"), "value": 0.5,
                                     "timestamp": "2023-11-14T22:13:20.500Z"}}}]},
         {"name": "h", "type": "HISTOGRAM", "metric": [{"histogram": {
             "sample_count": "1", "sample_sum": 0.3, "bucket": [
                 {"upper_bound": 1, "cumulative_count": "1",
                  "exemplar": {"label": labels(trace_id="def"), "value": 0.3}}]}}]}],
        [Family("c", COUNTER, points=[Point((), value=2.0, exemplar=Exemplar(
            (("trace_id", "abc"),), 0.5, 1700000000.5))]),
         Family("h", HISTOGRAM, points=[Point((), buckets=[(1.0, 1.0), (INF, 1.0)], sum=0.3,
                                              count=1.0, bucket_exemplars={
                                                  1.0: Exemplar((("trace_id", "def"),), 0.3)})])],
        id="exemplars on counters and buckets"),
    pytest.param(
        [{"name": "a", "type": "GAUGE", "metric": [{"gauge": {"value": 1}}]},
         {"name": "b", "type": "GAUGE", "metric": [{"gauge": {"value": 2}}]}],
        [Family("a", GAUGE, points=[Point((), value=1.0)]),
         Family("b", GAUGE, points=[Point((), value=2.0)])],
        id="several messages keep their order"),
    pytest.param(
        [{"name": "empty", "type": "GAUGE", "help": "No series yet."}],
        [Family("empty", GAUGE, "No series yet.")],
        id="family without metrics"),
    pytest.param(
        [{"name": "g", "type": "GAUGE", "metric": [{"label": labels(a=""), "gauge": {"value": 1}}]}],
        [Family("g", GAUGE, points=[Point((("a", ""),), value=1.0)])],
        id="empty label value kept"),
]


@pytest.mark.parametrize("specs, expected", GOOD)
def test_parses(specs, expected):
    assert parse_prom_protobuf(delimited(*specs)) == expected


def test_counter_mode_default_is_left_to_the_processor():
    [family] = parse_prom_protobuf(delimited(
        {"name": "c", "type": "COUNTER", "metric": [{"label": labels(clear_mode="sum"),
                                                     "counter": {"value": 1}}]}))
    assert family.points[0].mode is SUM


def gauge(name="g", **kv):
    return {"name": name, "type": "GAUGE", "metric": [{"label": labels(**kv), "gauge": {"value": 1}}]}


def hist(*buckets, count="1", **extra):
    return {"name": "h", "type": "HISTOGRAM", "metric": [{"histogram": {
        "sample_count": count, "bucket": [{"upper_bound": le, "cumulative_count": c}
                                          for le, c in buckets], **extra}}]}


BAD = [
    # framing
    pytest.param(b"\x80", "message 1: truncated length prefix", id="truncated varint"),
    pytest.param(b"\xff" * 11, "message 1: length prefix is not a valid varint", id="long varint"),
    pytest.param(_VarintBytes(10) + b"\x0a\x01a", "message 1: truncated", id="truncated message"),
    pytest.param(delimited(gauge()) + b"\x05\x0a", "message 2: truncated", id="second truncated"),
    pytest.param(b"\x02\xff\xff", "message 1: not a valid MetricFamily", id="undecodable"),
    pytest.param(delimited(b"\x0a\x02\xff\xfe"), "message 1: family b'\\xff\\xfe': metric name "
                 "is not valid UTF-8", id="name not utf-8"),
    pytest.param(delimited(b"\x0a\x01a\x18\x09"), "message 1: family 'a': unknown metric type",
                 id="unknown type number"),
    # names
    pytest.param(delimited({"type": "GAUGE"}), "message 1: family '': empty metric name",
                 id="empty name"),
    pytest.param(delimited(gauge(), gauge()), "message 2: family 'g': already sent in message 1",
                 id="family twice"),
    pytest.param(delimited({"name": "c_total", "metric": [{"counter": {}}]},
                           {"name": "c", "metric": [{"counter": {}}]}),
                 "message 2: family 'c': already sent in message 1", id="counter name clash"),
    # labels
    pytest.param(delimited(gauge(**{"": "x"})), "empty label name", id="empty label name"),
    pytest.param(delimited(gauge(**{"\u00e9": "x"}, __name__="x")),
                 "label name '__name__' is reserved", id="reserved label beside a UTF-8 one"),
    pytest.param(delimited(gauge(__name__="x")), "label name '__name__' is reserved",
                 id="reserved label"),
    pytest.param(delimited({"name": "g", "type": "GAUGE", "metric": [
        {"label": [{"name": "a", "value": "1"}, {"name": "a", "value": "2"}], "gauge": {}}]}),
        "message 1: family 'g': metric 1: duplicate label 'a'", id="duplicate label"),
    pytest.param(delimited({"name": "g", "type": "GAUGE", "metric": [
        {"label": labels(clear_mode="sum", clearmode="sum"), "gauge": {}}]}),
        "duplicate label 'clearmode'", id="clear_mode twice"),
    pytest.param(delimited(gauge(clear_mode="sum0s")), 'message 1: family \'g\': metric 1: '
                 'invalid clear_mode "sum0s"', id="bad clear_mode"),
    pytest.param(delimited(gauge(clear_mode="bogus")), 'invalid clear_mode "bogus"',
                 id="unknown clear_mode"),
    pytest.param(delimited({"name": "h", "type": "HISTOGRAM", "metric": [
        {"label": labels(le="1"), "histogram": {}}]}), "label 'le' is reserved",
        id="le on a histogram"),
    pytest.param(delimited({"name": "s", "type": "SUMMARY", "metric": [
        {"label": labels(quantile="1"), "summary": {}}]}), "label 'quantile' is reserved",
        id="quantile on a summary"),
    # series
    pytest.param(delimited({"name": "g", "type": "GAUGE", "metric": [
        {"label": labels(a="1", b="2"), "gauge": {}}, {"label": labels(b="2", a="1"), "gauge": {}}]}),
        'message 1: family \'g\': duplicate series g{a="1",b="2"}', id="duplicate series"),
    pytest.param(delimited({"name": "g", "type": "GAUGE", "metric": [
        {"label": labels(a="1", clear_mode="sum"), "gauge": {}}, {"label": labels(a="1"), "gauge": {}}]}),
        'duplicate series g{a="1"}', id="duplicate series differing in clear_mode"),
    pytest.param(delimited({"name": "g", "type": "GAUGE", "metric": [{"counter": {"value": 1}}]}),
                 "series g{}: a GAUGE metric must carry the 'gauge' field", id="wrong value field"),
    pytest.param(delimited({"name": "g", "type": "GAUGE", "metric": [{}]}),
                 "a GAUGE metric must carry the 'gauge' field", id="no value field"),
    pytest.param(delimited({"name": "c", "type": "COUNTER", "metric": [
        {"counter": {"value": 1}, "gauge": {"value": 1}}]}),
        "a COUNTER metric must not carry the 'gauge' field", id="two value fields"),
    pytest.param(delimited({"name": "h", "type": "GAUGE_HISTOGRAM", "metric": [{"gauge": {}}]}),
                 "a GAUGE_HISTOGRAM metric must carry the 'histogram' field",
                 id="gauge histogram without histogram"),
    pytest.param(delimited({"name": "c_total", "type": "COUNTER", "metric": [
        {"label": labels(a="x"), "counter": {"value": -1}}]}),
        "message 1: family 'c_total': series c_total{a=\"x\"}: negative counter value -1.0",
        id="negative counter"),
    pytest.param(delimited({"name": "c", "type": "COUNTER", "metric": [
        {"counter": {"value": "-Infinity"}}]}), "negative counter value -inf", id="-Inf counter"),
    # histograms
    pytest.param(delimited({"name": "h", "type": "HISTOGRAM", "metric": [{"histogram": {
        "sample_count": "1", "schema": 9, "positive_span": [{"offset": 0, "length": 1}],
        "positive_delta": ["1"]}}]}), "series h{}: native histogram schema 9 is outside -4..8",
        id="native: schema too fine"),
    pytest.param(delimited({"name": "h", "type": "HISTOGRAM", "metric": [{"histogram": {
        "sample_count": "1", "schema": 3, "positive_span": [{"offset": 0, "length": 2}],
        "positive_delta": ["1"]}}]}), "the spans cover 2 buckets but 1 counts are given",
        id="native: spans and deltas disagree"),
    pytest.param(delimited({"name": "h", "type": "HISTOGRAM", "metric": [{"histogram": {
        "sample_count": "1", "schema": 3, "positive_span": [{"offset": 0, "length": 2}],
        "positive_delta": ["1", "-2"]}}]}), "bucket 1 has the count -1", id="native: negative count"),
    pytest.param(delimited({"name": "h", "type": "HISTOGRAM", "metric": [{"histogram": {
        "sample_count": "1", "schema": 3, "positive_span": [{"offset": 0, "length": 1}],
        "positive_delta": ["3"]}}]}), "native histogram count 1.0 is less than the 3",
        id="native: count below the buckets"),
    pytest.param(delimited({"name": "h", "type": "HISTOGRAM", "metric": [{"histogram": {
        "sample_count": "1", "schema": 3, "positive_span": [{"offset": 0, "length": 1},
                                                           {"offset": -3, "length": 1}],
        "positive_delta": ["1", "0"]}}]}), "span 2 has the negative offset -3",
        id="native: overlapping spans"),
    pytest.param(delimited(hist((1, "1"), (1, "1"))), "duplicate bucket le=1.0", id="duplicate le"),
    pytest.param(delimited(hist(("NaN", "1"))), "bucket upper bound is NaN", id="NaN le"),
    pytest.param(delimited(hist((1, "2"), (2, "1"), count="2")),
                 "bucket le=2.0 has count 1.0, less than 2.0", id="decreasing buckets"),
    pytest.param(delimited(hist((1, "3"), count="2")),
                 "sample_count 2.0 is less than the bucket count 3.0", id="count below buckets"),
    pytest.param(delimited(hist((1, "1"), ("Infinity", "2"), count="3")),
                 "the +Inf bucket count 2.0 differs from sample_count 3.0", id="+Inf != count"),
    # summaries
    pytest.param(delimited({"name": "s", "type": "SUMMARY", "metric": [{"summary": {
        "quantile": [{"quantile": 1.5, "value": 1}]}}]}), "quantile 1.5 is not in [0, 1]",
        id="quantile out of range"),
    pytest.param(delimited({"name": "s", "type": "SUMMARY", "metric": [{"summary": {
        "quantile": [{"quantile": "NaN", "value": 1}]}}]}), "quantile nan is not in [0, 1]",
        id="NaN quantile"),
    pytest.param(delimited({"name": "s", "type": "SUMMARY", "metric": [{"summary": {
        "quantile": [{"quantile": 0.5, "value": 1}, {"quantile": 0.5, "value": 2}]}}]}),
        "duplicate quantile 0.5", id="duplicate quantile"),
    # exemplars
]


@pytest.mark.parametrize("body, fragment", BAD)
def test_refuses(body, fragment):
    with pytest.raises(ParseError) as info:
        parse_prom_protobuf(body)
    assert fragment in str(info.value)
    assert info.value.line is None


def test_error_names_the_message_index():
    body = delimited(gauge("a"), gauge("b"), {"name": "x", "type": "GAUGE",
                                              "metric": [{"label": labels(__x="1"), "gauge": {}}]})
    with pytest.raises(ParseError, match=r"^message 3: family 'x': metric 1: label name '__x'"):
        parse_prom_protobuf(body)


def test_label_value_not_utf8():
    # LabelPair{name: "a", value: b"\xff"} inside Metric{label, gauge{}} inside a GAUGE family.
    pair = b"\x0a\x01a\x12\x01\xff"
    metric = b"\x0a" + bytes([len(pair)]) + pair + b"\x12\x00"
    family = b"\x0a\x01g\x18\x01\x22" + bytes([len(metric)]) + metric
    with pytest.raises(ParseError, match="label 'a': value is not valid UTF-8"):
        parse_prom_protobuf(delimited(family))


def _sample_body() -> bytes:
    return delimited(
        {"name": "requests_total", "type": "COUNTER", "help": "h",
         "metric": [{"label": labels(a=str(i)), "counter": {"value": i}} for i in range(5)]},
        {"name": "lat", "type": "HISTOGRAM", "metric": [{"histogram": {
            "sample_count": "3", "sample_sum": 2,
            "bucket": [{"upper_bound": 1, "cumulative_count": "1",
                        "exemplar": {"label": labels(t="x"), "value": 1}},
                       {"upper_bound": 2, "cumulative_count": "3"}]}}]},
        {"name": "s", "type": "SUMMARY", "metric": [{"summary": {
            "sample_count": "1", "quantile": [{"quantile": 0.5, "value": 1}]}}]})


def test_fuzz_never_escapes_anything_but_parse_error():
    rng = random.Random(1234)
    body = _sample_body()
    assert len(parse_prom_protobuf(body)) == 3
    candidates = [body[:n] for n in range(len(body))]
    for _ in range(3000):
        mutated = bytearray(body)
        for _ in range(rng.randint(1, 4)):
            mutated[rng.randrange(len(mutated))] = rng.randrange(256)
        candidates.append(bytes(mutated))
    candidates += [bytes(rng.randrange(256) for _ in range(rng.randint(1, 64)))
                   for _ in range(2000)]
    for candidate in candidates:
        try:
            parse_prom_protobuf(candidate)
        except ParseError:
            pass


def test_prometheus_client_style_body_matches_text_names():
    """A realistic client_golang push: several counters with _total, one gauge, one histogram."""
    body = delimited(
        {"name": "fn_invocations_total", "help": "Invocations.", "type": "COUNTER",
         "metric": [{"label": labels(fn="a"), "counter": {"value": 1}},
                    {"label": labels(fn="b"), "counter": {"value": 2}}]},
        {"name": "fn_last_success_timestamp_seconds", "type": "GAUGE",
         "metric": [{"gauge": {"value": 1.7e9}}]})
    families = parse_prom_protobuf(body)
    assert [(f.name, f.type, [p.labels for p in f.points]) for f in families] == [
        ("fn_invocations", COUNTER, [(("fn", "a"),), (("fn", "b"),)]),
        ("fn_last_success_timestamp_seconds", GAUGE, [()]),
    ]
