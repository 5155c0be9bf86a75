"""The ``gravel`` processor: decides every point's clear mode, then hands the batch to the store.

Receivers call it with a parsed batch and the push's grouping key. The clear mode of a point is,
first match wins: its own ``clear_mode`` label/attribute (already set by the parser), a server
rule matching the family name, the family type's default. Windowed series are exported as gauges,
so a counter or untyped family pushed with a windowed mode becomes a gauge here.
"""
from __future__ import annotations

import re

from .core.store import Store
from .errors import ConflictError, GravelError, InputError, LimitError
from .model import (COUNTER, DEFAULT_MODE, GAUGE, UNKNOWN, WINDOW_KIND, ClearMode, Family,
                    Labels)


class Rule:
    __slots__ = ("pattern", "mode")

    def __init__(self, pattern: str, mode: ClearMode):
        self.pattern = re.compile(pattern)
        self.mode = mode


class GravelProcessor:
    def __init__(self, store: Store, rules: list[Rule] | None = None):
        self.store = store
        self.rules = rules or []
        self._rule_cache: dict[str, ClearMode | None] = {}

    def push(self, group: Labels, batch: list[Family], now: float) -> None:
        """All or nothing: the whole batch is applied, or InputError/LimitError and no change."""
        windowed = self._resolve(batch)
        try:
            self.store.apply(batch, group, now)
        except ConflictError as exc:
            if not windowed:
                raise
            names = ", ".join(f"'{name}'" for name in windowed)
            raise ConflictError(f"{exc} (a windowed clear_mode makes {names} a gauge)") from exc

    def refused(self, group: Labels, now: float) -> None:
        """Record a refused push in the group's push_failure_time_seconds."""
        self.store.record_failure(group, now)

    def push_each(self, group: Labels, batch: list[Family], now: float) -> list[tuple[Family, GravelError]]:
        """Apply family by family (OTLP's partial success); return the refused families."""
        refused = []
        for family in batch:
            try:
                self.push(group, [family], now)
            except (InputError, LimitError) as exc:
                self.refused(group, now)
                refused.append((family, exc))
        return refused

    def check_capacity(self, pushes: list[tuple[Labels, list[Family]]]) -> None:
        """LimitError when these pushes together would pass the series limit (nothing applied)."""
        self.store.check_capacity(pushes)

    def delete(self, group: Labels) -> bool:
        return self.store.delete_group(group)

    def remove_series(self, group: Labels, family_name: str, labels: Labels) -> None:
        self.store.remove_series(group, family_name, labels)

    def wipe(self) -> None:
        self.store.wipe()

    def expire(self, now: float) -> int:
        return self.store.expire(now)

    def rule_mode(self, name: str) -> ClearMode | None:
        """The clear mode the first matching server rule gives a family name, or None."""
        try:
            return self._rule_cache[name]
        except KeyError:
            mode = next((r.mode for r in self.rules if r.pattern.search(name)), None)
            if len(self._rule_cache) < 100_000:
                self._rule_cache[name] = mode
            return mode

    def _resolve(self, batch: list[Family]) -> list[str]:
        """Fill in every point's mode; return the families made gauges by a windowed mode."""
        rules = self.rules
        retyped = []
        for family in batch:
            fallback = (self.rule_mode(family.name) if rules else None) or DEFAULT_MODE[family.type]
            windowed = False
            for point in family.points:
                mode = point.mode
                if mode is None:
                    point.mode = mode = fallback
                if mode.kind == WINDOW_KIND:
                    windowed = True
            if windowed and family.type in (COUNTER, UNKNOWN):
                if family.type == COUNTER:
                    family.name += "_total"  # keep the sample name the client pushed
                family.type = GAUGE
                retyped.append(family.name)
        return retyped
