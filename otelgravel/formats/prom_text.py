"""Parse Prometheus text format 0.0.4 (what ``prometheus_client``, prom-client and curl push) into
a Batch.

Strict where Prometheus is: what its parser (``promparse``) or the Pushgateway's (``expfmt``)
refuses is a ParseError naming the line. Lenient where they are: blank lines, ``#`` comments,
blanks around tokens, a trailing comma in a label set, families split by other families.

Family resolution follows ``expfmt``: a ``TYPE`` line declares which sample names belong to the
family (``x_bucket``/``x_sum``/``x_count`` for a histogram, ``x``/``x_sum``/``x_count`` for a
summary, ``x`` and ``x_total`` for a counter); any other sample name is its own untyped family.
The ``x_created`` gauges that ``prometheus_client`` writes beside a counter, histogram or summary
``x`` are dropped: they are that family's created timestamp, not a family of their own, and
keeping them would clash with ``x``'s ``_created`` in OpenMetrics output.

Speed: a function pushes the same lines again and again with new values. A body is first cut
into its *shape* (each line without its last token) and those tokens (``_shapes``); a shape
parsed before is not parsed again: its plan (families, series, which token is which value) is
reused, and only the values are read and checked. A new shape goes through the line parser, where a canonical sample line (single spaces, no escapes) is taken apart by one
regular expression and anything else goes through the careful path that also words the errors.
"""
from __future__ import annotations

import re

from ..errors import ParseError
from ..model import COUNTER, GAUGE, HISTOGRAM, INF, SUMMARY, UNKNOWN, Batch, Family, Point
from ._labels import (METRIC_NAME, check_unique, found, merge_mode, parse_label_set,
                      read_quoted, series_labels, series_text, unescape)
from ._lines import decode, fast_line, fast_sample
from .escaping import LEGACY_SEEN, legacy_labels
from ._numbers import parse_float, parse_int64_timestamp
from ._shapes import STAMP, Shape, ShapeMemory, cut

__all__ = ["parse_prom_text"]

_FAST = fast_line(trailing_comma=True, timestamp=STAMP)
_META = re.compile(r"#[ \t]+(HELP|TYPE)[ \t]+(.*)")
_NAME = re.compile(METRIC_NAME)
_BLANKS = re.compile(r"[ \t]*")
_TOKEN = re.compile(r"[^ \t]+")

_TYPES = {"counter": COUNTER, "gauge": GAUGE, "histogram": HISTOGRAM, "summary": SUMMARY,
          "untyped": UNKNOWN}
# What a sample name is to its family.
_VALUE, _BUCKET, _SUM, _COUNT, _QUANTILE, _BARE = range(6)
_SPECIAL = {HISTOGRAM: "le", SUMMARY: "quantile"}
_HAS_CREATED = (COUNTER, HISTOGRAM, SUMMARY)


class _Family:
    __slots__ = ("name", "out", "type", "help", "typed", "series", "utf8")

    def __init__(self, name: str):
        self.name = name          # as declared or sampled
        self.out = name           # as in the batch (a counter without _total)
        self.type = None          # fixed by TYPE or by the first sample (untyped)
        self.help = None
        self.typed = False
        self.series = {}          # labels -> Point, or _Group for histograms and summaries
        self.utf8 = False         # a label name outside the legacy set (model.Family.utf8)


class _Group:
    """The lines of one histogram or summary series, gathered wherever they appear (as indexes
    into the parser's values)."""
    __slots__ = ("labels", "mode", "line", "bounds", "sum", "count")

    def __init__(self, labels: tuple, line: int):
        self.labels = labels
        self.mode = None
        self.line = line
        self.bounds = {}          # le or quantile -> value index
        self.sum = None
        self.count = None


