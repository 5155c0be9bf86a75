"""Render the store as PrometheusProto: delimited ``io.prometheus.client.MetricFamily`` messages.

The wire format is written by hand (the schema is prometheus/client_model ``metrics.proto``, the
same one ``prom_protobuf.py`` declares to parse pushes, and the tests read this output back with
those message classes): each series' ``Metric`` is encoded once and kept on the series
(``pb``) until the store marks it changed, so a scrape of an unchanged store is a join of
cached bytes, as for the text writers. Windowed series are computed at read time.

As client_golang writes it: a counter family is named with ``_total``; an info family is a gauge
named ``<name>_info``, a stateset a gauge, unknown is ``UNTYPED``; counters, histograms and
summaries carry ``created_timestamp`` (the series' ``_created``); classic histograms list their
finite buckets (``+Inf`` is implied by ``sample_count``); counts are integers unless a count is
fractional (then the ``*_float`` fields). A native histogram carries schema, zero threshold and
count, and spans with deltas (integer counts) or absolute counts (fractional ones). Prometheus
2.x decides per ``MetricFamily`` message, from its first metric, whether the family is native,
so a family holding both kinds is written as two messages of the same name, native first. A
native histogram with no observations gets a zero threshold and an empty span so that it still
reads as native. Exemplars are those the text formats write (``exemplar_fits``).

Names are escaped per the negotiated scheme (``escaping.py``, label names with
``escape_label_name``, exemplars' too); a series whose label names are all legacy-valid (and its
exemplars') is the same in every scheme and is cached once (``bytes``), any other once per
scheme (a ``dict``). Gauges and counters, most of a scrape, are encoded inline: one join of the
cached label pairs, a constant prefix and the value (``_scalar``, ``_counter``).
"""
from __future__ import annotations

import math
from struct import Struct

from .. import nativehist
from ..model import (COUNTER, GAUGE, GAUGEHISTOGRAM, HISTOGRAM, INFO, STATESET, SUMMARY, UNKNOWN)
from .escaping import escape_label_name, exemplars_legacy, legacy_labels
from .exposition import (_families_with_push_times, _text_name, exemplar_fits, exposed_base,
                         push_times)

_DOUBLE = Struct("<d").pack
_INF = float("inf")
# client_golang's DefNativeHistogramZeroThreshold (2^-128)
_EMPTY_ZERO_THRESHOLD = 2.938735877055719e-39

# MetricType numbers and the Metric field tag each type's value goes in
_TYPE_NUMBER = {COUNTER: 0, GAUGE: 1, SUMMARY: 2, UNKNOWN: 3, HISTOGRAM: 4, GAUGEHISTOGRAM: 5,
                INFO: 1, STATESET: 1}
_VALUE_TAG = {COUNTER: b"\x1a", GAUGE: b"\x12", UNKNOWN: b"\x2a", INFO: b"\x12",
              STATESET: b"\x12"}


def _varint(n: int) -> bytes:
    if 0 <= n < 0x80:
        return bytes((n,))
    if n < 0:
        n += 1 << 64
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _zigzag(n: int) -> int:
    return (n << 1) ^ (n >> 63) if n < 0 else n << 1


_LEN = [bytes((n,)) for n in range(0x80)]  # the one-byte lengths


def _field(tag: bytes, payload: bytes) -> bytes:
    """A length-delimited field."""
    n = len(payload)
    return tag + (bytes((n,)) if n < 0x80 else _varint(n)) + payload


def _string(tag: bytes, s: str) -> bytes:
    return _field(tag, s.encode())


_timestamps: dict = {}  # seconds -> encoded Timestamp: the series of one push share a _created


def _timestamp(seconds: float) -> bytes:
    out = _timestamps.get(seconds)
    if out is None:
        whole = math.floor(seconds)
        nanos = min(int(round((seconds - whole) * 1e9)), 999_999_999)
        out = b"\x08" + _varint(whole) if whole else b""
        out += b"\x10" + _varint(nanos) if nanos else b""
        if len(_timestamps) > 4096:
            _timestamps.clear()
        _timestamps[seconds] = out
    return out


def _label_pairs(labels, escaping: str | None) -> bytes:
    out = []
    for name, value in labels:
        if escaping is not None:
            name = escape_label_name(name, escaping)
        n = name.encode()
        v = value.encode()
        size = len(n) + len(v) + 4
        if size < 0x80:  # both lengths fit one byte too
            out.append(b"\x0a" + bytes((size, 0x0a, len(n))) + n + b"\x12" + bytes((len(v),)) + v)
        else:
            out.append(_field(b"\x0a", _field(b"\x0a", n) + _field(b"\x12", v)))
    return b"".join(out)


