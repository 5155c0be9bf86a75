"""Parse the protobuf push body of client_golang/push into a Batch.

The body is a sequence of ``io.prometheus.client.MetricFamily`` messages, each preceded by its
length as a varint (Content-Type ``application/vnd.google.protobuf;
proto=io.prometheus.client.MetricFamily; encoding=delimited``).

The message classes are built at import time from a ``FileDescriptorProto`` written out below
(the schema of prometheus/client_model ``metrics.proto``), in a private descriptor pool so that
nothing else registering the same file can clash. A histogram with native fields (client_golang's
``NativeHistogramBucketFactor``: a schema, spans, a zero threshold or zero count) becomes a native
histogram (``Point.native``; its classic buckets, if it also has some, are not kept); schema
-4..8, spans with deltas (integer) or absolute counts (float), counts that add up.

Mapping to the model is the same as for the text formats: a counter is named without ``_total``;
labels are a sorted tuple without ``clear_mode``/``clearmode``, which sets ``point.mode``;
histogram buckets are cumulative and ascending with ``+Inf`` last (appended from
``sample_count`` when absent); summary quantiles ascend. Every problem raises ``ParseError``
whose reason starts with the 1-based message index: ``message 3: family 'x': ...``.

Metric and label names may be any non-empty UTF-8 (as Prometheus 3 reads them); label names
starting with ``__`` are reserved.
"""
from __future__ import annotations

import re

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, timestamp_pb2
from google.protobuf.message import DecodeError as _ProtoDecodeError
from google.protobuf.unknown_fields import UnknownFieldSet

from ..clearmode import parse_clear_mode
from ..errors import ClearModeError, ParseError
from .. import nativehist
from .escaping import label_problem
from ..model import (COUNTER, GAUGE, GAUGEHISTOGRAM, HISTOGRAM, INF, SUMMARY, UNKNOWN, Exemplar,
                     Family, NativeHistogram, Point)

__all__ = ["parse_prom_protobuf", "MetricFamily"]

# --- the schema -------------------------------------------------------------------------------

_F = descriptor_pb2.FieldDescriptorProto
_PKG = "io.prometheus.client"
_OPT, _REP = _F.LABEL_OPTIONAL, _F.LABEL_REPEATED
_STRING, _DOUBLE, _UINT64, _UINT32, _INT64 = (_F.TYPE_STRING, _F.TYPE_DOUBLE, _F.TYPE_UINT64,
                                              _F.TYPE_UINT32, _F.TYPE_INT64)
_SINT32, _SINT64, _MSG, _ENUM = _F.TYPE_SINT32, _F.TYPE_SINT64, _F.TYPE_MESSAGE, _F.TYPE_ENUM
_TS = ".google.protobuf.Timestamp"