def parse_prom_text(body: bytes) -> Batch:
    text = decode(body)
    if len(text) > _SHAPES.max_text:  # too large to remember: read line by line every time
        parser = _read_lines(text)
        return _build(parser.plan(), parser.values, None)
    key, tokens = cut(text)
    shape = _SHAPES.get(key)
    if shape is not None:
        values = shape.values(tokens)
        if values is not None:
            return _build(shape.plan, values, shape)
    parser = _read_lines(text)
    plan = parser.plan()
    if shape is None and not _SHAPES.seen_before(key):
        return _build(plan, parser.values, None)
    shape = Shape(plan, parser.values, parser.value_lines, parser.stamp_lines, tokens)
    _SHAPES.remember(key, shape)
    return _build(plan, parser.values, shape)


_SHAPES = ShapeMemory()


def _read_lines(text: str) -> "_Parser":
    parser = _Parser()
    parser.parse(text)
    return parser


# HELP/TYPE lines repeat verbatim across the pushes of every invocation of a function, so their
# syntax is read once per distinct line; what a line means for the push (_help/_type) is not cached.
_META_CACHE: dict[str, tuple] = {}
_META_CACHE_SIZE = 8192


def _read_meta(line: str, lineno: int) -> tuple:
    """``(keyword, name, payload)`` of a HELP/TYPE line, ``()`` for any other comment."""
    match = _META.fullmatch(line)
    if match is None:
        return ()
    keyword, rest = match.groups()
    if rest[:1] == '"':  # a UTF-8 name: # TYPE "my.metric" counter
        name, end = read_quoted(rest, 0, lineno, False, f"metric name in the {keyword} line")
    else:
        name_match = _NAME.match(rest)
        if name_match is None:
            raise ParseError(f"expected a metric name after {keyword}, {found(rest, 0)}", lineno)
        name = name_match.group()
        end = name_match.end()
    after = rest[end:]
    if after and after[0] not in " \t":
        raise ParseError(f"invalid metric name in {keyword} line: "
                         f"'{rest.split(maxsplit=1)[0]}'", lineno)
    after = after.lstrip(" \t")
    if keyword == "HELP":
        return keyword, name, unescape(after, lineno, False, "HELP text")
    return keyword, name, after.rstrip(" \t")


# Most sample lines of a function's push repeat verbatim across invocations (``requests_total 1``,
# bucket lines, build info); a canonical line's name, label pairs and value are read once. What the
# line means for the push (family, duplicate series) is checked every time.
_SAMPLES: dict[str, tuple] = {}
_SAMPLES_SIZE = 16384
_BOUNDS: dict[str, float] = {}  # le/quantile text -> value: a few hundred distinct bounds in practice


