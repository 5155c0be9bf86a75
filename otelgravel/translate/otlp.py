"""OTLP metrics → the model: one ``Translation`` per ``ExportMetricsServiceRequest``.

Pure: no I/O, no asyncio, no clock (``now`` comes in). The only state is the per-source memory
that turns CUMULATIVE streams into increments; it is bounded (``max_sources``, least recently
updated first out) and forgotten ``source_ttl`` seconds after a source's last update.

Groups
    Each resource becomes a grouping key ``(("job", job),)`` with job =
    ``service.namespace/service.name`` or ``service.name`` (``unknown_service`` when absent).
    With ``keep_instance`` the key also has ``("instance", service.instance.id)``. Points never
    carry ``job``/``instance`` themselves: the store sets the group's labels on every series.
    Every serverless invocation has its own ``service.instance.id``; by default it is *not* part of
    the group, so all invocations of one service fold into one series per (metric, attributes).

Names and labels
    See ``names.py`` (the OTel "Prometheus and OpenMetrics compatibility" rules). Scope name and
    version become ``otel_scope_name``/``otel_scope_version`` (when non-empty). Resource attributes
    other than service.name/namespace/instance.id become one info family ``target`` (exposed as
    ``target_info``) per group with mode ``family``: the latest resource of the group wins.
    With ``utf8_names`` metric and attribute names keep their characters (``names.py``) and every
    family is marked ``utf8``, so the store refuses label names that a scheme writes alike.

Kinds and temporality → clear modes (SPEC section 3)
    ============================  ==========  ======================================================
    OTLP                          type        points
    ============================  ==========  ======================================================
    Sum monotonic DELTA           counter     ``sum`` with the delta
    Sum monotonic CUMULATIVE      counter     ``sum`` with the increase since the source's last value
    Sum non-monotonic DELTA       gauge       ``sum`` with the delta
    Sum non-monotonic CUMULATIVE  gauge       ``sum`` with (value − the source's previous value), so
                                              the series is the sum of the latest value of every
                                              live source; ``expire`` returns the negative
                                              corrections for sources that went away
    Gauge                         gauge       ``replace``
    Histogram DELTA / CUMULATIVE  histogram   like monotonic sums, bucket by bucket
    ExponentialHistogram          histogram   converted to a classic histogram (below), then as above
    Summary                       summary     ``replace``
    ============================  ==========  ======================================================

    A source is (resource attributes including service.instance.id, scope, metric name, point
    attributes). For a cumulative monotonic source the first sight counts the whole value; later
    points count the increase; a new ``start_time_unix_nano`` or a value that drops is a reset and
    the whole new value counts. One process exporting 1 then 3 contributes 3. A source forgotten
    (expired after ``source_ttl`` or pushed out of the LRU) that comes back counts its whole value
    again, so ``source_ttl`` must be longer than the SDK's export interval.

    A ``clear_mode`` (or ``clearmode``) point attribute overrides the mode and is removed: the
    point's value is then passed as is (``replace``, ``family``, windows), except that ``sum`` on
    a cumulative stream still means its increments. An invalid value rejects that point.

    A point with the NO_RECORDED_VALUE flag goes to ``Translation.removals`` (the processor removes
    that series) and its source is forgotten.

Exponential histograms
    Every point is brought onto one common grid: the bucket boundaries of scale
    ``exp_histogram_scale`` (default 3), i.e. the powers of ``2 ** (2 ** -3) ≈ 1.0905``. A point
    with a finer scale is downscaled (adjacent buckets merged); a point with a coarser scale keeps
    its own boundaries, which are a subset of the grid. Either way all boundaries are grid points,
    so instances with different scales merge into the same bounds and the union of layouts the
    store builds stays bounded (about 8 boundaries per power of two of the recorded range).
    Accuracy: a bucket spans a factor of 2^(1/8), so a value's ``le`` is at most 9.05% above it
    and quantiles estimated from the classic histogram are within about 9% (relative). Only the
    boundaries of populated buckets are emitted, plus ``+Inf``: negative buckets (``le`` is the
    bucket's upper end, −base^index), the zero bucket (``le="0"``, or the grid point at or above
    a non-zero ``zero_threshold``), positive buckets (``le`` = base^(index+1)). Since every
    populated bucket is emitted, a histogram's cumulative count at any omitted grid bound equals
    its count at the next lower emitted bound, which is how the store reads layouts on merge.

Rejections (counted in ``Translation.rejected``, reasons in ``errors``)
    unspecified aggregation temporality; ``time_unix_nano`` of zero; a number point without a
    value; NaN, infinite or negative values where a counter or histogram needs a count;
    histograms whose buckets do not add up to ``count`` or whose bounds are not increasing;
    invalid ``clear_mode``; ``le``/``quantile`` attributes on histograms/summaries; a metric whose
    name sanitises to nothing or whose name is used with two types in the same request.
"""
from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass, field