# message name -> [(field name, number, label, type, type name for messages/enums)]
_MESSAGES = {
    "LabelPair": [("name", 1, _OPT, _STRING, None), ("value", 2, _OPT, _STRING, None)],
    "Gauge": [("value", 1, _OPT, _DOUBLE, None)],
    "Counter": [("value", 1, _OPT, _DOUBLE, None), ("exemplar", 2, _OPT, _MSG, "Exemplar"),
                ("created_timestamp", 3, _OPT, _MSG, _TS)],
    "Quantile": [("quantile", 1, _OPT, _DOUBLE, None), ("value", 2, _OPT, _DOUBLE, None)],
    "Summary": [("sample_count", 1, _OPT, _UINT64, None), ("sample_sum", 2, _OPT, _DOUBLE, None),
                ("quantile", 3, _REP, _MSG, "Quantile"),
                ("created_timestamp", 4, _OPT, _MSG, _TS)],
    "Untyped": [("value", 1, _OPT, _DOUBLE, None)],
    "Histogram": [
        ("sample_count", 1, _OPT, _UINT64, None), ("sample_count_float", 4, _OPT, _DOUBLE, None),
        ("sample_sum", 2, _OPT, _DOUBLE, None), ("bucket", 3, _REP, _MSG, "Bucket"),
        ("created_timestamp", 15, _OPT, _MSG, _TS),
        # Native histograms
        ("schema", 5, _OPT, _SINT32, None), ("zero_threshold", 6, _OPT, _DOUBLE, None),
        ("zero_count", 7, _OPT, _UINT64, None), ("zero_count_float", 8, _OPT, _DOUBLE, None),
        ("negative_span", 9, _REP, _MSG, "BucketSpan"),
        ("negative_delta", 10, _REP, _SINT64, None), ("negative_count", 11, _REP, _DOUBLE, None),
        ("positive_span", 12, _REP, _MSG, "BucketSpan"),
        ("positive_delta", 13, _REP, _SINT64, None), ("positive_count", 14, _REP, _DOUBLE, None),
        ("exemplars", 16, _REP, _MSG, "Exemplar"),
    ],
    "Bucket": [("cumulative_count", 1, _OPT, _UINT64, None),
               ("cumulative_count_float", 4, _OPT, _DOUBLE, None),
               ("upper_bound", 2, _OPT, _DOUBLE, None), ("exemplar", 3, _OPT, _MSG, "Exemplar")],
    "BucketSpan": [("offset", 1, _OPT, _SINT32, None), ("length", 2, _OPT, _UINT32, None)],
    "Exemplar": [("label", 1, _REP, _MSG, "LabelPair"), ("value", 2, _OPT, _DOUBLE, None),
                 ("timestamp", 3, _OPT, _MSG, _TS)],
    "Metric": [("label", 1, _REP, _MSG, "LabelPair"), ("gauge", 2, _OPT, _MSG, "Gauge"),
               ("counter", 3, _OPT, _MSG, "Counter"), ("summary", 4, _OPT, _MSG, "Summary"),
               ("untyped", 5, _OPT, _MSG, "Untyped"), ("histogram", 7, _OPT, _MSG, "Histogram"),
               ("timestamp_ms", 6, _OPT, _INT64, None)],
    "MetricFamily": [("name", 1, _OPT, _STRING, None), ("help", 2, _OPT, _STRING, None),
                     ("type", 3, _OPT, _ENUM, "MetricType"), ("metric", 4, _REP, _MSG, "Metric"),
                     ("unit", 5, _OPT, _STRING, None)],
}
_METRIC_TYPES = ["COUNTER", "GAUGE", "SUMMARY", "UNTYPED", "HISTOGRAM", "GAUGE_HISTOGRAM"]


def _file_descriptor() -> descriptor_pb2.FileDescriptorProto:
    fd = descriptor_pb2.FileDescriptorProto(
        name="io/prometheus/client/metrics.proto", package=_PKG, syntax="proto2",
        dependency=["google/protobuf/timestamp.proto"])
    enum = fd.enum_type.add(name="MetricType")
    for number, name in enumerate(_METRIC_TYPES):
        enum.value.add(name=name, number=number)
    for msg_name, fields in _MESSAGES.items():
        msg = fd.message_type.add(name=msg_name)
        for name, number, label, type_, type_name in fields:
            field = msg.field.add(name=name, number=number, label=label, type=type_)
            if type_name is not None:
                field.type_name = type_name if type_name.startswith(".") else f".{_PKG}.{type_name}"
    return fd


def _build_classes() -> dict:
    pool = descriptor_pool.DescriptorPool()
    pool.Add(descriptor_pb2.FileDescriptorProto.FromString(
        timestamp_pb2.DESCRIPTOR.serialized_pb))
    pool.Add(_file_descriptor())
    return {name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{_PKG}.{name}"))
            for name in _MESSAGES}


_CLASSES = _build_classes()
MetricFamily = _CLASSES["MetricFamily"]

