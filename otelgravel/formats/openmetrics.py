"""Parse OpenMetrics 1.0 text into a Batch, as strictly as the OpenMetrics conformance suite asks.

The text is read one family at a time. Metadata (``HELP``, ``TYPE``, ``UNIT``) opens a family or
adds to the open one; a sample either belongs to the open family (its name is one the family's
type allows: ``x_total``/``x_created`` for a counter ``x``, ``x_bucket``/``x_count``/``x_sum``
for a histogram, ...) or opens a new untyped family named after it. A family closed once cannot
come back, and no family may use a name another one uses: that is how interleaving, metadata
after samples and clashing names are caught.

Within a family, the lines of one series are together. A series may carry several MetricPoints
only with timestamps that never decrease; the batch keeps the last one. Each MetricPoint is
checked when it ends: +Inf bucket present and equal to ``_count``, cumulative buckets, ``_sum``
and ``_count`` together, no ``_sum`` beside negative buckets, counter-like values neither NaN
nor negative, and so on. ``_created`` samples and timestamps are checked and dropped.

Speed: a sample line without escapes or exemplar is taken apart by one regular expression; any
other goes through the careful path that also words the errors.
"""
from __future__ import annotations

import re

from ..errors import ParseError
from ..model import (COUNTER, GAUGE, GAUGEHISTOGRAM, HISTOGRAM, INF, INFO, STATESET, SUMMARY,
                     UNKNOWN, Exemplar, Family, Point)
from ._labels import (METRIC_NAME, QUOTED, check_unique, found, merge_mode, parse_label_set,
                      read_quoted, series_labels, series_text, unescape)
from .escaping import LEGACY_SEEN, label_problem, legacy_labels
from ._lines import decode, fast_line, fast_sample
from ._numbers import REAL, parse_float, parse_real

__all__ = ["parse_openmetrics"]

_FAST = fast_line(trailing_comma=False, timestamp=REAL)
_META = re.compile(rf"# (HELP|TYPE|UNIT) ({METRIC_NAME}|{QUOTED}) (.*)")
_NAME = re.compile(METRIC_NAME)
_EOF = "# EOF"
_EXEMPLAR_MAX_CHARS = 128

_TYPES = {t: t for t in (COUNTER, GAUGE, HISTOGRAM, GAUGEHISTOGRAM, SUMMARY, INFO, STATESET,
                         UNKNOWN)}
# What a sample name is to its family; the string roles double as MetricPoint keys.
_VALUE, _CREATED, _SUM, _COUNT = "value", "_created", "_sum", "_count"
_BUCKET, _QUANTILE = "_bucket", "quantile"
_SUFFIXES = {
    COUNTER: {"_total": _VALUE, "_created": _CREATED},
    GAUGE: {"": _VALUE},
    UNKNOWN: {"": _VALUE},
    STATESET: {"": _VALUE},
    INFO: {"_info": _VALUE},
    HISTOGRAM: {"_bucket": _BUCKET, "_count": _COUNT, "_sum": _SUM, "_created": _CREATED},
    GAUGEHISTOGRAM: {"_bucket": _BUCKET, "_gcount": _COUNT, "_gsum": _SUM},
    SUMMARY: {"": _QUANTILE, "_count": _COUNT, "_sum": _SUM, "_created": _CREATED},
}
# The label that sets a bucket or quantile apart: only on those samples, never on the others.
_SPECIAL = {HISTOGRAM: "le", GAUGEHISTOGRAM: "le", SUMMARY: "quantile"}


def parse_openmetrics(body: bytes) -> list[Family]:
    return _Parser().parse(decode(body))


class _Family:
    __slots__ = ("name", "type", "help", "unit", "unit_line", "line", "roles", "sampled",
                 "series", "current", "points", "utf8")

    def __init__(self, name: str, line: int):
        self.name = name
        self.type = None
        self.help = None
        self.unit = None
        self.unit_line = line
        self.line = line
        self.roles = {name: _VALUE}   # sample name -> role, final once a sample is seen
        self.sampled = False
        self.series = set()           # labels of the series seen, to refuse a split series
        self.current = None           # the _Series being read
        self.points = []
        self.utf8 = False             # a label name outside the legacy set (model.Family.utf8)


