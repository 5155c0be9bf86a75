"""The measured processes: started in their own process group, polled until ready, stopped for sure."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from common import HOST

def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def _pgid_members(pgid: int) -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[2]) == pgid:  # fields after the command: state, ppid, pgrp, ...
            pids.append(int(entry))
    return pids


def _status_kb(pid: int, key: str) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _cpu_ticks(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    # utime, stime, cutime, cstime (after the command: state is 0): with the reaped children's
    # time, a child (a snapshot's) that ends between two readings moves from the living members
    # into its parent's figure instead of vanishing from the sum
    return int(fields[11]) + int(fields[12]) + int(fields[13]) + int(fields[14])


def cpu_seconds(server: "Server") -> float:
    """User + system CPU time of a server's process group so far, its reaped children's
    included."""
    pids = _pgid_members(server.proc.pid) or [server.proc.pid]
    return sum(_cpu_ticks(p) for p in pids) / os.sysconf("SC_CLK_TCK")


class Server:
    """A process started in its own process group, with its log in a file."""

    def __init__(self, name: str, argv: list[str], port: int, log_dir: Path, cwd: Path | None = None):
        self.name, self.argv, self.port, self.log_dir, self.cwd = name, argv, port, log_dir, cwd
        self.proc: subprocess.Popen | None = None
        self.log_path = log_dir / f"{name}.log"
        self.baseline_rss_kb: int | None = None

    scheme = "http"
    ssl_context = None  # for readiness over https (scenario_security.py)

    @property
    def base(self) -> str:
        return f"{self.scheme}://{HOST}:{self.port}"

    def start(self) -> None:
        with open(self.log_path, "ab") as logf:
            logf.write(f"$ {' '.join(self.argv)}\n".encode())
            logf.flush()
            self.proc = subprocess.Popen(
                self.argv, stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT,
                cwd=self.cwd, start_new_session=True,
            )

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, n: int = 15) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def wait_ready(self, timeout: float) -> float:
        """Poll GET /-/ready until 200; returns seconds waited."""
        t0 = time.monotonic()
        deadline = t0 + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(self.base + "/-/ready", timeout=1, context=self.ssl_context) as r:
                    if r.status == 200:
                        return time.monotonic() - t0
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"{self.name} not ready after {timeout}s:\n{self.log_tail()}")

    def rss_kb(self) -> dict[str, int]:
        """VmRSS and VmHWM summed over the process group (a server may fork workers)."""
        if not self.alive():
            return {"rss_kb": 0, "hwm_kb": 0, "processes": 0}
        pids = _pgid_members(self.proc.pid) or [self.proc.pid]
        return {
            "rss_kb": sum(_status_kb(p, "VmRSS") for p in pids),
            "hwm_kb": sum(_status_kb(p, "VmHWM") for p in pids),
            "processes": len(pids),
        }

    def stop(self, timeout: float = 15.0) -> int | None:
        if self.proc is None:
            return None
        pgid = self.proc.pid
        if self.proc.poll() is None:
            try:
                os.killpg(pgid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                pass
        if self.proc.poll() is None or _pgid_members(pgid):  # whatever is left of our group
            try:
                os.killpg(pgid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        return self.proc.returncode


def pushgateway_argv(bin_: str, port: int, extra: list[str]) -> list[str]:
    # --persistence.file= (empty): keep everything in memory only; Debian's default writes to /var/lib.
    return [bin_, f"--web.listen-address={HOST}:{port}", "--persistence.file=", *extra]


def otelgravel_argv(port: int, otlp_port: int) -> list[str]:
    return [
        sys.executable, "-m", "otelgravel",
        "--set", f"receivers.pushgateway.endpoint={HOST}:{port}",
        "--set", f"exporters.prometheus.endpoint={HOST}:{port}",
        "--set", f"receivers.otlp.protocols.http.endpoint={HOST}:{otlp_port}",
        "--set", "receivers.pushgateway.admin_api=true",
        # the gateway's own metrics on a free port (never the shared default localhost:8888)
        "--set", f"service.telemetry.metrics.address={HOST}:0",
    ]