def _cached_labels(obj, labels) -> bytes | dict:
    """The encoded label pairs of a series or group, kept on it (``pb_labels``): ``bytes`` when
    they are the same in every scheme, else a ``dict`` per scheme (filled by ``_labels_in``)."""
    cached = obj.pb_labels
    if cached is None:
        cached = obj.pb_labels = _label_pairs(labels, None) if legacy_labels(labels) else {}
    return cached


def _labels_in(obj, labels, escaping: str) -> bytes:
    """The encoded label pairs of a series or group under ``escaping``."""
    cached = _cached_labels(obj, labels)
    if cached.__class__ is bytes:
        return cached
    out = cached.get(escaping)
    if out is None:
        out = cached[escaping] = _label_pairs(labels, escaping)
    return out


def _series_labels(series, escaping: str) -> bytes:
    return _labels_in(series, series.key, escaping)


def _exemplar(ex, escaping: str | None = None) -> bytes:
    labels = ex.labels
    out = (_label_pairs(labels, None if legacy_labels(labels) else escaping)
           + b"\x11" + _DOUBLE(ex.value))
    if ex.timestamp is not None:
        out += _field(b"\x1a", _timestamp(ex.timestamp))
    return out


def _scalar(labels: bytes, prefix: bytes, value: float) -> bytes:
    """A gauge's (untyped's, info's, stateset's) Metric field: ``prefix`` is its value field's
    tag and length and the Gauge's value tag (11 bytes with the double)."""
    n = len(labels) + 11
    return b"".join((b"\x22", _LEN[n] if n < 0x80 else _varint(n), labels, prefix, _DOUBLE(value)))


_counter_tails: dict = {}  # created -> (the Counter field's tag, length and value tag; its tail)


def _counter(labels: bytes, value: float, created: float) -> bytes:
    """A counter's Metric field without exemplar: value and created_timestamp."""
    parts = _counter_tails.get(created)
    if parts is None:
        ts = _timestamp(created)
        tail = b"\x1a" + _LEN[len(ts)] + ts
        parts = (b"\x1a" + _LEN[9 + len(tail)] + b"\x09", tail)
        if len(_counter_tails) > 4096:
            _counter_tails.clear()
        _counter_tails[created] = parts
    head, tail = parts
    n = len(labels) + len(head) + 8 + len(tail)
    return b"".join((b"\x22", _LEN[n] if n < 0x80 else _varint(n), labels, head, _DOUBLE(value),
                     tail))


def _count_fields(count: float, int_tag: bytes, float_tag: bytes) -> bytes:
    if count >= 0 and float(count).is_integer() and count < 2 ** 64:
        return int_tag + _varint(int(count))
    return float_tag + _DOUBLE(count)


def _summary(p, created: float) -> bytes:
    count = p.count or 0.0  # Summary has no float count
    out = [b"\x08", _varint(max(0, int(count))), b"\x11", _DOUBLE(p.sum or 0.0)]
    for q, v in p.quantiles or ():
        out.append(_field(b"\x1a", b"\x09" + _DOUBLE(q) + b"\x11" + _DOUBLE(v)))
    out.append(_field(b"\x22", _timestamp(created)))
    return b"".join(out)


def _classic(p, created: float | None, escaping: str | None = None) -> bytes:
    count = p.count if p.count is not None else p.buckets[-1][1]
    out = [_count_fields(count, b"\x08", b"\x21"), b"\x11", _DOUBLE(p.sum or 0.0)]
    exemplars = p.bucket_exemplars or {}
    for le, c in p.buckets:
        if le == _INF:
            continue
        bucket = _count_fields(c, b"\x08", b"\x21") + b"\x11" + _DOUBLE(le)
        ex = exemplars.get(le)
        if ex is not None and exemplar_fits(ex):
            bucket += _field(b"\x1a", _exemplar(ex, escaping))
        out.append(_field(b"\x1a", bucket))
    if created is not None:
        out.append(_field(b"\x7a", _timestamp(created)))
    return b"".join(out)


def _spans(tag: bytes, spans) -> list:
    return [_field(tag, b"\x08" + _varint(_zigzag(offset)) + b"\x10" + _varint(length))
            for offset, length in spans]


