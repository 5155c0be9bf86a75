"""Render the store as Prometheus text 0.0.4 or OpenMetrics 1.0.0.

One writer per format, each building a list of strings and joining once. Families come sorted by
name and series by labels, so a scrape of the same state is byte-identical. Rendered lines are
kept on each series (``text``/``om``) until the store marks it changed; windowed series are
computed at read time (their value decays with time) and never cached.

Names are written per the negotiated ``escaping`` scheme (SPEC 10, ``escaping.py``):
``allow-utf-8`` quotes a name outside the legacy set (``{"my.metric","url.scheme"="https"} 1``,
``# TYPE "my.metric" counter``), the other schemes rewrite it. A legacy name is the same in
every scheme, so a series whose family name, label names (and exemplar label names) are all
legacy keeps one rendering (a ``str``) for every scheme, and a scrape of a legacy store takes
the same loop as before; any other series keeps one rendering per scheme (a ``dict``). The
family remembers in ``escaped`` (a bit per format) that some series of it holds a ``dict``,
and the loop that reads them clears the bit when none is left.

The writers read the store's objects by duck type (``sorted_families()``, ``sorted_groups()``,
series with ``point``, ``key``, ``window``, ``created``) and import nothing from ``core``.
"""
from __future__ import annotations

from .. import nativehist
from ..model import (COUNTER, GAUGE, GAUGEHISTOGRAM, HISTOGRAM, INFO, STATESET, SUMMARY, UNKNOWN,
                     Point)
from .escaping import (escape_label_name, escape_name, exemplars_legacy, is_legacy_label,
                       is_legacy_metric, legacy_labels)
from .negotiation import ALLOW_UTF8, UNDERSCORES

PUSH_TIME = "push_time_seconds"
PUSH_FAILURE_TIME = "push_failure_time_seconds"
_PUSH_TIME_HELP = "Last Unix time when this group was changed in the gateway."
_PUSH_FAILURE_HELP = "Last Unix time when changing this group in the gateway failed."

_INF = float("inf")


def format_value(v: float) -> str:
    if type(v) is int:
        return str(v)
    if v != v:
        return "NaN"
    if v == _INF:
        return "+Inf"
    if v == -_INF:
        return "-Inf"
    if v.is_integer() and -1e15 < v < 1e15:
        return str(int(v))
    return repr(v)


def format_bound(v: float) -> str:
    """``le``/``quantile`` values in the canonical float form (``1.0``, ``0.25``, ``+Inf``)."""
    if v == _INF:
        return "+Inf"
    if v == -_INF:
        return "-Inf"
    return repr(float(v))


def escape_label_value(v: str) -> str:
    if "\\" in v or '"' in v or "\n" in v:
        return v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return v


def label_text(labels, escaping: str | None = None) -> str:
    """``a="1",b="2"`` (no braces) for a sorted label tuple; with an ``escaping`` scheme, label
    names outside the legacy set are quoted (``allow-utf-8``) or escaped."""
    if escaping is None:
        return ",".join([f'{k}="{escape_label_value(v)}"' for k, v in labels])
    return ",".join([f'{_label_name(k, escaping)}="{escape_label_value(v)}"' for k, v in labels])


def _label_name(name: str, escaping: str) -> str:
    if is_legacy_label(name):
        return name
    if escaping == ALLOW_UTF8:
        return '"' + escape_label_value(name) + '"'
    return escape_label_name(name, escaping)


def _labels_for(obj, labels, escaping: str) -> str:
    """The rendered label pairs of a series or group, kept on it (``label_text``): a ``str``
    when every label name is legacy (the same in every scheme), else a ``dict`` per scheme."""
    cached = obj.label_text
    if cached is None:
        if legacy_labels(labels):
            cached = obj.label_text = label_text(labels)
            return cached
        cached = obj.label_text = {}
    elif cached.__class__ is str:
        return cached
    text = cached.get(escaping)
    if text is None:
        text = cached[escaping] = label_text(labels, escaping)
    return text


