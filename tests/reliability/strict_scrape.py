"""Strict checks of a PrometheusProto scrape (and its agreement with the text scrape), as a
Prometheus 3 scraper would apply them: what ``model/textparse/protobufparse.go`` refuses for the
whole scrape, what ``model/histogram`` ``Validate`` refuses for a native histogram sample, what
the TSDB refuses as duplicate samples, and the gateway's own validity rule (no NaN or negative
counter, no negative quantile value). ``check_protobuf`` raises ``AssertionError`` naming the
family and the rule; it returns the decoded families for further checks."""
from __future__ import annotations

import math
import re

from google.protobuf.internal.decoder import _DecodeVarint32

from otelgravel.formats.prom_protobuf import MetricFamily

LEGACY_METRIC = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
LEGACY_LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
COUNTER, GAUGE, SUMMARY, UNTYPED, HISTOGRAM, GAUGE_HISTOGRAM = range(6)
_VALUE_FIELD = {COUNTER: "counter", GAUGE: "gauge", SUMMARY: "summary", UNTYPED: "untyped",
                HISTOGRAM: "histogram", GAUGE_HISTOGRAM: "histogram"}
# the type the text formats name for each protobuf type (a gaugehistogram is a histogram there)
TEXT_TYPE = {COUNTER: "counter", GAUGE: "gauge", SUMMARY: "summary", UNTYPED: "unknown",
             HISTOGRAM: "histogram", GAUGE_HISTOGRAM: "histogram"}
EXEMPLAR_CHARS = 128  # OpenMetrics' bound on an exemplar's label names and values together
CLOCK_SLACK = 120.0   # seconds a created timestamp may lead the scrape (clocks of one host)


def decode_delimited(data: bytes) -> list:
    """Every varint-length-prefixed MetricFamily, the body consumed to its last byte."""
    out, pos = [], 0
    while pos < len(data):
        length, pos = _DecodeVarint32(data, pos)
        assert pos + length <= len(data), f"message {len(out) + 1} runs past the body"
        out.append(MetricFamily.FromString(data[pos:pos + length]))
        pos += length
    return out


def is_native(h) -> bool:
    """protobufparse.go's isNativeHistogram."""
    return bool(h.positive_span or h.negative_span or h.zero_threshold > 0 or h.zero_count > 0)


def _name_ok(name: str, escaping: str, legacy: re.Pattern) -> bool:
    if escaping == "allow-utf-8":
        return bool(name)  # protobuf has decoded it as UTF-8 already
    return legacy.fullmatch(name) is not None


def _timestamp(ts, where: str, now: float) -> float:
    assert ts.seconds >= 0 and 0 <= ts.nanos < 1_000_000_000, f"{where}: bad timestamp {ts}"
    seconds = ts.seconds + ts.nanos / 1e9
    assert 0 < seconds <= now + CLOCK_SLACK, f"{where}: timestamp {seconds} not in (0, now]"
    return seconds


def _labels(metric, where: str, escaping: str) -> tuple:
    names = [p.name for p in metric.label]
    assert len(set(names)) == len(names), f"{where}: duplicate label name in {names}"
    for name in names:
        assert _name_ok(name, escaping, LEGACY_LABEL), f"{where}: label name {name!r} ({escaping})"
        assert name != "__name__", f"{where}: a __name__ label"
    return tuple(sorted((p.name, p.value) for p in metric.label))


def _exemplar(ex, where: str, now: float) -> None:
    chars = sum(len(p.name) + len(p.value) for p in ex.label)
    assert chars <= EXEMPLAR_CHARS, f"{where}: exemplar labels of {chars} characters"
    assert not math.isnan(ex.value), f"{where}: NaN exemplar value"
    if ex.HasField("timestamp"):
        _timestamp(ex.timestamp, where + " exemplar", now)


def _spans(spans, counts: list, where: str) -> None:
    for i, span in enumerate(spans):
        assert i == 0 or span.offset >= 0, f"{where}: span {i} has offset {span.offset}"
    assert sum(s.length for s in spans) == len(counts), (
        f"{where}: spans hold {sum(s.length for s in spans)} buckets, {len(counts)} counts given")