def _native(p, created: float | None) -> bytes:
    h = p.native
    count = p.count if p.count is not None else nativehist.total(h)
    integral = nativehist.is_integral(h, count)
    out = []
    if integral:
        out.append(b"\x08" + _varint(int(count)))
    else:
        out.append(b"\x21" + _DOUBLE(count))
    out.append(b"\x11" + _DOUBLE(p.sum or 0.0))
    out.append(b"\x28" + _varint(_zigzag(h.schema)))
    empty = not h.positive and not h.negative and not h.zero_count
    threshold = h.zero_threshold if h.zero_threshold or not empty else _EMPTY_ZERO_THRESHOLD
    out.append(b"\x31" + _DOUBLE(threshold))
    if integral:
        out.append(b"\x38" + _varint(int(h.zero_count)))
    else:
        out.append(b"\x41" + _DOUBLE(h.zero_count))
    for buckets, span_tag, delta_tag, count_tag in ((h.negative, b"\x4a", b"\x50", b"\x59"),
                                                     (h.positive, b"\x62", b"\x68", b"\x71")):
        if not buckets:
            continue
        spans, counts = nativehist.to_spans(buckets)
        out.extend(_spans(span_tag, spans))
        if integral:
            out.extend(delta_tag + _varint(_zigzag(d)) for d in nativehist.deltas(counts))
        else:
            out.extend(count_tag + _DOUBLE(c) for c in counts)
    if empty:
        out.extend(_spans(b"\x62", [(0, 0)]))  # client_golang's marker of a native histogram
    if created is not None:
        out.append(_field(b"\x7a", _timestamp(created)))
    return b"".join(out)


def _metric(type_: str, labels: bytes, p, created: float, value: float | None = None,
            escaping: str | None = None) -> bytes:
    """The ``metric`` field (tag, length, Metric) of one series. ``value`` overrides the point's
    value (a windowed series, read at scrape time)."""
    if type_ == HISTOGRAM or type_ == GAUGEHISTOGRAM:
        when = created if type_ == HISTOGRAM else None
        body = _native(p, when) if p.native is not None else _classic(p, when, escaping)
        inner = _field(b"\x3a", body)
    elif type_ == SUMMARY:
        inner = _field(b"\x22", _summary(p, created))
    else:
        v = p.value if value is None else value
        payload = b"\x09" + _DOUBLE(v)
        if type_ == COUNTER:
            if p.exemplar is not None and value is None and exemplar_fits(p.exemplar):
                payload += _field(b"\x12", _exemplar(p.exemplar, escaping))
            payload += _field(b"\x1a", _timestamp(created))
        inner = _field(_VALUE_TAG[type_], payload)
    return _field(b"\x22", labels + inner)


def _family_message(out: list, name: str, type_number: int, help_: str, unit: str,
                    metrics: list) -> None:
    """``name`` is the family's exposed name, already escaped."""
    head = _string(b"\x0a", name)
    if help_:
        head += _string(b"\x12", help_)
    head += b"\x18" + _varint(type_number)
    tail = _string(b"\x2a", unit) if unit else b""
    body = b"".join(metrics)  # one join per family gives its length (no sum over the series)
    out.append(_varint(len(head) + len(body) + len(tail)))
    out.append(head)
    out.append(body)
    out.append(tail)


def _family_metrics(family, now: float, escaping: str) -> list:
    """The encoded metrics of one family, from each series' cache where it is fresh: ``bytes``
    the same in every scheme or, for a series with a label name outside the legacy set, a
    ``dict`` per scheme; the family's ``escaped`` bit 4 says some series holds one, and sends
    it to ``_escaped_family_metrics`` (the loop below stays that of a legacy store)."""
    if family.escaped & 4:
        return _escaped_family_metrics(family, now, escaping)
    type_ = family.type
    windowed = family.windowed
    prefix = _SCALAR_PREFIX.get(type_)
    counter = type_ == COUNTER
    metrics: list = []
    append = metrics.append
    for series in family.sorted_series():
        cached = series.pb
        if cached is not None:
            append(cached)
            continue
        if windowed and series.window is not None:
            _windowed_metric(metrics, series, type_, now, escaping)
            continue
        labels = series.pb_labels
        if labels is None:
            labels = _cached_labels(series, series.key)
        p = series.point
        if labels.__class__ is bytes:
            if prefix is not None:
                out = series.pb = _scalar(labels, prefix, p.value)
            elif counter and p.exemplar is None:
                out = series.pb = _counter(labels, p.value, series.created)
            else:
                out = _fresh(series, type_, labels, escaping)
        else:
            out = _fresh(series, type_, labels, escaping)
        append(out)
    return metrics