def _braces(text: str, extra: str = "") -> str:
    if text and extra:
        return "{" + text + "," + extra + "}"
    if text or extra:
        return "{" + (text or extra) + "}"
    return ""


def _quoted_braces(text: str, extra: str = "") -> str:
    """The rest of a sample's name and labels after ``{"<quoted name><suffix>`` (the way a name
    outside the legacy set is written: inside the braces, quoted)."""
    if text and extra:
        return '",' + text + "," + extra + "}"
    if text or extra:
        return '",' + (text or extra) + "}"
    return '"}'


# the suffix a family's exposed name carries in every format (a counter's, an info's)
_NAME_SUFFIX = {COUNTER: "_total", INFO: "_info"}


def exposed_base(name: str, type_: str, escaping: str) -> str:
    """The family name as written under ``escaping``, before any per-sample suffix. As
    prometheus/common, the exposed name (``_total``/``_info`` included) is escaped as a whole,
    so a family has the same name in the text formats, OpenMetrics and PrometheusProto."""
    if escaping == ALLOW_UTF8 or is_legacy_metric(name):
        return name
    suffix = _NAME_SUFFIX.get(type_, "")
    escaped = escape_name(name + suffix, escaping)
    return escaped[:len(escaped) - len(suffix)]


def _name_token(base: str) -> str:
    """A name in a ``# TYPE``/``# HELP``/``# UNIT`` line: quoted when outside the legacy set."""
    return base if is_legacy_metric(base) else '"' + escape_label_value(base) + '"'


def _sample_start(base: str):
    """(what a sample line starts with, the braces function for the rest)."""
    if is_legacy_metric(base):
        return base, _braces
    return '{"' + escape_label_value(base), _quoted_braces


def _le(bound: float) -> str:
    return 'le="' + format_bound(bound) + '"'


def _quantile(q: float) -> str:
    return 'quantile="' + format_bound(q) + '"'


# OpenMetrics: an exemplar's label names and values together are at most 128 characters.
_EXEMPLAR_MAX_CHARS = 128


def exemplar_fits(ex) -> bool:
    """An exemplar whose labels OpenMetrics (and Prometheus' exemplar storage) take: every
    format leaves out the others, so that they all show the same exemplars."""
    return sum(len(k) + len(v) for k, v in ex.labels) <= _EXEMPLAR_MAX_CHARS


def _exemplar(ex, escaping: str = UNDERSCORES) -> str:
    """An exemplar, or nothing for one whose labels are longer than OpenMetrics allows."""
    if ex is None or not exemplar_fits(ex):
        return ""
    ts = "" if ex.timestamp is None else " " + format_value(ex.timestamp)
    labels = ex.labels
    text = label_text(labels) if legacy_labels(labels) else label_text(labels, escaping)
    return f" # {{{text}}} {format_value(ex.value)}{ts}"


# ---- text 0.0.4 -----------------------------------------------------------------------------

_TEXT_TYPE = {COUNTER: "counter", GAUGE: "gauge", HISTOGRAM: "histogram", SUMMARY: "summary",
              INFO: "gauge", STATESET: "gauge", GAUGEHISTOGRAM: "histogram", UNKNOWN: "untyped"}


def _text_name(name: str, type_: str) -> str:
    if type_ == COUNTER:
        return name + "_total"
    if type_ == INFO:
        return name + "_info"
    return name


def _escape_help_text(h: str) -> str:
    return h.replace("\\", "\\\\").replace("\n", "\\n")


def _classic_buckets(p: Point) -> list:
    """A native histogram is written as classic buckets, one per populated bucket."""
    return p.buckets if p.native is None else nativehist.to_classic(p.native, p.count)


def _bucket_lines(name: str, labels: str, p: Point, exemplars: dict, br=_braces,
                  escaping: str = UNDERSCORES) -> list[str]:
    return [f"{name}_bucket{br(labels, _le(le))} {format_value(c)}"
            f"{_exemplar(exemplars.get(le), escaping)}\n" for le, c in _classic_buckets(p)]


def _quantile_lines(name: str, labels: str, p: Point, br=_braces) -> list[str]:
    return [f"{name}{br(labels, _quantile(q))} {format_value(v)}\n" for q, v in (p.quantiles or ())]


