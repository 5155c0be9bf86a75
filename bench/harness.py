"""The run: starts the shared servers, runs the registered scenarios in order, keeps the results."""

from __future__ import annotations

import argparse
import asyncio
import copy
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from common import BENCH_DIR, EMPTY, FOREIGN_CPU_WARN, LABELS, OG, PG, REPO_DIR, RESULTS_DIR, log
from loadgen import push_once, run_wrk
from machine import LoadMonitor, cpu_busy
from scenarios import SCENARIOS
from servers import Server, free_port, otelgravel_argv, pushgateway_argv


class Bench:
    """One run: the servers every scenario shares, the results, notes and errors, the wrk retries.

    A scenario gets this object: ``bench.args`` (the command line), ``bench.usable(PG|OG|EMPTY)``
    (a running server or None), ``bench.start(...)`` (a server of its own, stopped at the end),
    ``bench.wrk(...)`` (a wrk run redone when other processes disturbed it), ``bench.note``,
    ``bench.error`` and ``bench.result`` (the JSON report; the scenario's own key is its NAME).
    """

    def __init__(self, args: argparse.Namespace, stamp: str, scenarios: list | None = None):
        self.args = args
        self.stamp = stamp
        self.work = Path(tempfile.mkdtemp(prefix="otelgravel-bench-"))
        self.log_dir = RESULTS_DIR / f"{stamp}-logs"
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.servers: dict[str, Server | None] = {PG: None, OG: None, EMPTY: None}
        self.all_servers: list[Server] = []
        self.notes: list[str] = []
        self.scenarios = list(SCENARIOS if scenarios is None else scenarios)
        self.result: dict[str, Any] = {s.NAME: copy.deepcopy(getattr(s, "INITIAL", None)) for s in SCENARIOS}
        self.result["errors"] = []
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

    def start(self, name: str, argv: list[str], port: int, cwd: Path | None = None,
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
        self.servers[PG] = self.start(PG, pushgateway_argv(a.pushgateway_bin, port, []), port)
        port = free_port()
        self.servers[EMPTY] = self.start(
            EMPTY, [sys.executable, str(BENCH_DIR / "empty_app.py"), "--port", str(port)], port)
        if not a.no_otelgravel:
            port, otlp_port = free_port(), free_port()
            try:
                extra = [x for item in a.otelgravel_set for x in ("--set", item)]
                self.servers[OG] = self.start(OG, otelgravel_argv(port, otlp_port) + extra, port, cwd=REPO_DIR)
                self.servers[OG].otlp_port = otlp_port
            except Exception as exc:  # asked to measure it: no run without it (exit status 1)
                self.error("otelgravel start", exc)
                self.servers[OG] = None
                raise RuntimeError(f"otelgravel did not start, so it cannot be measured "
                                   f"(--no-otelgravel measures the others): {exc}") from exc
        for name in (PG, OG):
            if self.servers[name]:
                time.sleep(0.5)
                self.servers[name].baseline_rss_kb = self.servers[name].rss_kb()["rss_kb"]
        self.result["baseline_rss_kb"] = {
            n: s.baseline_rss_kb for n, s in self.servers.items() if s and s.baseline_rss_kb is not None}

    # -- fill
    def drain(self, server: Server, name: str) -> None:
        """One more push, waited for: requests wrk left in flight are done before the next run."""
        from workload import PUSH_CONTENT_TYPE, push_path

        if name in (EMPTY, "otlp") or server.ssl_context is not None:  # https: wrk's few in flight
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
            discarded.append({k: res[k] for k in ("rps", "p99_ms", "foreign_cpu", "requests")})
            log(f"  {name}: other processes used {res['foreign_cpu']:.0%} of the CPUs during the run "
                f"({res['rps']:.1f} req/s); discarded, running it again ({self.retries_left} retries left)")
            self.wait_quiet(10)
        res["discarded_disturbed"] = discarded
        return res

    def wait_quiet(self, limit: float) -> None:
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline and cpu_busy(1.0) > 0.05:
            pass

    def run(self) -> dict[str, Any]:
        self.monitor.start()
        self.start_servers()
        for scenario in self.scenarios:
            scenario.run(self)
        final = {}
        for name in (PG, OG):
            server = self.usable(name)
            if server:
                final[name] = server.rss_kb()
        self.result["final_rss"] = final
        self.result["notes"] = self.notes
        return self.result

