"""The per-size scenario: fill both gateways, then memory, scrape and push measurements at each size.

For each ``--sizes`` entry (1, 2,000, 20,000 groups by default): fill the Pushgateway and otelgravel
to that many groups, read resident memory per stored series, time scrapes (text and OpenMetrics,
store unchanged and every group changed), measure push throughput and latency with wrk against
both gateways and the empty handler, then scrape and read memory once more after the push load.
Results: ``result["stages"]``, one dict per size.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from common import (EMPTY, FOREIGN_CPU_WARN, HOST, LABELS, MIN_SERIES_FOR_MEMORY, OG, PG, REPUSH_DEADLINE,
                    disturbed, log, median, pick_runs)
from loadgen import count_series, fill, scrape
from servers import Server, free_port

NAME = "stages"
INITIAL: list = []


def run(bench) -> None:
    for size in bench.args.sizes:
        run_stage(bench, size)


def fill_gateway(bench, name: str, size: int, stage: dict) -> None:
    server = bench.usable(name)
    if server is None:
        return
    have = bench.pg_groups if name == PG else bench.og_groups
    if name == PG and size > bench.args.pg_seed_above and bench.args.pg_fill == "seed" and size > have:
        seed_pushgateway(bench, size, stage)
        return
    deadline = bench.args.fill_timeout
    info = asyncio.run(fill(server.base, have, size, bench.push_body, bench.args.fill_concurrency,
                            deadline, bench.args.request_timeout))
    info["method"] = "push (consistency check on)" if name == PG else "push"
    stage["fill"][name] = info
    reached = info["contiguous_to"] if size > have else have
    if name == PG:
        bench.pg_groups = reached
    else:
        bench.og_groups = reached
    if info["hit_deadline"]:
        bench.note(f"{LABELS[name]}: fill to {size} groups stopped at the {deadline:g}s deadline "
                   f"with {reached} groups")
    log(f"{name}: filled {have}->{reached} groups in {info['seconds']}s ({info['pushes_per_s']}/s)")

def seed_pushgateway(bench, size: int, stage: dict) -> None:
    """Give the Pushgateway `size` groups without waiting for O(n^2) checked pushes.

    A seeding instance with the consistency check off receives the same pushes (groups
    0..size-1), writes its state to a temporary persistence file at shutdown, and a fresh
    measured instance loads that file at start. The measured instance runs with the default
    settings (consistency check on); its persistence interval is longer than the run, so it
    never writes during the measurement. Same content as a checked fill, minutes sooner.
    """
    a = bench.args
    old = bench.servers[PG]
    data_file = bench.work / "pushgateway-seed.data"
    t0 = time.monotonic()
    seed_port = free_port()
    seeder = bench.start(
        "pushgateway-seeder",
        [a.pushgateway_bin, f"--web.listen-address={HOST}:{seed_port}", f"--persistence.file={data_file}",
         "--persistence.interval=24h", "--push.disable-consistency-check"],
        seed_port)
    info = asyncio.run(fill(seeder.base, 0, size, bench.push_body, a.fill_concurrency, a.fill_timeout,
                            a.request_timeout))
    # 202 answers come before the seeder has stored the push: wait until it holds them all
    wait_until = time.monotonic() + 60
    while time.monotonic() < wait_until:
        _, body = asyncio.run(scrape(seeder.base, "text/plain", a.scrape_timeout))
        if count_series(body, "bench")["groups"] >= info["pushed_ok"]:
            break
        time.sleep(0.2)
    seeder.stop(timeout=60)
    if not data_file.exists():
        raise RuntimeError(f"pushgateway seeder wrote no {data_file}:\n{seeder.log_tail()}")
    old.stop()
    port = free_port()
    t1 = time.monotonic()
    server = bench.start(
        PG, [a.pushgateway_bin, f"--web.listen-address={HOST}:{port}", f"--persistence.file={data_file}",
             "--persistence.interval=24h"], port, log_name="pushgateway-seeded")
    server.baseline_rss_kb = old.baseline_rss_kb  # RSS of a fresh, empty instance, same binary
    bench.servers[PG] = server
    bench.pg_groups = info["contiguous_to"]
    info.update(method="seeded: pushes to a check-off instance, persisted, loaded by a fresh "
                       "check-on instance", restart_seconds=round(time.monotonic() - t1, 3),
                total_seconds=round(time.monotonic() - t0, 3), data_file_bytes=data_file.stat().st_size)
    stage["fill"][PG] = info
    log(f"pushgateway: seeded {bench.pg_groups} groups in {info['total_seconds']}s "
        f"(load {info['restart_seconds']}s)")

# -- measurements

def measure_store(bench, name: str, stage: dict) -> None:
    server = bench.usable(name)
    if server is None:
        return
    time.sleep(bench.args.settle)
    mem = server.rss_kb()
    meta, body = asyncio.run(scrape(server.base, "text/plain", bench.args.scrape_timeout))
    counted = count_series(body, "bench")
    base = server.baseline_rss_kb or 0
    # below ~1,000 series the difference is allocator noise, not the store
    per_series = ((mem["rss_kb"] - base) * 1024 / counted["series"]
                  if counted["series"] >= MIN_SERIES_FOR_MEMORY else None)
    stage["store"][name] = {
        **counted, **mem, "baseline_rss_kb": base,
        "bytes_per_series": round(per_series, 1) if per_series is not None else None,
        "scrape_status": meta["status"],
    }
    log(f"{name}: {counted['groups']} groups, {counted['series']} series, RSS {mem['rss_kb']} kB "
        f"(baseline {base} kB) -> {stage['store'][name]['bytes_per_series']} B/series")

def measure_scrapes(bench, stage: dict, reps: int) -> None:
    """GET /metrics in both formats, alternating gateways, in two situations.

    ``unchanged``: the store did not change since the previous scrape (the first of these
    follows the fill). ``changed``: every group was pushed again just before the scrape, so a
    gateway that caches rendered text has to re-render all of it: the worst case, and the one
    the scrape target is judged on. The Pushgateway keeps no rendered text (every scrape gathers
    and encodes the whole store; compare its "first scrape after the push runs"), and pushing
    20,000 groups into it again would take it half an hour, so it is not re-pushed: its
    ``changed`` scrape is one more scrape of the same store.
    """
    from workload import OPENMETRICS_ACCEPT, TEXT_ACCEPT

    formats = {"text": TEXT_ACCEPT, "openmetrics": OPENMETRICS_ACCEPT}

    def one(name: str, server: Server, fmt: str, kind: str) -> None:
        try:
            meta, _ = asyncio.run(scrape(server.base, formats[fmt], bench.args.scrape_timeout))
        except Exception as exc:
            bench.error(f"scrape {name} {fmt} at {stage['size']}", exc)
            return
        stage["scrape_runs"].setdefault(name, {}).setdefault(f"{fmt}_{kind}", []).append(meta)

    for rep in range(reps):
        for name in (PG, OG) if rep % 2 == 0 else (OG, PG):
            server = bench.usable(name)
            if server is not None:
                for fmt in formats:
                    one(name, server, fmt, "unchanged")
    for rep in range(reps):
        for fmt in formats:
            for name in (PG, OG) if rep % 2 == 0 else (OG, PG):
                server = bench.usable(name)
                if server is None:
                    continue
                if name != PG:
                    groups = bench.og_groups
                    try:
                        info = asyncio.run(fill(server.base, 0, groups, bench.push_body,
                                                bench.args.fill_concurrency, REPUSH_DEADLINE,
                                                bench.args.request_timeout))
                        stage.setdefault("repush", {}).setdefault(name, []).append(
                            {k: info[k] for k in ("pushed_ok", "seconds", "failures")})
                        if info["pushed_ok"] < groups:
                            bench.note(f"{LABELS[name]}: re-pushed only {info['pushed_ok']} of {groups} "
                                       f"groups in {REPUSH_DEADLINE:g}s before a 'changed' scrape")
                    except Exception as exc:
                        bench.error(f"re-push {name} at {stage['size']}", exc)
                        continue
                one(name, server, fmt, "changed")
    for name, by_key in stage["scrape_runs"].items():
        for key, runs in by_key.items():
            stage["scrape"].setdefault(name, {})[key] = {
                "median_ms": round(median([r["seconds"] for r in runs]) * 1000, 2),
                "first_ms": round(runs[0]["seconds"] * 1000, 2),
                "runs": len(runs),
                "bytes": runs[-1]["bytes"],
                "content_type": runs[-1]["content_type"],
                "status": runs[-1]["status"],
            }

def measure_pushes(bench, stage: dict, reps: int) -> None:
    from workload import VARYING_VALUE

    lua_args = [str(bench.body_file)]
    order = [PG, OG, EMPTY]
    for rep in range(reps):
        rotated = order[rep % len(order):] + order[:rep % len(order)]
        for name in rotated:
            server = bench.usable(name)
            if server is None:
                continue
            groups = 1 if name == EMPTY else (bench.pg_groups if name == PG else bench.og_groups)
            groups = max(1, min(groups, stage["size"]))
            try:
                res = bench.wrk(server, name, lua_args + [str(groups), "", "", "", VARYING_VALUE],
                                bench.args.connections, bench.args.wrk_threads)
            except Exception as exc:
                bench.error(f"wrk {name} at {stage['size']}", exc)
                continue
            res["groups"] = groups
            stage["push_runs"].setdefault(name, []).append(res)
            problems = "" if res["ok"] else f"  (ERRORS {res['errors']}, non-2xx {res['non_2xx_3xx']})"
            if (res["foreign_cpu"] or 0) > FOREIGN_CPU_WARN:
                problems += f"  (other processes used {res['foreign_cpu']:.0%} of the CPUs)"
            log(f"push {name:11s} size {stage['size']:>6} rep {rep + 1}: {res['rps']:>9.1f} req/s, "
                f"p99 {res['p99_ms']:.1f} ms{problems}")
    for name, runs in stage["push_runs"].items():
        good = pick_runs(runs)
        stage["push"][name] = {
            "disturbed_runs_in_median": sum(1 for r in good if disturbed(r)),
            "rps": median([r["rps"] for r in good]),
            "p99_ms": median([r["p99_ms"] for r in good]),
            "p50_ms": median([r["p50_ms"] for r in good]),
            "requests": sum(r["requests"] for r in runs),
            "runs": len(runs),
            "runs_with_errors": sum(1 for r in runs if not r["ok"]),
            "groups": runs[0]["groups"],
        }

def run_stage(bench, size: int) -> None:
    stage: dict[str, Any] = {"size": size, "fill": {}, "store": {}, "scrape_runs": {}, "scrape": {},
                             "push_runs": {}, "push": {}}
    bench.result["stages"].append(stage)
    log(f"=== store size {size} groups")
    for name in (PG, OG):
        try:
            fill_gateway(bench, name, size, stage)
        except Exception as exc:
            bench.error(f"fill {name} to {size}", exc)
    for name in (PG, OG):
        try:
            measure_store(bench, name, stage)
        except Exception as exc:
            bench.error(f"store {name} at {size}", exc)
    measure_scrapes(bench, stage, bench.args.scrape_reps)
    measure_pushes(bench, stage, bench.args.reps)
    # after the push load: the first scrape re-renders what the pushes changed
    for name in (PG, OG):
        server = bench.usable(name)
        if server is None:
            continue
        try:
            meta, body = asyncio.run(scrape(server.base, "text/plain", bench.args.scrape_timeout))
            stage["scrape"].setdefault(name, {})["text_after_pushes_ms"] = round(meta["seconds"] * 1000, 2)
            # the same store after the push load: garbage the pushes left (a Go heap grows to about
            # twice the live data between collections) is part of what a running gateway holds
            store = stage["store"].get(name)
            if store:
                mem = server.rss_kb()
                series = count_series(body, "bench")["series"]
                store["rss_after_pushes_kb"] = mem["rss_kb"]
                store["series_after_pushes"] = series
                store["bytes_per_series_after_pushes"] = (
                    round((mem["rss_kb"] - store["baseline_rss_kb"]) * 1024 / series, 1)
                    if series >= MIN_SERIES_FOR_MEMORY else None)
        except Exception as exc:
            bench.error(f"scrape after pushes {name} at {size}", exc)
