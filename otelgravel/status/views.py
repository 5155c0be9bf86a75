"""What the status page and the JSON API show, as plain data built from the store and ``Stats``.

Pure: the store is read through the writers' read interface (``sorted_groups()``, a group's
``members``, ``families``, a series' ``point``/``window``/``updated``), ``now`` comes in. The
shape of ``/api/v1/metrics`` follows the Pushgateway's API v1: one object per group with its
``labels``, ``last_push_successful``, and one entry per family (``time_stamp``, ``type``, ``help``,
``metrics`` with string values), ``push_time_seconds`` and ``push_failure_time_seconds`` included.
"""
from __future__ import annotations

import time

from ..formats.exposition import PUSH_FAILURE_TIME, PUSH_TIME, format_bound, format_value
from ..model import COUNTER, GAUGE, GAUGEHISTOGRAM, HISTOGRAM, INFO, STATESET, SUMMARY, UNKNOWN

# The Pushgateway's (client_model's) type names; OpenMetrics-only types keep their own.
_TYPE_NAMES = {COUNTER: "COUNTER", GAUGE: "GAUGE", HISTOGRAM: "HISTOGRAM", SUMMARY: "SUMMARY",
               UNKNOWN: "UNTYPED", GAUGEHISTOGRAM: "GAUGE_HISTOGRAM", INFO: "INFO",
               STATESET: "STATESET"}
_PUSH_TIME_HELP = "Last Unix time when this group was changed in the gateway."
_FAILURE_TIME_HELP = "Last Unix time when changing this group in the gateway failed."
PAGE_GROUPS = 1000


def rfc3339(seconds: float | None) -> str | None:
    if seconds is None:
        return None
    whole = int(seconds)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)) + \
        f".{int((seconds - whole) * 1000):03d}Z"


def labels_dict(labels) -> dict:
    return {k: v for k, v in labels}


def group_series(group) -> int:
    return sum(len(keys) for keys in group.members.values())


def last_push_successful(group) -> bool:
    return not group.failure_time or (group.push_time or 0) >= group.failure_time


def group_rows(store, query: str = "", limit: int = PAGE_GROUPS) -> tuple[list[dict], int]:
    """The groups whose labels contain ``query`` (the first ``limit``) and how many matched."""
    needle = query.lower()
    rows, matched = [], 0
    for group in store.sorted_groups():
        if needle and not any(needle in f"{k}={v}".lower() for k, v in group.labels):
            continue
        matched += 1
        if len(rows) < limit:
            rows.append({"labels": labels_dict(group.labels), "push_time": group.push_time,
                         "failure_time": group.failure_time or None,
                         "series": group_series(group)})
    return rows, matched


def status(store, stats, *, version: str, start_time: float, now: float, config: dict,
           limits: dict) -> dict:
    return {
        "version": version,
        "start_time": rfc3339(start_time),
        "uptime_seconds": round(now - start_time, 3),
        "series": store.exposed_count,
        "pushed_series": store.series_count,
        "groups": len(store.groups),
        "limits": limits,
        "requests": [{"receiver": r, "outcome": o, "count": n}
                     for (r, o), n in sorted(stats.requests.items())],
        "connections": [{"server": server, "open": c.open, "max_connections": c.limit or None,
                         "shed": c.shed, "timed_out": dict(c.timed_out)}
                        for server, c in sorted(stats.connections.items())],
        "config": config,
    }


def refusals(stats) -> list[dict]:
    """The last refusals, newest first."""
    return [{"time": rfc3339(r.time), "receiver": r.receiver, "group": labels_dict(r.group),
             "client": r.client, "outcome": r.outcome, "reason": r.reason}
            for r in reversed(stats.refusals)]


def _metric(family, series, now: float) -> dict | None:
    point = series.point
    out = {"labels": labels_dict(series.key)}
    if series.window is not None:
        value = series.window.read(now)
        if value is None:
            return None  # an empty window shows nothing, as in a scrape
        out["value"] = format_value(value)
    elif getattr(point, "native", None) is not None:  # a native histogram: its own buckets
        native = point.native
        out["count"] = format_value(point.count or 0)
        out["sum"] = format_value(point.sum or 0.0)
        out["native"] = {"schema": native.schema,
                         "zero_threshold": format_value(native.zero_threshold),
                         "zero_count": format_value(native.zero_count),
                         "positive": {str(i): format_value(c) for i, c in sorted(native.positive.items())},
                         "negative": {str(i): format_value(c) for i, c in sorted(native.negative.items())}}
    elif family.type in (HISTOGRAM, GAUGEHISTOGRAM):
        out["buckets"] = {format_bound(le): format_value(c) for le, c in point.buckets}
        out["count"] = format_value(point.count if point.count is not None else point.buckets[-1][1])
        out["sum"] = format_value(point.sum if point.sum is not None else 0.0)
    elif family.type == SUMMARY:
        out["quantiles"] = {format_bound(q): format_value(v) for q, v in (point.quantiles or ())}
        out["count"] = format_value(point.count or 0)
        out["sum"] = format_value(point.sum or 0.0)
    else:
        out["value"] = format_value(point.value)
    return out


def _time_family(help_: str, group, value: float) -> dict:
    return {"time_stamp": rfc3339(value or group.push_time), "type": "GAUGE", "help": help_,
            "metrics": [{"labels": labels_dict(group.labels), "value": format_value(value)}]}


def metrics(store, now: float) -> list[dict]:
    """Every group with its labels, push times and families (Pushgateway API v1 ``/metrics``)."""
    out = []
    for group in store.sorted_groups():
        entry = {"labels": labels_dict(group.labels),
                 "last_push_successful": last_push_successful(group)}
        if group.push_time is not None:
            entry[PUSH_TIME] = _time_family(_PUSH_TIME_HELP, group, group.push_time)
            entry[PUSH_FAILURE_TIME] = _time_family(_FAILURE_TIME_HELP, group, group.failure_time)
        for name in sorted(group.members):
            family = store.families[name]
            shown = [m for m in (_metric(family, family.series[key], now)
                                 for key in sorted(group.members[name])) if m is not None]
            if not shown:
                continue
            updated = max(family.series[key].updated for key in group.members[name])
            entry[name] = {"time_stamp": rfc3339(updated), "type": _TYPE_NAMES[family.type],
                           "help": family.help, "metrics": shown}
        out.append(entry)
    return out
