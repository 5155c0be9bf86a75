"""The machine: what it is (for the report) and how busy other processes keep it during a run."""

from __future__ import annotations

import argparse
import os
import platform
import re
import subprocess
import time
from pathlib import Path
from typing import Any

from common import REPO_DIR

def machine_info(args: argparse.Namespace) -> dict[str, Any]:
    cpu = platform.processor() or "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_kb = _status_kb_meminfo()

    def version(cmd: list[str], pattern: str) -> str:
        try:
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
            text = (p.stdout + p.stderr).strip()
            m = re.search(pattern, text)
            return m.group(1) if m else text.splitlines()[0]
        except Exception as exc:
            return f"? ({exc})"

    def pyver(mod: str) -> str:
        try:
            return __import__(mod).__version__
        except Exception:
            return "not installed"

    try:
        commit = subprocess.run(["git", "-C", str(REPO_DIR), "rev-parse", "--short", "HEAD"],
                                capture_output=True, text=True, timeout=10).stdout.strip()
    except Exception:
        commit = "?"
    return {
        "cpu": cpu, "cpus": os.cpu_count(), "mem_gib": round(mem_kb / 1024 / 1024, 1),
        "kernel": platform.release(), "python": platform.python_version(),
        "pushgateway": version([args.pushgateway_bin, "--version"], r"version (\S+)"),
        "wrk": version(["wrk", "-v"], r"wrk (\S+)"), "aiohttp": pyver("aiohttp"), "uvloop": pyver("uvloop"),
        "otelgravel_commit": commit,
    }


def cpu_busy(seconds: float = 1.0) -> float:
    """Share of all CPUs busy over `seconds` (before the run: other load skews every number)."""
    def sample() -> tuple[int, int]:
        fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
        return idle, sum(fields)
    try:
        i0, t0 = sample()
        time.sleep(seconds)
        i1, t1 = sample()
        return round(1 - (i1 - i0) / (t1 - t0), 3) if t1 > t0 else 0.0
    except (OSError, ValueError, IndexError):
        return -1.0


class LoadMonitor:
    """Samples, in a thread, how much CPU went to processes that are not the benchmark's.

    Ours: every process in the benchmark's own process group (this script, wrk, the loader) and in
    the servers' groups, plus the children we already reaped. Anything else using the CPUs during a
    measurement lowers its numbers; each wrk run records the foreign share over its own window.
    """

    def __init__(self, pgids_fn, interval: float = 0.5):
        import threading

        self.pgids_fn = pgids_fn
        self.interval = interval
        self.samples: list[tuple[float, int, int, int]] = []  # (monotonic, total, busy, ours) in ticks
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="load-monitor", daemon=True)

    @staticmethod
    def _ours(pgids: set[int]) -> int:
        ticks = 0
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            # after the command: state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt
            # utime(11) stime(12) cutime(13) cstime(14)
            if int(fields[2]) in pgids:
                ticks += int(fields[11]) + int(fields[12])
                if int(entry) == os.getpid():
                    ticks += int(fields[13]) + int(fields[14])
        return ticks

    def sample(self) -> None:
        fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
        total = sum(fields)
        busy = total - fields[3] - (fields[4] if len(fields) > 4 else 0)
        pgids = {os.getpgrp(), *self.pgids_fn()}
        self.samples.append((time.monotonic(), total, busy, self._ours(pgids)))

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.sample()
            except Exception:
                pass
            self._stop.wait(self.interval)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def foreign(self, t0: float, t1: float) -> float | None:
        """Share of all CPUs used by other processes between monotonic times t0 and t1."""
        inside = [x for x in self.samples if t0 - self.interval <= x[0] <= t1 + self.interval]
        if len(inside) < 2:
            return None
        a, b = inside[0], inside[-1]
        dt = b[1] - a[1]
        if dt <= 0:
            return None
        return round(max(0.0, ((b[2] - a[2]) - (b[3] - a[3])) / dt), 3)


def _status_kb_meminfo() -> int:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0

