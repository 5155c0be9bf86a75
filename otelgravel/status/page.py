"""The status page at ``GET /``: one server-rendered HTML document, no framework, no external asset.

Every value that came from a client (labels, reasons, addresses) goes through ``html.escape``.
The group filter works without JavaScript (a GET form, filtered here); a few lines of script
filter the rows as one types. The page's Content-Security-Policy allows that one script (by its
hash) and inline style, nothing else.
"""
from __future__ import annotations

import base64
import hashlib
from html import escape

from .views import rfc3339

_CSS = """
:root{--fg:#1f2933;--muted:#616e7c;--line:#e4e7eb;--bg:#f5f7fa;--card:#fff;--accent:#2563eb;
--ok:#15803d;--bad:#b91c1c;--warn:#b45309}
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);
background:var(--bg)}
header{background:#111827;color:#f9fafb;padding:14px 28px;display:flex;align-items:baseline;gap:14px}
header h1{margin:0;font-size:18px;font-weight:600;letter-spacing:.2px}
header span{color:#9ca3af;font-size:13px}
nav{margin-left:auto;font-size:13px}
nav a{color:#cbd5e1;margin-left:16px;text-decoration:none}
nav a:hover{color:#fff}
main{padding:22px 28px;max-width:1280px}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(200px,1fr));gap:14px;margin-bottom:22px}
.card{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:14px 16px}
.card .k{color:var(--muted);font-size:12px;text-transform:uppercase;letter-spacing:.5px}
.card .v{font-size:22px;font-weight:600;margin-top:4px;font-variant-numeric:tabular-nums}
.card .s{color:var(--muted);font-size:12px;margin-top:2px}
.bar{height:6px;background:var(--line);border-radius:3px;margin-top:8px;overflow:hidden}
.bar i{display:block;height:100%;background:var(--accent)}
.bar i.hot{background:var(--warn)}
section{background:var(--card);border:1px solid var(--line);border-radius:8px;margin-bottom:22px}
section h2{font-size:15px;margin:0;padding:12px 16px;border-bottom:1px solid var(--line);
display:flex;align-items:center;gap:10px}
section h2 small{color:var(--muted);font-weight:400;font-size:12px}
form{margin-left:auto;display:flex;gap:6px}
input[type=search]{border:1px solid var(--line);border-radius:6px;padding:5px 9px;width:260px;
font:400 13px system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}
button{border:1px solid var(--line);background:#f9fafb;border-radius:6px;padding:5px 12px;cursor:pointer;
font:500 13px system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}
table{width:100%;border-collapse:collapse}
th,td{text-align:left;padding:7px 16px;border-bottom:1px solid var(--line);vertical-align:top}
th{font-size:12px;color:var(--muted);font-weight:600;text-transform:uppercase;letter-spacing:.4px}
tr:last-child td{border-bottom:0}
td.n{text-align:right;font-variant-numeric:tabular-nums}
td.t{white-space:nowrap;color:var(--muted);font-variant-numeric:tabular-nums}
code{font:12px ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;background:#eef2ff;color:#3730a3;
border-radius:4px;padding:1px 6px;margin:0 4px 2px 0;display:inline-block;word-break:break-all}
.reason{font:12px ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;word-break:break-word}
.tag{font-size:11px;border-radius:10px;padding:1px 8px;font-weight:600}
.tag.limited{background:#fef3c7;color:var(--warn)}
.tag.refused,.tag.too_large,.tag.unavailable{background:#fee2e2;color:var(--bad)}
.tag.unauthorized,.tag.forbidden{background:#ede9fe;color:#6d28d9}
.fail{color:var(--bad)}
.empty{padding:16px;color:var(--muted)}
footer{color:var(--muted);font-size:12px;padding:0 28px 24px}
"""

# Filters the group rows as one types (the form does the same on the server without script).
_SCRIPT = ("var f=document.getElementById('q');f.addEventListener('input',function(){"
           "var q=f.value.toLowerCase();document.querySelectorAll('#groups tbody tr').forEach("
           "function(r){r.hidden=q&&r.dataset.k.indexOf(q)<0;});});")
_SCRIPT_HASH = base64.b64encode(hashlib.sha256(_SCRIPT.encode()).digest()).decode()
CSP = (f"default-src 'none'; style-src 'unsafe-inline'; script-src 'sha256-{_SCRIPT_HASH}'; "
       "form-action 'self'; base-uri 'none'; frame-ancestors 'none'")


def _labels(labels: dict) -> str:
    if not labels:
        return '<code>{}</code>'
    return "".join(f"<code>{escape(k)}=&quot;{escape(v)}&quot;</code>" for k, v in labels.items())