def _count_and_sum(lines: list, name: str, braces: str, count: float | None, sum_: float | None,
                   count_suffix: str, sum_suffix: str) -> None:
    if count is not None:
        lines.append(f"{name}{count_suffix}{braces} {format_value(count)}\n")
    if sum_ is not None:
        lines.append(f"{name}{sum_suffix}{braces} {format_value(sum_)}\n")


def _shaped_lines(name: str, type_: str, labels: str, p: Point, created: float | None,
                  br=_braces, escaping: str = UNDERSCORES) -> list | None:
    """The lines of a histogram, gaugehistogram or summary (None for the single-value types).

    ``created`` is None for text 0.0.4, which has neither ``_created`` nor exemplars. ``name``
    and ``br`` are what ``_sample_start`` gives (a quoted name opens the braces itself).
    """
    braces = br(labels)
    if type_ == HISTOGRAM or type_ == GAUGEHISTOGRAM:
        om = created is not None
        lines = _bucket_lines(name, labels, p, (p.bucket_exemplars or {}) if om else {}, br,
                              escaping)
        if type_ == GAUGEHISTOGRAM:
            if not om or _om_gsum_ok(p):
                _count_and_sum(lines, name, braces, _count(p), p.sum, "_gcount", "_gsum")
            return lines  # a gauge histogram has no _created
        if not om or _om_sum_ok(p):
            _count_and_sum(lines, name, braces, _count(p), p.sum, "_count", "_sum")
    elif type_ == SUMMARY:
        lines = _quantile_lines(name, labels, p, br)
        sum_ = p.sum
        if created is not None and sum_ is not None and not sum_ >= 0:
            sum_ = None  # OpenMetrics: a summary's _sum is never negative nor NaN
        _count_and_sum(lines, name, braces, p.count, sum_, "_count", "_sum")
    else:
        return None
    if created is not None:
        lines.append(f"{name}_created{braces} {format_value(created)}\n")
    return lines


def _om_sum_ok(p: Point) -> bool:
    """May an OpenMetrics histogram show ``_count`` and ``_sum``? Only both or neither, and
    ``_sum`` never NaN, negative, or beside negative buckets; else the buckets alone (``+Inf`` is
    the count) are a valid histogram."""
    s = p.sum
    return s is not None and s >= 0 and _classic_buckets(p)[0][0] >= 0


def _om_gsum_ok(p: Point) -> bool:
    """A gauge histogram's ``_gcount`` and ``_gsum``: both or neither, ``_gsum`` not NaN, and
    negative only with negative buckets."""
    s = p.sum
    return s is not None and s == s and (s >= 0 or _classic_buckets(p)[0][0] < 0)


def _text_series(name: str, type_: str, labels: str, p: Point, br=_braces) -> str:
    lines = _shaped_lines(name, type_, labels, p, None, br)
    if lines is not None:
        return "".join(lines)
    return f"{_text_name(name, type_)}{br(labels)} {format_value(p.value)}\n"


def _count(p: Point) -> float:
    return p.count if p.count is not None else _classic_buckets(p)[-1][1]


# ---- OpenMetrics 1.0.0 ------------------------------------------------------------------------

def _escape_help_om(h: str) -> str:
    return h.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _om_series(name: str, type_: str, labels: str, p: Point, created: float, br=_braces,
               escaping: str = UNDERSCORES) -> str:
    braces = br(labels)
    if type_ == COUNTER:
        return (f"{name}_total{braces} {format_value(p.value)}{_exemplar(p.exemplar, escaping)}\n"
                f"{name}_created{braces} {format_value(created)}\n")
    lines = _shaped_lines(name, type_, labels, p, created, br, escaping)
    if lines is not None:
        return "".join(lines)
    if type_ == INFO:
        return f"{name}_info{braces} {format_value(p.value)}\n"
    return f"{name}{braces} {format_value(p.value)}\n"  # exemplars: counters and buckets only


