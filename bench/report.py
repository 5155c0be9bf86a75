"""The report: targets from the medians, the markdown tables, the chart."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from common import EMPTY, FOREIGN_CPU_WARN, LABELS, OG, PG, median, pick_runs


def summarize(result: dict[str, Any]) -> dict[str, Any]:
    """Ratios and targets from the medians."""
    stages = {s["size"]: s for s in result["stages"]}
    sizes = sorted(stages)

    def push(size: int, name: str, key: str = "rps") -> float | None:
        return stages.get(size, {}).get("push", {}).get(name, {}).get(key)

    def ratio(a: float | None, b: float | None) -> float | None:
        return a / b if a is not None and b not in (None, 0) else None

    empties = [r["rps"] for r in pick_runs([r for s in result["stages"] for r in s["push_runs"].get(EMPTY, [])])]
    empty_rps = median(empties)
    # the sizes are 1, 2,000 and 20,000; the 100x target is stated for 2,000 groups
    small, big = sizes[0], sizes[-1]
    mid = 2000 if 2000 in stages and 2000 not in (small, big) else None
    targets = []

    def target(name: str, value: float | None, op: str, bound: float, fmt: str, why: str = "") -> None:
        met = None if value is None else (value >= bound if op == ">=" else value <= bound)
        targets.append({"target": name, "value": value, "op": op, "bound": bound, "fmt": fmt,
                        "met": met, "why": why})

    target(f"push throughput, {small} group: otelgravel / Pushgateway", ratio(push(small, OG), push(small, PG)),
           ">=", 4, "{:.1f}x")
    if mid is not None:
        target(f"push throughput, {mid} groups: otelgravel / Pushgateway", ratio(push(mid, OG), push(mid, PG)),
               ">=", 100, "{:.1f}x")
    if big != small:
        target(f"otelgravel push throughput, {big} groups / {small} group", ratio(push(big, OG), push(small, OG)),
               ">=", 0.8, "{:.2f}")
    target(f"otelgravel push throughput ({small} group) / empty aiohttp handler", ratio(push(small, OG), empty_rps),
           ">=", 0.5, "{:.2f}")
    # scrape: per stored series, so that a Pushgateway that reached fewer groups is compared fairly
    st = stages[big]
    def scrape_per_series(name: str, fmt: str) -> float | None:
        ms = st.get("scrape", {}).get(name, {}).get(f"{fmt}_changed", {}).get("median_ms")
        series = st.get("store", {}).get(name, {}).get("series")
        return ms / series if ms is not None and series else None
    target(f"scrape at {big} groups, every group changed, text: otelgravel time / Pushgateway time "
           f"(per stored series)",
           ratio(scrape_per_series(OG, "text"), scrape_per_series(PG, "text")), "<=", 1.0, "{:.2f}")
    target(f"scrape at {big} groups, every group changed, OpenMetrics: otelgravel time / Pushgateway time "
           f"(per stored series; the Pushgateway answers text)",
           ratio(scrape_per_series(OG, "openmetrics"), scrape_per_series(PG, "openmetrics")), "<=", 1.0, "{:.2f}")
    mem = {n: st.get("store", {}).get(n, {}).get("bytes_per_series") for n in (PG, OG)}
    target(f"resident memory per stored series at {big} groups, after the fill: otelgravel / Pushgateway",
           ratio(mem[OG], mem[PG]), "<=", 1.0, "{:.2f}")
    mem2 = {n: st.get("store", {}).get(n, {}).get("bytes_per_series_after_pushes") for n in (PG, OG)}
    target(f"resident memory per stored series at {big} groups, after the push runs: otelgravel / Pushgateway",
           ratio(mem2[OG], mem2[PG]), "<=", 1.0, "{:.2f}")
    otlp = (result.get("otlp") or {}).get("points_per_s")
    target("OTLP ingest, data points/s (1,000-point protobuf requests)", otlp, ">=", 100_000, "{:,.0f}")
    return {"empty_rps": empty_rps, "targets": targets}


def _f(value: float | None, fmt: str = "{:,.1f}") -> str:
    return "n/a" if value is None else fmt.format(value)


def markdown(result: dict[str, Any], summary: dict[str, Any]) -> str:
    """Four small tables (push, scrape, memory, targets); PG = Pushgateway, OG = otelgravel."""

    def r(a: float | None, b: float | None, fmt: str = "{:.2f}") -> str:
        return _f(a / b, fmt) if a is not None and b else "n/a"

    def groups(s: dict, name: str) -> str:
        return _f(s["store"].get(name, {}).get("groups"), "{:,}")

    def reached(s: dict) -> str:
        got = [s["store"].get(n, {}).get("groups") for n in (PG, OG)]
        shown = [g for g in got if g is not None]
        if shown and all(g == s["size"] for g in shown):
            return f"{s['size']:,}"
        return f"{s['size']:,} (PG {groups(s, PG)}, OG {groups(s, OG)})"

    out = ["Push: PUT of the function push body, wrk, 16 connections, rotating over the store's groups.", "",
           "| groups | PG req/s | OG req/s | OG / PG | PG p99 ms | OG p99 ms |",
           "|---:|---:|---:|---:|---:|---:|"]
    for s in result["stages"]:
        pg, og = s["push"].get(PG, {}), s["push"].get(OG, {})

        def flag(p: dict) -> str:
            out = f" ({p['runs_with_errors']}/{p['runs']} runs with errors)" if p.get("runs_with_errors") else ""
            return out + (" *" if p.get("disturbed_runs_in_median") else "")
        out.append(f"| {reached(s)} | {_f(pg.get('rps'))}{flag(pg)} | {_f(og.get('rps'))}{flag(og)} | "
                   f"{r(og.get('rps'), pg.get('rps'), '{:,.1f}x')} | {_f(pg.get('p99_ms'), '{:,.1f}')} | "
                   f"{_f(og.get('p99_ms'), '{:,.1f}')} |")
    otlp = result.get("otlp") or {}
    if any(s["push"].get(n, {}).get("disturbed_runs_in_median") for s in result["stages"] for n in (PG, OG)):
        out += ["", "\\* the median includes runs during which other processes used more than "
                    f"{FOREIGN_CPU_WARN:.0%} of the CPUs (no undisturbed run was left after the retries)."]
    out += ["", f"Empty aiohttp handler, same load: {_f(summary['empty_rps'])} req/s (median of all its runs). "
                f"OTLP ingest (otelgravel): {_f(otlp.get('points_per_s'), '{:,.0f}')} data points/s in "
                f"{_f(otlp.get('points_per_request'), '{:,}')}-point protobuf requests, "
                f"{otlp.get('connections', 'n/a')} connections, p99 {_f(otlp.get('p99_ms'), '{:,.1f}')} ms.", ""]

    served = ""
    for s in result["stages"]:
        ct = s["scrape"].get(PG, {}).get("openmetrics_changed", {}).get("content_type")
        if ct:
            served = ct.split(";")[0]
    out += [f"Scrape: GET /metrics, ms, median. \"unchanged\": nothing pushed since the previous scrape; "
            f"\"changed\": every group pushed again just before it. Asked for OpenMetrics, the Pushgateway "
            f"answers {served or 'n/a'}.", "",
            "| groups | series PG / OG | text unchanged PG / OG | text changed PG / OG | OG / PG | "
            "OpenMetrics changed PG / OG | OG / PG |",
            "|---:|---:|---:|---:|---:|---:|---:|"]
    for s in result["stages"]:
        sc, st = s["scrape"], s["store"]

        def ms(name: str, key: str) -> float | None:
            return sc.get(name, {}).get(key, {}).get("median_ms")
        out.append(
            f"| {reached(s)} | {_f(st.get(PG, {}).get('series'), '{:,}')} / {_f(st.get(OG, {}).get('series'), '{:,}')} | "
            f"{_f(ms(PG, 'text_unchanged'))} / {_f(ms(OG, 'text_unchanged'))} | "
            f"{_f(ms(PG, 'text_changed'))} / {_f(ms(OG, 'text_changed'))} | "
            f"{r(ms(OG, 'text_changed'), ms(PG, 'text_changed'))} | "
            f"{_f(ms(PG, 'openmetrics_changed'))} / {_f(ms(OG, 'openmetrics_changed'))} | "
            f"{r(ms(OG, 'openmetrics_changed'), ms(PG, 'openmetrics_changed'))} |")

    out += ["", "Memory: resident set (VmRSS) over the empty process's, per stored series; after the fill, "
                "and after the push runs on the same store.", "",
            "| groups | PG MiB (B/series) | OG MiB (B/series) | OG / PG | after pushes: PG MiB (B/series) | "
            "OG MiB (B/series) | OG / PG |",
            "|---:|---:|---:|---:|---:|---:|---:|"]
    for s in result["stages"]:
        st = s["store"]

        def mem(name: str, rss: str, per: str) -> str:
            d = st.get(name, {})
            if not d.get(rss):
                return "n/a"
            return f"{d[rss] / 1024:,.1f} ({_f(d.get(per), '{:,.0f}')})"

        def per(name: str, key: str) -> float | None:
            return st.get(name, {}).get(key)
        out.append(f"| {reached(s)} | {mem(PG, 'rss_kb', 'bytes_per_series')} | {mem(OG, 'rss_kb', 'bytes_per_series')} | "
                   f"{r(per(OG, 'bytes_per_series'), per(PG, 'bytes_per_series'))} | "
                   f"{mem(PG, 'rss_after_pushes_kb', 'bytes_per_series_after_pushes')} | "
                   f"{mem(OG, 'rss_after_pushes_kb', 'bytes_per_series_after_pushes')} | "
                   f"{r(per(OG, 'bytes_per_series_after_pushes'), per(PG, 'bytes_per_series_after_pushes'))} |")

    out += ["", "| target (issue 5) | measured | goal | result |", "|---|---:|---:|---|"]
    for t in summary["targets"]:
        res = {True: "met", False: "**missed**", None: "not measured"}[t["met"]]
        bound = t["fmt"].format(t["bound"])
        out.append(f"| {t['target']} | {_f(t['value'], t['fmt'])} | {t['op']} {bound} | {res} |")
    return "\n".join(out)


def chart(result: dict[str, Any], summary: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.8))
    for name, style in ((PG, "o-"), (OG, "s-")):
        xs, ys, ps = [], [], []
        for s in result["stages"]:
            p = s["push"].get(name)
            groups = s["store"].get(name, {}).get("groups")
            if p and p.get("rps"):
                xs.append(max(1, groups or s["size"]))
                ys.append(p["rps"])
                ps.append(p["p99_ms"])
        if xs:
            ax1.plot(xs, ys, style, label=LABELS[name])
            ax2.plot(xs, ps, style, label=LABELS[name])
    if summary["empty_rps"]:
        ax1.axhline(summary["empty_rps"], linestyle="--", color="grey", label=LABELS[EMPTY])
    for ax, title, ylabel in ((ax1, "Push throughput (16 connections)", "pushes/s (median)"),
                              (ax2, "Push latency", "p99 latency, ms (median)")):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("store size, groups (one 11-sample push each)")
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    fig.suptitle(f"otelgravel vs Pushgateway — {result['machine']['cpu']} x{result['machine']['cpus']}, "
                 f"{result['started']}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