class _Parser:
    """Reads a body line by line into families whose series hold indexes into ``values``."""

    def __init__(self):
        self.families: list[_Family] = []
        self.meta: dict[str, _Family] = {}        # declared or sampled name -> family
        self.by_sample: dict[str, tuple] = {}     # sample name -> (family, role)
        self.values: list[float] = []             # one per sample line
        self.value_lines: list[int] = []          # its line when read by the fast path, else 0
        self.stamp_lines: list[int] = []          # lines read by the fast path with a timestamp

    def parse(self, text: str) -> None:
        by_sample = self.by_sample
        fast = _FAST.fullmatch
        legacy_seen = LEGACY_SEEN
        values = self.values
        value_lines = self.value_lines
        lineno = 0
        for line in text.split("\n"):
            lineno += 1
            if not line:
                continue
            if line[0] == "#":
                self._comment(line, lineno)
                continue
            cached = _SAMPLES.get(line)
            if cached is not None:
                name, pairs, inspect, value, stamped = cached
                pairs = list(pairs)
            elif (match := fast(line)) is not None:
                name, pairs, inspect, value, timestamp = fast_sample(match, lineno)
                stamped = timestamp is not None
                if len(_SAMPLES) >= _SAMPLES_SIZE:
                    _SAMPLES.clear()
                _SAMPLES[line] = (name, tuple(pairs), inspect, value, stamped)
            else:
                start = _BLANKS.match(line).end()
                if start == len(line):
                    continue
                if line[start] == "#":
                    self._comment(line[start:], lineno)
                    continue
                name, pairs, value, last = _read_sample(line, start, lineno)
                inspect = True
                # a value that is the line's last token after a space (a line with quoted
                # names, say) is one the shape memory can read again (Shape.values)
                stamped = False if last else None
                for pair in pairs:  # a quoted name may be outside the legacy set
                    if pair[0] not in legacy_seen and not legacy_labels(pairs):
                        entry = by_sample.get(name) or self._untyped(name)
                        entry[0].utf8 = True
                        break
            index = len(values)
            values.append(value)
            if stamped is False:
                value_lines.append(lineno)
            else:
                value_lines.append(0)
                if stamped:
                    self.stamp_lines.append(lineno)
            entry = by_sample.get(name)
            if entry is None:
                entry = self._untyped(name)
            family, role = entry
            if role == _VALUE:
                if inspect:
                    labels, mode, _ = series_labels(pairs, lineno)
                else:  # series_labels without the loop, inlined: this is the hot path
                    if len(pairs) > 1:
                        if len(dict(pairs)) != len(pairs):
                            check_unique(pairs, lineno)
                        pairs.sort()
                    labels = tuple(pairs)
                    mode = None
                series = family.series
                if labels in series:
                    raise ParseError(f"duplicate series {series_text(name, labels)}", lineno)
                series[labels] = (labels, mode, index)
            else:
                self._grouped(family, role, name, pairs, index, lineno)

    # ---- metadata ------------------------------------------------------------------------------

    def _comment(self, line: str, lineno: int) -> None:
        meta = _META_CACHE.get(line)
        if meta is None:
            meta = _read_meta(line, lineno)
            if len(_META_CACHE) >= _META_CACHE_SIZE:
                _META_CACHE.clear()
            _META_CACHE[line] = meta
        if meta:
            keyword, name, payload = meta
            if keyword == "HELP":
                self._help(name, payload, lineno)
            else:
                self._type(name, payload, lineno)

    def _help(self, name: str, help_: str, lineno: int) -> None:
        family = self.meta.get(name)
        if family is None:
            owner = self.by_sample.get(name)
            if owner is not None and owner[0].type == COUNTER:
                family = owner[0]  # HELP x_total for TYPE x counter, or the reverse
            else:
                family = self._new(name)
        if family.help is not None:
            raise ParseError(f"second HELP line for family '{name}'", lineno)
        family.help = help_

    def _type(self, name: str, word: str, lineno: int) -> None:
        type_ = _TYPES.get(word)
        if type_ is None:
            raise ParseError(f"unknown metric type '{word}' (expected counter, gauge, histogram, "
                             "summary or untyped)", lineno)
        family = self.meta.get(name)
        if family is not None:
            if family.typed:
                raise ParseError(f"second TYPE line for family '{name}'", lineno)
            if family.type is not None:
                raise ParseError(f"TYPE line for family '{name}' after its samples", lineno)
        else:
            owner = self.by_sample.get(name)
            if owner is not None:
                raise ParseError(f"TYPE line for '{name}' clashes with {owner[0].type} "
                                 f"'{owner[0].name}', whose samples include '{name}'", lineno)
            family = self._new(name)
        family.type = type_
        family.typed = True
        if type_ == COUNTER:
            base = name[:-6] if name.endswith("_total") and len(name) > 6 else name
            family.out = base
            roles = {base: _VALUE, base + "_total": _VALUE}
        elif type_ == HISTOGRAM:
            roles = {name: _BARE, name + "_bucket": _BUCKET, name + "_sum": _SUM,
                     name + "_count": _COUNT}
        elif type_ == SUMMARY:
            roles = {name: _QUANTILE, name + "_sum": _SUM, name + "_count": _COUNT}
        else:
            roles = {name: _VALUE}
        for sample_name, role in roles.items():
            owner = self.by_sample.get(sample_name)
            if owner is not None:
                if not owner[0].typed:
                    raise ParseError(f"TYPE line for family '{name}' after its samples "
                                     f"('{sample_name}' came first)", lineno)
                raise ParseError(f"{word} '{name}' would own the samples named '{sample_name}', "
                                 f"which belong to {owner[0].type} family '{owner[0].name}'",
                                 lineno)
            other = self.meta.get(sample_name)
            if type_ == COUNTER and other is not None and other is not family:
                # A HELP-only family under the other spelling of this counter: it is this one.
                self._adopt(family, other, lineno)
            self.by_sample[sample_name] = (family, role)

    def _adopt(self, family: _Family, other: _Family, lineno: int) -> None:
        if other.help is not None:
            if family.help is not None:
                raise ParseError(f"second HELP line for family '{family.out}'", lineno)
            family.help = other.help
        self.families.remove(other)
        self.meta[other.name] = family

    def _new(self, name: str) -> _Family:
        family = _Family(name)
        self.families.append(family)
        self.meta[name] = family
        return family

    def _untyped(self, name: str) -> tuple:
        family = self.meta.get(name) or self._new(name)
        family.type = UNKNOWN
        entry = self.by_sample[name] = (family, _VALUE)
        return entry

    # ---- histograms and summaries --------------------------------------------------------------

    def _grouped(self, family: _Family, role: int, name: str, pairs: list, index: int,
                 lineno: int) -> None:
        if role == _BARE:
            raise ParseError(f"sample '{name}' is not part of histogram '{family.name}': expected "
                             f"{name}_bucket, {name}_sum or {name}_count", lineno)
        special = _SPECIAL[family.type]
        labels, mode, bound_text = series_labels(pairs, lineno, True, special)
        group = family.series.get(labels)
        if group is None:
            group = family.series[labels] = _Group(labels, lineno)
        group.mode = merge_mode(group.mode, mode, lineno)
        if role == _BUCKET or role == _QUANTILE:
            if bound_text is None:
                raise ParseError(f"sample {series_text(name, labels)} of {family.type} "
                                 f"'{family.name}' has no '{special}' label", lineno)
            bound = _BOUNDS.get(bound_text)
            if bound is None:
                bound = parse_float(bound_text)
                if bound is None or bound != bound:
                    raise ParseError(f"invalid '{special}' value '{bound_text}' (expected a "
                                     "number)", lineno)
                if len(_BOUNDS) >= _SAMPLES_SIZE:
                    _BOUNDS.clear()
                _BOUNDS[bound_text] = bound
            if bound in group.bounds:
                raise ParseError(f"duplicate series {series_text(name, labels)} with "
                                 f"{special}=\"{bound_text}\"", lineno)
            group.bounds[bound] = index
            return
        if bound_text is not None:
            raise ParseError(f"'{name}' must not have a '{special}' label", lineno)
        if role == _SUM:
            if group.sum is not None:
                raise ParseError(f"duplicate series {series_text(name, labels)}", lineno)
            group.sum = index
        else:
            if group.count is not None:
                raise ParseError(f"duplicate series {series_text(name, labels)}", lineno)
            group.count = index

    # ---- the plan -------------------------------------------------------------------------------

    def plan(self) -> list:
        """What the batch is made of, with value indexes in place of values (``_build``)."""
        created_of = {f.out + "_created" for f in self.families if f.type in _HAS_CREATED}
        plan = []
        for family in self.families:
            if family.type is None or (family.name in created_of
                                       and family.type in (GAUGE, UNKNOWN)):
                continue  # HELP alone, or prometheus_client's x_created
            if family.type == HISTOGRAM or family.type == SUMMARY:
                series = [(g.labels, g.mode, g.line, sorted(g.bounds.items()), g.sum, g.count)
                          for g in family.series.values()]
            else:
                series = list(family.series.values())
            plan.append((family.out, family.type, family.help or "", series, family.utf8))
        return plan


