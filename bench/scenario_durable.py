"""Durable state: push throughput memory-only vs storage.directory with sync interval and always,
in the same run; restart time with a large stored state; the snapshot's bytes per series.

Three gateways of this scenario's own (memory only, ``sync: interval``, ``sync: always``, each
on a fresh directory), filled with the same groups, measured with the same wrk push load in
rotating order, repetition after repetition, so that load from other processes spreads over all
three, at least ``PAIRED_REPS`` times. Targets (issue 11): interval >= 90% of memory-only, always
>= 50%, as the ratio of the medians and as the median of each repetition's ratio (``paired_ratio``).
Beside wrk's ratio (noisy: about +-15% on a shared machine), two figures with less noise: each
gateway's own CPU per push over its wrk runs (``compare.alternate``'s ``cpu``), and
``durable_submit.py``'s in-process µs per push of the submit path alone (memory, interval,
always; alternating rounds).

Restart: ``durable_state.py`` builds a directory with ``--durable-series`` series in a snapshot
and a log of ``--durable-pushes`` pushes after it (default 1,000,000 and 100,000; quick 100,000
and 10,000), then a gateway starts on it; measured until /-/ready answers 200 (target <= 15 s at
the default sizes), and the gateway's own "state restored" seconds.
Results: ``result["durable"]``.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from typing import Any

from common import BENCH_DIR, HOST, REPO_DIR, log, median
from compare import alternate
from loadgen import fill
from servers import Server, free_port, otelgravel_argv

NAME = "durable"
INITIAL = None
MODES = {"memory": [], "interval": ["sync=interval"], "always": ["sync=always"]}
GROUPS = 1000
PAIRED_REPS = 6  # at least: a 10% target needs more than the default 3 repetitions


def paired_ratio(runs: list[dict], base_runs: list[dict]) -> float | None:
    """The median over repetitions of (this mode's pushes/s / memory-only's in the same
    repetition): each pair ran back to back, so load that drifts over the minutes of the run
    cancels, which the ratio of the two medians does not do. Pairs with errors are left out."""
    ratios = [r["rps"] / b["rps"] for r, b in zip(runs, base_runs)
              if r["ok"] and b["ok"] and r["rps"] and b["rps"]]
    return round(median(ratios), 3) if ratios else None


def add_args(p) -> None:
    p.add_argument("--durable-series", type=int, help="series in the restart measurement's snapshot "
                   "(default 1000000, quick 100000)")
    p.add_argument("--durable-pushes", type=int, help="pushes in its log after the snapshot "
                   "(default 100000, quick 10000)")


def _argv(bench, mode: str, port: int, otlp_port: int) -> list[str]:
    argv = otelgravel_argv(port, otlp_port)
    if mode != "memory":
        directory = bench.work / f"durable-{mode}"
        argv += ["--set", f"processors.gravel.storage.directory={directory}"]
        for item in MODES[mode]:
            argv += ["--set", f"processors.gravel.storage.{item}"]
    return argv


def run(bench) -> None:
    out: dict[str, Any] = {"groups": GROUPS, "connections": bench.args.connections, "push": {}}
    bench.result[NAME] = out
    try:
        _pushes(bench, out)
    except Exception as exc:
        bench.error("durable pushes", exc)
    try:
        _submit(bench, out)
    except Exception as exc:
        bench.error("durable submit in process", exc)
    try:
        _restart(bench, out)
    except Exception as exc:
        bench.error("durable restart", exc)


def _pushes(bench, out: dict) -> None:
    import asyncio

    from otelgravel.state.logframe import ACCELERATED

    out["log_frame"] = "c" if ACCELERATED else "python"  # the gateways import the same build
    log(f"durable: log frames built in {out['log_frame']}")
    servers = {}
    for mode in MODES:
        port, otlp_port = free_port(), free_port()
        server = bench.start(f"otelgravel-{mode}", _argv(bench, mode, port, otlp_port), port,
                             cwd=REPO_DIR)
        info = asyncio.run(fill(server.base, 0, GROUPS, bench.push_body, bench.args.fill_concurrency,
                                bench.args.fill_timeout, bench.args.request_timeout))
        if info["contiguous_to"] < GROUPS:
            bench.note(f"durable {mode}: filled only {info['contiguous_to']} groups")
        servers[mode] = server
    reps = None if bench.args.quick else max(PAIRED_REPS, bench.args.reps)
    out["push"] = alternate(bench, servers, "durable", GROUPS, reps=reps, cpu=True)
    push = out["push"]
    base = push["memory"]["rps"]
    for mode in ("interval", "always"):
        rps = push[mode]["rps"]
        push[mode]["vs_memory"] = round(rps / base, 3) if base and rps else None
        push[mode]["paired_vs_memory"] = paired_ratio(push[mode]["runs"], push["memory"]["runs"])
    for server in servers.values():
        server.stop()


def _submit(bench, out: dict) -> None:
    pushes = 5000 if bench.args.quick else 20000
    done = subprocess.run([sys.executable, str(BENCH_DIR / "durable_submit.py"),
                           str(bench.work / "durable-submit"), str(pushes), "5", str(GROUPS)],
                          capture_output=True, text=True, timeout=600, cwd=REPO_DIR)
    if done.returncode != 0:
        raise RuntimeError(f"durable_submit.py failed: {done.stderr[-800:]}")
    out["submit"] = json.loads(done.stdout.strip().splitlines()[-1])
    s = out["submit"]
    log("durable submit in process (µs/push, wall / CPU): " + ", ".join(
        f"{m} {s[m]['us_per_push']} / {s[m]['cpu_us_per_push']}" for m in ("memory", "interval", "always")))


def _restart(bench, out: dict) -> None:
    q = bench.args.quick
    series = bench.args.durable_series or (100_000 if q else 1_000_000)
    pushes = bench.args.durable_pushes or (10_000 if q else 100_000)
    directory = bench.work / "durable-restart"
    log(f"durable restart: building {series} series + {pushes} logged pushes")
    built = subprocess.run([sys.executable, str(BENCH_DIR / "durable_state.py"), str(directory),
                            str(max(1, series // 5)), str(pushes)],
                           capture_output=True, text=True, timeout=900, cwd=REPO_DIR)
    if built.returncode != 0:
        raise RuntimeError(f"durable_state.py failed: {built.stderr[-800:]}")
    state = json.loads(built.stdout.strip().splitlines()[-1])
    port, otlp_port = free_port(), free_port()
    argv = otelgravel_argv(port, otlp_port) + [
        "--set", f"processors.gravel.storage.directory={directory}",
        "--set", f"processors.gravel.max_series={state['series'] * 2}"]
    server = Server("otelgravel-restart", argv, port, bench.log_dir, REPO_DIR)
    bench.all_servers.append(server)  # stopped with the others on any exit
    server.start()
    ready = server.wait_ready(180)  # from the exec to /-/ready 200 (imports included)
    restored = re.search(r'msg="state restored".* seconds=([0-9.]+)', server.log_path.read_text())
    out["restart"] = {**state, "ready_seconds": ready,
                      "restore_seconds": float(restored.group(1)) if restored else None,
                      "snapshot_bytes_per_series": round(state["snapshot_bytes"] / state["series"], 1),
                      "log_bytes_per_push": round(state["log_bytes"] / max(1, pushes), 1),
                      "rss_kb": server.rss_kb()["rss_kb"]}
    log(f"durable restart: ready after {ready:.1f}s ({out['restart']['restore_seconds']}s restoring "
        f"{state['series']} series + {pushes} pushes); snapshot "
        f"{out['restart']['snapshot_bytes_per_series']} bytes/series")
    server.stop()


def markdown(result: dict) -> str:
    d = result[NAME]
    lines = [f"### Durable state ({d['groups']} groups, {d['connections']} connections)", "",
             "| store | pushes/s | p99 ms | vs memory-only: medians (paired) | target "
             "| gateway CPU µs/push | submit µs/push in process (CPU) |",
             "|---|---|---|---|---|---|---|"]
    targets = {"memory": "", "interval": ">= 0.90", "always": ">= 0.50"}
    submit = d.get("submit") or {}
    for mode, r in d.get("push", {}).items():
        spread = ", ".join(f"{x['rps']:.0f}" for x in r["runs"])
        s = submit.get(mode)
        inproc = f"{s['us_per_push']} ({s['cpu_us_per_push']})" if s else ""
        ratio = "" if mode == "memory" else f"{r.get('vs_memory')} ({r.get('paired_vs_memory')})"
        lines.append(f"| {mode} | {r['rps']:.0f} ({spread}) | {r['p99_ms']:.1f} | {ratio} | "
                     f"{targets[mode]} | {r.get('cpu_us', '')} | {inproc} |")
    lines += ["", "Medians: the ratio of the two modes' median pushes/s. Paired: the median of "
              "each repetition's ratio (the two ran back to back), which cancels load that drifts "
              "over the run."]
    if submit:
        lines += ["", f"In process (`durable_submit.py`, {submit['pushes']} pushes x "
                  f"{submit['rounds']} alternating rounds, {submit['concurrency']} at a time, "
                  "medians): the log adds " + ", ".join(
                      f"{submit[m]['log_cpu_us_per_push']} µs of CPU a push with `sync: {m}`"
                      for m in ("interval", "always")) + " to the submit path."]
    rs = d.get("restart")
    if rs:
        lines += ["", f"Restart with {rs['series']} series in the snapshot and {rs['pushes']} pushes "
                  f"in the log: ready after {rs['ready_seconds']:.1f} s (restoring: "
                  f"{rs['restore_seconds']} s; target <= 15 s at 1,000,000 + 100,000); snapshot "
                  f"{rs['snapshot_bytes_per_series']} bytes/series, log {rs['log_bytes_per_push']} "
                  f"bytes/push, RSS {rs['rss_kb'] // 1024} MiB."]
    return "\n".join(lines)