def write_text(store, now: float, escaping: str = UNDERSCORES) -> str:
    """Text 0.0.4 (and 1.0.0: the same lines; the version says names may be quoted)."""
    return _write(store, now, False, escaping)


def write_openmetrics(store, now: float, escaping: str = UNDERSCORES) -> str:
    return _write(store, now, True, escaping)


def _text_header(family, escaping: str = UNDERSCORES) -> str:
    exposed = _name_token(_text_name(exposed_base(family.name, family.type, escaping),
                                     family.type))
    help_ = f"# HELP {exposed} {_escape_help_text(family.help)}\n" if family.help else ""
    return f"{help_}# TYPE {exposed} {_TEXT_TYPE[family.type]}\n"


def _om_header(family, escaping: str = UNDERSCORES) -> str:
    base = exposed_base(family.name, family.type, escaping)
    name = _name_token(base)
    head = f"# TYPE {name} {family.type}\n"
    if family.unit and base.endswith("_" + family.unit):
        head += f"# UNIT {name} {family.unit}\n"
    if family.help:
        head += f"# HELP {name} {_escape_help_om(family.help)}\n"
    return head


def _render(series, name: str, type_: str, om: bool, escaping: str, br) -> tuple[str, bool]:
    """A series' lines under ``escaping``, and whether they are the same in every scheme as far
    as the series goes (its label names, and in OpenMetrics its exemplars', all legacy)."""
    labels = _labels_for(series, series.key, escaping)
    plain = labels is series.label_text
    if om:
        p = series.point
        if plain:
            plain = exemplars_legacy(p)
        return _om_series(name, type_, labels, p, series.created, br, escaping), plain
    return _text_series(name, type_, labels, series.point, br), plain


def _fresh(series, name: str, type_: str, om: bool, escaping: str, br, family) -> str:
    """Render a series whose cache is empty, keep it, and mark the family when it is kept per
    scheme."""
    lines, plain = _render(series, name, type_, om, escaping, br)
    if plain and br is _braces and name == family.name:
        kept = lines
    else:
        kept = {escaping: lines}
        family.escaped |= 2 if om else 1
    if om:
        series.om = kept
    else:
        series.text = kept
    return lines


def _family_body(family, now: float, om: bool, escaping: str = UNDERSCORES,
                 series_list: list | None = None) -> list[str]:
    """The family's series lines (of ``series_list``, a slice of them, when given), from each
    series' cache where it is fresh."""
    name, type_ = family.name, family.type
    if family.escaped & (2 if om else 1) or not is_legacy_metric(name):
        # (also when another scrape, in another scheme, set the bit between two slices)
        return _escaped_family_body(family, now, om, escaping, series_list)
    if series_list is None:
        series_list = family.sorted_series()
    body = []
    windowed = family.windowed
    for series in series_list:
        if windowed and series.window is not None:
            _windowed_line(body, series, now, name, _braces, escaping)
            continue
        if om:
            lines = series.om
            if lines is None:
                labels = series.label_text
                p = series.point
                if labels.__class__ is str and p.exemplar is None and not p.bucket_exemplars:
                    lines = series.om = _om_series(name, type_, labels, p, series.created)
                else:
                    lines = _fresh(series, name, type_, True, escaping, _braces, family)
        else:
            lines = series.text
            if lines is None:
                labels = series.label_text
                if labels.__class__ is str:
                    lines = series.text = _text_series(name, type_, labels, series.point)
                else:
                    lines = _fresh(series, name, type_, False, escaping, _braces, family)
        body.append(lines)
    return body


def _windowed_line(body: list, series, now: float, start: str, br, escaping: str) -> None:
    """A windowed series' line, read at scrape time (never cached: its value decays)."""
    value = series.window.read(now)
    if value is not None:
        labels = _labels_for(series, series.key, escaping)
        body.append(f"{start}{br(labels)} {format_value(value)}\n")


