"""Replicas on Redis (issue 12): push throughput of one replica on Redis vs the embedded store,
Redis round trips per push, scrape time of a large state from a replica vs the embedded store,
and two replicas against one, with the CPU cost per push of each mode.

A ``redis-server`` of this scenario's own (loopback, free port, appendonly everysec, stopped by PID);
gateways of its own: ``memory`` (embedded store), ``redis`` (one replica), ``redis2`` (two replicas
on one key prefix, loaded together by two wrk processes). Each is filled with ``--redis-groups``
groups (default 20,000: 260,000 series with the standard push body; quick 2,000), so the scrapes
are of the same state (scraped alternately). Round trips: the replica's own count of append
pipelines, logged when it stops ("redis closed ... appended= round_trips="), plus its XREADs
(the reader's round trips, from Redis' INFO commandstats over the wrk runs, which also count the
XADDs: one per push). CPU per push: user+system seconds of the gateway processes (and of
redis-server) over exactly the wrk run, divided by the pushes wrk counted.
On a 2-core machine two replicas plus Redis plus wrk share two cores: the two-replica number shows
contention, not scale (every replica also applies every push of the other).
Results: ``result["redis"]``.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import threading
import time
from typing import Any

from common import HOST, REPO_DIR, log, median
from loadgen import fill, scrape
from servers import free_port, otelgravel_argv

NAME = "redis"
INITIAL = None
TEXT = "text/plain"


def add_args(p) -> None:
    p.add_argument("--redis-groups", type=int, help="groups in each gateway (default 20000: 260,000 "
                   "series; quick 2000)")
    p.add_argument("--redis-scrape-reps", type=int, default=5,
                   help="warm scrapes of each gateway, after the cold one (default 5)")
    p.add_argument("--redis-fill-timeout", type=float, default=240.0,
                   help="deadline of each gateway's fill in this scenario, s (default 240)")


def _cpu(pid: int) -> float:
    try:
        fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except OSError:
        return 0.0


def run(bench) -> None:
    if not shutil.which("redis-server"):
        bench.note("redis: redis-server not installed, scenario skipped")
        return
    out: dict[str, Any] = {}
    bench.result[NAME] = out
    directory = bench.work / "redis"
    directory.mkdir(parents=True, exist_ok=True)
    port = free_port()
    redis = subprocess.Popen(["redis-server", "--port", str(port), "--bind", HOST, "--dir", str(directory),
                              "--save", "", "--appendonly", "yes", "--appendfsync", "everysec"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            if b"PONG" in subprocess.run(["redis-cli", "-p", str(port), "ping"], capture_output=True).stdout:
                break
            time.sleep(0.05)
        _measure(bench, out, port, redis.pid)
    except Exception as exc:
        bench.error("redis", exc)
    finally:
        redis.terminate()
        redis.wait(10)


def _gateway(bench, name: str, redis_port: int | None, prefix: str = "bench"):
    port, otlp_port = free_port(), free_port()
    argv = otelgravel_argv(port, otlp_port)
    if redis_port is not None:
        argv += ["--set", f"processors.gravel.storage.redis.addresses=[{HOST}:{redis_port}]",
                 "--set", f"processors.gravel.storage.redis.key_prefix={prefix}",
                 "--set", "processors.gravel.storage.snapshot_interval=1h"]
    return bench.start(name, argv, port, cwd=REPO_DIR)


def _measure(bench, out: dict, redis_port: int, redis_pid: int) -> None:
    from workload import VARYING_VALUE

    groups = bench.args.redis_groups or (2000 if bench.args.quick else 20000)
    out["groups"] = groups
    servers = {"memory": [_gateway(bench, "og-memory", None)],
               "redis": [_gateway(bench, "og-redis", redis_port, "one")]}
    servers["redis2"] = [_gateway(bench, "og-redis2-a", redis_port, "two"),
                         _gateway(bench, "og-redis2-b", redis_port, "two")]
    for mode, gws in servers.items():  # a bounded fill; a short one is an error, not a quiet skew
        filled = asyncio.run(fill(gws[0].base, 0, groups, bench.push_body, bench.args.fill_concurrency,
                                  bench.args.redis_fill_timeout, bench.args.request_timeout))
        out.setdefault("fill", {})[mode] = {k: filled[k] for k in ("seconds", "pushes_per_s", "contiguous_to")}
        if filled["hit_deadline"]:
            raise RuntimeError(f"{mode}: filled {filled['contiguous_to']} of {groups} groups within "
                               f"--redis-fill-timeout {bench.args.redis_fill_timeout:g}s")
    # scrapes of the same state: embedded vs a replica (after its reader applied everything),
    # alternating, so that other load on the machine falls on both. The first scrape renders every
    # series (cold); the next ones reuse each unchanged series' line (warm). Wall time, and the
    # gateway's own CPU time (what other processes on a loaded machine do not inflate).
    times: dict[str, list[float]] = {"memory": [], "redis": []}
    cpus: dict[str, list[float]] = {"memory": [], "redis": []}
    s = out["scrape"] = {}
    for _ in range(1 + max(1, bench.args.redis_scrape_reps)):
        for mode in times:
            pid = servers[mode][0].proc.pid
            cpu0 = _cpu(pid)
            info, body = asyncio.run(scrape(servers[mode][0].base, TEXT, 120))
            cpus[mode].append(round(_cpu(pid) - cpu0, 3))
            times[mode].append(round(info["seconds"], 3))
            s[mode] = {"bytes": len(body), "series": body.count(b"\n") - body.count(b"\n#")}
    for mode, runs in times.items():
        s[mode].update(cold_seconds=runs[0], cold_cpu=cpus[mode][0], seconds=median(runs[1:]),
                       cpu=median(cpus[mode][1:]), runs=runs, cpu_runs=cpus[mode])
    s["cold_vs_memory"] = round(s["redis"]["cold_seconds"] / s["memory"]["cold_seconds"], 3)
    s["redis_vs_memory"] = round(s["redis"]["seconds"] / s["memory"]["seconds"], 3)
    s["cpu_vs_memory"] = round(s["redis"]["cpu"] / s["memory"]["cpu"], 3) if s["memory"]["cpu"] else None
    s["ratio_runs"] = [round(r / m, 3) for r, m in zip(times["redis"][1:], times["memory"][1:])]
    log(f"redis scrape of {groups} groups ({s['redis']['series']} series): cold {s['cold_vs_memory']}x, "
        f"warm memory {s['memory']['seconds']:.3f}s, replica {s['redis']['seconds']:.3f}s "
        f"({s['redis_vs_memory']}x; CPU {s['cpu_vs_memory']}x)")
    args = [str(bench.body_file), str(groups), "", "", "", VARYING_VALUE]
    out["push"] = {}
    for rep in range(max(1, bench.args.reps)):
        for mode, gws in servers.items():
            pids = [g.proc.pid for g in gws] + [redis_pid]
            run = _push_run(bench, mode, gws, args, pids, redis_port)
            row = out["push"].setdefault(mode, {"runs": []})
            row["runs"].append(run)
            log(f"redis push {mode} rep {rep + 1}: {run['rps']:.0f} pushes/s, gateway CPU "
                f"{run['gateway_cpu_us_per_push']} us/push, XADD/push {run['xadd_per_push']}, "
                f"XREAD/push {run['xread_per_push']}")
    for mode, row in out["push"].items():
        for key in ("rps", "gateway_cpu_us_per_push", "redis_cpu_us_per_push", "xread_per_push"):
            values = [r[key] for r in row["runs"] if r[key] is not None]
            row[key] = median(values) if values else None
        rps = [r["rps"] for r in row["runs"]]
        row["spread"] = round((max(rps) - min(rps)) / row["rps"], 3) if row["rps"] else None
    base = out["push"]["memory"]["rps"]
    for mode in ("redis", "redis2"):
        out["push"][mode]["vs_memory"] = round(out["push"][mode]["rps"] / base, 3) if base else None
    ratios = [r["rps"] / m["rps"] for r, m in zip(out["push"]["redis"]["runs"], out["push"]["memory"]["runs"])]
    out["push"]["redis"]["vs_memory_runs"] = [round(x, 3) for x in ratios]
    for mode, gws in servers.items():
        for g in gws:
            g.stop()
        if mode == "redis":
            found = re.findall(r"redis closed.*?appended=(\d+) round_trips=(\d+)",
                               gws[0].log_path.read_text())
            if found:
                appended, trips = map(int, found[-1])
                out["round_trips_per_push"] = round(trips / max(1, appended), 3)
                reads = out["push"]["redis"]["xread_per_push"]
                out["all_round_trips_per_push"] = round(out["round_trips_per_push"] + (reads or 0), 3)


def _commandstats(port: int) -> dict[str, int]:
    """calls per command since Redis started (INFO commandstats)."""
    text = subprocess.run(["redis-cli", "-p", str(port), "info", "commandstats"],
                          capture_output=True, text=True, timeout=10).stdout
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"cmdstat_(\w+):calls=(\d+)", text)}


def _push_run(bench, mode: str, gws: list, args: list[str], pids: list[int], redis_port: int) -> dict:
    """One wrk per gateway at the same time; CPU and Redis command counts over exactly that run
    (a run that other processes disturbed is redone whole, like ``bench.wrk`` does)."""
    from common import FOREIGN_CPU_WARN
    from loadgen import run_wrk

    discarded = []
    while True:
        cpu0, calls0, t0 = [_cpu(p) for p in pids], _commandstats(redis_port), time.monotonic()
        results: list = [None] * len(gws)

        def one(i):
            results[i] = run_wrk(gws[i].base, args, bench.args.duration, bench.args.connections,
                                 bench.args.wrk_threads, bench.args.wrk_timeout)
        threads = [threading.Thread(target=one, args=(i,)) for i in range(len(gws))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        cpu = [_cpu(p) - c for p, c in zip(pids, cpu0)]
        calls1 = _commandstats(redis_port)
        foreign = bench.monitor.foreign(t0, time.monotonic())
        for g in gws:
            bench.drain(g, f"redis-{mode}")
        if None in results:
            raise RuntimeError(f"wrk failed on a {mode} gateway")
        if (foreign or 0) <= FOREIGN_CPU_WARN or bench.retries_left <= 0:
            break
        bench.retries_left -= 1
        discarded.append({"rps": sum(r["rps"] for r in results), "foreign_cpu": foreign})
        log(f"  redis-{mode}: other processes used {foreign:.0%} of the CPUs; discarded, again")
        bench.wait_quiet(10)
    pushes = sum(r["requests"] for r in results)
    delta = {k: calls1.get(k, 0) - calls0.get(k, 0) for k in ("xadd", "xread")}
    redis_mode = mode != "memory"
    return {"rps": round(sum(r["rps"] for r in results), 1), "pushes": pushes,
            "p99_ms": max(r["p99_ms"] for r in results), "foreign_cpu": foreign,
            "ok": all(r["ok"] for r in results), "discarded_disturbed": discarded,
            "gateway_cpu_us_per_push": round(sum(cpu[:-1]) / pushes * 1e6, 1),
            "redis_cpu_us_per_push": round(cpu[-1] / pushes * 1e6, 1) if redis_mode else None,
            # every replica reads the stream: XREADs are per replica, XADDs one per push
            "xadd_per_push": round(delta["xadd"] / pushes, 3) if redis_mode else None,
            "xread_per_push": round(delta["xread"] / pushes, 3) if redis_mode else None}


def markdown(result: dict) -> str:
    d = result.get(NAME)
    if not d:
        return ""
    lines = [f"### Replicas on Redis ({d['groups']} groups)", "",
             "| mode | pushes/s (runs) | spread | vs embedded | gateway CPU us/push | Redis CPU us/push "
             "| XADD/push | XREAD/push |", "|---|---|---|---|---|---|---|---|"]
    for mode, r in d.get("push", {}).items():
        runs = ", ".join(f"{x['rps']:.0f}" for x in r["runs"])
        lines.append(f"| {mode} | {r['rps']:.0f} ({runs}) | {r['spread']:.0%} | {r.get('vs_memory', '')} | "
                     f"{r['gateway_cpu_us_per_push']} | {r['redis_cpu_us_per_push']} | "
                     f"{r['runs'][-1]['xadd_per_push']} | {r['xread_per_push']} |")
    s = d.get("scrape", {})
    if s:
        lines += ["", f"Scrape of {s['redis']['series']} series, replica / embedded (target <= 1.2x): cold "
                  f"(every series rendered) {s['redis']['cold_seconds']:.2f} / {s['memory']['cold_seconds']:.2f} s "
                  f"= {s['cold_vs_memory']}x; warm {s['redis']['seconds']:.3f} / {s['memory']['seconds']:.3f} s "
                  f"= {s['redis_vs_memory']}x (runs {s['ratio_runs']}), gateway CPU {s['cpu_vs_memory']}x. "
                  f"One replica vs embedded, per run: {d['push']['redis'].get('vs_memory_runs')} "
                  f"(target >= 0.5). Redis round trips per push: {d.get('round_trips_per_push')} append "
                  f"pipelines + {d['push']['redis']['xread_per_push']} XREADs = "
                  f"{d.get('all_round_trips_per_push')} (target <= 1).",
                  "", "redis2: two replicas on one prefix, each loaded by its own wrk; every replica "
                  "applies every push, and on 2 cores the two replicas, Redis and the two wrk share the "
                  "CPUs: contention, not scale."]
    return "\n".join(lines)
