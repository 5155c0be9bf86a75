#!/usr/bin/env python3
"""otelgravel vs the Prometheus Pushgateway, side by side, in one run.

    python3 bench/run.py            # full run, about 6-8 minutes on 2 cores
    python3 bench/run.py --quick    # smoke run, about 1-2 minutes

It installs what is missing (Debian's ``prometheus-pushgateway`` and ``wrk``
with apt-get, Python packages with pip), starts on free 127.0.0.1 ports

  * the Pushgateway (persistence off),
  * otelgravel (``python -m otelgravel`` from this checkout, admin API on),
  * an empty aiohttp handler (bench/empty_app.py), the framework's ceiling,

and for each store size (1, 2,000, 20,000 groups) fills both gateways with a
bounded concurrent aiohttp loader, then, alternating between the targets and
repeating, measures scrape time (text 0.0.4 and OpenMetrics) and push
throughput and latency with wrk (16 connections, bench/push.lua). Then OTLP
ingest (otelgravel only) and resident memory per stored series. Medians of
the repetitions go to ``bench/results/<timestamp>.json``, a chart to
``bench/results/<timestamp>.png``, and a markdown table to stdout.

Everything is bounded: every request and subprocess has a timeout, fills
stop at a deadline and record the size they reached, and all started
processes (each in its own process group) are killed on exit, error or
Ctrl-C. Only loopback addresses are used.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as _dt
import importlib.util
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.request
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

APT_PACKAGES = ("prometheus-pushgateway", "wrk")
PY_PACKAGES = {  # module to import -> pip distribution
    "aiohttp": "aiohttp",
    "uvloop": "uvloop",
    "google.protobuf": "protobuf",
    "opentelemetry.proto": "opentelemetry-proto",
    "matplotlib": "matplotlib",
}


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- dependencies


def _module_missing(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is None
    except ModuleNotFoundError:
        return True


def ensure_dependencies(pushgateway_bin: str) -> None:
    missing_bins = [b for b in (pushgateway_bin, "wrk") if shutil.which(b) is None]
    if missing_bins:
        cmd = "apt-get update && apt-get install -y " + " ".join(APT_PACKAGES)
        if os.geteuid() != 0:
            if shutil.which("sudo") is None:
                sys.exit(f"missing {missing_bins}; run as root: {cmd}")
            cmd = "sudo sh -c " + json.dumps(cmd)
        log(f"installing {missing_bins}: {cmd}")
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        subprocess.run(["sh", "-c", cmd], check=True, timeout=1200, env=env)
        still = [b for b in (pushgateway_bin, "wrk") if shutil.which(b) is None]
        if still:
            sys.exit(f"still missing after apt-get: {still}")
    missing_py = [dist for mod, dist in PY_PACKAGES.items() if _module_missing(mod)]
    if missing_py:
        log(f"pip installing {missing_py}")
        subprocess.run([sys.executable, "-m", "pip", "install", *missing_py], check=True, timeout=1200)
        importlib.invalidate_caches()


# --------------------------------------------------------------------------- processes


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


class Server:
    """A process started in its own process group, with its log in a file."""

    def __init__(self, name: str, argv: list[str], port: int, log_dir: Path, cwd: Path | None = None):
        self.name, self.argv, self.port, self.log_dir, self.cwd = name, argv, port, log_dir, cwd
        self.proc: subprocess.Popen | None = None
        self.log_path = log_dir / f"{name}.log"
        self.baseline_rss_kb: int | None = None

    @property
    def base(self) -> str:
        return f"http://{HOST}:{self.port}"

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
                with urllib.request.urlopen(self.base + "/-/ready", timeout=1) as r:
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
    ]


# --------------------------------------------------------------------------- HTTP clients


def _session(limit: int = 64):
    import aiohttp

    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=limit, force_close=False),
        auto_decompress=False,
    )


async def fill(base: str, first: int, last: int, body: bytes, concurrency: int,
               deadline_s: float, request_timeout: float) -> dict[str, Any]:
    """PUT the push body to groups first..last-1 with `concurrency` workers, until done or deadline."""
    import aiohttp

    from workload import PUSH_CONTENT_TYPE, push_path

    t0 = time.monotonic()
    deadline = t0 + deadline_s
    next_group = first
    ok: set[int] = set()
    failures: dict[str, int] = {}
    timeout = aiohttp.ClientTimeout(total=request_timeout)
    headers = {"Content-Type": PUSH_CONTENT_TYPE}

    async with _session(concurrency) as session:
        async def worker() -> None:
            nonlocal next_group
            while next_group < last and time.monotonic() < deadline:
                group = next_group
                next_group += 1
                try:
                    async with session.put(base + push_path(group), data=body, headers=headers,
                                           timeout=timeout) as resp:
                        await resp.read()
                        if 200 <= resp.status < 300:
                            ok.add(group)
                        else:
                            failures[f"HTTP {resp.status}"] = failures.get(f"HTTP {resp.status}", 0) + 1
                except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
                    key = type(exc).__name__
                    failures[key] = failures.get(key, 0) + 1

        if last > first:
            await asyncio.wait_for(
                asyncio.gather(*(worker() for _ in range(concurrency))),
                timeout=deadline_s + request_timeout + 5,
            )
    seconds = time.monotonic() - t0
    contiguous = first
    while contiguous in ok:
        contiguous += 1
    return {
        "first": first, "target": last, "pushed_ok": len(ok), "contiguous_to": contiguous,
        "failures": failures, "seconds": round(seconds, 3),
        "pushes_per_s": round(len(ok) / seconds, 1) if seconds > 0 else None,
        "hit_deadline": contiguous < last,
    }


async def push_once(base: str, path: str, body: bytes, content_type: str, method: str = "PUT",
                    timeout_s: float = 60.0) -> tuple[int, bytes]:
    import aiohttp

    async with _session(1) as session:
        async with session.request(method, base + path, data=body, headers={"Content-Type": content_type},
                                   timeout=aiohttp.ClientTimeout(total=timeout_s)) as resp:
            return resp.status, await resp.read()


async def scrape(base: str, accept: str, timeout_s: float) -> tuple[dict[str, Any], bytes]:
    import aiohttp

    async with _session(1) as session:
        t0 = time.perf_counter()
        async with session.get(base + "/metrics", headers={"Accept": accept, "Accept-Encoding": "identity"},
                               timeout=aiohttp.ClientTimeout(total=timeout_s)) as resp:
            body = await resp.read()
            seconds = time.perf_counter() - t0
            return {
                "status": resp.status, "seconds": seconds, "bytes": len(body),
                "content_type": resp.headers.get("Content-Type", ""),
            }, body


def count_series(body: bytes, job: str) -> dict[str, int]:
    """Sample lines carrying job="<job>" (the stored series of the benchmark's groups), and groups."""
    needle = f'job="{job}"'.encode()
    series = groups = 0
    for line in body.split(b"\n"):
        if not line or line[:1] == b"#" or needle not in line:
            continue
        series += 1
        if line.startswith(b"push_time_seconds{"):
            groups += 1
    return {"series": series, "groups": groups}


# --------------------------------------------------------------------------- wrk


def run_wrk(url: str, lua_args: list[str], duration: float, connections: int, threads: int,
            timeout_s: float) -> dict[str, Any]:
    cmd = [
        "wrk", f"-t{threads}", f"-c{connections}", f"-d{duration:g}s", f"--timeout={timeout_s:g}s",
        "-s", str(PUSH_LUA), url, "--", *lua_args,
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + timeout_s + 30)
    m = re.search(r"^WRK_JSON (\{.*\})$", proc.stdout, re.M)
    if proc.returncode != 0 or not m:
        raise RuntimeError(f"wrk failed ({proc.returncode}): {proc.stdout[-800:]} {proc.stderr[-800:]}")
    data = json.loads(m.group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", proc.stdout)
    secs = data["duration_us"] / 1e6
    lat = data["latency_us"]
    errors = sum(data["errors"].values())
    return {
        "requests": data["requests"],
        "seconds": round(secs, 3),
        "rps": round(data["requests"] / secs, 1) if secs else 0.0,
        "p50_ms": round(lat["p50"] / 1000, 3),
        "p90_ms": round(lat["p90"] / 1000, 3),
        "p99_ms": round(lat["p99"] / 1000, 3),
        "max_ms": round(lat["max"] / 1000, 3),
        "errors": data["errors"],
        "non_2xx_3xx": int(non2xx.group(1)) if non2xx else 0,
        "ok": errors == 0 and not non2xx,
    }


# --------------------------------------------------------------------------- the run


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


class Bench:
    def __init__(self, args: argparse.Namespace, stamp: str):
        self.args = args
        self.stamp = stamp
        self.work = Path(tempfile.mkdtemp(prefix="otelgravel-bench-"))
        self.log_dir = RESULTS_DIR / f"{stamp}-logs"
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.servers: dict[str, Server | None] = {PG: None, OG: None, EMPTY: None}
        self.all_servers: list[Server] = []
        self.notes: list[str] = []
        self.result: dict[str, Any] = {"stages": [], "otlp": None, "errors": []}
        from workload import otlp_request, push_body

        self.push_body = push_body()
        self.body_file = self.work / "push_body.txt"
        self.body_file.write_bytes(self.push_body)
        self.otlp_body = otlp_request(args.otlp_points)
        self.otlp_file = self.work / "otlp_request.bin"
        self.otlp_file.write_bytes(self.otlp_body)
        self.monitor = LoadMonitor(lambda: {srv.proc.pid for srv in self.all_servers if srv.proc})
        self.retries_left = args.retry_disturbed
        self.pg_groups = 0  # groups 0..n-1 present in each gateway
        self.og_groups = 0

    # -- helpers

    def note(self, msg: str) -> None:
        log("NOTE " + msg)
        self.notes.append(msg)

    def error(self, where: str, exc: BaseException) -> None:
        msg = f"{where}: {type(exc).__name__}: {exc}"
        log("ERROR " + msg)
        self.result["errors"].append(msg)

    def _start(self, name: str, argv: list[str], port: int, cwd: Path | None = None,
               log_name: str | None = None) -> Server:
        server = Server(log_name or name, argv, port, self.log_dir, cwd)
        self.all_servers.append(server)
        server.start()
        waited = server.wait_ready(self.args.ready_timeout)
        log(f"{server.name} ready on {server.base} after {waited:.2f}s (pid {server.proc.pid})")
        return server

    def usable(self, name: str) -> Server | None:
        server = self.servers.get(name)
        if server is None:
            return None
        if not server.alive():
            self.note(f"{LABELS[name]} is no longer running (exit {server.proc.returncode}); "
                      f"log tail:\n{server.log_tail()}")
            self.servers[name] = None
            return None
        return server

    def stop_all(self) -> None:
        self.monitor.stop()
        for server in self.all_servers:
            try:
                server.stop()
            except Exception as exc:  # keep stopping the others
                log(f"stopping {server.name}: {exc}")
        shutil.rmtree(self.work, ignore_errors=True)

    # -- start

    def start_servers(self) -> None:
        a = self.args
        port = free_port()
        self.servers[PG] = self._start(PG, pushgateway_argv(a.pushgateway_bin, port, []), port)
        port = free_port()
        self.servers[EMPTY] = self._start(
            EMPTY, [sys.executable, str(BENCH_DIR / "empty_app.py"), "--port", str(port)], port)
        if not a.no_otelgravel:
            port, otlp_port = free_port(), free_port()
            try:
                self.servers[OG] = self._start(OG, otelgravel_argv(port, otlp_port), port, cwd=REPO_DIR)
                self.servers[OG].otlp_port = otlp_port
            except Exception as exc:
                self.error("otelgravel start", exc)
                self.servers[OG] = None
        for name in (PG, OG):
            if self.servers[name]:
                time.sleep(0.5)
                self.servers[name].baseline_rss_kb = self.servers[name].rss_kb()["rss_kb"]
        self.result["baseline_rss_kb"] = {
            n: s.baseline_rss_kb for n, s in self.servers.items() if s and s.baseline_rss_kb is not None}

    # -- fill

    def fill_gateway(self, name: str, size: int, stage: dict) -> None:
        server = self.usable(name)
        if server is None:
            return
        have = self.pg_groups if name == PG else self.og_groups
        if name == PG and size > self.args.pg_seed_above and self.args.pg_fill == "seed" and size > have:
            self.seed_pushgateway(size, stage)
            return
        deadline = self.args.fill_timeout
        info = asyncio.run(fill(server.base, have, size, self.push_body, self.args.fill_concurrency,
                                deadline, self.args.request_timeout))
        info["method"] = "push (consistency check on)" if name == PG else "push"
        stage["fill"][name] = info
        reached = info["contiguous_to"] if size > have else have
        if name == PG:
            self.pg_groups = reached
        else:
            self.og_groups = reached
        if info["hit_deadline"]:
            self.note(f"{LABELS[name]}: fill to {size} groups stopped at the {deadline:g}s deadline "
                      f"with {reached} groups")
        log(f"{name}: filled {have}->{reached} groups in {info['seconds']}s ({info['pushes_per_s']}/s)")

    def seed_pushgateway(self, size: int, stage: dict) -> None:
        """Give the Pushgateway `size` groups without waiting for O(n^2) checked pushes.

        A seeding instance with the consistency check off receives the same pushes (groups
        0..size-1), writes its state to a temporary persistence file at shutdown, and a fresh
        measured instance loads that file at start. The measured instance runs with the default
        settings (consistency check on); its persistence interval is longer than the run, so it
        never writes during the measurement. Same content as a checked fill, minutes sooner.
        """
        a = self.args
        old = self.servers[PG]
        data_file = self.work / "pushgateway-seed.data"
        t0 = time.monotonic()
        seed_port = free_port()
        seeder = self._start(
            "pushgateway-seeder",
            [a.pushgateway_bin, f"--web.listen-address={HOST}:{seed_port}", f"--persistence.file={data_file}",
             "--persistence.interval=24h", "--push.disable-consistency-check"],
            seed_port)
        info = asyncio.run(fill(seeder.base, 0, size, self.push_body, a.fill_concurrency, a.fill_timeout,
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
        server = self._start(
            PG, [a.pushgateway_bin, f"--web.listen-address={HOST}:{port}", f"--persistence.file={data_file}",
                 "--persistence.interval=24h"], port, log_name="pushgateway-seeded")
        server.baseline_rss_kb = old.baseline_rss_kb  # RSS of a fresh, empty instance, same binary
        self.servers[PG] = server
        self.pg_groups = info["contiguous_to"]
        info.update(method="seeded: pushes to a check-off instance, persisted, loaded by a fresh "
                           "check-on instance", restart_seconds=round(time.monotonic() - t1, 3),
                    total_seconds=round(time.monotonic() - t0, 3), data_file_bytes=data_file.stat().st_size)
        stage["fill"][PG] = info
        log(f"pushgateway: seeded {self.pg_groups} groups in {info['total_seconds']}s "
            f"(load {info['restart_seconds']}s)")

    # -- measurements

    def measure_store(self, name: str, stage: dict) -> None:
        server = self.usable(name)
        if server is None:
            return
        time.sleep(self.args.settle)
        mem = server.rss_kb()
        meta, body = asyncio.run(scrape(server.base, "text/plain", self.args.scrape_timeout))
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

    def measure_scrapes(self, stage: dict, reps: int) -> None:
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
                meta, _ = asyncio.run(scrape(server.base, formats[fmt], self.args.scrape_timeout))
            except Exception as exc:
                self.error(f"scrape {name} {fmt} at {stage['size']}", exc)
                return
            stage["scrape_runs"].setdefault(name, {}).setdefault(f"{fmt}_{kind}", []).append(meta)

        for rep in range(reps):
            for name in (PG, OG) if rep % 2 == 0 else (OG, PG):
                server = self.usable(name)
                if server is not None:
                    for fmt in formats:
                        one(name, server, fmt, "unchanged")
        for rep in range(reps):
            for fmt in formats:
                for name in (PG, OG) if rep % 2 == 0 else (OG, PG):
                    server = self.usable(name)
                    if server is None:
                        continue
                    if name != PG:
                        groups = self.og_groups
                        try:
                            info = asyncio.run(fill(server.base, 0, groups, self.push_body,
                                                    self.args.fill_concurrency, REPUSH_DEADLINE,
                                                    self.args.request_timeout))
                            stage.setdefault("repush", {}).setdefault(name, []).append(
                                {k: info[k] for k in ("pushed_ok", "seconds", "failures")})
                            if info["pushed_ok"] < groups:
                                self.note(f"{LABELS[name]}: re-pushed only {info['pushed_ok']} of {groups} "
                                          f"groups in {REPUSH_DEADLINE:g}s before a 'changed' scrape")
                        except Exception as exc:
                            self.error(f"re-push {name} at {stage['size']}", exc)
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

    def drain(self, server: Server, name: str) -> None:
        """One more push, waited for: requests wrk left in flight are done before the next run."""
        from workload import PUSH_CONTENT_TYPE, push_path

        if name in (EMPTY, "otlp"):
            return
        try:
            asyncio.run(push_once(server.base, push_path(0), self.push_body, PUSH_CONTENT_TYPE,
                                  timeout_s=self.args.wrk_timeout + 30))
        except Exception as exc:
            self.error(f"drain {name}", exc)

    def wrk(self, server: Server, name: str, lua_args: list[str], connections: int, threads: int,
            base: str | None = None) -> dict[str, Any]:
        """One wrk run, drained; redone (a bounded number of times in the whole run) when other
        processes took more than FOREIGN_CPU_WARN of the CPUs during it."""
        discarded = []
        while True:
            t0 = time.monotonic()
            res = run_wrk(base or server.base, lua_args, self.args.duration, connections, threads,
                          self.args.wrk_timeout)
            res["foreign_cpu"] = self.monitor.foreign(t0, time.monotonic())
            self.drain(server, name)
            if (res["foreign_cpu"] or 0) <= FOREIGN_CPU_WARN or self.retries_left <= 0:
                break
            self.retries_left -= 1
            discarded.append({k: res[k] for k in ("rps", "p99_ms", "foreign_cpu")})
            log(f"  {name}: other processes used {res['foreign_cpu']:.0%} of the CPUs during the run "
                f"({res['rps']:.1f} req/s); discarded, running it again ({self.retries_left} retries left)")
            self.wait_quiet(10)
        res["discarded_disturbed"] = discarded
        return res

    def wait_quiet(self, limit: float) -> None:
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline and cpu_busy(1.0) > 0.05:
            pass

    def measure_pushes(self, stage: dict, reps: int) -> None:
        from workload import VARYING_VALUE

        lua_args = [str(self.body_file)]
        order = [PG, OG, EMPTY]
        for rep in range(reps):
            rotated = order[rep % len(order):] + order[:rep % len(order)]
            for name in rotated:
                server = self.usable(name)
                if server is None:
                    continue
                groups = 1 if name == EMPTY else (self.pg_groups if name == PG else self.og_groups)
                groups = max(1, min(groups, stage["size"]))
                try:
                    res = self.wrk(server, name, lua_args + [str(groups), "", "", "", VARYING_VALUE],
                                   self.args.connections, self.args.wrk_threads)
                except Exception as exc:
                    self.error(f"wrk {name} at {stage['size']}", exc)
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

    def run_stage(self, size: int) -> None:
        stage: dict[str, Any] = {"size": size, "fill": {}, "store": {}, "scrape_runs": {}, "scrape": {},
                                 "push_runs": {}, "push": {}}
        self.result["stages"].append(stage)
        log(f"=== store size {size} groups")
        for name in (PG, OG):
            try:
                self.fill_gateway(name, size, stage)
            except Exception as exc:
                self.error(f"fill {name} to {size}", exc)
        for name in (PG, OG):
            try:
                self.measure_store(name, stage)
            except Exception as exc:
                self.error(f"store {name} at {size}", exc)
        self.measure_scrapes(stage, self.args.scrape_reps)
        self.measure_pushes(stage, self.args.reps)
        # after the push load: the first scrape re-renders what the pushes changed
        for name in (PG, OG):
            server = self.usable(name)
            if server is None:
                continue
            try:
                meta, body = asyncio.run(scrape(server.base, "text/plain", self.args.scrape_timeout))
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
                self.error(f"scrape after pushes {name} at {size}", exc)

    def run_otlp(self) -> None:
        server = self.usable(OG)
        if server is None:
            return
        from workload import OTLP_CONTENT_TYPE, otlp_request_points

        points = otlp_request_points(self.otlp_body)
        base = f"http://{HOST}:{server.otlp_port}"
        out: dict[str, Any] = {"points_per_request": points, "request_bytes": len(self.otlp_body),
                               "connections": self.args.otlp_connections, "runs": []}
        self.result["otlp"] = out
        try:
            status, body = asyncio.run(push_once(base, "/v1/metrics", self.otlp_body, OTLP_CONTENT_TYPE,
                                                 method="POST", timeout_s=30))
            out["probe_status"] = status
            out["probe_rejected_points"] = _rejected_points(body)
            if status != 200:
                self.note(f"OTLP probe answered {status}: {body[:300]!r}")
        except Exception as exc:
            self.error("otlp probe", exc)
            return
        for rep in range(self.args.reps):
            try:
                res = self.wrk(server, "otlp", [str(self.otlp_file), "0", OTLP_CONTENT_TYPE, "POST", "/v1/metrics"],
                               self.args.otlp_connections, 1, base=base)
            except Exception as exc:
                self.error("wrk otlp", exc)
                continue
            res["points_per_s"] = round(res["rps"] * points, 0)
            out["runs"].append(res)
            log(f"otlp rep {rep + 1}: {res['rps']:.1f} req/s = {res['points_per_s']:.0f} points/s, "
                f"p99 {res['p99_ms']:.1f} ms{'' if res['ok'] else ' (ERRORS)'}")
        good = pick_runs(out["runs"])
        out["disturbed_runs_in_median"] = sum(1 for r in good if disturbed(r))
        out["points_per_s"] = median([r["points_per_s"] for r in good])
        out["p99_ms"] = median([r["p99_ms"] for r in good])
        out["runs_with_errors"] = sum(1 for r in out["runs"] if not r["ok"])
        try:
            meta, body = asyncio.run(scrape(server.base, "text/plain", self.args.scrape_timeout))
            out["series_after"] = sum(1 for line in body.split(b"\n") if line.startswith(b"bench_requests"))
        except Exception as exc:
            self.error("otlp scrape", exc)

    def run(self) -> dict[str, Any]:
        self.monitor.start()
        self.start_servers()
        for size in self.args.sizes:
            self.run_stage(size)
        self.run_otlp()
        final = {}
        for name in (PG, OG):
            server = self.usable(name)
            if server:
                final[name] = server.rss_kb()
        self.result["final_rss"] = final
        self.result["notes"] = self.notes
        return self.result


def _rejected_points(body: bytes) -> int | None:
    try:
        from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
            ExportMetricsServiceResponse,
        )

        return ExportMetricsServiceResponse.FromString(body).partial_success.rejected_data_points
    except Exception:
        return None


# --------------------------------------------------------------------------- report


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


# --------------------------------------------------------------------------- main


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
    p.add_argument("--no-install", action="store_true", help="do not apt-get/pip install missing tools")
    p.add_argument("--wait-quiet", type=float, default=0.0,
                   help="before starting, wait up to this many seconds for the CPUs to be idle")
    p.add_argument("--retry-disturbed", type=int, help="wrk runs that other processes disturbed are redone, "
                   "at most this many times in the whole run (default 6, quick 3)")
    p.add_argument("--max-seconds", type=float, default=570.0,
                   help="hard stop of the measurements (the report is still written); default 570")
    args = p.parse_args(argv)
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
    bench = Bench(args, stamp)
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
