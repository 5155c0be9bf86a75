"""How an incoming point folds into a stored one, per value shape and clear mode.

Pure functions on ``model.Point``: the store picks one by the point's mode and the family type.
``sum`` adds (DELTA), ``replace``/``family`` take the incoming state (CUMULATIVE / snapshot).
Summaries always take the latest quantiles: quantiles cannot be added. Native histograms add
at the smaller schema (``nativehist.add``); a native histogram and a classic one add up as
classic histograms (the native one's buckets at its own resolution).
"""
from __future__ import annotations

from .. import nativehist
from ..model import NativeHistogram, Point


def merge_buckets(stored: list, incoming: list) -> list:
    """Add two cumulative bucket lists, even with different layouts.

    On the union of bounds, each side contributes its cumulative count at its own largest bound
    not above the merged bound (a conservative read of a coarser layout), so the result is still
    cumulative (never decreases as ``le`` grows) and its +Inf equals the sum of both counts.
    """
    if len(stored) == len(incoming):
        out = []
        for (le_a, c_a), (le_b, c_b) in zip(stored, incoming):
            if le_a != le_b:
                break
            out.append((le_a, c_a + c_b))
        else:
            return out
    merged = []
    i = j = 0
    ca = cb = 0.0
    n_a, n_b = len(stored), len(incoming)
    while i < n_a or j < n_b:
        le_a = stored[i][0] if i < n_a else None
        le_b = incoming[j][0] if j < n_b else None
        if le_b is None or (le_a is not None and le_a < le_b):
            ca = stored[i][1]
            le = le_a
            i += 1
        elif le_a is None or le_b < le_a:
            cb = incoming[j][1]
            le = le_b
            j += 1
        else:
            ca = stored[i][1]
            cb = incoming[j][1]
            le = le_a
            i += 1
            j += 1
        merged.append((le, ca + cb))
    return merged


def _add(a: float | None, b: float | None) -> float | None:
    if a is None:
        return b
    if b is None:
        return a
    return a + b


def add_value(stored: Point, incoming: Point) -> None:
    stored.value += incoming.value
    if incoming.exemplar is not None:
        stored.exemplar = incoming.exemplar


def replace_value(stored: Point, incoming: Point) -> None:
    stored.value = incoming.value
    if incoming.exemplar is not None:
        stored.exemplar = incoming.exemplar


def _classic(p: Point) -> list:
    return p.buckets if p.native is None else nativehist.to_classic(p.native, p.count)


def add_buckets(stored: Point, incoming: Point) -> None:
    if stored.native is not None and incoming.native is not None:
        stored.native = nativehist.add(stored.native, incoming.native)
    else:
        stored.buckets = merge_buckets(_classic(stored), _classic(incoming))
        stored.native = None
    stored.sum = _add(stored.sum, incoming.sum)
    stored.count = _add(stored.count, incoming.count)
    if incoming.bucket_exemplars:
        if stored.bucket_exemplars is None:
            stored.bucket_exemplars = {}
        stored.bucket_exemplars.update(incoming.bucket_exemplars)


def replace_buckets(stored: Point, incoming: Point) -> None:
    stored.buckets = None if incoming.buckets is None else list(incoming.buckets)
    stored.native = _copy_native(incoming.native)
    stored.sum = incoming.sum
    stored.count = incoming.count
    if incoming.bucket_exemplars:
        stored.bucket_exemplars = dict(incoming.bucket_exemplars)


def add_summary(stored: Point, incoming: Point) -> None:
    stored.sum = _add(stored.sum, incoming.sum)
    stored.count = _add(stored.count, incoming.count)
    stored.quantiles = incoming.quantiles


def replace_summary(stored: Point, incoming: Point) -> None:
    stored.sum = incoming.sum
    stored.count = incoming.count
    stored.quantiles = incoming.quantiles


def _copy_native(h: NativeHistogram | None) -> NativeHistogram | None:
    if h is None:
        return None
    return NativeHistogram(h.schema, h.zero_threshold, h.zero_count, dict(h.positive),
                           dict(h.negative))


def copy_point(point: Point, labels: tuple) -> Point:
    """A stored copy of an incoming point, so later merges never touch the parser's objects."""
    return Point(labels, point.mode, point.value,
                 list(point.buckets) if point.buckets is not None else None,
                 point.sum, point.count, point.quantiles, point.exemplar,
                 dict(point.bucket_exemplars) if point.bucket_exemplars else None,
                 _copy_native(point.native))