class _Series:
    """The lines of one series: the MetricPoint being read and the rules it must meet."""
    __slots__ = ("labels", "mode", "line", "stamped", "ts", "seen", "value", "exemplar",
                 "buckets", "bucket_exemplars", "sum", "count", "quantiles")

    def __init__(self, labels: tuple, line: int, stamped: bool):
        self.labels = labels
        self.mode = None
        self.line = line
        self.stamped = stamped  # every sample has a timestamp, or none has
        self.ts = None
        self.next_point()

    def next_point(self) -> None:
        self.seen = set()       # what the current MetricPoint has: roles, le and quantile values
        self.value = self.exemplar = self.sum = self.count = self.bucket_exemplars = None
        self.buckets = []
        self.quantiles = {}


class _Parser:
    def __init__(self):
        self.batch: list[Family] = []
        self.family: _Family | None = None
        self.opened: set[str] = set()
        self.claims: dict[str, str] = {}   # every name a closed family uses -> that family

    def parse(self, text: str) -> list[Family]:
        lines = (text[:-1] if text.endswith("\n") else text).split("\n")
        if lines[-1] != _EOF:
            if _EOF in lines:
                raise ParseError("text after '# EOF'", lines.index(_EOF) + 2)
            raise ParseError("the body must end with '# EOF'", len(lines))
        fast = _FAST.fullmatch
        lineno = 0
        for line in lines[:-1]:
            lineno += 1
            match = fast(line)
            if match is not None:
                name, pairs, inspect, value, ts_token = fast_sample(match, lineno)
                ts = None if ts_token is None else float(ts_token)
                if ts == INF or ts == -INF:
                    raise ParseError(f"invalid timestamp '{ts_token}': out of range", lineno)
                self._sample(name, pairs, inspect, value, ts, None, lineno)
            elif not line:
                raise ParseError("blank line (OpenMetrics allows none)", lineno)
            elif line[0] == "#":
                if line == _EOF:
                    raise ParseError("text after '# EOF'", lineno + 1)
                self._metadata(line, lineno)
            else:
                sample = _read_sample(line, lineno)
                self._sample(*sample, lineno)
                for pair in sample[1]:  # a quoted name may be outside the legacy set
                    if pair[0] not in LEGACY_SEEN and not legacy_labels(sample[1]):
                        self.family.utf8 = True
                        break
        self._close()
        return self.batch

    # ---- families ------------------------------------------------------------------------------

    def _open(self, name: str, lineno: int, why: str) -> _Family:
        self._close()
        if name in self.opened:
            raise ParseError(f"{why} family '{name}', whose lines came earlier: the lines of a "
                             "family must be together", lineno)
        owner = self.claims.get(name)
        if owner is not None:
            raise ParseError(f"{why} '{name}', a name that family '{owner}' uses: the lines of "
                             "a family must be together and names must not clash", lineno)
        self.opened.add(name)
        family = self.family = _Family(name, lineno)
        return family

    def _close(self) -> None:
        family = self.family
        if family is None:
            return
        self.family = None
        if family.current is not None:
            family.points.append(_point(family, family.current))
        typed = family.type is not None
        if not typed:
            family.type = UNKNOWN
        if family.unit:
            if family.type in (INFO, STATESET):
                raise ParseError(f"{family.type} '{family.name}' cannot have a unit",
                                 family.unit_line)
            if not family.name.endswith("_" + family.unit):
                raise ParseError(f"unit '{family.unit}' must be the suffix of the family name "
                                 f"'{family.name}'", family.unit_line)
        for used in (family.name, *family.roles):
            owner = self.claims.get(used)
            if owner is not None and owner != family.name:
                raise ParseError(f"{family.type} '{family.name}' uses the name '{used}', which "
                                 f"family '{owner}' uses too", family.line)
            self.claims[used] = family.name
        if typed or family.sampled:
            self.batch.append(Family(family.name, family.type, family.help or "",
                                     family.unit or "", family.points, family.utf8))

    def _metadata(self, line: str, lineno: int) -> None:
        match = _META.fullmatch(line)
        if match is None:
            keyword = line[2:6]
            if line[:2] == "# " and keyword in ("HELP", "TYPE", "UNIT") and line[6:8] == ' "':
                read_quoted(line, 7, lineno, True, f"metric name in the {keyword} line")
            if line[:2] == "# " and keyword in ("HELP", "TYPE", "UNIT"):
                raise ParseError(f"malformed {keyword} line: expected '# {keyword} <name> "
                                 f"<{'text' if keyword == 'HELP' else keyword.lower()}>' with "
                                 "single spaces", lineno)
            raise ParseError("invalid comment: OpenMetrics allows only '# HELP', '# TYPE', "
                             "'# UNIT' and '# EOF'", lineno)
        keyword, name, text = match.groups()
        if name[0] == '"':  # a UTF-8 name: # TYPE "my.metric" counter
            name = read_quoted(name, 0, lineno, True, f"metric name in the {keyword} line")[0]
        family = self.family
        if family is None or family.name != name:
            family = self._open(name, lineno, f"{keyword} line for")
        if family.sampled:
            raise ParseError(f"{keyword} line for family '{name}' after its samples", lineno)
        if keyword == "HELP":
            if family.help is not None:
                raise ParseError(f"second HELP line for family '{name}'", lineno)
            family.help = unescape(text, lineno, True, "HELP text")
        elif keyword == "TYPE":
            if family.type is not None:
                raise ParseError(f"second TYPE line for family '{name}'", lineno)
            type_ = _TYPES.get(text)
            if type_ is None:
                raise ParseError(f"unknown metric type '{text}' (expected one of "
                                 f"{', '.join(_TYPES)})", lineno)
            family.type = type_
            family.roles = {name + suffix: role for suffix, role in _SUFFIXES[type_].items()}
        else:
            if family.unit is not None:
                raise ParseError(f"second UNIT line for family '{name}'", lineno)
            family.unit = text
            family.unit_line = lineno

    # ---- samples -------------------------------------------------------------------------------

    def _sample(self, name: str, pairs: list, inspect: bool, value: float, ts: float | None,
                exemplar: Exemplar | None, lineno: int) -> None:
        family = self.family
        role = family.roles.get(name) if family is not None else None
        if role is None:
            if family is not None and name == family.name:
                raise ParseError(f"sample '{name}' is not part of {family.type} '{name}': "
                                 f"expected {' or '.join(family.roles)}", lineno)
            family = self._open(name, lineno, "sample of")
            role = _VALUE
        family.sampled = True
        type_ = family.type
        special = _SPECIAL.get(type_)
        labels, mode, special_text = series_labels(pairs, lineno, inspect, special)
        if special is None:
            key = role
        elif role is _BUCKET or role is _QUANTILE:
            if special_text is None:
                raise ParseError(f"{series_text(name, labels)} of {type_} '{family.name}' has "
                                 f"no '{special}' label", lineno)
            key = _bound(special, special_text, lineno)
        elif special_text is not None:
            raise ParseError(f"{series_text(name, labels)} must not have a '{special}' label",
                             lineno)
        else:
            key = role

        series = family.current
        if series is None or series.labels != labels:
            if labels in family.series:
                raise ParseError(f"the lines of series {series_text(name, labels)} are not "
                                 "together", lineno)
            if series is not None:
                family.points.append(_point(family, series))
            series = family.current = _Series(labels, lineno, ts is not None)
            family.series.add(labels)
        elif series.stamped != (ts is not None):
            raise ParseError(f"some samples of series {series_text(name, labels)} have a "
                             "timestamp and others do not", lineno)
        if mode is not None:
            series.mode = merge_mode(series.mode, mode, lineno)
        if ts is not None:
            if series.ts is not None and ts < series.ts:
                raise ParseError(f"timestamp of {series_text(name, labels)} goes backwards",
                                 lineno)
            if series.seen and (ts != series.ts or key in series.seen):
                _check_point(family, series)
                series.next_point()
            series.ts = ts
        elif key in series.seen:
            raise ParseError(f"duplicate sample {series_text(name, labels)}"
                             + (f" {special}=\"{special_text}\"" if special_text else ""), lineno)
        series.seen.add(key)

        if exemplar is not None and not (role is _BUCKET or role is _VALUE and type_ == COUNTER):
            raise ParseError("exemplars are allowed only on counter _total and histogram _bucket "
                             f"samples, not on {series_text(name, labels)}", lineno)
        if role is _VALUE:
            if type_ != GAUGE and type_ != UNKNOWN:
                _check_value(family.name, type_, name, labels, value, lineno)
            series.value = value
            series.exemplar = exemplar
        elif role is _BUCKET:
            if value != value or value < 0:
                raise ParseError(f"bucket {series_text(name, labels)} le=\"{special_text}\" must "
                                 f"be a count, not {_text(value)}", lineno)
            buckets = series.buckets
            if buckets:
                if key < buckets[-1][0]:
                    raise ParseError(f"bucket le=\"{special_text}\" of "
                                     f"{series_text(name, labels)} comes after a higher one: "
                                     "buckets must be in increasing 'le' order", lineno)
                if value < buckets[-1][1]:
                    raise ParseError(f"bucket le=\"{special_text}\" of "
                                     f"{series_text(name, labels)} has {_text(value)}, less than "
                                     "a lower bucket: buckets are cumulative", lineno)
            buckets.append((key, value))
            if exemplar is not None:
                if series.bucket_exemplars is None:
                    series.bucket_exemplars = {}
                series.bucket_exemplars[key] = exemplar
        elif role is _QUANTILE:
            if value < 0:
                raise ParseError(f"quantile value of {series_text(name, labels)} must not be "
                                 "negative", lineno)
            series.quantiles[key] = value
        elif role is not _CREATED:
            if value != value or (value < 0 and (role is _COUNT or type_ == SUMMARY)):
                raise ParseError(f"{series_text(name, labels)} must not be {_text(value)}",
                                 lineno)
            if role is _SUM:
                series.sum = value
            else:
                series.count = value


