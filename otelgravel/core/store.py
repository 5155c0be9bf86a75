"""The gateway's state: families, series and groups, changed only by all-or-nothing ``apply``.

- A family has one type gateway-wide, from its first push until its last series is gone.
- A series is keyed by family name + sorted labels (the push's grouping labels included) and
  belongs to exactly one group; another group pushing the same series is a conflict.
- ``apply`` validates the whole batch before it mutates anything, and costs time in proportion
  to the batch, never to what is stored. A group remembers the series its last push of a known
  shape (``Batch.shape``) went to; while no series has been removed anywhere since
  (``generation``), the next push of that shape skips every check that only depends on its
  structure and looks nothing up. (A series added elsewhere changes nothing it checked.)
- ``max_series`` bounds what a scrape shows: the pushed series plus the two gauges of every group
  (``push_time_seconds``, ``push_failure_time_seconds``), so that pushes to ever new groups, even
  empty ones, cannot grow the store without bound; ``max_groups`` (optional) bounds the groups.
- Names are kept as pushed (UTF-8 included); the writers escape them per scrape. So that every
  scrape stays valid in every escaping scheme, a new family whose name (or a sample name it
  exposes) one scheme writes like another family's is refused, as is a series with two label
  names one scheme writes alike (``my.metric``/``my_metric``, ``a.b``/``a_b``) or a label name
  that a scheme writes with the reserved ``__`` prefix (``名前``: ``__``). Only non-legacy
  names can collide so: the check costs a legacy-only push nothing (a new legacy family looks
  its names up only while some non-legacy family exists). Like the type, it is decided by the
  store in log order, so every replica gives the same answer.
- Time comes in as ``now``; nothing here reads a clock or does I/O.
- Each series keeps its rendered exposition lines (``text``/``om``) until it changes, so a
  scrape re-renders only what was written since the last one.
"""
from __future__ import annotations

from collections import OrderedDict, deque
from itertools import repeat
from operator import attrgetter

from ..errors import ConflictError, InputError, LimitError
from ..formats.escaping import (ESCAPING_SCHEMES, escaped_exposures, is_legacy_label,
                                is_legacy_metric, label_problem)
from ..model import (COUNTER, FAMILY_KIND, GAUGEHISTOGRAM, HISTOGRAM, INFO, STATESET,
                     SUM_KIND, SUMMARY, WINDOW_KIND, Batch, Family, Labels, Point)
from . import merge
from .windows import Window

# Sample names a family of each type exposes, so that two families never write the same name.
_EXPOSED_SUFFIXES = {
    COUNTER: ("_total", "_created"),
    HISTOGRAM: ("_bucket", "_sum", "_count", "_created"),
    SUMMARY: ("", "_sum", "_count", "_created"),
    GAUGEHISTOGRAM: ("_bucket", "_gsum", "_gcount"),
    INFO: ("_info",),
}

# Clear modes a type cannot take: states cannot be added up; windows hold single values.
_REFUSED_KINDS = {INFO: (SUM_KIND, WINDOW_KIND), STATESET: (SUM_KIND, WINDOW_KIND),
                  HISTOGRAM: (WINDOW_KIND,), GAUGEHISTOGRAM: (WINDOW_KIND,), SUMMARY: (WINDOW_KIND,)}
_STATE_REFUSAL = ('clear_mode "{mode}" on {series}: a {type} value is a state (0 or 1), it cannot '
                  "be added up; use replace or family")
_WINDOW_REFUSAL = ('clear_mode "{mode}" on {series}: windowed modes apply to single values, '
                   "not to a {type}")
_MODE_REFUSALS = {INFO: _STATE_REFUSAL, STATESET: _STATE_REFUSAL, HISTOGRAM: _WINDOW_REFUSAL,
                  GAUGEHISTOGRAM: _WINDOW_REFUSAL, SUMMARY: _WINDOW_REFUSAL}


# Series every group adds to the scrape: push_time_seconds and push_failure_time_seconds.
SERIES_PER_GROUP = 2


def exposed_names(name: str, type_: str) -> tuple[str, ...]:
    return (name,) + tuple(name + s for s in _EXPOSED_SUFFIXES.get(type_, ("",)) if s)


