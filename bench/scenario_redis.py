"""Replicas on Redis (issue 12): push throughput of one replica on Redis vs the embedded store,
Redis round trips per push, scrape time of a large state from a replica vs the embedded store,
and two replicas against one, with the CPU cost per push of each mode.

A ``redis-server`` of this scenario's own (loopback, free port, appendonly everysec, stopped by PID);
gateways of its own: ``memory`` (embedded store), ``redis`` (one replica), ``redis2`` (two replicas
on one key prefix, loaded together by two wrk processes). Each is filled with ``--redis-groups``
groups (default 20,000: 260,000 series with the standard push body; quick 2,000), so the scrapes
are of the same state. Round trips: the replica's own count of pipelines, logged when it stops
("redis closed ... appended= round_trips="). CPU per push: user+system seconds of the gateway
processes (and of redis-server) over the wrk run, divided by the pushes answered.
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
    for mode, gws in servers.items():
        asyncio.run(fill(gws[0].base, 0, groups, bench.push_body, bench.args.fill_concurrency,
                         bench.args.fill_timeout, bench.args.request_timeout))
    # scrapes of the same state: embedded vs a replica (after its reader applied everything)
    for mode in ("memory", "redis"):
        times = []
        for _ in range(max(1, bench.args.scrape_reps)):
            info, body = asyncio.run(scrape(servers[mode][0].base, TEXT, 120))
            times.append(info["seconds"])
        out.setdefault("scrape", {})[mode] = {"seconds": median(times), "bytes": len(body),
                                              "runs": times}
    s = out["scrape"]
    s["redis_vs_memory"] = round(s["redis"]["seconds"] / s["memory"]["seconds"], 3)
    log(f"redis scrape of {groups} groups: memory {s['memory']['seconds']:.3f}s, replica "
        f"{s['redis']['seconds']:.3f}s ({s['redis_vs_memory']}x)")
    args = [str(bench.body_file), str(groups), "", "", "", VARYING_VALUE]
    out["push"] = {}
    for rep in range(max(1, bench.args.reps)):
        for mode, gws in servers.items():
            pids = [g.proc.pid for g in gws] + [redis_pid]
            cpu0 = [_cpu(p) for p in pids]
            results: list = [None] * len(gws)

            def one(i):
                results[i] = bench.wrk(gws[i], f"redis-{mode}-{i}", args, bench.args.connections,
                                       bench.args.wrk_threads)
            threads = [threading.Thread(target=one, args=(i,)) for i in range(len(gws))]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            cpu = [_cpu(p) - c for p, c in zip(pids, cpu0)]
            rps = sum(r["rps"] for r in results)
            pushes = rps * bench.args.duration
            row = out["push"].setdefault(mode, {"runs": []})
            row["runs"].append({"rps": rps, "p99_ms": max(r["p99_ms"] for r in results),
                                "gateway_cpu_us_per_push": round(sum(cpu[:-1]) / pushes * 1e6, 1),
                                "redis_cpu_us_per_push": round(cpu[-1] / pushes * 1e6, 1)
                                if mode != "memory" else None})
            log(f"redis push {mode} rep {rep + 1}: {rps:.0f} pushes/s, gateway CPU "
                f"{row['runs'][-1]['gateway_cpu_us_per_push']} us/push")
    for mode, row in out["push"].items():
        row["rps"] = median([r["rps"] for r in row["runs"]])
        row["gateway_cpu_us_per_push"] = median([r["gateway_cpu_us_per_push"] for r in row["runs"]])
    base = out["push"]["memory"]["rps"]
    for mode in ("redis", "redis2"):
        out["push"][mode]["vs_memory"] = round(out["push"][mode]["rps"] / base, 3) if base else None
    for mode, gws in servers.items():
        for g in gws:
            g.stop()
        if mode == "redis":
            found = re.findall(r"redis closed.*?appended=(\d+) round_trips=(\d+)",
                               gws[0].log_path.read_text())
            if found:
                appended, trips = map(int, found[-1])
                out["round_trips_per_push"] = round(trips / max(1, appended), 3)


def markdown(result: dict) -> str:
    d = result.get(NAME)
    if not d:
        return ""
    lines = [f"### Replicas on Redis ({d['groups']} groups)", "",
             "| mode | pushes/s | vs embedded | gateway CPU us/push | Redis CPU us/push |",
             "|---|---|---|---|---|"]
    for mode, r in d.get("push", {}).items():
        spread = ", ".join(f"{x['rps']:.0f}" for x in r["runs"])
        lines.append(f"| {mode} | {r['rps']:.0f} ({spread}) | {r.get('vs_memory', '')} | "
                     f"{r['gateway_cpu_us_per_push']} | {r['runs'][-1]['redis_cpu_us_per_push']} |")
    s = d.get("scrape", {})
    if s:
        lines += ["", f"Scrape: embedded {s['memory']['seconds']:.3f} s, replica "
                  f"{s['redis']['seconds']:.3f} s ({s['redis_vs_memory']}x, target <= 1.2x); "
                  f"Redis round trips per push: {d.get('round_trips_per_push')} (target <= 1)."]
    return "\n".join(lines)
