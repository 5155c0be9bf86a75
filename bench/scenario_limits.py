"""HTTP server limits: push throughput with the limits on (the defaults: read_header_timeout,
read_timeout, idle_timeout, max_connections) against all off (no deadline, no bound: aiohttp's
own connection handler, counting connections), in the same run. Target (issue 10): on >= 97% of
off.

Two gateways of this scenario's own, filled with the same groups, measured with the same wrk push
load in alternating order, repetition after repetition, so that load from other processes spreads
over both; each run also divides the gateway's CPU time by the pushes it answered (``cpu_us``).
On a loaded machine throughput varies by +-15% from run to run, more than 3%, so the cost is
also measured on its own: ``bench/limits_probe.py`` serves an empty push handler behind
aiohttp's ``web.Server`` and behind ``LimitedServer`` with the default limits, under the same wrk
load, alternating, ``PROBE_REPS`` times; the difference of their CPU time per request is what
the limits add to each request (deadline bookkeeping, sweep, connection count), reported in µs
and as a fraction of the CPU time of a push on the gateway with the limits off.
Results: ``result["limits"]``.
"""

from __future__ import annotations

from typing import Any

from common import BENCH_DIR, REPO_DIR
from compare import alternate, push_table
from loadgen import fill
from servers import free_port, otelgravel_argv

NAME = "limits"
INITIAL = None
GROUPS = 1000
OFF = ["read_header_timeout=0s", "read_timeout=0s", "max_connections=0", "idle_timeout=3630s"]
MODES = {"on": [], "off": OFF}
PROBE_MODES = ("on", "aiohttp")
PROBE_REPS = 5  # quick mode too: the spread is part of the answer


def _argv(mode: str, port: int, otlp_port: int) -> list[str]:
    argv = otelgravel_argv(port, otlp_port)
    for item in MODES[mode]:
        argv += ["--set", f"receivers.pushgateway.{item}"]
    return argv


def run(bench) -> None:
    import asyncio

    out: dict[str, Any] = {"groups": GROUPS, "connections": bench.args.connections, "push": {}}
    bench.result[NAME] = out
    servers = {}
    try:
        for mode in MODES:
            port, otlp_port = free_port(), free_port()
            server = bench.start(f"otelgravel-limits-{mode}", _argv(mode, port, otlp_port), port,
                                 cwd=REPO_DIR)
            info = asyncio.run(fill(server.base, 0, GROUPS, bench.push_body,
                                    bench.args.fill_concurrency, bench.args.fill_timeout,
                                    bench.args.request_timeout))
            if info["contiguous_to"] < GROUPS:
                bench.note(f"limits {mode}: filled only {info['contiguous_to']} groups")
            servers[mode] = server
        out["push"] = alternate(bench, servers, "limits", GROUPS, cpu=True)
        off = out["push"]["off"]["rps"]
        out["on_vs_off"] = round(out["push"]["on"]["rps"] / off, 3) if off else None
    except Exception as exc:
        bench.error("limits pushes", exc)
    finally:
        for server in servers.values():
            server.stop()
    try:
        _probe(bench, out)
    except Exception as exc:
        bench.error("limits probe", exc)


def _probe(bench, out: dict) -> None:
    """The limits' CPU time per request on an empty handler, against the gateway's per push."""
    import sys

    probes = {}
    try:
        for mode in PROBE_MODES:
            port = free_port()
            probes[mode] = bench.start(f"limits-probe-{mode}",
                                       [sys.executable, str(BENCH_DIR / "limits_probe.py"),
                                        "--port", str(port), "--mode", mode], port, cwd=REPO_DIR)
        runs = alternate(bench, probes, "limits-probe", GROUPS, reps=PROBE_REPS, cpu=True)
    finally:
        for server in probes.values():
            server.stop()
    from limits_probe import bookkeeping

    on, bare = ([r["cpu_us"] for r in runs[m]["runs"] if "cpu_us" in r] for m in PROBE_MODES)
    added = [a - b for a, b in zip(on, bare)]  # pairs run next to each other
    push_us = out.get("push", {}).get("off", {}).get("cpu_us")
    timed = [bookkeeping() for _ in range(PROBE_REPS)]
    rps = out.get("push", {}).get("on", {}).get("rps") or 1000.0
    per_request = [t["data_received_us"] + t["sweep_us"] / rps for t in timed]  # a sweep a second
    out["bookkeeping"] = {"runs": timed, "us_per_request": sorted(per_request)[len(per_request) // 2],
                          "us_per_request_runs": [round(x, 3) for x in per_request]}
    if push_us:
        out["bookkeeping"]["fraction_of_push"] = round(
            out["bookkeeping"]["us_per_request"] / push_us, 4)
    out["probe"] = {
        "cpu_us": {m: runs[m]["cpu_us"] for m in PROBE_MODES},
        "runs_cpu_us": {"on": on, "aiohttp": bare},
        "added_us": round(runs["on"]["cpu_us"] - runs["aiohttp"]["cpu_us"], 2),
        "added_us_per_pair": [round(a, 2) for a in added],
        "push_cpu_us_limits_off": push_us,
    }
    if push_us:
        out["probe"]["fraction_of_push"] = round(out["probe"]["added_us"] / push_us, 4)


def markdown(result: dict) -> str:
    d = result[NAME]
    lines = [f"### HTTP limits ({d['groups']} groups, {d['connections']} connections)", "",
             *push_table("limits", d.get("push", {}))]
    lines += ["", f"On vs off: {d.get('on_vs_off')} (target >= 0.97)."]
    push = d.get("push", {})
    if all("cpu_us" in push.get(m, {}) for m in MODES):
        def cpu_runs(m):
            return ", ".join(f"{r['cpu_us']:.1f}" for r in push[m]["runs"] if "cpu_us" in r)
        lines.append("Gateway CPU per push: " + ", ".join(
            f"{m} {push[m]['cpu_us']:.1f} µs ({cpu_runs(m)})" for m in MODES) + ".")
    probe = d.get("probe")
    if probe:
        lines.append(
            f"Limits' own cost (empty handler, CPU per request, {len(probe['added_us_per_pair'])} "
            f"alternating pairs): on {probe['cpu_us']['on']:.1f} µs, aiohttp alone "
            f"{probe['cpu_us']['aiohttp']:.1f} µs: +{probe['added_us']:.2f} µs per request "
            f"(per pair: {', '.join(f'{a:+.2f}' for a in probe['added_us_per_pair'])})"
            + (f", {probe['fraction_of_push']:.1%} of a push's {probe['push_cpu_us_limits_off']:.1f} µs"
               if probe.get("fraction_of_push") is not None else "") + " (target < 3%).")
    book = d.get("bookkeeping")
    if book:
        lines.append(
            f"Limits' bookkeeping timed in-process (data_received wrapper + a sweep a second, "
            f"median of {len(book['us_per_request_runs'])}): {book['us_per_request']:.2f} µs per "
            f"request (runs: {', '.join(f'{x:.2f}' for x in book['us_per_request_runs'])})"
            + (f", {book['fraction_of_push']:.2%} of a push" if book.get("fraction_of_push")
               is not None else "") + " (target < 3%).")
    return "\n".join(lines)