def _check_value(family_name: str, type_: str, name: str, labels: tuple, value: float,
                 lineno: int) -> None:
    if type_ == COUNTER:
        if value != value or value < 0:
            raise ParseError(f"counter {series_text(name, labels)} must not be {_text(value)}",
                             lineno)
    elif type_ == INFO:
        if value != 1:
            raise ParseError(f"info {series_text(name, labels)} must be 1, not {_text(value)}",
                             lineno)
    elif type_ == STATESET:
        if value != 0 and value != 1:
            raise ParseError(f"stateset {series_text(name, labels)} must be 0 or 1, not "
                             f"{_text(value)}", lineno)
        if not any(label == family_name for label, _ in labels):
            raise ParseError(f"stateset {series_text(name, labels)} has no '{family_name}' "
                             "label naming its state", lineno)


def _bound(special: str, text: str, lineno: int) -> float:
    bound = parse_float(text)
    if bound is None or bound != bound:
        raise ParseError(f"invalid '{special}' value '{text}' (expected a number)", lineno)
    if (bound == INF or bound == -INF) and text not in ("+Inf", "-Inf"):
        raise ParseError(f"'{special}' value '{text}' must be written +Inf or -Inf", lineno)
    if special == "quantile" and not 0 <= bound <= 1:
        raise ParseError(f"quantile '{text}' is not between 0 and 1", lineno)
    return bound


