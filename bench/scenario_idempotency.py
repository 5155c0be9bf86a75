"""What an ``Idempotency-Key`` costs a push, and what its absence costs (target: nothing).

Two measurements, no key vs a fresh key per push, alternating repetition after repetition:

- gateway CPU per push: one gateway of this scenario's own (memory state), ``PUSHES`` pushes from
  4 kept-alive connections per repetition, the gateway's utime+stime (``/proc/PID/stat``) divided
  by the pushes, so that other processes' load changes the number less than wall time would;
- in process: the state path of a push (``Record``, the applier) with timeit on process time
  (the fastest of the repetitions), no key vs a key (the fingerprint's BLAKE2b included), so
  the difference is not lost in the HTTP stack's noise.

Results: ``result["idempotency"]``.
"""

from __future__ import annotations

import http.client
import os
import statistics
import threading
import time
import timeit
import uuid
from typing import Any

from common import HOST, REPO_DIR
from servers import free_port, otelgravel_argv

NAME = "idempotency"
INITIAL = None
BODY = b"# TYPE reqs counter\nreqs_total 1\n# TYPE lat gauge\nlat 0.5\n"
CONNECTIONS = 4


def run(bench) -> None:
    out: dict[str, Any] = {}
    bench.result[NAME] = out
    try:
        out["in_process_us"] = _in_process(20_000 if bench.args.quick else 100_000)
    except Exception as exc:
        bench.error("idempotency in-process", exc)
    try:
        out["cpu_us_per_push"] = _cpu(bench, 2_000 if bench.args.quick else 10_000,
                                      1 if bench.args.quick else 5)
    except Exception as exc:
        bench.error("idempotency cpu", exc)


def _in_process(n: int) -> dict:
    import sys
    sys.path.insert(0, str(REPO_DIR))
    from hashlib import blake2b

    from otelgravel.core.store import Store
    from otelgravel.formats.prom_text import parse_prom_text
    from otelgravel.processor import GravelProcessor
    from otelgravel.state import PUSH, Applier, KeyTable, Record

    applier = Applier(GravelProcessor(Store()), None, KeyTable(n * 10, 3600.0))
    batch = parse_prom_text(BODY)
    group = (("job", "bench"),)
    keys = iter([uuid.uuid4().hex for _ in range(n * 10)])
    clock = iter(range(1, n * 20))

    def plain():
        applier.apply(Record(PUSH, next(clock), group, "text", BODY, batch))

    def keyed():
        h = blake2b(digest_size=16)
        h.update(BODY)
        applier.apply(Record(PUSH, next(clock), group, "text", BODY, batch, next(keys), h.digest()))

    runs = {"no_key": [], "key": []}
    for _ in range(5):
        for mode, fn in (("no_key", plain), ("key", keyed)):
            timer = timeit.Timer(fn, timer=time.process_time)
            runs[mode].append(timer.timeit(number=n // 5) / (n // 5) * 1e6)
    return {mode: round(min(v), 2) for mode, v in runs.items()}


def _cpu(bench, pushes: int, reps: int) -> dict:
    port, otlp_port = free_port(), free_port()
    server = bench.start("otelgravel-idempotency", otelgravel_argv(port, otlp_port), port,
                         cwd=REPO_DIR)
    tick = os.sysconf("SC_CLK_TCK")

    def cpu() -> float:
        fields = open(f"/proc/{server.proc.pid}/stat").read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / tick

    def client(n: int, with_key: bool, c: int) -> None:
        conn = http.client.HTTPConnection(HOST, port, timeout=bench.args.request_timeout)
        try:
            for i in range(n):
                headers = {"Idempotency-Key": uuid.uuid4().hex} if with_key else {}
                conn.request("POST", f"/metrics/job/b{c}/i/{i % 50}", BODY, headers)
                response = conn.getresponse()
                response.read()
                if response.status != 200:
                    raise RuntimeError(f"push answered {response.status}")
        finally:
            conn.close()

    runs: dict[str, list[float]] = {"no_key": [], "key": []}
    try:
        for _ in range(reps):
            for mode in runs:
                before = cpu()
                threads = [threading.Thread(target=client, args=(pushes // CONNECTIONS, mode == "key", c))
                           for c in range(CONNECTIONS)]
                for t in threads:
                    t.start()
                for t in threads:
                    t.join()
                runs[mode].append((cpu() - before) / pushes * 1e6)
    finally:
        server.stop()
    return {mode: {"median": round(statistics.median(v), 1), "runs": [round(x, 1) for x in v]}
            for mode, v in runs.items()}


def markdown(result: dict) -> str:
    d = result.get(NAME) or {}
    lines = ["### Idempotency-Key: what a push pays", ""]
    ip = d.get("in_process_us")
    if ip:
        lines.append(f"In process (Record + apply): no key {ip['no_key']} µs, with a key "
                     f"{ip['key']} µs a push.")
    cpu = d.get("cpu_us_per_push")
    if cpu:
        lines.append(f"Gateway CPU per HTTP push: no key {cpu['no_key']['median']} µs "
                     f"(runs {cpu['no_key']['runs']}), with a key {cpu['key']['median']} µs "
                     f"(runs {cpu['key']['runs']}).")
    return "\n".join(lines)
