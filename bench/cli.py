"""The command line: flags, the run's lifecycle (signals, deadline), the JSON, chart and markdown."""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import signal
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from common import BENCH_DIR, FOREIGN_CPU_WARN, RESULTS_DIR, log
from deps import ensure_dependencies
from harness import Bench
from machine import cpu_busy, machine_info
from report import chart, markdown, summarize
from scenarios import SCENARIOS


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="otelgravel vs Prometheus Pushgateway benchmark (loopback only)")
    p.add_argument("--quick", action="store_true", help="smoke run: 1 repetition, 3 s runs, short deadlines")
    p.add_argument("--sizes", type=lambda s: [int(x) for x in s.split(",")], default=[1, 2000, 20000],
                   help="store sizes in groups (default 1,2000,20000)")
    p.add_argument("--reps", type=int, help="repetitions of each wrk run (default 3, quick 1)")
    p.add_argument("--scrape-reps", type=int, help="repetitions of each scrape (default 3, quick 1)")
    p.add_argument("--duration", type=float, help="seconds per wrk run (default 6, quick 3)")
    p.add_argument("--connections", type=int, default=16)
    p.add_argument("--wrk-threads", type=int, default=1)
    p.add_argument("--wrk-timeout", type=float, default=30.0, help="wrk socket/request timeout, s")
    p.add_argument("--otlp-points", type=int, default=1000)
    p.add_argument("--otlp-connections", type=int, default=4)
    p.add_argument("--fill-concurrency", type=int, default=16)
    p.add_argument("--fill-timeout", type=float, help="deadline of each fill, s (default 75, quick 40)")
    p.add_argument("--pg-fill", choices=("seed", "push"), default="seed",
                   help="how the Pushgateway gets sizes above --pg-seed-above: 'seed' (default) loads a "
                        "persistence file written by a consistency-check-off instance; 'push' pushes with the "
                        "check on until --fill-timeout and records the size reached")
    p.add_argument("--pg-seed-above", type=int, default=2000)
    p.add_argument("--request-timeout", type=float, default=30.0)
    p.add_argument("--scrape-timeout", type=float, default=60.0)
    p.add_argument("--ready-timeout", type=float, default=30.0)
    p.add_argument("--settle", type=float, default=1.0, help="pause before reading RSS, s")
    p.add_argument("--pushgateway-bin", default="prometheus-pushgateway")
    p.add_argument("--no-otelgravel", action="store_true", help="measure only the Pushgateway and the empty handler")
    p.add_argument("--otelgravel-set", action="append", default=[], metavar="KEY=VALUE",
                   help="one more --set for the measured otelgravel (repeatable)")
    p.add_argument("--no-install", action="store_true", help="do not apt-get/pip install missing tools")
    p.add_argument("--wait-quiet", type=float, default=0.0,
                   help="before starting, wait up to this many seconds for the CPUs to be idle")
    p.add_argument("--retry-disturbed", type=int, help="wrk runs that other processes disturbed are redone, "
                   "at most this many times in the whole run (default 6, quick 3)")
    p.add_argument("--max-seconds", type=float, default=570.0,
                   help="hard stop of the measurements (the report is still written); default 570")
    names = [s.NAME for s in SCENARIOS]
    p.add_argument("--only", type=lambda s: s.split(","), default=names, metavar="SCENARIO[,...]",
                   help=f"run only these scenarios, in the registered order (default all: {','.join(names)})")
    for scenario in SCENARIOS:
        if hasattr(scenario, "add_args"):
            scenario.add_args(p)
    args = p.parse_args(argv)
    unknown = [n for n in args.only if n not in names]
    if unknown:
        p.error(f"--only: unknown scenario(s) {','.join(unknown)}; known: {','.join(names)}")
    q = args.quick
    args.reps = args.reps or (1 if q else 3)
    args.scrape_reps = args.scrape_reps or (1 if q else 3)
    args.duration = args.duration or (3.0 if q else 6.0)
    args.fill_timeout = args.fill_timeout or (40.0 if q else 75.0)
    args.sizes = sorted(set(args.sizes))
    if args.retry_disturbed is None:
        args.retry_disturbed = 3 if q else 6
    return args