def _check_point(family: _Family, series: _Series) -> None:
    """The rules a complete MetricPoint meets, beyond those of each of its lines."""
    type_ = family.type
    if type_ == COUNTER:
        problem = None if series.value is not None else "has no _total sample"
    elif type_ == HISTOGRAM or type_ == GAUGEHISTOGRAM:
        problem = _histogram_problem(type_, series)
    else:
        return
    if problem is not None:
        raise ParseError(f"{type_} {series_text(family.name, series.labels)} {problem}",
                         series.line)


def _histogram_problem(type_: str, series: _Series) -> str | None:
    buckets = series.buckets
    g = "" if type_ == HISTOGRAM else "g"
    if not buckets or buckets[-1][0] != INF:
        return "has no +Inf bucket"
    if series.count is not None and series.count != buckets[-1][1]:
        return (f"has _{g}count {_text(series.count)} but its +Inf bucket is "
                f"{_text(buckets[-1][1])}")
    if (series.sum is None) != (series.count is None):
        return f"must have both _{g}sum and _{g}count or neither"
    negative = buckets[0][0] < 0
    if negative and series.sum is not None and type_ == HISTOGRAM:
        return "has buckets below zero, so it must not have a _sum"
    if not negative and series.sum is not None and series.sum < 0:
        return f"has a negative _{g}sum but no bucket below zero"
    return None