from .. import nativehist
from ..clearmode import parse_clear_mode
from ..errors import ClearModeError
from ..model import (COUNTER, FAMILY, GAUGE, HISTOGRAM, INF, INFO, REPLACE, SUM, SUM_KIND,
                     SUMMARY, WINDOW_KIND, ClearMode, Exemplar, Family, Labels, NativeHistogram,
                     Point)
from .names import (attribute_value, labels_from_pairs, metric_name, utf8_labels_from_pairs,
                    utf8_metric_name)
from .sources import SourceMemory, _Source

DELTA = 1
CUMULATIVE = 2
NO_RECORDED_VALUE = 1

TARGET_INFO = "target"  # an info family; the writers expose it as target_info
UNKNOWN_SERVICE = "unknown_service"
_RESOURCE_GROUP_KEYS = frozenset({"service.name", "service.namespace", "service.instance.id"})
_CLEAR_MODE_KEYS = ("clear_mode", "clearmode")
_MAX_ERRORS = 10
_EXEMPLAR_LABEL_CHARS = 128  # OpenMetrics: the exemplar's label set is at most 128 characters


class _Reject(Exception):
    """One point refused; the message says why."""


@dataclass
class Translation:
    """The result of one request.

    ``groups``: ``(group_labels, families)`` in request order; the same group may appear more than
    once when one request carries several windowed observations of one series (each entry is one
    push). ``removals``: ``(group_labels, family_name, labels)`` of NO_RECORDED_VALUE points.
    ``rejected``/``errors``: points refused here, and why (the first few reasons).
    Call ``commit(family)`` for each family the store accepted.
    """

    groups: list = field(default_factory=list)
    rejected: int = 0
    errors: list = field(default_factory=list)
    removals: list = field(default_factory=list)
    _translator: "OtlpTranslator | None" = None
    _now: float = 0.0
    _pending: dict = field(default_factory=dict)  # id(family) -> [(source key, _Source)]

    def reject(self, count: int, message: str) -> None:
        self.rejected += count
        if len(self.errors) < _MAX_ERRORS and message not in self.errors:
            self.errors.append(message)

    def commit(self, family: Family) -> None:
        """Remember the source state behind ``family``'s points (the store accepted them)."""
        updates = self._pending.pop(id(family), None)
        if updates and self._translator is not None:
            self._translator._commit(updates, self._now)

    def commit_all(self) -> None:
        for _, families in self.groups:
            for family in families:
                self.commit(family)

    @property
    def error_message(self) -> str:
        return "; ".join(self.errors)


# ---- value helpers ---------------------------------------------------------------------------

def cumulative_at(buckets, le: float) -> float:
    """The cumulative count of a bucket list at bound ``le`` (the count at its largest bound not
    above ``le``; 0 below its first bound). Exact when every populated bucket is listed."""
    count = 0.0
    for bound, cum in buckets:
        if bound > le:
            break
        count = cum
    return count


def _grid_bound(index: int, scale: int) -> float:
    """2 ** (index / 2**scale), the same float for the same grid index whatever the source."""
    if scale >= 0:
        whole, frac = divmod(index, 1 << scale)
        return math.ldexp(2.0 ** (frac / (1 << scale)), whole)
    return math.ldexp(1.0, index << -scale)


def _safe_grid_bound(index: int, scale: int) -> float:
    try:
        return _grid_bound(index, scale)
    except OverflowError:
        return INF