def _time(seconds) -> str:
    return escape(rfc3339(seconds)) if seconds else "—"


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h {minutes}m"
    if hours:
        return f"{hours}h {minutes}m {secs}s"
    return f"{minutes}m {secs}s"


def _card(key: str, value: str, sub: str = "", bar: float | None = None) -> str:
    meter = ""
    if bar is not None:
        width = max(0.0, min(100.0, bar * 100))
        meter = f'<div class="bar"><i class="{"hot" if bar >= 0.8 else ""}" style="width:{width:.1f}%"></i></div>'
    return (f'<div class="card"><div class="k">{escape(key)}</div><div class="v">{value}</div>'
            f'<div class="s">{sub}</div>{meter}</div>')


def render(status: dict, groups: list[dict], matched: int, refusals: list[dict], query: str) -> str:
    limit = status["limits"]["max_series"]
    used = status["series"]
    counts: dict[str, int] = {}
    for row in status["requests"]:
        counts[row["outcome"]] = counts.get(row["outcome"], 0) + row["count"]
    refused = sum(n for outcome, n in counts.items() if outcome != "accepted")
    connections = status.get("connections", [])
    max_groups = status["limits"].get("max_groups")
    cards = "".join([
        _card("Series", f"{used:,}", f"of {limit:,} allowed ({used / limit:.1%})", used / limit),
        _card("Groups", f"{status['groups']:,}",
              f"of {max_groups:,} allowed" if max_groups else "no group limit",
              status["groups"] / max_groups if max_groups else None),
        _card("Requests accepted", f"{counts.get('accepted', 0):,}", f"{refused:,} refused"),
        _card("Connections open", f"{sum(c['open'] for c in connections):,}",
              f"{sum(c['shed'] for c in connections):,} shed, "
              f"{sum(sum(c['timed_out'].values()) for c in connections):,} timed out"),
        _card("Uptime", escape(_duration(status["uptime_seconds"])),
              f"since {escape(status['start_time'])}"),
    ])
    group_rows = "".join(
        f'<tr data-k="{escape(" ".join(f"{k}={v}" for k, v in g["labels"].items()).lower())}">'
        f'<td>{_labels(g["labels"])}</td><td class="t">{_time(g["push_time"])}</td>'
        f'<td class="t{" fail" if g["failure_time"] else ""}">{_time(g["failure_time"])}</td>'
        f'<td class="n">{g["series"]:,}</td></tr>'
        for g in groups)
    shown = (f"{len(groups):,} of {matched:,} shown" if matched > len(groups)
             else f"{matched:,} {'matching' if query else 'in total'}")
    groups_table = (
        '<table id="groups"><thead><tr><th>Labels</th><th>Last push</th><th>Last failure</th>'
        f'<th class="n">Series</th></tr></thead><tbody>{group_rows}</tbody></table>'
        if groups else f'<div class="empty">{"No group matches." if query else "No group yet."}</div>')
    refusal_rows = "".join(
        f'<tr><td class="t">{escape(r["time"])}</td><td>{escape(r["receiver"])}</td>'
        f'<td>{_labels(r["group"]) if r["group"] else "—"}</td>'
        f'<td class="t">{escape(r["client"] or "—")}</td>'
        f'<td><span class="tag {escape(r["outcome"])}">{escape(r["outcome"])}</span></td>'
        f'<td class="reason">{escape(r["reason"])}</td></tr>'
        for r in refusals)
    refusals_table = (
        '<table id="refusals"><thead><tr><th>Time</th><th>Receiver</th><th>Group</th>'
        '<th>Client</th><th>Outcome</th><th>Reason</th></tr></thead>'
        f'<tbody>{refusal_rows}</tbody></table>'
        if refusals else '<div class="empty">No refused push since the start.</div>')
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>otelgravel status</title><style>{_CSS}</style></head>
<body><header><h1>otelgravel</h1><span>version {escape(status["version"])}</span>
<nav><a href="/metrics">/metrics</a><a href="/api/v1/status">status API</a><a href="/api/v1/metrics">metrics API</a><a href="/api/v1/refusals">refusals API</a></nav></header>
<main><div class="cards">{cards}</div>
<section><h2>Groups <small>{shown}</small>
<form method="get" action="/"><input type="search" id="q" name="q" value="{escape(query)}"
placeholder="Filter by label, e.g. job=checkout" aria-label="Filter groups"><button>Filter</button></form></h2>
{groups_table}</section>
<section><h2>Last refusals <small>the latest {len(refusals)}, newest first</small></h2>
{refusals_table}</section></main>
<footer>Started {escape(status["start_time"])}. Times are UTC.</footer>
<script>{_SCRIPT}</script></body></html>
"""