def _point(family: _Family, series: _Series) -> Point:
    _check_point(family, series)
    type_ = family.type
    if type_ == HISTOGRAM or type_ == GAUGEHISTOGRAM:
        buckets = series.buckets
        return Point(series.labels, series.mode, buckets=buckets, sum=series.sum,
                     count=buckets[-1][1] if series.count is None else series.count,
                     bucket_exemplars=series.bucket_exemplars)
    if type_ == SUMMARY:
        return Point(series.labels, series.mode, sum=series.sum, count=series.count,
                     quantiles=sorted(series.quantiles.items()))
    return Point(series.labels, series.mode, series.value, exemplar=series.exemplar)


def _text(value: float) -> str:
    return repr(value) if value == value else "NaN"


def _read_sample(line: str, lineno: int) -> tuple:
    """The careful path: escapes, exemplars, quoted names (``{"a.b","c.d"="1"} 1``), and a
    worded error for anything else."""
    if line[0] == "{":
        name = None
        pos = 0
    else:
        match = _NAME.match(line)
        if match is None:
            if line[0] == '"':
                raise ParseError('a quoted metric name goes inside the braces, first: '
                                 '{"name",labels...} (OpenMetrics)', lineno)
            raise ParseError(f"expected a metric name, {found(line, 0)}", lineno)
        name = match.group()
        pos = match.end()
    pairs = []
    if line[pos:pos + 1] == "{":
        pairs, pos, name = parse_label_set(line, pos + 1, lineno, True, name)
    if name is None:
        raise ParseError('missing metric name: expected name{...} or {"name",...}', lineno)
    if line[pos:pos + 1] != " ":
        raise ParseError(f"expected a space before the value of '{name}', {found(line, pos)}",
                         lineno)
    value, pos = _number(line, pos + 1, lineno, "value", parse_float)
    ts = None
    exemplar = None
    if pos < len(line):
        if not line.startswith(" # ", pos):
            if line.startswith(" #", pos):
                raise ParseError("malformed exemplar: expected ' # {labels} value'", lineno)
            ts, pos = _number(line, pos + 1, lineno, "timestamp", parse_real)
        if pos < len(line):
            if not line.startswith(" # ", pos):
                raise ParseError(f"unexpected text after the timestamp: {line[pos:]!r}", lineno)
            exemplar = _exemplar(line, pos + 3, lineno)
    return name, pairs, True, value, ts, exemplar


def _number(line: str, pos: int, lineno: int, what: str, parse) -> tuple[float, int]:
    """The token from ``pos`` (just after a single space) to the next space or the end, read by
    ``parse``, and the index after it; ``what`` ("value", "exemplar timestamp"...) words errors."""
    end = line.find(" ", pos)
    if end < 0:
        end = len(line)
    if end == pos:
        article = "an" if what[0] in "aeiou" else "a"
        raise ParseError(f"expected {article} {what} after a single space, {found(line, pos)}",
                         lineno)
    token = line[pos:end]
    number = parse(token)
    if number is None:
        raise ParseError(f"invalid {what} '{token}'", lineno)
    return number, end


def _exemplar(line: str, pos: int, lineno: int) -> Exemplar:
    if line[pos:pos + 1] != "{":
        raise ParseError(f"expected '{{' to start the exemplar's labels, {found(line, pos)}",
                         lineno)
    pairs, pos, _ = parse_label_set(line, pos + 1, lineno, True, exemplar=True)
    check_unique(pairs, lineno, "exemplar label")
    if not legacy_labels(pairs):
        problem = label_problem(pairs)
        if problem is not None:
            raise ParseError(f"exemplar: {problem}", lineno)
    if sum(len(k) + len(v) for k, v in pairs) > _EXEMPLAR_MAX_CHARS:
        raise ParseError(f"exemplar labels are longer than {_EXEMPLAR_MAX_CHARS} characters",
                         lineno)
    if line[pos:pos + 1] != " ":
        raise ParseError(f"expected a space before the exemplar value, {found(line, pos)}",
                         lineno)
    value, pos = _number(line, pos + 1, lineno, "exemplar value", parse_float)
    ts = None
    if pos < len(line):
        ts, pos = _number(line, pos + 1, lineno, "exemplar timestamp", parse_real)
        if pos < len(line):
            raise ParseError(f"unexpected text after the exemplar: {line[pos:]!r}", lineno)
    pairs.sort()
    return Exemplar(tuple(pairs), value, ts)