def _build(plan: list, values: list, shape: Shape | None) -> Batch:
    """The batch of a plan with these values (plain loops: this runs for every push)."""
    batch = Batch(shape=shape)
    for name, type_, help_, series, utf8 in plan:
        points = []
        if type_ == HISTOGRAM:
            for spec in series:
                points.append(_histogram(name, values, *spec))
        elif type_ == SUMMARY:
            for labels, mode, _, bounds, s, c in series:
                points.append(Point(labels, mode, sum=None if s is None else values[s],
                                    count=None if c is None else values[c],
                                    quantiles=[(q, values[i]) for q, i in bounds]))
        else:
            for labels, mode, i in series:
                points.append(Point(labels, mode, values[i]))
        batch.append(Family(name, type_, help_, "", points, utf8))
    return batch


def _histogram(name: str, values: list, labels: tuple, mode, line: int, bounds: list,
               sum_index: int | None, count_index: int | None) -> Point:
    buckets = [(le, values[i]) for le, i in bounds]
    count = None if count_index is None else values[count_index]
    if not buckets or buckets[-1][0] != INF:
        if count is None:
            raise ParseError(f"histogram {series_text(name, labels)} has neither a +Inf bucket "
                             "nor a _count", line)
        buckets.append((INF, count))
    previous = 0.0
    for bound, cumulative in buckets:
        if cumulative < previous:
            raise ParseError(f"histogram {series_text(name, labels)}: bucket le=\"{bound:g}\" has "
                             f"{cumulative:g}, less than the {previous:g} of a lower bucket "
                             "(buckets are cumulative)", line)
        previous = cumulative
    if count is None:
        count = previous
    elif count != previous:
        raise ParseError(f"histogram {series_text(name, labels)}: _count {count:g} differs from "
                         f"the +Inf bucket {previous:g}", line)
    return Point(labels, mode, buckets=buckets, sum=None if sum_index is None else values[sum_index],
                 count=count)