# --- the mapping ------------------------------------------------------------------------------

# MetricType number -> (model type, the Metric field that must carry the value)
_TYPE_MAP = {0: (COUNTER, "counter"), 1: (GAUGE, "gauge"), 2: (SUMMARY, "summary"),
             3: (UNKNOWN, "untyped"), 4: (HISTOGRAM, "histogram"),
             5: (GAUGEHISTOGRAM, "histogram")}
_VALUE_FIELDS = ("counter", "gauge", "summary", "untyped", "histogram")
# value field -> the value fields a metric of that type must not carry
_OTHER_FIELDS = {f: tuple(o for o in _VALUE_FIELDS if o != f) for f in _VALUE_FIELDS}
_CLEAR_MODE_LABELS = frozenset({"clear_mode", "clearmode"})
_RESERVED_LABEL = {HISTOGRAM: "le", GAUGEHISTOGRAM: "le", SUMMARY: "quantile"}
_NATIVE_FIELDS = ("schema", "zero_threshold", "zero_count", "zero_count_float")

# Names are any non-empty UTF-8 (Prometheus 3, client_golang with UTF-8 validation); a label
# name outside the legacy set marks its family ``utf8`` (the store's collision check).
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_good_label_names: dict[str, bool] = {}  # names already checked -> legacy, so each is read once


class _Invalid(Exception):
    """Raised inside one family; turned into a ParseError with the message prefix."""


class _BadSeries(Exception):
    """Raised inside one series; turned into an _Invalid naming the series."""


class _BadLabel(Exception):
    """Raised by _labels; turned into an _Invalid naming the metric, or a _BadSeries."""


def parse_prom_protobuf(body: bytes) -> list[Family]:
    families: list[Family] = []
    seen: dict[str, int] = {}
    pos = 0
    end = len(body)
    index = 0
    from_string = MetricFamily.FromString
    while pos < end:
        index += 1
        length, pos = _read_varint(body, pos, index)
        if length > end - pos:
            raise ParseError(f"message {index}: truncated: the length prefix says {length} bytes "
                             f"but only {end - pos} remain")
        try:
            mf = from_string(body[pos:pos + length])
        except _ProtoDecodeError as exc:
            raise ParseError(f"message {index}: not a valid MetricFamily: {exc}") from exc
        pos += length
        try:
            family = _family(mf)
        except _Invalid as exc:
            raise ParseError(f"message {index}: family {mf.name!r}: {exc}") from None
        first = seen.get(family.name)
        if first is not None:
            raise ParseError(f"message {index}: family {family.name!r}: already sent in "
                             f"message {first}; a family must come in one message")
        seen[family.name] = index
        families.append(family)
    return families