def _native(h, where: str) -> None:
    """model/histogram Validate, on the histogram as protobufparse reads it."""
    assert -4 <= h.schema <= 8, f"{where}: schema {h.schema}"
    assert h.zero_threshold >= 0, f"{where}: zero threshold {h.zero_threshold}"
    floating = h.sample_count_float > 0 or h.zero_count_float > 0
    totals = []
    for side in ("positive", "negative"):
        spans = getattr(h, side + "_span")
        if floating:
            counts = list(getattr(h, side + "_count"))
            assert not getattr(h, side + "_delta"), f"{where}: {side} deltas in a float histogram"
            assert all(c >= 0 for c in counts), f"{where}: negative {side} bucket count {counts}"
        else:
            deltas = list(getattr(h, side + "_delta"))
            assert not getattr(h, side + "_count"), f"{where}: {side} float counts, integer count"
            counts, running = [], 0
            for d in deltas:
                running += d
                counts.append(running)
            assert all(c >= 0 for c in counts), f"{where}: negative {side} bucket count {counts}"
        _spans(spans, counts, f"{where} {side}")
        totals.append(sum(counts))
    if floating:
        count, zero = h.sample_count_float, h.zero_count_float
        assert not math.isnan(count) and count >= 0, f"{where}: count {count}"
    else:
        count, zero = h.sample_count, h.zero_count
    buckets = totals[0] + totals[1] + zero
    if math.isnan(h.sample_sum):
        assert buckets <= count * (1 + 1e-9), f"{where}: count {count} < buckets {buckets}"
    else:
        assert math.isclose(buckets, count, rel_tol=1e-9, abs_tol=1e-9), (
            f"{where}: count {count} != buckets {buckets} (zero {zero} + {totals})")


def _classic(h, where: str) -> list[float]:
    """The bucket bounds as the TSDB stores them (``+Inf`` added from the count)."""
    count = h.sample_count_float or float(h.sample_count)
    assert not math.isnan(count) and count >= 0, f"{where}: count {count}"
    bounds, last_bound, last = [], -math.inf, 0.0
    for b in h.bucket:
        value = b.cumulative_count_float or float(b.cumulative_count)
        assert not math.isnan(b.upper_bound), f"{where}: NaN bucket bound"
        assert b.upper_bound > last_bound, f"{where}: bucket bounds not ascending"
        assert not math.isnan(value) and value >= last, f"{where}: buckets not cumulative"
        last_bound, last = b.upper_bound, value
        bounds.append(b.upper_bound)
    assert last <= count * (1 + 1e-9) + 1e-9, f"{where}: a bucket ({last}) over the count {count}"
    if bounds and bounds[-1] == math.inf:
        assert math.isclose(last, count, rel_tol=1e-9), f"{where}: +Inf bucket {last} != {count}"
    else:
        bounds.append(math.inf)
    return bounds


def _unit(family) -> None:
    unit, name = family.unit, family.name
    if not unit:
        return
    if family.type == COUNTER and name.endswith("_total"):
        name = name[:-6]
    assert name.endswith("_" + unit), f"{family.name}: unit {unit!r} is not a suffix"


def check_protobuf(data: bytes, *, now: float, escaping: str = "underscores") -> list:
    families = decode_delimited(data)
    seen_names: dict[str, int] = {}
    samples: set = set()  # (series name, labels) as the TSDB would store them
    previous = None
    for index, family in enumerate(families):
        name, where = family.name, f"family {family.name!r} (message {index + 1})"
        assert _name_ok(name, escaping, LEGACY_METRIC), f"{where}: invalid name ({escaping})"
        assert family.type in _VALUE_FIELD, f"{where}: type {family.type}"
        assert family.metric, f"{where}: no metric"
        _unit(family)
        natives = {is_native(m.histogram) for m in family.metric} if family.type in (
            HISTOGRAM, GAUGE_HISTOGRAM) else {False}
        assert len(natives) == 1, f"{where}: native and classic histograms in one message"
        if name in seen_names:
            # the one exception: a histogram family written as a native message then a classic one
            assert (previous is not None and previous.name == name and previous.type == family.type
                    and is_native(previous.metric[0].histogram) and natives == {False}
                    and family.type in (HISTOGRAM, GAUGE_HISTOGRAM)), f"{where}: a second family"
        seen_names[name] = index
        field = _VALUE_FIELD[family.type]
        for metric in family.metric:
            labels = _labels(metric, where, escaping)
            mwhere = f"{where} {dict(labels)}"
            set_fields = [f.name for f, _ in metric.ListFields() if f.name not in (
                "label", "timestamp_ms")]
            assert set_fields == [field], f"{mwhere}: fields {set_fields} in a {field} family"
            value = getattr(metric, field)
            series = []
            if family.type == COUNTER:
                assert not math.isnan(value.value) and value.value >= 0, f"{mwhere}: {value.value}"
                if value.HasField("exemplar"):
                    _exemplar(value.exemplar, mwhere, now)
                series.append((name, labels))
            elif family.type in (GAUGE, UNTYPED):
                series.append((name, labels))
            elif family.type == SUMMARY:
                assert "quantile" not in dict(labels), f"{mwhere}: a quantile label"
                qs = [q.quantile for q in value.quantile]
                assert all(0 <= q <= 1 for q in qs) and qs == sorted(set(qs)), f"{mwhere}: {qs}"
                assert all(not q.value < 0 for q in value.quantile), f"{mwhere}: negative quantile"
                series += [(name, labels + (("quantile", repr(q)),)) for q in qs]
                series += [(name + "_sum", labels), (name + "_count", labels)]
            else:
                assert "le" not in dict(labels), f"{mwhere}: an le label"
                if is_native(value):
                    _native(value, mwhere)
                    series.append((name, labels))
                else:
                    bounds = _classic(value, mwhere)
                    series += [(name + "_bucket", labels + (("le", repr(b)),)) for b in bounds]
                    series += [(name + "_sum", labels), (name + "_count", labels)]
            if family.type in (COUNTER, SUMMARY, HISTOGRAM) and value.HasField("created_timestamp"):
                _timestamp(value.created_timestamp, mwhere + " created", now)
            for s in series:
                assert s not in samples, f"{mwhere}: duplicate series {s}"
                samples.add(s)
        previous = family
    return families