# Snapshots (state/snapshot.py writes them from the store, restore() reads them back): groups as
# rows, each family's series as columns (keys, indexes of their groups' rows, points, windows,
# created, updated), so that restore builds a million series with a few C-level passes rather
# than a loop of lookups per series.
SNAPSHOT_VERSION = 2


def group_row(g: "Group") -> tuple:
    return g.labels, g.push_time, g.failure_time


def family_columns(f: "FamilyState", group_index: dict) -> tuple:
    series = list(f.series.values())
    return (f.name, f.type, f.help, f.unit, [s.key for s in series],
            [group_index[s.group.labels] for s in series], [s.point for s in series],
            [s.window for s in series], [s.created for s in series], [s.updated for s in series])


_UPDATED = attrgetter("updated")


def format_series(name: str, labels: Labels) -> str:
    inner = ",".join(f'{k}="{v}"' for k, v in labels)
    return f"{name}{{{inner}}}"


class Series:
    """A stored series: the aggregated point plus what the store and the writers need."""

    __slots__ = ("family", "key", "group", "point", "window", "created", "updated",
                 "text", "om", "pb", "label_text", "pb_labels")

    def __init__(self, family: "FamilyState", key: Labels, group: "Group", point: Point,
                 now: float):
        self.family = family
        self.key = key
        self.group = group
        self.point = point
        self.window: Window | None = None
        self.created = now
        self.updated = now
        self.text = None  # rendered text lines (str, or a dict per escaping scheme), None when stale
        self.om = None    # rendered OpenMetrics lines (the same), None when stale
        self.pb = None                 # encoded protobuf Metric (protobuf_exposition), or None
        self.label_text = None  # rendered label pairs (str, or a dict per scheme), set by the writers
        self.pb_labels = None  # encoded label pairs (protobuf_exposition), set once


class FamilyState:
    __slots__ = ("name", "type", "help", "unit", "series", "_sorted", "windowed", "escaped")

    def __init__(self, name: str, type_: str, help_: str, unit: str):
        self.name = name
        self.type = type_
        self.help = help_
        self.unit = unit
        self.series: dict[Labels, Series] = {}
        self._sorted: list[Series] | None = None
        self.windowed = 0  # how many of its series are windowed: those are rendered at read time
        self.escaped = 0  # bits set by the writers (1 text, 2 OpenMetrics, 4 protobuf): some series
        # keep a rendering per escaping scheme

    def sorted_series(self) -> list[Series]:
        if self._sorted is None:
            if self.type == STATESET:  # the states of one MetricPoint must stand together
                state = self.name
                order = sorted(self.series, key=lambda k: (tuple(p for p in k if p[0] != state), k))
            else:
                order = sorted(self.series)
            self._sorted = [self.series[k] for k in order]
        return self._sorted


class Group:
    """A grouping key's bookkeeping: its series per family, and its push times."""

    __slots__ = ("labels", "members", "push_time", "failure_time", "label_text", "pb_labels", "memo",
                 "utf8")

    def __init__(self, labels: Labels):
        self.labels = labels
        self.utf8 = _utf8_labels(labels)  # a label name outside the legacy set (U__ in the path)
        self.members: dict[str, set[Labels]] = {}
        self.push_time: float | None = None
        self.failure_time = 0.0  # as the Pushgateway: 0 until a push to the group is refused
        self.label_text = None  # rendered label pairs, set by the text writers
        self.pb_labels = None   # encoded label pairs, set by the protobuf writer
        # (shape, store generation, stored families, their series in push order) of the last push
        self.memo: tuple | None = None


def _with_group(labels: Labels, group: Labels, names: frozenset) -> Labels:
    """The point's labels with the grouping labels (``names``) set on top; they win on a clash."""
    if not group:
        return labels
    if not labels:
        return group
    return tuple(sorted([p for p in labels if p[0] not in names] + list(group)))


def _utf8_labels(labels: Labels) -> bool:
    for name, _ in labels:
        if not is_legacy_label(name):
            return True
    return False


def _escaped_clash(name: str, other: str, scheme: str, written: str) -> ConflictError:
    default = " (the default when a scraper names none)" if scheme == "underscores" else ""
    return ConflictError(
        f"family '{name}' would be written '{written}' for a scraper asking escaping={scheme}"
        f"{default}, as family '{other}' is: the gateway keeps names as pushed and writes them "
        "for every scheme, so it refuses names that one scheme would merge; rename one")