def _read_varint(body: bytes, pos: int, index: int) -> tuple[int, int]:
    result = 0
    shift = 0
    end = len(body)
    while True:
        if pos >= end:
            raise ParseError(f"message {index}: truncated length prefix")
        byte = body[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift >= 64:
            raise ParseError(f"message {index}: length prefix is not a valid varint")


def _family(mf) -> Family:
    name = mf.name
    if not name:
        raise _Invalid("empty metric name")
    # proto2 strings are not checked on decode: upb hands back bytes when they are not UTF-8.
    if name.__class__ is not str:
        raise _Invalid("metric name is not valid UTF-8")
    help_, unit = mf.help, mf.unit
    if help_.__class__ is not str or unit.__class__ is not str:
        raise _Invalid("help or unit is not valid UTF-8")
    type_number = mf.type
    # an unknown type number reads as 0 (counter) and lands in the unknown fields
    if type_number == 0 and not mf.HasField("type") and _has_unknown_type(mf):
        raise _Invalid("unknown metric type")
    type_, value_field = _TYPE_MAP[type_number]
    if type_ == COUNTER and name.endswith("_total") and len(name) > 6:
        name = name[:-6]
    reserved = _RESERVED_LABEL.get(type_)
    others = _OTHER_FIELDS[value_field]
    points = []
    seen: set = set()
    utf8 = [False]
    for number, metric in enumerate(mf.metric, 1):
        try:
            labels, mode = _labels(metric.label, reserved, utf8=utf8)
        except _BadLabel as exc:
            raise _Invalid(f"metric {number}: {exc}") from None
        if labels in seen:
            raise _Invalid(f"duplicate series {_series(mf.name, labels)}")
        seen.add(labels)
        point = Point(labels, mode)
        try:
            if not metric.HasField(value_field):
                raise _BadSeries(f"a {_TYPE_NAMES[type_number]} metric must carry the "
                                 f"{value_field!r} field")
            for other in others:
                if metric.HasField(other):
                    raise _BadSeries(f"a {_TYPE_NAMES[type_number]} metric must not carry the "
                                     f"{other!r} field")
            if value_field == "histogram":
                _histogram(point, metric.histogram)
            elif value_field == "summary":
                _summary(point, metric.summary)
            elif value_field == "counter":
                counter = metric.counter
                point.value = counter.value
                if point.value < 0:
                    raise _BadSeries(f"negative counter value {point.value!r}")
                if counter.HasField("exemplar"):
                    point.exemplar = _exemplar(counter.exemplar)
            else:
                point.value = getattr(metric, value_field).value
        except _BadSeries as exc:
            raise _Invalid(f"series {_series(mf.name, labels)}: {exc}") from None
        points.append(point)
    return Family(name, type_, help_, unit, points, utf8[0])


_TYPE_NAMES = dict(enumerate(_METRIC_TYPES))


def _has_unknown_type(mf) -> bool:
    """A ``type`` outside the enum lands in the unknown fields of a proto2 message."""
    return any(field.field_number == 3 for field in UnknownFieldSet(mf))


def _series(name: str, labels) -> str:
    return name + "{" + ",".join(f'{k}="{v}"' for k, v in labels) + "}"


def _check_label_name(name) -> str | None:
    """The problem with a label name, or None when it is fine."""
    if name.__class__ is not str:
        return "label name is not valid UTF-8"
    if not name:
        return "empty label name"
    if name.startswith("__"):
        return f"label name {name!r} is reserved (starts with '__')"
    return None


def _labels(pairs, reserved: str | None = None, modes=_CLEAR_MODE_LABELS, utf8=None):
    """The sorted label tuple of a metric's or an exemplar's pairs, and the clear mode that the
    ``modes`` labels set (an exemplar passes none: there clear_mode is an ordinary label).
    ``utf8[0]`` becomes True when a name is outside the legacy set (an exemplar's names are
    checked here for collisions once escaped; a series' by the store, with its group's)."""
    if not pairs:
        return (), None
    mode = None
    out = []
    names = set()
    legacy = True
    for pair in pairs:
        name, value = pair.name, pair.value
        known = _good_label_names.get(name)
        if known is None:
            problem = _check_label_name(name)
            if problem is not None:
                raise _BadLabel(problem)
            known = _LABEL_NAME.fullmatch(name) is not None
            if len(_good_label_names) < 10000:
                _good_label_names[name] = known
        if not known:
            legacy = False
        if value.__class__ is not str:
            raise _BadLabel(f"label {name!r}: value is not valid UTF-8")
        if name in modes:
            if "clear_mode" in names:
                raise _BadLabel(f"duplicate label {name!r} (clear_mode and clearmode are the same "
                                "label)")
            names.add("clear_mode")
            try:
                mode = parse_clear_mode(value)
            except ClearModeError as exc:
                raise _BadLabel(str(exc)) from None
            continue
        if name in names:
            raise _BadLabel(f"duplicate label {name!r}")
        if name == reserved:
            raise _BadLabel(f"label {name!r} is reserved in this metric type")
        names.add(name)
        out.append((name, value))
    out.sort()
    if not legacy:
        if utf8 is None:  # an exemplar: no store check follows
            problem = label_problem(out)
            if problem is not None:
                raise _BadLabel(problem)
        else:
            utf8[0] = True
    return tuple(out), mode


def _exemplar(ex) -> Exemplar:
    timestamp = None
    if ex.HasField("timestamp"):
        timestamp = ex.timestamp.seconds + ex.timestamp.nanos / 1e9
    try:
        labels, _ = _labels(ex.label, modes=())
    except _BadLabel as exc:
        raise _BadSeries(f"exemplar: {exc}") from None
    return Exemplar(labels, ex.value, timestamp)


def _native(point: Point, h, count: float) -> None:
    zero = h.zero_count_float if h.zero_count_float > 0 else float(h.zero_count)
    try:
        positive = nativehist.from_spans([(s.offset, s.length) for s in h.positive_span],
                                         list(h.positive_delta), list(h.positive_count))
        negative = nativehist.from_spans([(s.offset, s.length) for s in h.negative_span],
                                         list(h.negative_delta), list(h.negative_count))
    except ValueError as exc:
        raise _BadSeries(f"native histogram: {exc}") from None
    native = NativeHistogram(h.schema, h.zero_threshold, zero, positive, negative)
    problem = nativehist.check(native, count)
    if problem is not None:
        raise _BadSeries(problem)
    point.native = native
    point.sum = h.sample_sum
    point.count = count


def _histogram(point: Point, h) -> None:
    count = h.sample_count_float if h.sample_count_float > 0 else float(h.sample_count)
    raw = h.bucket
    if (any(h.HasField(f) for f in _NATIVE_FIELDS) or h.positive_span or h.negative_span):
        _native(point, h, count)
        return
    buckets = []
    exemplars = None
    for b in raw:
        le = b.upper_bound
        if le != le:
            raise _BadSeries("bucket upper bound is NaN")
        cumulative = (b.cumulative_count_float if b.cumulative_count_float > 0
                      else float(b.cumulative_count))
        buckets.append((le, cumulative))
        if b.HasField("exemplar"):
            if exemplars is None:
                exemplars = {}
            exemplars[le] = _exemplar(b.exemplar)
    buckets.sort(key=_first)
    previous_le = None
    previous_count = 0.0
    for le, cumulative in buckets:
        if le == previous_le:
            raise _BadSeries(f"duplicate bucket le={le!r}")
        if cumulative < previous_count:
            raise _BadSeries(f"bucket le={le!r} has count {cumulative!r}, less than "
                             f"{previous_count!r} of a lower bucket (buckets are cumulative)")
        previous_le, previous_count = le, cumulative
    if not buckets or buckets[-1][0] != INF:
        if count < previous_count:
            raise _BadSeries(f"sample_count {count!r} is less than the bucket count "
                             f"{previous_count!r}")
        buckets.append((INF, count))
    elif buckets[-1][1] != count:
        raise _BadSeries(f"the +Inf bucket count {buckets[-1][1]!r} differs from "
                         f"sample_count {count!r}")
    point.buckets = buckets
    point.sum = h.sample_sum
    point.count = count
    point.bucket_exemplars = exemplars


def _summary(point: Point, s) -> None:
    quantiles = []
    for q in s.quantile:
        rank = q.quantile
        if not 0.0 <= rank <= 1.0:
            raise _BadSeries(f"quantile {rank!r} is not in [0, 1]")
        quantiles.append((rank, q.value))
    quantiles.sort(key=_first)
    for i in range(1, len(quantiles)):
        if quantiles[i][0] == quantiles[i - 1][0]:
            raise _BadSeries(f"duplicate quantile {quantiles[i][0]!r}")
    point.quantiles = quantiles
    point.sum = s.sample_sum
    point.count = float(s.sample_count)


def _first(pair):
    return pair[0]