def check_agrees_with_text(families: list, text_families: list) -> None:
    """Each protobuf family is in the text scrape under the same name and type, with the same
    series (a native histogram is classic buckets there), and the other way round."""
    text = {}
    for f in text_families:
        text[f.name] = (f.type, {tuple(sorted((k, v) for k, v in s.labels.items()
                                              if k not in ("le", "quantile")))
                                 for s in f.samples})
    merged: dict[str, tuple[int, set]] = {}
    for family in families:
        labels = {tuple(sorted((p.name, p.value) for p in m.label)) for m in family.metric}
        type_, had = merged.get(family.name, (family.type, set()))
        merged[family.name] = (type_, had | labels)
    for name, (type_, labels) in merged.items():
        if type_ == GAUGE_HISTOGRAM:
            continue  # text 0.0.4 has no gaugehistogram: its parser splits the family at _gcount
        key = name[:-6] if type_ == COUNTER and name.endswith("_total") else name
        assert key in text, f"{name}: in the protobuf scrape, not in the text one"
        text_type, text_labels = text[key]
        assert text_type == TEXT_TYPE[type_], f"{name}: {TEXT_TYPE[type_]} in protobuf, {text_type}"
        assert labels == text_labels, (f"{name}: series differ between protobuf and text: "
                                       f"{labels - text_labels} / {text_labels - labels}")
    shown = {n[:-6] if t == COUNTER and n.endswith("_total") else n for n, (t, _) in merged.items()}
    # text 0.0.4 has no gaugehistogram: its _gcount/_gsum read as families of their own there
    shown |= {n + suffix for n, (t, _) in merged.items() if t == GAUGE_HISTOGRAM
              for suffix in ("_gcount", "_gsum", "_bucket")}
    for name, (_, labels) in text.items():
        assert not labels or name in shown, f"{name}: in the text scrape, not in the protobuf one"


TEXT_1 = "text/plain; version=1.0.0"
PROTOBUF_ACCEPT = ("application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; "
                   "encoding=delimited; escaping={}")
ESCAPINGS = ("underscores", "allow-utf-8", "dots", "values")


def check_every_format(request, escaping: str = "underscores") -> tuple[bytes, ...]:
    """Scrape text 0.0.4, OpenMetrics, text 1.0.0 (with ``escaping``) and PrometheusProto (with
    ``escaping``) through ``request(accept) -> (status, body)``; check each strictly; return the
    bodies (a refusal must leave every one of them as it was)."""
    import time

    from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_om
    from prometheus_client.parser import text_string_to_metric_families as parse_text

    from tests.e2e.conftest import OM_ACCEPT

    answers = {}
    for kind, accept in (("text", "text/plain"), ("om", OM_ACCEPT),
                         ("text1", f"{TEXT_1}; escaping={escaping}"),
                         ("proto", PROTOBUF_ACCEPT.format(escaping))):
        status, body = request(accept)
        assert status == 200, (kind, status, body[:300])
        answers[kind] = body
    text_families = list(parse_text(answers["text"].decode()))
    list(parse_om(answers["om"].decode()))  # strict: raises on anything OpenMetrics forbids
    list(parse_text(answers["text1"].decode()))
    families = check_protobuf(answers["proto"], now=time.time(), escaping=escaping)
    if escaping == "underscores":  # text 0.0.4 escapes names with underscores
        check_agrees_with_text(families, text_families)
    return tuple(answers.values())