def _negative(name: str, key: Labels, value: float) -> InputError:
    what = "the value NaN" if value != value else f"the negative value {value}"
    return InputError(f"counter {format_series(name, key)} has {what}: counters only go up "
                      "(OpenMetrics refuses NaN and negative counters)")


def _summary_problem(name: str, key: Labels, point: Point) -> InputError | None:
    """OpenMetrics: a summary's quantile values and count are never negative (NaN quantiles are
    allowed: no observations), its count never NaN."""
    count = point.count
    if count is not None and not count >= 0:
        return InputError(f"summary {format_series(name, key)} has the count {count}: "
                          "a count is never negative nor NaN")
    for q, v in point.quantiles or ():
        if v < 0:
            return InputError(f"summary {format_series(name, key)} has the negative quantile "
                              f"value {v} for quantile {q}: OpenMetrics refuses negative quantiles")
    return None


def _histogram_problem(name: str, key: Labels, point: Point) -> InputError | None:
    """OpenMetrics counts a histogram's observations in integers (its buckets and ``_count``); a
    native histogram's count is the total of its buckets, as Prometheus validates it, unless its
    sum is NaN (NaN observations are counted in no bucket)."""
    native = point.native
    count = point.count
    if native is None:  # the push path's case: no list built
        for _, c in point.buckets:
            if c.__class__ is not int and not c.is_integer():
                return _fractional(name, key, c)
        if count is not None and count.__class__ is not int and not count.is_integer():
            return _fractional(name, key, count)
        return None
    counts = [native.zero_count, *native.positive.values(), *native.negative.values()]
    buckets = sum(counts)
    if count is not None:
        counts.append(count)
        if count != buckets and point.sum == point.sum:
            return InputError(f"native histogram {format_series(name, key)} has the count "
                              f"{count:g} but {buckets:g} "
                              "observations in its buckets (a count above them is only "
                              "allowed with a NaN sum)")
    for c in counts:
        if c.__class__ is not int and not c.is_integer():
            return _fractional(name, key, c)
    return None


def _fractional(name: str, key: Labels, c: float) -> InputError:
    return InputError(f"histogram {format_series(name, key)} has the count "
                      f"{c:g}: OpenMetrics counts observations in integers")


def _a(word: str) -> str:
    return ("an " if word[0] in "aeiou" else "a ") + word


def _names(group: Labels) -> frozenset:
    return frozenset(k for k, _ in group)


# (merge for sum, merge for replace/family) per value shape.
_SCALAR_MERGES = (merge.add_value, merge.replace_value)
_MERGES = {HISTOGRAM: (merge.add_buckets, merge.replace_buckets),
           GAUGEHISTOGRAM: (merge.add_buckets, merge.replace_buckets),
           SUMMARY: (merge.add_summary, merge.replace_summary)}


def _fold_windowed(series: Series, point: Point, now: float) -> None:
    """Merge a point into a series when either is windowed (plain into plain is done inline):
    a windowed point is observed into the series' window, a plain one ends the window."""
    stored = series.point
    mode = point.mode
    if mode.kind == WINDOW_KIND:
        window = series.window
        if window is None or stored.mode != mode:
            series.window = window = Window(mode)
        stored.mode = mode
        window.observe(point.value, now)
        return
    series.window = None  # the series changes from windowed to plain
    series.point = merge.copy_point(point, stored.labels)


