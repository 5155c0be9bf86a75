"""``strict_scrape`` itself: each rule refuses the PrometheusProto output that breaks it (so that
the fuzz tests relying on it can fail), and takes what client_golang writes."""
from __future__ import annotations

import pytest

from tests.reliability.strict_scrape import check_protobuf
from tests.reliability.test_fuzz import _delimited, _protobuf
from otelgravel.formats.prom_protobuf import MetricFamily

NOW = 1_800_000_000.0
NATIVE = {"sample_count": 3, "sample_sum": 1.0, "schema": 0, "zero_threshold": 0.001, "zero_count": 1,
          "positive_span": [{"offset": 0, "length": 2}], "positive_delta": [1, 0]}


def _family(name="x", type_=1, metric=None, **fields) -> MetricFamily:
    return MetricFamily(name=name, type=type_, metric=metric or [{"gauge": {"value": 1}}], **fields)


def _native(**changes) -> MetricFamily:
    return _family("h", 4, [{"histogram": {**NATIVE, **changes}}])


# (case, families, escaping, error fragment)
INVALID = [
    ("name outside the legacy set", [_family("my.metric")], "underscores", "invalid name"),
    ("label name outside the legacy set", [_family(metric=[{"label": [{"name": "a.b", "value": "1"}],
                                                            "gauge": {"value": 1}}])],
     "values", "label name"),
    ("two families of one name", [_family(), _family()], "underscores", "a second family"),
    ("a counter's value in a gauge family", [_family(metric=[{"counter": {"value": 1}}])],
     "underscores", "fields"),
    ("NaN counter", [_family("c_total", 0, [{"counter": {"value": float("nan")}}])], "underscores",
     "c_total"),
    ("duplicate label", [_family(metric=[{"label": [{"name": "a", "value": "1"}] * 2,
                                          "gauge": {"value": 1}}])], "underscores", "duplicate label"),
    ("buckets not cumulative", [_family("h", 4, [{"histogram": {"sample_count": 3, "bucket": [
        {"upper_bound": 1, "cumulative_count": 2}, {"upper_bound": 2, "cumulative_count": 1}]}}])],
     "underscores", "not cumulative"),
    ("a bucket over the count", [_family("h", 4, [{"histogram": {"sample_count": 1, "bucket": [
        {"upper_bound": 1, "cumulative_count": 2}]}}])], "underscores", "over the count"),
    ("native count above the buckets", [_native(sample_count=4)], "underscores", "count 4 != buckets 3"),
    ("native span with a negative offset", [_native(positive_span=[
        {"offset": 0, "length": 1}, {"offset": -1, "length": 1}])], "underscores", "offset -1"),
    ("native spans and deltas disagree", [_native(positive_delta=[1])], "underscores", "spans hold 2"),
    ("native negative bucket", [_native(positive_delta=[2, -3], sample_count=2)], "underscores",
     "negative positive bucket"),
    ("native schema 9", [_native(schema=9)], "underscores", "schema 9"),
    ("created timestamp in milliseconds", [_family("c_total", 0, [{"counter": {
        "value": 1, "created_timestamp": {"seconds": int(NOW * 1000)}}}])], "underscores", "created"),
    ("created timestamp 0", [_family("c_total", 0, [{"counter": {
        "value": 1, "created_timestamp": {"seconds": 0}}}])], "underscores", "created"),
    ("unit not a suffix", [_family("temp", unit="celsius")], "underscores", "not a suffix"),
    ("exemplar over 128 characters", [_family("c_total", 0, [{"counter": {"value": 1, "exemplar": {
        "label": [{"name": "t", "value": "x" * 128}], "value": 1}}}])], "underscores", "exemplar"),
    ("series of two families collide", [_family("h_count"), _family("h", 4, [{"histogram": {
        "sample_count": 1, "sample_sum": 1}}])], "underscores", "duplicate series"),
]


@pytest.mark.parametrize("case, families, escaping, fragment", INVALID, ids=[c[0] for c in INVALID])
def test_each_rule_refuses_what_breaks_it(case, families, escaping, fragment):
    with pytest.raises(AssertionError, match=fragment):
        check_protobuf(_delimited(families), now=NOW, escaping=escaping)


@pytest.mark.parametrize("body, escaping", [
    (_protobuf(), "underscores"),
    (_delimited([_family("h", 4, [
        {"label": [{"name": "k", "value": "int"}], "histogram": NATIVE},
        {"label": [{"name": "k", "value": "float"}], "histogram": {
            **NATIVE, "sample_count": 0, "zero_count": 0, "positive_delta": [],
            "sample_count_float": 3.5, "zero_count_float": 1.5, "positive_count": [1.0, 1.0]}}])]),
     "underscores"),
    (_delimited([_family("my.metric", metric=[{"label": [{"name": "a.b", "value": "1"}],
                                                 "gauge": {"value": 1}}])]), "allow-utf-8"),
    (_delimited([_family("temp_celsius", unit="celsius"), _native()]), "dots"),
], ids=["client_golang's types", "native histograms", "UTF-8 names with allow-utf-8", "unit, native"])
def test_valid_output_passes(body, escaping):
    assert check_protobuf(body, now=NOW, escaping=escaping)