def exponential_to_buckets(dp, scale: int) -> list:
    """An ExponentialHistogramDataPoint's buckets as a classic cumulative bucket list on the grid
    of ``scale`` (see the module docstring); raises _Reject on an inconsistent point."""
    s = dp.scale
    if not -10 <= s <= 20:
        raise _Reject(f"exponential histogram scale {s} is outside -10..20")
    if s > scale:
        shift = s - scale

        def upper(i: int) -> int:  # grid index of the upper end of positive bucket i
            return (i >> shift) + 1

        def lower(i: int) -> int:  # grid index of the lower end (magnitude) of bucket i
            return i >> shift
    else:
        mul = scale - s

        def upper(i: int) -> int:
            return (i + 1) << mul

        def lower(i: int) -> int:
            return i << mul
    counts: dict[float, int] = {}
    total = dp.zero_count
    neg = dp.negative
    for k, c in enumerate(neg.bucket_counts):
        if c:
            le = -_safe_grid_bound(lower(neg.offset + k), scale)
            counts[le] = counts.get(le, 0) + c
            total += c
    threshold = dp.zero_threshold
    if not (threshold >= 0 and math.isfinite(threshold)):
        raise _Reject(f"exponential histogram zero_threshold {threshold} is not a finite "
                      "non-negative number")
    if dp.zero_count:
        if threshold == 0:
            zero_le = 0.0
        else:
            u = math.ceil(math.log2(threshold) * (2.0 ** scale))
            while _safe_grid_bound(u, scale) < threshold:
                u += 1
            while _safe_grid_bound(u - 1, scale) >= threshold:
                u -= 1
            zero_le = _safe_grid_bound(u, scale)
        counts[zero_le] = counts.get(zero_le, 0) + dp.zero_count
    pos = dp.positive
    for k, c in enumerate(pos.bucket_counts):
        if c:
            le = _safe_grid_bound(upper(pos.offset + k), scale)
            counts[le] = counts.get(le, 0) + c
            total += c
    if total != dp.count:
        raise _Reject(f"exponential histogram buckets add up to {total} but count is {dp.count}")
    buckets = []
    cum = 0
    for le in sorted(counts):
        cum += counts[le]
        if le != INF:
            buckets.append((le, float(cum)))
    buckets.append((INF, float(dp.count)))
    return buckets


def explicit_to_buckets(dp) -> list:
    bounds = list(dp.explicit_bounds)
    counts = list(dp.bucket_counts)
    if not counts:
        if bounds:
            raise _Reject("histogram has explicit_bounds but no bucket_counts")
        return [(INF, float(dp.count))]
    if len(counts) != len(bounds) + 1:
        raise _Reject(f"histogram has {len(counts)} bucket_counts for {len(bounds)} "
                      "explicit_bounds (expected one more count than bounds)")
    for a, b in zip(bounds, bounds[1:]):
        if not a < b:
            raise _Reject(f"histogram explicit_bounds are not strictly increasing ({a}, {b})")
    if any(math.isnan(b) for b in bounds):
        raise _Reject("histogram explicit_bounds contain NaN")
    total = sum(counts)
    if total != dp.count:
        raise _Reject(f"histogram buckets add up to {total} but count is {dp.count}")
    buckets = []
    cum = 0
    for bound, c in zip(bounds, counts):
        cum += c
        if bound != INF:
            buckets.append((float(bound), float(cum)))
    buckets.append((INF, float(dp.count)))
    return buckets


def _exemplar(ex, value_is_count: bool = False) -> tuple[float, Exemplar] | None:
    which = ex.WhichOneof("value")
    if which is None:
        return None
    value = float(ex.as_double if which == "as_double" else ex.as_int)
    pairs = []
    if ex.trace_id:
        pairs.append(("trace_id", ex.trace_id.hex()))
    if ex.span_id:
        pairs.append(("span_id", ex.span_id.hex()))
    length = sum(len(k) + len(v) for k, v in pairs)
    reserved = {k for k, _ in pairs}
    extra = labels_from_pairs((kv.key, attribute_value(kv.value)) for kv in ex.filtered_attributes)
    for k in sorted(extra):
        if k in reserved:
            continue
        size = len(k) + len(extra[k])
        if length + size > _EXEMPLAR_LABEL_CHARS:
            continue
        length += size
        pairs.append((k, extra[k]))
    ts = ex.time_unix_nano / 1e9 if ex.time_unix_nano else None
    return ex.time_unix_nano, Exemplar(tuple(sorted(pairs)), value, ts)