class Store:
    def __init__(self, max_series: int = 1_000_000, expire_after: float = 0.0,
                 max_groups: int | None = None):
        self.max_series = max_series
        self.max_groups = max_groups  # None: only max_series bounds the groups
        self.expire_after = expire_after
        self.families: dict[str, FamilyState] = {}
        self.groups: dict[Labels, Group] = {}
        self.series_count = 0
        self.limit_refusals = 0  # pushes refused by max_series, since start
        self.expired_series = 0  # series dropped by expiry (idle or empty window), since start
        self.expired_groups = 0  # idle empty groups dropped by expiry, since start
        self._owners: dict[str, str] = {}  # exposed sample name -> family name
        # (scheme, escaped sample name) -> family name, for the families with a non-legacy name
        self._escaped: dict[tuple[str, str], str] = {}
        self._sorted_families: list[FamilyState] | None = None
        self._sorted_groups: list[Group] | None = None
        self._by_update: OrderedDict = OrderedDict()  # series (oldest update first), for expiry
        self._windowed: set[Series] = set()
        self._empty_groups: set[Group] = set()  # groups with no series: expiry looks only here
        self.generation = 0  # changes whenever a series is removed (Group.memo)

    # ---- reads -------------------------------------------------------------------------------

    def sorted_families(self) -> list[FamilyState]:
        if self._sorted_families is None:
            self._sorted_families = [self.families[n] for n in sorted(self.families)]
        return self._sorted_families

    def sorted_groups(self) -> list[Group]:
        if self._sorted_groups is None:
            self._sorted_groups = [self.groups[k] for k in sorted(self.groups)]
        return self._sorted_groups

    def get(self, name: str, labels: Labels) -> Series | None:
        family = self.families.get(name)
        return None if family is None else family.series.get(labels)

    def windowed_nbytes(self) -> int:
        return sum(s.window.nbytes() for s in self._windowed if s.window is not None)

    # ---- writes ------------------------------------------------------------------------------

    def apply(self, batch: list[Family], group_labels: Labels, now: float) -> None:
        """Fold a parsed push into the store, all or nothing; raises InputError/LimitError."""
        group = self.groups.get(group_labels)
        shape = batch.shape if type(batch) is Batch else None
        memo = group.memo if group is not None else None
        known = (shape is not None and memo is not None and memo[0] is shape
                 and memo[1] == self.generation)
        plan = (self._recheck(batch, memo) if known
                else self._validate(batch, group_labels, group is None,
                                    _utf8_labels(group_labels) if group is None else group.utf8))
        if group is None:
            group = self.groups[group_labels] = Group(group_labels)
            self._sorted_groups = None
        families = []
        for fam, family, keys, found in plan:
            families.append(self._apply_family(fam, family, keys, found, group, now))
        if shape is not None and not (known and memo[1] == self.generation):
            group.memo = (shape, self.generation, tuple(families),
                          tuple(s for entry in plan for s in entry[3]))
        group.push_time = now
        if group.members:
            self._empty_groups.discard(group)
        else:
            self._empty_groups.add(group)  # a push of metadata alone

    def check_capacity(self, pushes: list) -> None:
        """Raise LimitError when ``[(group_labels, batch), ...]`` together would pass max_series.

        For OTLP, whose families are applied one by one: the limit refuses the whole export.
        """
        new = set()
        new_groups = set()
        for group_labels, batch in pushes:
            if group_labels not in self.groups:
                new_groups.add(group_labels)
            names = _names(group_labels)
            for fam in batch:
                stored = self.families.get(fam.name)
                series = stored.series if stored is not None else {}
                for point in fam.points:
                    key = _with_group(point.labels, group_labels, names)
                    if key not in series:
                        new.add((fam.name, key))
        self._check_limit(len(new), "export", len(new_groups))

    def record_failure(self, group_labels: Labels, now: float) -> None:
        """A refused push marks an existing group; it never creates one (the store stays unchanged)."""
        group = self.groups.get(group_labels)
        if group is not None:
            group.failure_time = now

    def delete_group(self, group_labels: Labels) -> bool:
        group = self.groups.pop(group_labels, None)
        if group is None:
            return False
        self._sorted_groups = None
        for name, keys in list(group.members.items()):
            family = self.families[name]
            for key in list(keys):
                self._drop(family, family.series[key])
        self._empty_groups.discard(group)
        return True

    def remove_series(self, group_labels: Labels, name: str, labels: Labels) -> None:
        family = self.families.get(name)
        if family is None:
            return
        series = family.series.get(_with_group(labels, group_labels, _names(group_labels)))
        if series is not None and series.group.labels == group_labels:
            self._drop(family, series)

    def snapshot(self) -> dict:
        """The state as plain data (group rows, family columns), as restore() reads it."""
        index = {labels: i for i, labels in enumerate(self.groups)}
        return {"version": SNAPSHOT_VERSION,
                "groups": [group_row(g) for g in self.groups.values()],
                "families": [family_columns(f, index) for f in self.families.values()]}

    def restore(self, data: dict) -> None:
        """Replace the state with a ``snapshot()``; ValueError when it is not one (IndexError for a
        group index out of range)."""
        if not isinstance(data, dict) or data.get("version") != SNAPSHOT_VERSION:
            raise ValueError(f"not a snapshot of version {SNAPSHOT_VERSION}")
        self.wipe()
        groups = self.groups
        rows = []
        for labels, push_time, failure_time in data["groups"]:
            group = groups[labels] = Group(labels)
            group.push_time, group.failure_time = push_time, failure_time
            rows.append(group)
        if len(rows) != len(groups):
            raise ValueError("a group appears twice")
        restored = []
        for name, type_, help_, unit, keys, group_rows, points, windows, created, updated \
                in data["families"]:
            n = len(keys)
            if not (len(group_rows) == len(points) == len(windows) == len(created)
                    == len(updated) == n):
                raise ValueError(f"family {name}: columns of different lengths")
            family = self.families[name] = FamilyState(name, type_, help_, unit)
            self._claim(name, type_)
            owners = list(map(rows.__getitem__, group_rows))
            series = list(map(Series, repeat(family, n), keys, owners, points, created))
            deque(map(setattr, series, repeat("updated", n), updated), 0)
            family.series = dict(zip(keys, series))
            if len(family.series) != n:
                raise ValueError(f"family {name}: a series key appears twice")
            for i, window in enumerate(windows):
                if window is not None:
                    series[i].window = window
                    self._windowed.add(series[i])
                    family.windowed += 1
            for group, key in zip(owners, keys):
                members = group.members.get(name)
                if members is None:
                    group.members[name] = {key}
                else:
                    members.add(key)
            self.series_count += n
            if self.expire_after > 0:
                restored += series
        if self.expire_after > 0:  # oldest update first, across families
            restored.sort(key=_UPDATED)
            self._by_update.update(zip(restored, repeat(None)))
        self._empty_groups.update(g for g in groups.values() if not g.members)

    def wipe(self) -> None:
        refusals, generation = self.limit_refusals, self.generation
        expired = self.expired_series, self.expired_groups
        self.__init__(self.max_series, self.expire_after, self.max_groups)
        self.limit_refusals = refusals
        self.expired_series, self.expired_groups = expired
        self.generation = generation + 1

    def expire(self, now: float) -> int:
        """Drop series not updated for ``expire_after``, empty windows, and idle empty groups."""
        dropped = 0
        for series in [s for s in self._windowed if s.window is not None and s.window.expired(now)]:
            self._drop(series.family, series)
            dropped += 1
        if self.expire_after > 0:
            deadline = now - self.expire_after
            by_update = self._by_update
            while by_update:
                series = next(iter(by_update))
                if series.updated > deadline:
                    break
                self._drop(series.family, series)
                dropped += 1
            for group in [g for g in self._empty_groups if (g.push_time or 0) <= deadline
                          and g.failure_time <= deadline]:
                del self.groups[group.labels]
                self._empty_groups.discard(group)
                self._sorted_groups = None
                self.expired_groups += 1
        self.expired_series += dropped
        return dropped

    # ---- internals ---------------------------------------------------------------------------

    @property
    def exposed_count(self) -> int:
        """The series a scrape shows at most: pushed ones and each group's two gauges."""
        return self.series_count + SERIES_PER_GROUP * len(self.groups)

    def _check_limit(self, new_series: int, what: str, new_groups: int = 0) -> None:
        if not (new_series or new_groups):
            return
        if new_groups and self.max_groups is not None \
                and len(self.groups) + new_groups > self.max_groups:
            self.limit_refusals += 1
            raise LimitError(f"the gateway holds {len(self.groups)} groups and this {what} adds "
                             f"{new_groups}: over the limit max_groups={self.max_groups}")
        held = self.exposed_count
        adds = new_series + SERIES_PER_GROUP * new_groups
        if held + adds > self.max_series:
            self.limit_refusals += 1
            groups = (f" (push_time_seconds and push_failure_time_seconds of {new_groups} new "
                      f"group{'s' if new_groups > 1 else ''} included)" if new_groups else "")
            raise LimitError(f"the gateway exposes {held} series and this {what} adds {adds}"
                             f"{groups}: over the limit max_series={self.max_series}")

    def _validate(self, batch: list[Family], group_labels: Labels, new_group: bool,
                  group_utf8: bool = False) -> list:
        """``[(pushed family, stored family or None, keys, stored series or None per point)]``, or
        the first refusal."""
        plan = []
        new_series = 0
        new_owners: dict[str, str] = {}
        new_escaped: dict[tuple[str, str], str] = {}
        names = None
        for fam in batch:
            points = fam.points
            if not points:
                continue  # metadata alone creates nothing
            existing = self.families.get(fam.name)
            if existing is not None:
                if existing.type != fam.type:
                    raise ConflictError(
                        f"family '{fam.name}' is {_a(existing.type)} in the gateway; "
                        f"this push sends it as {_a(fam.type)}")
                stored = existing.series
            else:
                for exposed in exposed_names(fam.name, fam.type):
                    owner = self._owners.get(exposed) or new_owners.get(exposed)
                    if owner is not None and owner != fam.name:
                        raise ConflictError(
                            f"family '{fam.name}' ({fam.type}) would expose '{exposed}', "
                            f"which family '{owner}' already exposes")
                    new_owners[exposed] = fam.name
                if self._escaped or new_escaped or not is_legacy_metric(fam.name):
                    self._check_escaped(fam, new_owners, new_escaped)
                stored = {}
            check_labels = fam.utf8 or group_utf8
            refused_kinds = _REFUSED_KINDS.get(fam.type, ())
            is_counter = fam.type == COUNTER
            is_summary = fam.type == SUMMARY
            is_histogram = fam.type == HISTOGRAM or fam.type == GAUGEHISTOGRAM
            seen = set() if len(points) > 1 else None
            keys = []
            found = []
            for point in points:
                key = point.labels
                if not key:
                    key = group_labels
                elif group_labels:
                    if names is None:
                        names = _names(group_labels)
                    key = _with_group(key, group_labels, names)
                if seen is not None:
                    if key in seen:
                        raise InputError(f"series {format_series(fam.name, key)} appears twice "
                                         "in the push once the grouping labels are applied")
                    seen.add(key)
                series = stored.get(key)
                if series is None:
                    new_series += 1
                    if check_labels:
                        problem = label_problem(key)
                        if problem is not None:
                            raise InputError(f"series {format_series(fam.name, key)}: {problem}")
                elif series.group.labels != group_labels:
                    raise ConflictError(
                        f"series {format_series(fam.name, key)} is already pushed by group "
                        f"{format_series('', series.group.labels)}; a series belongs to one group")
                if refused_kinds and point.mode.kind in refused_kinds:
                    raise InputError(_MODE_REFUSALS[fam.type].format(
                        mode=point.mode.text, series=format_series(fam.name, key), type=fam.type))
                if is_counter and not point.value >= 0:  # NaN too
                    raise _negative(fam.name, key, point.value)
                if is_summary or is_histogram:
                    problem = (_summary_problem if is_summary else _histogram_problem)(
                        fam.name, key, point)
                    if problem is not None:
                        raise problem
                keys.append(key)
                found.append(series)
            plan.append((fam, existing, keys, found))
        self._check_limit(new_series, "push", 1 if new_group else 0)
        return plan

    def _check_escaped(self, fam: Family, new_owners: dict, new_escaped: dict) -> None:
        """Refuse a new family that a scheme would write like another family (``_validate``
        calls it while a non-legacy name is around); note this one's escaped names."""
        name = fam.name
        exposed = exposed_names(name, fam.type)
        if is_legacy_metric(name):  # unchanged by every scheme: only escaped names can clash
            for scheme in ESCAPING_SCHEMES:
                for sample in exposed:
                    other = self._escaped.get((scheme, sample)) or new_escaped.get((scheme, sample))
                    if other is not None and other != name:
                        raise _escaped_clash(other, name, scheme, sample)
            return
        owners = self._owners
        for key in escaped_exposures(name, exposed):
            written = key[1]
            other = (self._escaped.get(key) or new_escaped.get(key) or owners.get(written)
                     or new_owners.get(written))
            if other is not None and other != name:
                raise _escaped_clash(name, other, key[0], written)
            new_escaped[key] = name

    def _claim(self, name: str, type_: str) -> None:
        """Note the sample names a stored family exposes, raw and (non-legacy) escaped."""
        exposed = exposed_names(name, type_)
        for sample in exposed:
            self._owners[sample] = name
        if not is_legacy_metric(name):
            for key in escaped_exposures(name, exposed):
                self._escaped[key] = name

    def _release(self, name: str, type_: str) -> None:
        exposed = exposed_names(name, type_)
        for sample in exposed:
            if self._owners.get(sample) == name:
                del self._owners[sample]
        if not is_legacy_metric(name):
            for key in escaped_exposures(name, exposed):
                if self._escaped.get(key) == name:
                    del self._escaped[key]

    def _recheck(self, batch: Batch, memo: tuple) -> list:
        """``_validate``'s plan for a batch of the shape the group pushed last, the store unchanged
        since: only what depends on the values is checked (a counter never goes down)."""
        _, _, families, series = memo
        plan = []
        start = 0
        for fam, family in zip((f for f in batch if f.points), families):
            end = start + len(fam.points)
            found = series[start:end]
            start = end
            if fam.type == COUNTER:
                for point, stored in zip(fam.points, found):
                    if not point.value >= 0:  # NaN too
                        raise _negative(fam.name, stored.key, point.value)
            elif fam.type == SUMMARY or fam.type == HISTOGRAM or fam.type == GAUGEHISTOGRAM:
                check = _summary_problem if fam.type == SUMMARY else _histogram_problem
                for point, stored in zip(fam.points, found):
                    problem = check(fam.name, stored.key, point)
                    if problem is not None:
                        raise problem
            plan.append((fam, family, None, found))
        return plan

    def _apply_family(self, fam: Family, family: FamilyState | None, keys: list | None,
                      found: list, group: Group, now: float) -> FamilyState:
        """Fold one family's points in; the series created are filled into ``found``."""
        if family is None:
            family = self.families[fam.name] = FamilyState(fam.name, fam.type, fam.help, fam.unit)
            self._claim(fam.name, fam.type)
            self._sorted_families = None
        else:
            if fam.help:
                family.help = fam.help
            if fam.unit:
                family.unit = fam.unit
        members = None
        by_update = self._by_update if self.expire_after > 0 else None
        family_snapshot = False
        merges = _MERGES.get(fam.type, _SCALAR_MERGES)
        created = False
        for point, series, key in zip(fam.points, found, keys or found):
            mode = point.mode
            if series is None:
                created = True
                if members is None:
                    members = group.members.get(fam.name)
                    if members is None:
                        members = group.members[fam.name] = set()
                stored = merge.copy_point(point, key)
                series = Series(family, key, group, stored, now)
                family.series[key] = series
                family._sorted = None
                members.add(key)
                self.series_count += 1
                if mode.kind == WINDOW_KIND:
                    series.window = Window(mode)
                    series.window.observe(point.value, now)
                    self._windowed.add(series)
                    family.windowed += 1
                if by_update is not None:
                    by_update[series] = None
            else:
                if series.window is None and mode.kind != WINDOW_KIND:  # plain into plain
                    stored = series.point
                    stored.mode = mode
                    merges[mode.kind != SUM_KIND](stored, point)
                else:
                    was_windowed = series.window is not None
                    _fold_windowed(series, point, now)
                    if was_windowed and series.window is None:
                        self._windowed.discard(series)
                        family.windowed -= 1
                    elif not was_windowed and series.window is not None:
                        self._windowed.add(series)
                        family.windowed += 1
                series.updated = now
                series.text = series.om = series.pb = None
                if by_update is not None:
                    by_update.move_to_end(series)
            if mode.kind == FAMILY_KIND:
                family_snapshot = True
        if created:
            found[:] = [family.series[key] for key in keys]
        if family_snapshot:
            members = group.members[fam.name]
            pushed = {series.key for series in found}
            series_map = family.series
            for key in [k for k in members if k not in pushed]:
                series = series_map[key]
                if series.point.mode.kind == FAMILY_KIND:
                    self._drop(family, series)
        return family

    def _drop(self, family: FamilyState, series: Series) -> None:
        self.generation += 1
        del family.series[series.key]
        family._sorted = None
        self.series_count -= 1
        self._by_update.pop(series, None)
        if series in self._windowed:
            self._windowed.discard(series)
            family.windowed -= 1
        members = series.group.members.get(family.name)
        if members is not None:
            members.discard(series.key)
            if not members:
                del series.group.members[family.name]
                if not series.group.members:
                    self._empty_groups.add(series.group)
        if not family.series:
            del self.families[family.name]
            self._release(family.name, family.type)
            self._sorted_families = None
