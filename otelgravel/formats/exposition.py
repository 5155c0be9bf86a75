"""Render the store as Prometheus text 0.0.4 or OpenMetrics 1.0.0.

One writer per format, each building a list of strings and joining once. Families come sorted by
name and series by labels, so a scrape of the same state is byte-identical. Rendered lines are
kept on each series (``text``/``om``) until the store marks it changed; windowed series are
computed at read time (their value decays with time) and never cached.

The writers read the store's objects by duck type (``sorted_families()``, ``sorted_groups()``,
series with ``point``, ``key``, ``window``, ``created``) and import nothing from ``core``.
"""
from __future__ import annotations

from .. import nativehist
from ..model import (COUNTER, GAUGE, GAUGEHISTOGRAM, HISTOGRAM, INFO, STATESET, SUMMARY, UNKNOWN,
                     Point)

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


def label_text(labels) -> str:
    """``a="1",b="2"`` (no braces) for a sorted label tuple."""
    return ",".join([f'{k}="{escape_label_value(v)}"' for k, v in labels])


def _braces(text: str, extra: str = "") -> str:
    if text and extra:
        return "{" + text + "," + extra + "}"
    if text or extra:
        return "{" + (text or extra) + "}"
    return ""


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


def _exemplar(ex) -> str:
    """An exemplar, or nothing for one whose labels are longer than OpenMetrics allows."""
    if ex is None or not exemplar_fits(ex):
        return ""
    ts = "" if ex.timestamp is None else " " + format_value(ex.timestamp)
    return f" # {{{label_text(ex.labels)}}} {format_value(ex.value)}{ts}"


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


def _bucket_lines(name: str, labels: str, p: Point, exemplars: dict) -> list[str]:
    return [f"{name}_bucket{_braces(labels, _le(le))} {format_value(c)}{_exemplar(exemplars.get(le))}\n"
            for le, c in _classic_buckets(p)]


def _quantile_lines(name: str, labels: str, p: Point) -> list[str]:
    return [f"{name}{_braces(labels, _quantile(q))} {format_value(v)}\n" for q, v in (p.quantiles or ())]


def _count_and_sum(lines: list, name: str, braces: str, count: float | None, sum_: float | None,
                   count_suffix: str, sum_suffix: str) -> None:
    if count is not None:
        lines.append(f"{name}{count_suffix}{braces} {format_value(count)}\n")
    if sum_ is not None:
        lines.append(f"{name}{sum_suffix}{braces} {format_value(sum_)}\n")


def _shaped_lines(name: str, type_: str, labels: str, p: Point, created: float | None) -> list | None:
    """The lines of a histogram, gaugehistogram or summary (None for the single-value types).

    ``created`` is None for text 0.0.4, which has neither ``_created`` nor exemplars.
    """
    braces = _braces(labels)
    if type_ == HISTOGRAM or type_ == GAUGEHISTOGRAM:
        om = created is not None
        lines = _bucket_lines(name, labels, p, (p.bucket_exemplars or {}) if om else {})
        if type_ == GAUGEHISTOGRAM:
            if not om or _om_gsum_ok(p):
                _count_and_sum(lines, name, braces, _count(p), p.sum, "_gcount", "_gsum")
            return lines  # a gauge histogram has no _created
        if not om or _om_sum_ok(p):
            _count_and_sum(lines, name, braces, _count(p), p.sum, "_count", "_sum")
    elif type_ == SUMMARY:
        lines = _quantile_lines(name, labels, p)
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


def _text_series(name: str, type_: str, labels: str, p: Point) -> str:
    lines = _shaped_lines(name, type_, labels, p, None)
    if lines is not None:
        return "".join(lines)
    return f"{_text_name(name, type_)}{_braces(labels)} {format_value(p.value)}\n"


def _count(p: Point) -> float:
    return p.count if p.count is not None else _classic_buckets(p)[-1][1]


# ---- OpenMetrics 1.0.0 ------------------------------------------------------------------------

def _escape_help_om(h: str) -> str:
    return h.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _om_series(name: str, type_: str, labels: str, p: Point, created: float) -> str:
    braces = _braces(labels)
    if type_ == COUNTER:
        return (f"{name}_total{braces} {format_value(p.value)}{_exemplar(p.exemplar)}\n"
                f"{name}_created{braces} {format_value(created)}\n")
    lines = _shaped_lines(name, type_, labels, p, created)
    if lines is not None:
        return "".join(lines)
    if type_ == INFO:
        return f"{name}_info{braces} {format_value(p.value)}\n"
    return f"{name}{braces} {format_value(p.value)}\n"  # exemplars: counters and buckets only


def write_text(store, now: float) -> str:
    return _write(store, now, om=False)


def write_openmetrics(store, now: float) -> str:
    return _write(store, now, om=True)


def _text_header(family) -> str:
    exposed = _text_name(family.name, family.type)
    help_ = f"# HELP {exposed} {_escape_help_text(family.help)}\n" if family.help else ""
    return f"{help_}# TYPE {exposed} {_TEXT_TYPE[family.type]}\n"


def _om_header(family) -> str:
    name = family.name
    head = f"# TYPE {name} {family.type}\n"
    if family.unit and name.endswith("_" + family.unit):
        head += f"# UNIT {name} {family.unit}\n"
    if family.help:
        head += f"# HELP {name} {_escape_help_om(family.help)}\n"
    return head


def _family_body(family, now: float, om: bool) -> list[str]:
    """The family's series lines, from each series' cache where it is fresh."""
    name, type_ = family.name, family.type
    body = []
    windowed = family.windowed
    for series in family.sorted_series():
        if series.label_text is None:
            series.label_text = label_text(series.key)
        if windowed and series.window is not None:
            value = series.window.read(now)
            if value is not None:
                body.append(f"{name}{_braces(series.label_text)} {format_value(value)}\n")
            continue
        if om:
            lines = series.om
            if lines is None:
                lines = series.om = _om_series(name, type_, series.label_text, series.point,
                                               series.created)
        else:
            lines = series.text
            if lines is None:
                lines = series.text = _text_series(name, type_, series.label_text, series.point)
        body.append(lines)
    return body


def _write(store, now: float, om: bool) -> str:
    out: list[str] = []
    for family in _families_with_push_times(store):
        if isinstance(family, str):
            _write_push_times(out, store, family, om)
            continue
        body = _family_body(family, now, om)
        if body:
            out.append(_om_header(family) if om else _text_header(family))
            out.extend(body)
    if om:
        out.append("# EOF\n")
    return "".join(out)


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


def _write_push_times(out: list, store, name: str, om: bool) -> None:
    help_, rows = push_times(store, name)
    lines = []
    for group, value in rows:
        if group.label_text is None:
            group.label_text = label_text(group.labels)
        lines.append(f"{name}{_braces(group.label_text)} {format_value(value)}\n")
    if not lines:
        return
    if om:
        out.append(f"# TYPE {name} gauge\n# HELP {name} {help_}\n")
    else:
        out.append(f"# HELP {name} {help_}\n# TYPE {name} gauge\n")
    out.extend(lines)
