"""What every part of the benchmark shares: paths, the targets' names, thresholds, the log, medians."""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"
PUSH_LUA = BENCH_DIR / "push.lua"
HOST = "127.0.0.1"

PG = "pushgateway"
OG = "otelgravel"
EMPTY = "empty"
LABELS = {PG: "Pushgateway", OG: "otelgravel", EMPTY: "empty aiohttp handler"}

MIN_SERIES_FOR_MEMORY = 1000
REPUSH_DEADLINE = 20.0  # s, re-pushing every group before a "changed" scrape (6 times per size)
FOREIGN_CPU_WARN = 0.10  # share of all CPUs used by other processes during a measurement


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)



def disturbed(run: dict[str, Any]) -> bool:
    return (run.get("foreign_cpu") or 0) > FOREIGN_CPU_WARN


def pick_runs(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The runs a median is taken over: without errors and undisturbed if there are such, else
    without errors, else all (and the tables mark medians that include disturbed runs)."""
    ok = [r for r in runs if r["ok"]]
    return [r for r in ok if not disturbed(r)] or ok or runs


def median(values: list[float]) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None

