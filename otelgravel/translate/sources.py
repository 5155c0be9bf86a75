"""The OTLP per-source memory: what turns CUMULATIVE streams into increments.

This is state, not mapping: an export's increments depend on the exports applied before it. So it
lives apart from the translator (``otlp.py``, which only maps names and kinds), is owned by the
state layer (``otelgravel.state``), applied in log order with the record that changes it, and
kept in snapshots. Bounded (``max_sources``, least recently updated first out) and forgotten
``source_ttl`` seconds after a source's last update (by record time).
"""
from __future__ import annotations

from collections import OrderedDict

from ..model import SUM, Family, Labels, Point


class _Source:
    """What the translator remembers of one cumulative stream."""

    __slots__ = ("start", "value", "buckets", "sum", "count", "seen", "correction")

    def __init__(self, start: int, value: float = 0.0, buckets: tuple | None = None,
                 sum: float | None = None, count: float = 0.0, correction: tuple | None = None):
        self.start = start
        self.value = value
        self.buckets = buckets
        self.sum = sum
        self.count = count
        self.seen = 0.0
        # For non-monotonic cumulative sums: (group, family name, type, labels) to undo the
        # source's contribution when it goes away.
        self.correction = correction


class SourceMemory:
    __slots__ = ("sources", "corrections", "max_sources", "source_ttl")

    def __init__(self, max_sources: int = 100_000, source_ttl: float = 3600.0):
        self.max_sources = max_sources
        self.source_ttl = source_ttl
        # Least recently updated first, so expiry and eviction both pop from the front.
        self.sources: OrderedDict = OrderedDict()
        self.corrections: list = []  # evicted non-monotonic sources awaiting expire()

    def __len__(self) -> int:
        return len(self.sources)

    def snapshot(self) -> tuple:
        return list(self.sources.items()), list(self.corrections)

    def restore(self, state: tuple) -> None:
        sources, corrections = state
        self.sources = OrderedDict(sources)
        self.corrections = list(corrections)

    def reset(self) -> None:
        self.sources.clear()
        self.corrections.clear()

    def commit(self, updates: list, now: float) -> None:
        sources = self.sources
        for key, src in updates:
            if src is None:
                sources.pop(key, None)
                continue
            src.seen = now
            sources[key] = src
            sources.move_to_end(key)
        while len(sources) > self.max_sources:
            _, old = sources.popitem(last=False)
            if old.correction is not None:
                self.corrections.append(old)

    def expire(self, now: float) -> list:
        """Forget sources not updated for ``source_ttl``; returns ``(group, families)`` with the
        negative ``sum`` corrections that remove what expired (or evicted) non-monotonic
        cumulative sources contributed. The caller pushes them."""
        dead = self.corrections
        self.corrections = []
        deadline = now - self.source_ttl
        sources = self.sources
        while sources:
            key, src = next(iter(sources.items()))
            if src.seen > deadline:
                break
            del sources[key]
            if src.correction is not None:
                dead.append(src)
        if not dead:
            return []
        by_group: dict[Labels, dict[str, Family]] = {}
        for src in dead:
            group, name, type_, labels = src.correction
            families = by_group.setdefault(group, {})
            family = families.get(name)
            if family is None:
                family = families[name] = Family(name, type_)
            for p in family.points:
                if p.labels == labels:
                    p.value -= src.value
                    break
            else:
                family.points.append(Point(labels, SUM, -src.value))
        return [(group, list(families.values())) for group, families in by_group.items()]