class _Deadline(BaseException):  # not caught by the per-measurement "except Exception"
    pass


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not args.no_install:
        ensure_dependencies(args.pushgateway_bin)
    sys.path.insert(0, str(BENCH_DIR))
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    started = _dt.datetime.now(_dt.timezone.utc)
    stamp = started.strftime("%Y%m%dT%H%M%SZ")

    def on_signal(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    def on_alarm(signum, frame):
        raise _Deadline(f"--max-seconds {args.max_seconds:g} reached")

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGALRM, on_alarm)

    busy_before = cpu_busy()
    waited = 0.0
    while busy_before > 0.05 and waited < args.wait_quiet:
        log(f"{busy_before:.0%} of the CPUs busy with other work; waiting for a quiet machine "
            f"({waited:.0f}/{args.wait_quiet:g}s)")
        time.sleep(4)
        waited += 5
        busy_before = cpu_busy()
    if busy_before > 0.15:
        log(f"WARNING: {busy_before:.0%} of the CPUs were busy before the run; other load lowers every "
            f"number (and not equally for every target)")
    signal.alarm(int(args.max_seconds))
    bench = Bench(args, stamp, [s for s in SCENARIOS if s.NAME in args.only])
    t0 = time.monotonic()
    result: dict[str, Any] = bench.result
    interrupted = None
    try:
        result = bench.run()
    except (KeyboardInterrupt, _Deadline, Exception) as exc:
        interrupted = f"{type(exc).__name__}: {exc}"
        log("run stopped early: " + interrupted)
        traceback.print_exc()
    finally:
        signal.alarm(0)
        bench.stop_all()
    result["interrupted"] = interrupted
    result["notes"] = bench.notes
    result["started"] = started.isoformat(timespec="seconds")
    result["seconds"] = round(time.monotonic() - t0, 1)
    result["machine"] = machine_info(args)
    result["machine"]["cpu_busy_before"] = busy_before
    result["machine"]["loadavg_after"] = Path("/proc/loadavg").read_text().split()[:3]
    disturbed = [
        f"{stage['size']}/{name}/run {i + 1}: {r['foreign_cpu']:.0%}"
        for stage in result.get("stages", []) for name, runs in stage.get("push_runs", {}).items()
        for i, r in enumerate(runs) if (r.get("foreign_cpu") or 0) > FOREIGN_CPU_WARN
    ] + [f"otlp/run {i + 1}: {r['foreign_cpu']:.0%}" for i, r in enumerate((result.get("otlp") or {}).get("runs", []))
         if (r.get("foreign_cpu") or 0) > FOREIGN_CPU_WARN]
    result["disturbed_runs"] = disturbed
    if disturbed:
        bench.notes.append(f"other processes used more than {FOREIGN_CPU_WARN:.0%} of the CPUs during "
                           f"{len(disturbed)} wrk run(s) (size/target/run: share): {', '.join(disturbed)}; "
                           f"rerun on a quiet machine before trusting those")
    if busy_before > 0.15:
        bench.notes.append(f"{busy_before:.0%} of the CPUs were busy with other work before the run: "
                           f"treat these numbers as lower bounds and rerun on a quiet machine")
    result["args"] = {k: v for k, v in vars(args).items()}
    result["push_body"] = bench.push_body.decode()
    summary = summarize(result) if result["stages"] else {"empty_rps": None, "targets": []}
    result["summary"] = summary
    json_path = RESULTS_DIR / f"{stamp}.json"
    json_path.write_text(json.dumps(result, indent=2, default=str))
    png_path = RESULTS_DIR / f"{stamp}.png"
    try:
        chart(result, summary, png_path)
    except Exception as exc:
        log(f"chart failed: {exc}")
        png_path = None
    m = result["machine"]
    print(f"\n## otelgravel vs Pushgateway — {stamp}{' (quick)' if args.quick else ''}\n")
    print(f"{m['cpus']} x {m['cpu']}, {m['mem_gib']} GiB, Linux {m['kernel']}, Python {m['python']}, "
          f"aiohttp {m['aiohttp']}, uvloop {m['uvloop']}, Pushgateway {m['pushgateway']}, wrk {m['wrk']}, "
          f"otelgravel {m['otelgravel_commit']}. {args.reps} repetition(s) of {args.duration:g}s wrk runs, "
          f"{args.connections} connections; medians. Run took {result['seconds']}s.\n")
    print(markdown(result, summary))
    for scenario in bench.scenarios:
        if hasattr(scenario, "markdown") and result.get(scenario.NAME) is not None:
            print("\n" + scenario.markdown(result))
    for n in bench.notes:
        print(f"\nNote: {n}")
    for e in result["errors"]:
        print(f"\nError: {e}")
    if interrupted:
        print(f"\nThe run stopped early: {interrupted}")
    print(f"\nresults: {json_path}\nchart:   {png_path}\nlogs:    {bench.log_dir}")
    return 1 if interrupted else 0


if __name__ == "__main__":
    sys.exit(main())