def _read_sample(line: str, pos: int, lineno: int) -> tuple[str, list, float, bool]:
    """The careful path: any blanks, escapes, trailing comma, quoted names (``{"a.b"} 1``, and
    ``"a.b"{...} 1`` as expfmt reads it); words every error."""
    char = line[pos]
    if char == "{":
        name = None
    elif char == '"':
        name, pos = read_quoted(line, pos, lineno, False, "metric name")
        pos = _BLANKS.match(line, pos).end()
    else:
        match = _NAME.match(line, pos)
        if match is None:
            raise ParseError(f"expected a metric name, {found(line, pos)}", lineno)
        name = match.group()
        pos = _BLANKS.match(line, match.end()).end()
    pairs = []
    if line[pos:pos + 1] == "{":
        pairs, pos, name = parse_label_set(line, pos + 1, lineno, False, name)
        pos = _BLANKS.match(line, pos).end()
    if name is None:
        raise ParseError('missing metric name: expected name{...} or {"name",...}', lineno)
    match = _TOKEN.match(line, pos)
    if match is None:
        raise ParseError(f"missing value after '{name}'", lineno)
    token = match.group()
    value = parse_float(token)
    if value is None:
        raise ParseError(f"invalid value '{token}'", lineno)
    start = pos
    end = match.end()
    pos = _BLANKS.match(line, end).end()
    size = len(line)
    last = end == size and line[start - 1] == " "  # the value is the line's last token
    if pos < size:
        match = _TOKEN.match(line, pos)
        token = match.group()
        if parse_int64_timestamp(token) is None:
            raise ParseError(f"invalid timestamp '{token}' (expected integer milliseconds)",
                             lineno)
        pos = _BLANKS.match(line, match.end()).end()
        if pos < len(line):
            raise ParseError(f"unexpected text after the timestamp: {line[pos:]!r}", lineno)
    return name, pairs, value, last
