"""Native (exponential) histogram arithmetic on ``model.NativeHistogram``: pure, no I/O.

Prometheus' conventions (``model/histogram`` in prometheus/prometheus): at schema s the base is
2 ** (2 ** -s); positive bucket i holds (base**(i-1), base**i], negative bucket i holds
[-base**i, -base**(i-1)); the zero bucket holds [-zero_threshold, zero_threshold]. Schemas run
from -4 (a factor of 65536 per bucket) to 8 (2 ** (1/256) ≈ 1.0027 per bucket).

- ``add(a, b)``: the sum of two histograms, at the smaller schema (the finer one is downscaled:
  2 ** d adjacent buckets merge into one) and the larger zero threshold (buckets that the wider
  zero bucket covers move into it, widening it to a bucket boundary as Prometheus does).
  Every observation is kept: the counts of the result add up to the counts of both.
- ``subtract(new, old)``: the increase of a cumulative stream, or None when a count went down (a
  reset); used for OTLP CUMULATIVE sources.
- ``to_classic(h, count)``: cumulative ``(le, count)`` buckets, one per populated bucket (the
  native resolution, no loss beyond the bucket width), for the text formats.
- ``from_spans``/``to_spans``: the protobuf layout (spans of consecutive buckets, counts as
  deltas or absolute floats) from and to index -> count dicts.
- ``check(h, count)``: the problem with a histogram from a push, or None.
"""
from __future__ import annotations

import math

from .model import INF, NativeHistogram

MIN_SCHEMA = -4
MAX_SCHEMA = 8


def upper_bound(index: int, schema: int) -> float:
    """base ** index, the same float for the same boundary whatever the schema it is read at."""
    try:
        if schema > 0:
            n = 1 << schema
            return math.ldexp(2.0 ** ((index & (n - 1)) / n), index >> schema)
        return math.ldexp(1.0, index << -schema)
    except OverflowError:
        return INF


def _downscale(buckets: dict, delta: int) -> dict:
    if delta == 0 or not buckets:
        return dict(buckets)
    out: dict = {}
    for i, c in buckets.items():
        j = ((i - 1) >> delta) + 1
        out[j] = out.get(j, 0) + c
    return out


def downscale(h: NativeHistogram, schema: int) -> NativeHistogram:
    """``h`` at a schema no finer than ``schema`` (itself when it is already that coarse)."""
    delta = h.schema - schema
    if delta <= 0:
        return NativeHistogram(h.schema, h.zero_threshold, h.zero_count, dict(h.positive),
                               dict(h.negative))
    return NativeHistogram(schema, h.zero_threshold, h.zero_count, _downscale(h.positive, delta),
                           _downscale(h.negative, delta))


def _widen_zero(h: NativeHistogram, threshold: float) -> None:
    """Move into the zero bucket every bucket whose lower end lies below ``threshold``; a bucket
    that straddles it raises the threshold to its upper end (so no bucket is split)."""
    if threshold <= h.zero_threshold:
        return
    while True:
        moved = False
        for side in (h.positive, h.negative):
            for i in [i for i in side if upper_bound(i - 1, h.schema) < threshold]:
                h.zero_count += side.pop(i)
                threshold = max(threshold, upper_bound(i, h.schema))
                moved = True
        if not moved:
            break
    h.zero_threshold = threshold


def _reconcile(a: NativeHistogram, b: NativeHistogram) -> tuple:
    schema = min(a.schema, b.schema)
    a, b = downscale(a, schema), downscale(b, schema)
    threshold = max(a.zero_threshold, b.zero_threshold)
    _widen_zero(a, threshold)
    _widen_zero(b, threshold)
    # widening one side may have raised its threshold past the other's
    threshold = max(a.zero_threshold, b.zero_threshold)
    _widen_zero(a, threshold)
    _widen_zero(b, threshold)
    return a, b


def _sum_buckets(x: dict, y: dict) -> dict:
    out = dict(x)
    for i, c in y.items():
        out[i] = out.get(i, 0) + c
    return out


def add(a: NativeHistogram, b: NativeHistogram) -> NativeHistogram:
    a, b = _reconcile(a, b)
    return NativeHistogram(a.schema, a.zero_threshold, a.zero_count + b.zero_count,
                           _sum_buckets(a.positive, b.positive),
                           _sum_buckets(a.negative, b.negative))