def _latest_exemplar(exemplars) -> Exemplar | None:
    best = None
    for ex in exemplars:
        got = _exemplar(ex)
        if got is not None and (best is None or got[0] >= best[0]):
            best = got
    return None if best is None else best[1]


def _bucket_exemplars(exemplars, buckets) -> dict | None:
    """The latest exemplar per bucket (the smallest ``le`` not below its value)."""
    out: dict[float, tuple] = {}
    for ex in exemplars:
        got = _exemplar(ex)
        if got is None:
            continue
        value = got[1].value
        le = next((b for b, _ in buckets if value <= b), INF)
        if le not in out or got[0] >= out[le][0]:
            out[le] = got
    return {le: got[1] for le, got in out.items()} or None


def _number(dp) -> float:
    which = dp.WhichOneof("value")
    if which == "as_double":
        return dp.as_double
    if which == "as_int":
        return float(dp.as_int)
    raise _Reject("number data point has no value (as_double or as_int)")


# ---- building the output ---------------------------------------------------------------------

class _Layer:
    __slots__ = ("families", "index")

    def __init__(self):
        self.families: dict[str, Family] = {}
        self.index: dict[str, dict] = {}  # family name -> {labels: point}


class _Builder:
    """Collects points into families per group, folding duplicates of one series.

    The store refuses a push that names one series twice, and one request can legitimately do
    so (two resources of the same job, e.g. two invocations batched by a Collector). ``sum``
    points of one series add up, ``replace``/``family`` points keep the last; windowed
    observations cannot be folded, so a second one goes to another layer (another push).
    """

    def __init__(self, translation: Translation, utf8: bool = False):
        self.t = translation
        self.utf8 = utf8  # every family is marked utf8 (Family.utf8) when names are kept
        self.groups: dict[Labels, list[_Layer]] = {}

    def add(self, group: Labels, name: str, type_: str, help_: str, unit: str,
            point: Point) -> Family:
        layers = self.groups.get(group)
        if layers is None:
            layers = self.groups[group] = [_Layer()]
        for layer in layers:
            family = layer.families.get(name)
            if family is None:
                family = layer.families[name] = Family(name, type_, help_, unit, utf8=self.utf8)
                layer.index[name] = {}
            elif not family.help and help_:
                family.help = help_
            index = layer.index[name]
            existing = index.get(point.labels)
            if existing is None:
                family.points.append(point)
                index[point.labels] = point
                return family
            if _fold(existing, point, type_):
                return family
        layer = _Layer()
        layers.append(layer)
        family = layer.families[name] = Family(name, type_, help_, unit, [point], self.utf8)
        layer.index[name] = {point.labels: point}
        return family

    def finish(self) -> None:
        for group, layers in self.groups.items():
            for layer in layers:
                families = [f for f in layer.families.values() if f.points]
                if families:
                    self.t.groups.append((group, families))


def _add_buckets(a: list, b: list) -> list:
    bounds = sorted({le for le, _ in a} | {le for le, _ in b})
    return [(le, cumulative_at(a, le) + cumulative_at(b, le)) for le in bounds]


def _fold(existing: Point, point: Point, type_: str) -> bool:
    """Fold ``point`` into ``existing`` (same series, same request); False if it cannot be."""
    if existing.mode != point.mode:
        return False
    kind = existing.mode.kind
    if kind == WINDOW_KIND:
        return False
    if kind == SUM_KIND:
        if existing.native is not None and point.native is not None:
            existing.native = nativehist.add(existing.native, point.native)
            existing.count = (existing.count or 0.0) + (point.count or 0.0)
            if existing.sum is None or point.sum is None:
                existing.sum = existing.sum if point.sum is None else point.sum
            else:
                existing.sum += point.sum
            return True
        if existing.native is not None or point.native is not None:
            for p in (existing, point):
                if p.native is not None:
                    p.buckets, p.native = nativehist.to_classic(p.native, p.count), None
        if existing.buckets is not None:
            existing.buckets = _add_buckets(existing.buckets, point.buckets)
            existing.count = (existing.count or 0.0) + (point.count or 0.0)
            if existing.sum is None or point.sum is None:
                existing.sum = existing.sum if point.sum is None else point.sum
            else:
                existing.sum += point.sum
            if point.bucket_exemplars:
                existing.bucket_exemplars = {**(existing.bucket_exemplars or {}),
                                             **point.bucket_exemplars}
        elif type_ == SUMMARY:
            existing.count = (existing.count or 0.0) + (point.count or 0.0)
            existing.sum = (existing.sum or 0.0) + (point.sum or 0.0)
            existing.quantiles = point.quantiles
        else:
            existing.value += point.value
            if point.exemplar is not None:
                existing.exemplar = point.exemplar
        return True
    # replace / family: the later point is the current state
    for slot in Point.__slots__:
        setattr(existing, slot, getattr(point, slot))
    return True