def _windowed_metric(metrics: list, series, type_: str, now: float, escaping: str) -> None:
    """A windowed series' metric, read at scrape time (never cached)."""
    value = series.window.read(now)
    if value is not None:
        metrics.append(_metric(type_, _series_labels(series, escaping), series.point,
                               series.created, value, escaping))


def _fresh(series, type_: str, labels, escaping: str) -> bytes:
    """Encode a series whose cache is empty and keep it: ``bytes``, or a ``dict`` per scheme
    (marking the family) when its label names or its exemplars' are not all legacy."""
    p = series.point
    if labels.__class__ is bytes and exemplars_legacy(p):
        out = series.pb = _metric(type_, labels, p, series.created)
        return out
    out = _encode(series, type_, escaping)
    series.pb = {escaping: out}
    series.family.escaped |= 4
    return out


def _encode(series, type_: str, escaping: str) -> bytes:
    """A series' metric under ``escaping`` (gauges and counters by the inline encoders)."""
    labels = _series_labels(series, escaping)
    p = series.point
    prefix = _SCALAR_PREFIX.get(type_)
    if prefix is not None:
        return _scalar(labels, prefix, p.value)
    if type_ == COUNTER and p.exemplar is None:
        return _counter(labels, p.value, series.created)
    return _metric(type_, labels, p, series.created, None, escaping)


def _escaped_family_metrics(family, now: float, escaping: str) -> list:
    type_ = family.type
    windowed = family.windowed
    metrics: list = []
    append = metrics.append
    per_scheme = 0
    for series in family.sorted_series():
        cached = series.pb
        if cached.__class__ is bytes:
            append(cached)
            continue
        if windowed and series.window is not None:
            _windowed_metric(metrics, series, type_, now, escaping)
            continue
        if cached is None:
            append(_fresh(series, type_, _cached_labels(series, series.key), escaping))
            cached = series.pb
        else:
            out = cached.get(escaping)
            if out is None:
                out = cached[escaping] = _encode(series, type_, escaping)
            append(out)
        if cached.__class__ is dict:
            per_scheme += 1
    if not per_scheme:
        family.escaped &= ~4
    return metrics


# a gauge's (untyped's...) value field tag and length (9) and the Gauge's value tag
_SCALAR_PREFIX = {t: tag + b"\x09\x09" for t, tag in _VALUE_TAG.items() if t != COUNTER}


def write_protobuf(store, now: float, escaping: str = "underscores") -> bytes:
    out: list[bytes] = []
    for piece in protobuf_pieces(store, now, escaping):
        out.extend(piece)
    return b"".join(out)


def protobuf_pieces(store, now: float, escaping: str = "underscores"):
    """The scrape as lists of bytes, one per family (its length prefix needs it whole), in order:
    the exporter lets pushes in between (``exposition.exposition_pieces`` says what a piece sees)."""
    for family in _families_with_push_times(store):
        out: list[bytes] = []
        if isinstance(family, str):
            _push_times(out, store, family, escaping)
            if out:
                yield out
            continue
        type_ = family.type
        base = exposed_base(family.name, type_, escaping)
        metrics = _family_metrics(family, now, escaping)
        if not metrics:
            continue
        exposed = _text_name(base, type_)
        number = _TYPE_NUMBER[type_]
        if type_ == HISTOGRAM or type_ == GAUGEHISTOGRAM:
            natives = [m for m, s in zip(metrics, family.sorted_series())
                       if s.point.native is not None]
            if natives and len(natives) < len(metrics):
                classic = [m for m, s in zip(metrics, family.sorted_series())
                           if s.point.native is None]
                _family_message(out, exposed, number, family.help, family.unit, natives)
                metrics = classic
        _family_message(out, exposed, number, family.help, family.unit, metrics)
        yield out


def _push_times(out: list, store, name: str, escaping: str) -> None:
    help_, rows = push_times(store, name)
    metrics = []
    prefix = _SCALAR_PREFIX[GAUGE]
    for group, value in rows:
        labels = group.pb_labels
        if labels.__class__ is not bytes:
            labels = _labels_in(group, group.labels, escaping)
        metrics.append(_scalar(labels, prefix, value))
    if metrics:
        _family_message(out, name, 1, help_, "", metrics)