def _difference(x: dict, y: dict) -> dict | None:
    out = {}
    for i in x.keys() | y.keys():
        d = x.get(i, 0) - y.get(i, 0)
        if d < 0:
            return None
        if d:
            out[i] = d
    return out


def subtract(new: NativeHistogram, old: NativeHistogram) -> NativeHistogram | None:
    new, old = _reconcile(new, old)
    zero = new.zero_count - old.zero_count
    positive = _difference(new.positive, old.positive)
    negative = _difference(new.negative, old.negative)
    if zero < 0 or positive is None or negative is None:
        return None
    return NativeHistogram(new.schema, new.zero_threshold, zero, positive, negative)


def total(h: NativeHistogram) -> float:
    return h.zero_count + sum(h.positive.values()) + sum(h.negative.values())


def to_classic(h: NativeHistogram, count: float | None) -> list:
    """Cumulative classic buckets, ascending, +Inf last with ``count`` (or the bucket total)."""
    out = []
    cum = 0
    schema = h.schema
    for i in sorted(h.negative, reverse=True):  # the most negative first
        cum += h.negative[i]
        out.append((-upper_bound(i - 1, schema), float(cum)))
    if h.zero_count or h.zero_threshold:
        cum += h.zero_count
        out.append((h.zero_threshold, float(cum)))
    for i in sorted(h.positive):
        cum += h.positive[i]
        le = upper_bound(i, schema)
        if le == INF:
            break
        out.append((le, float(cum)))
    end = float(count) if count is not None and count >= cum else float(total(h))
    # two buckets can share a float bound only at the extremes of the float range
    deduped = []
    for le, c in out:
        if deduped and deduped[-1][0] >= le:
            deduped[-1] = (deduped[-1][0], c)
        else:
            deduped.append((le, c))
    deduped.append((INF, end))
    return deduped


def from_spans(spans, deltas=None, counts=None) -> dict:
    """Index -> count from protobuf spans and either integer deltas or absolute float counts.
    Raises ValueError when the spans and the counts do not agree."""
    values = counts if counts else deltas or ()
    need = sum(s[1] for s in spans)
    if need != len(values):
        raise ValueError(f"the spans cover {need} buckets but {len(values)} counts are given")
    out: dict = {}
    index = 0
    k = 0
    current = 0
    absolute = bool(counts)
    for n, (offset, length) in enumerate(spans):
        if n and offset < 0:
            raise ValueError(f"span {n + 1} has the negative offset {offset}")
        index += offset
        for _ in range(length):
            if absolute:
                current = values[k]
            else:
                current += values[k]
            if current < 0 or current != current:
                raise ValueError(f"bucket {index} has the count {current}")
            if current:
                out[index] = out.get(index, 0) + current
            index += 1
            k += 1
    return out


def to_spans(buckets: dict) -> tuple:
    """(spans [(offset, length)], counts in index order) for the populated buckets. Gaps of up
    to two empty buckets are filled with zeros, as client_golang does (fewer, longer spans)."""
    spans = []
    counts = []
    previous = None
    for i in sorted(buckets):
        if previous is None:
            spans.append([i, 1])
        else:
            gap = i - previous - 1
            if gap <= 2:
                counts.extend([0] * gap)
                spans[-1][1] += gap + 1
            else:
                spans.append([gap, 1])
        counts.append(buckets[i])
        previous = i
    return spans, counts


def deltas(counts: list) -> list:
    out = []
    previous = 0
    for c in counts:
        c = int(c)
        out.append(c - previous)
        previous = c
    return out


def is_integral(h: NativeHistogram, count: float | None) -> bool:
    values = [h.zero_count, *h.positive.values(), *h.negative.values()]
    if count is not None:
        values.append(count)
    return all(float(v).is_integer() for v in values)


def check(h: NativeHistogram, count: float | None) -> str | None:
    if not MIN_SCHEMA <= h.schema <= MAX_SCHEMA:
        return f"native histogram schema {h.schema} is outside {MIN_SCHEMA}..{MAX_SCHEMA}"
    if not (h.zero_threshold >= 0 and math.isfinite(h.zero_threshold)):
        return f"native histogram zero threshold {h.zero_threshold} is not a finite number >= 0"
    if not (h.zero_count >= 0 and math.isfinite(h.zero_count)):
        return f"native histogram zero count {h.zero_count} is not a finite number >= 0"
    if count is not None:
        buckets = total(h)
        if count < buckets:
            return (f"native histogram count {count} is less than the {buckets} observations "
                    "in its buckets")
    return None