def _escaped_family_body(family, now: float, om: bool, escaping: str,
                         series_list: list | None = None) -> list[str]:
    """``_family_body`` for a family whose name is outside the legacy set, or some of whose
    series are kept per scheme: each series' rendering for ``escaping``, from its cache. Over
    the whole family (not a slice), it clears the family's bit when no series needs it any more."""
    type_ = family.type
    start, br = _sample_start(exposed_base(family.name, type_, escaping))
    plain_name = br is _braces and start == family.name
    body = []
    per_scheme = 0
    windowed = family.windowed
    whole = series_list is None
    for series in family.sorted_series() if whole else series_list:
        if windowed and series.window is not None:
            _windowed_line(body, series, now, start, br, escaping)
            continue
        kept = series.om if om else series.text
        if kept is None:
            lines = _fresh(series, start, type_, om, escaping, br, family)
            kept = series.om if om else series.text
        elif kept.__class__ is str:
            lines = kept
        else:
            lines = kept.get(escaping)
            if lines is None:
                lines = kept[escaping] = _render(series, start, type_, om, escaping, br)[0]
        if kept.__class__ is dict:
            per_scheme += 1
        body.append(lines)
    if whole and plain_name and not per_scheme:
        family.escaped &= ~(2 if om else 1)
    return body


def _write(store, now: float, om: bool, escaping: str = UNDERSCORES) -> str:
    out: list[str] = []
    for piece in exposition_pieces(store, now, om, escaping):
        out.extend(piece)
    return "".join(out)


SLICE = 4096  # series: a larger family is rendered in pieces of this many


def exposition_pieces(store, now: float, om: bool, escaping: str = UNDERSCORES):
    """The scrape as lists of strings, one per family or per SLICE series of a large one, in
    order: the exporter lets pushes in between pieces, so that a large scrape does not hold them
    for all its rendering. A piece sees the store as it is when it is rendered: each series whole
    and valid, a family's series as they were when its first piece was (as a client library's
    registry is read metric by metric while the program goes on)."""
    for family in _families_with_push_times(store):
        if isinstance(family, str):
            out: list[str] = []
            _write_push_times(out, store, family, om, escaping)
            if out:
                yield out
            continue
        header = None
        series = family.sorted_series()
        if len(series) <= SLICE:
            pieces = (None,)  # in one: an escaped family's cache bit is decided over it all
        else:
            pieces = [series[i:i + SLICE] for i in range(0, len(series), SLICE)]
        for part in pieces:
            body = _family_body(family, now, om, escaping, part)
            if body:
                if header is None:
                    header = _om_header(family, escaping) if om else _text_header(family, escaping)
                    body.insert(0, header)
                yield body
    if om:
        yield ["# EOF\n"]


# ---- push_time_seconds / push_failure_time_seconds ------------------------------------------

def _families_with_push_times(store):
    """The store's families in name order with the two per-group gauges slotted in by name."""
    families = store.sorted_families()
    virtual = sorted((PUSH_FAILURE_TIME, PUSH_TIME))
    i = 0
    for family in families:
        while i < len(virtual) and virtual[i] < family.name:
            yield virtual[i]
            i += 1
        yield family
    yield from virtual[i:]


def push_times(store, name: str) -> tuple[str, list]:
    """The help and the (group, value) rows of ``push_time_seconds`` or
    ``push_failure_time_seconds``, in group order (groups without a value left out)."""
    attr = "push_time" if name == PUSH_TIME else "failure_time"
    rows = [(g, getattr(g, attr)) for g in store.sorted_groups() if getattr(g, attr) is not None]
    return (_PUSH_TIME_HELP if name == PUSH_TIME else _PUSH_FAILURE_HELP), rows


def _write_push_times(out: list, store, name: str, om: bool, escaping: str = UNDERSCORES) -> None:
    help_, rows = push_times(store, name)
    lines = []
    for group, value in rows:
        labels = group.label_text
        if labels.__class__ is not str:
            labels = _labels_for(group, group.labels, escaping)
        lines.append(f"{name}{_braces(labels)} {format_value(value)}\n")
    if not lines:
        return
    if om:
        out.append(f"# TYPE {name} gauge\n# HELP {name} {help_}\n")
    else:
        out.append(f"# HELP {name} {help_}\n# TYPE {name} gauge\n")
    out.extend(lines)