def job_of(attrs: dict) -> str:
    """A resource's job: ``service.namespace/service.name``, or the name alone."""
    name = attrs.get("service.name") or UNKNOWN_SERVICE
    namespace = attrs.get("service.namespace")
    return f"{namespace}/{name}" if namespace else name


def resource_jobs(request) -> set[str]:
    """The job of every resource of an export, as ``translate`` names it (stateless: the security
    edge checks them before anything is applied)."""
    return {job_of({kv.key: attribute_value(kv.value) for kv in rm.resource.attributes})
            for rm in request.resource_metrics}


# ---- the translator --------------------------------------------------------------------------

class OtlpTranslator:
    def __init__(self, keep_instance: bool = False, source_ttl: float = 3600.0,
                 max_sources: int = 100_000, exp_histogram_scale: int | None = None,
                 rule_for=None,
                 memory: "SourceMemory | None" = None, utf8_names: bool = False):
        if exp_histogram_scale is not None and not -10 <= exp_histogram_scale <= 20:
            raise ValueError("exp_histogram_scale must be within -10..20")
        self.keep_instance = keep_instance
        self.source_ttl = source_ttl
        self.max_sources = max_sources
        self.exp_histogram_scale = exp_histogram_scale
        # The server-side rules (family name -> ClearMode or None) decide a gauge's mode when no
        # clear_mode attribute does; sums and histograms keep the mode their temporality implies.
        self.rule_for = rule_for or (lambda name: None)
        # The per-source memory is state (the state layer snapshots it and applies it in log
        # order); the translator itself only maps.
        self.memory = memory if memory is not None else SourceMemory(max_sources, source_ttl)
        # utf8_names: metric and attribute names kept as they are (names.py), families marked
        # utf8 so that the store checks their label names for collisions once escaped
        self.utf8_names = utf8_names
        self._metric_name = utf8_metric_name if utf8_names else metric_name
        self._labels = utf8_labels_from_pairs if utf8_names else labels_from_pairs

    @property
    def _sources(self) -> OrderedDict:
        return self.memory.sources

    def __len__(self) -> int:
        return len(self.memory.sources)

    def snapshot(self) -> tuple:
        return self.memory.snapshot()

    def restore(self, state: tuple) -> None:
        self.memory.restore(state)

    def reset(self) -> None:
        """Forget every source (the admin wipe: the store's aggregates are gone too)."""
        self.memory.reset()

    # ---- public ------------------------------------------------------------------------------

    def translate(self, request, now: float) -> Translation:
        t = Translation(_translator=self, _now=now)
        b = _Builder(t, self.utf8_names)
        overlay: dict = {}  # source key -> _Source computed in this request (not yet committed)
        types: dict[str, str] = {}  # family name -> type, within this request
        for rm in request.resource_metrics:
            attrs = {kv.key: attribute_value(kv.value) for kv in rm.resource.attributes}
            group = self.group_of(attrs)
            resource_key = tuple(sorted(attrs.items()))
            has_metrics = False
            for sm in rm.scope_metrics:
                scope = sm.scope
                scope_labels = []
                if scope.name:
                    scope_labels.append(("otel_scope_name", scope.name))
                if scope.version:
                    scope_labels.append(("otel_scope_version", scope.version))
                ctx = (group, resource_key, (scope.name, scope.version), scope_labels)
                for metric in sm.metrics:
                    has_metrics = True
                    self._metric(t, b, overlay, types, ctx, metric)
            if has_metrics:
                self._target_info(t, b, types, group, attrs)
        b.finish()
        return t

    def group_of(self, attrs: dict) -> Labels:
        job = job_of(attrs)
        if self.keep_instance:
            return (("instance", attrs.get("service.instance.id", "")), ("job", job))
        return (("job", job),)

    def expire(self, now: float) -> list:
        """See ``SourceMemory.expire``."""
        return self.memory.expire(now)

    # ---- internals ---------------------------------------------------------------------------

    def _commit(self, updates: list, now: float) -> None:
        self.memory.commit(updates, now)

    def _target_info(self, t: Translation, b: _Builder, types: dict, group: Labels,
                     attrs: dict) -> None:
        labels = self._labels((k, v) for k, v in attrs.items() if k not in _RESOURCE_GROUP_KEYS)
        for name, _ in group:
            labels.pop(name, None)
        if not labels:
            return
        if types.setdefault(TARGET_INFO, INFO) != INFO:
            t.reject(1, f"target_info: family '{TARGET_INFO}' is used by a metric of type "
                        f"{types[TARGET_INFO]} in this request")
            return
        b.add(group, TARGET_INFO, INFO, "Target metadata", "",
              Point(tuple(sorted(labels.items())), FAMILY, 1.0))

    def _metric(self, t: Translation, b: _Builder, overlay: dict, types: dict, ctx: tuple,
                metric) -> None:
        kind = metric.WhichOneof("data")
        if kind is None:
            return
        data = getattr(metric, kind)
        points = data.data_points
        if not points:
            return
        temporality = None
        monotonic = False
        if kind == "gauge":
            type_ = GAUGE
        elif kind == "sum":
            monotonic = data.is_monotonic
            temporality = data.aggregation_temporality
            type_ = COUNTER if monotonic else GAUGE
        elif kind in ("histogram", "exponential_histogram"):
            temporality = data.aggregation_temporality
            type_ = HISTOGRAM
        else:
            type_ = SUMMARY
        label = f'metric "{metric.name}"'
        if temporality is not None and temporality not in (DELTA, CUMULATIVE):
            t.reject(len(points), f"{label}: aggregation temporality is unspecified "
                                  f"({temporality}); expected DELTA or CUMULATIVE")
            return
        name, unit = self._metric_name(metric.name, metric.unit, counter=type_ == COUNTER,
                                       gauge=type_ == GAUGE)
        if not name:
            t.reject(len(points), f"{label}: the name is not usable as a Prometheus metric name")
            return
        known = types.setdefault(name, type_)
        if known != type_:
            t.reject(len(points), f"{label}: family '{name}' is a {known} elsewhere in this "
                                  f"request; here it would be a {type_}")
            return
        group, resource_key, scope_key, scope_labels = ctx
        reserved = {n for n, _ in group}
        for dp in points:
            try:
                self._point(t, b, overlay, kind, type_, monotonic, temporality, name, unit,
                            metric, dp, group, reserved, resource_key, scope_key, scope_labels)
            except _Reject as exc:
                t.reject(1, f"{label}: {exc}")

    def _point(self, t, b, overlay, kind, type_, monotonic, temporality, name, unit, metric, dp,
               group, reserved, resource_key, scope_key, scope_labels) -> None:
        mode: ClearMode | None = None
        pairs = []
        for kv in dp.attributes:
            if kv.key in _CLEAR_MODE_KEYS:
                text = attribute_value(kv.value)
                try:
                    mode = parse_clear_mode(text)
                except ClearModeError as exc:
                    raise _Reject(str(exc)) from None
                continue
            pairs.append((kv.key, attribute_value(kv.value)))
        labels = self._labels(pairs)
        for k, v in scope_labels:
            labels[k] = v
        for k in reserved:
            labels.pop(k, None)
        if type_ == HISTOGRAM and "le" in labels:
            raise _Reject('attribute "le" is reserved for histogram buckets')
        if type_ == SUMMARY and "quantile" in labels:
            raise _Reject('attribute "quantile" is reserved for summary quantiles')
        labels = tuple(sorted(labels.items()))
        key = (resource_key, scope_key, metric.name, kind, tuple(sorted(pairs)))
        family_help = metric.description

        if dp.flags & NO_RECORDED_VALUE:
            t.removals.append((group, name, labels))
            self._sources.pop(key, None)
            overlay.pop(key, None)
            return
        if not dp.time_unix_nano:
            raise _Reject("time_unix_nano is zero (a data point needs its timestamp)")
        if mode is not None and mode.kind == WINDOW_KIND and kind not in ("gauge", "sum"):
            raise _Reject(f'clear_mode "{mode.text}": windowed modes apply to single values, '
                          f"not to a {type_}")

        update = None
        if kind == "gauge":
            value = _number(dp)
            if mode is not None and mode.kind == WINDOW_KIND and not math.isfinite(value):
                raise _Reject(f"value {value} cannot be a windowed observation")
            point = Point(labels, mode or self.rule_for(name) or REPLACE, value)
        elif kind == "sum":
            value = _number(dp)
            if not math.isfinite(value):
                raise _Reject(f"sum value {value} is not a finite number")
            if monotonic and value < 0:
                raise _Reject(f"monotonic sum value {value} is negative")
            exemplar = _latest_exemplar(dp.exemplars) if monotonic else None
            if mode is not None and mode.kind != SUM_KIND:
                point = Point(labels, mode, value, exemplar=exemplar)
            elif temporality == DELTA:
                point = Point(labels, SUM, value, exemplar=exemplar)
            elif monotonic:
                prev = overlay.get(key) or self._sources.get(key)
                start = dp.start_time_unix_nano
                if prev is None or value < prev.value or _restarted(prev.start, start):
                    inc = value
                else:
                    inc = value - prev.value
                update = _Source(start or (prev.start if prev else 0), value)
                point = Point(labels, SUM, inc, exemplar=exemplar)
            else:
                prev = overlay.get(key) or self._sources.get(key)
                inc = value - (prev.value if prev is not None else 0.0)
                update = _Source(dp.start_time_unix_nano, value,
                                 correction=(group, name, type_, labels))
                point = Point(labels, SUM, inc)
        elif kind in ("histogram", "exponential_histogram"):
            if not (dp.count >= 0):
                raise _Reject(f"histogram count {dp.count} is negative")
            has_sum = dp.HasField("sum")
            hist_sum = dp.sum if has_sum else None
            if hist_sum is not None and not math.isfinite(hist_sum):
                raise _Reject(f"histogram sum {hist_sum} is not a finite number")
            native = None
            if kind == "histogram":
                buckets = explicit_to_buckets(dp)
            elif self.exp_histogram_scale is None:
                native = exponential_to_native(dp)
                buckets = None if native is not None else exponential_to_buckets(dp, dp.scale)
            else:
                buckets = exponential_to_buckets(dp, self.exp_histogram_scale)
            count = float(dp.count)
            if native is not None:
                self._native_point(t, b, overlay, key, mode, temporality, name, type_, unit,
                                   family_help, group, labels, dp, native, hist_sum, count)
                return
            exemplars = _bucket_exemplars(dp.exemplars, buckets)
            if mode is not None and mode.kind != SUM_KIND:
                point = Point(labels, mode, buckets=buckets, sum=hist_sum, count=count,
                              bucket_exemplars=exemplars)
            elif temporality == DELTA:
                point = Point(labels, SUM, buckets=buckets, sum=hist_sum, count=count,
                              bucket_exemplars=exemplars)
            else:
                prev = overlay.get(key) or self._sources.get(key)
                start = dp.start_time_unix_nano
                inc = None
                if prev is not None and count >= prev.count and not _restarted(prev.start, start):
                    inc = _bucket_increase(prev.buckets, buckets)
                if inc is None:  # first sight or reset: the whole value counts
                    inc_buckets, inc_sum, inc_count = buckets, hist_sum, count
                else:
                    inc_buckets = inc
                    inc_count = count - prev.count
                    inc_sum = None if hist_sum is None else hist_sum - (prev.sum or 0.0)
                update = _Source(start or (prev.start if prev else 0), buckets=tuple(buckets),
                                 sum=hist_sum, count=count)
                point = Point(labels, SUM, buckets=inc_buckets, sum=inc_sum, count=inc_count,
                              bucket_exemplars=exemplars)
        else:  # summary
            count = float(dp.count)
            if not math.isfinite(dp.sum):
                raise _Reject(f"summary sum {dp.sum} is not a finite number")
            quantiles = []
            for qv in dp.quantile_values:
                if not 0.0 <= qv.quantile <= 1.0:
                    raise _Reject(f"summary quantile {qv.quantile} is outside [0, 1]")
                quantiles.append((qv.quantile, qv.value))
            quantiles.sort()
            point = Point(labels, mode or REPLACE, sum=dp.sum, count=count, quantiles=quantiles)

        family = b.add(group, name, type_, family_help, unit, point)
        if update is not None:
            overlay[key] = update
            t._pending.setdefault(id(family), []).append((key, update))


    def _native_point(self, t, b, overlay, key, mode, temporality, name, type_, unit, help_,
                      group, labels, dp, native, hist_sum, count) -> None:
        """An exponential histogram kept exponential: as the classic ones, bucket by bucket."""
        update = None
        if mode is not None and mode.kind != SUM_KIND:
            point = Point(labels, mode, sum=hist_sum, count=count, native=native)
        elif temporality == DELTA:
            point = Point(labels, SUM, sum=hist_sum, count=count, native=native)
        else:
            prev = overlay.get(key) or self._sources.get(key)
            start = dp.start_time_unix_nano
            inc = None
            if (prev is not None and isinstance(prev.buckets, NativeHistogram)
                    and count >= prev.count and not _restarted(prev.start, start)):
                inc = nativehist.subtract(native, prev.buckets)
            if inc is None:  # first sight or reset: the whole value counts
                point = Point(labels, SUM, sum=hist_sum, count=count, native=native)
            else:
                point = Point(labels, SUM, count=count - prev.count, native=inc,
                              sum=None if hist_sum is None else hist_sum - (prev.sum or 0.0))
            update = _Source(start or (prev.start if prev else 0), buckets=native,
                             sum=hist_sum, count=count)
        family = b.add(group, name, type_, help_, unit, point)
        if update is not None:
            overlay[key] = update
            t._pending.setdefault(id(family), []).append((key, update))


def exponential_to_native(dp) -> NativeHistogram | None:
    """An ExponentialHistogramDataPoint as a native histogram: OTLP's scale is the schema (a
    finer one than 8 is downscaled to 8), its index plus one is Prometheus'. None for a scale
    coarser than -4, which Prometheus cannot hold (the caller makes it classic). Raises _Reject
    on an inconsistent point."""
    s = dp.scale
    if not -10 <= s <= 20:
        raise _Reject(f"exponential histogram scale {s} is outside -10..20")
    if s < nativehist.MIN_SCHEMA:
        return None
    threshold = dp.zero_threshold
    if not (threshold >= 0 and math.isfinite(threshold)):
        raise _Reject(f"exponential histogram zero_threshold {threshold} is not a finite "
                      "non-negative number")
    sides = []
    total = dp.zero_count
    for side in (dp.positive, dp.negative):
        buckets = {}
        for k, c in enumerate(side.bucket_counts):
            if c:
                buckets[side.offset + k + 1] = c
                total += c
        sides.append(buckets)
    if total != dp.count:
        raise _Reject(f"exponential histogram buckets add up to {total} but count is {dp.count}")
    native = NativeHistogram(s, threshold, dp.zero_count, sides[0], sides[1])
    if s > nativehist.MAX_SCHEMA:
        native = nativehist.downscale(native, nativehist.MAX_SCHEMA)
    return native


def _restarted(prev_start: int, start: int) -> bool:
    """A new start time is a reset; an unknown (zero) start time on either side is not."""
    return bool(prev_start and start and prev_start != start)


def _bucket_increase(prev: tuple, buckets: list) -> list | None:
    """The increase from ``prev`` to ``buckets`` at the new point's bounds, or None when it is
    not a continuation (a bucket decreased: a reset). Evaluating the previous layout at the new
    bounds keeps this exact when a source coarsens its layout (an SDK downscaling)."""
    out = []
    last = 0.0
    for le, cum in buckets:
        inc = cum - cumulative_at(prev, le)
        if inc < last:
            return None
        out.append((le, inc))
        last = inc
    return out
