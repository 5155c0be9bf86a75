"""The state backends' submit path in process: µs per push, memory-only vs the file log with
``sync: interval`` and ``sync: always``, alternating, same groups, same records.

    python3 bench/durable_submit.py DIRECTORY [PUSHES] [ROUNDS] [GROUPS] [CONCURRENCY]

What an HTTP push costs on top of the receiver's work (read, parse): ``await state.submit(record)``
with the record the receiver builds (the parsed batch in it), CONCURRENCY tasks at a time as
concurrent requests would. wrk's ratio of end-to-end throughputs swings by about 15% on a shared
machine; this is the part of it the log adds, with much less noise. Each round runs every mode
once (in rotating order); the result per mode is the median of the rounds' µs per push (wall and
process CPU, the fsync process's included), and the log's cost is the median of each round's CPU
difference to memory-only (wall time on a shared machine is mostly the other processes' load).
Prints one JSON line.
"""
from __future__ import annotations

import asyncio
import json
import os
import shutil
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from otelgravel.core.store import Store  # noqa: E402
from otelgravel.formats.prom_text import parse_prom_text  # noqa: E402
from otelgravel.processor import GravelProcessor  # noqa: E402
from otelgravel.state import PUSH, Applier, MemoryBackend, Record  # noqa: E402
from otelgravel.state.file import FileBackend  # noqa: E402
from servers import _cpu_ticks  # noqa: E402
from workload import BENCH_JOB, VARYING_VALUE, push_body  # noqa: E402

MODES = ("memory", "interval", "always")


def _bodies(pushes: int) -> list[bytes]:
    body = push_body()
    return [body.replace(VARYING_VALUE.encode(), b"0.%03d" % (1 + i % 997)) for i in range(pushes)]


def _records(bodies: list[bytes], groups: int, now: float) -> list[Record]:
    return [Record(PUSH, now, (("instance", str(i % groups)), ("job", BENCH_JOB)), "text", b,
                   parse_prom_text(b)) for i, b in enumerate(bodies)]


async def _open(mode: str, directory: str):
    backend = MemoryBackend() if mode == "memory" else FileBackend(
        os.path.join(directory, mode), mode, 1.0, 0)
    await backend.open(Applier(GravelProcessor(Store(max_series=1 << 40))))
    return backend


def _cpu(backend) -> float:
    """This process's CPU seconds and those of the backend's fsync process (a child of ours,
    still running: not in this process's figures)."""
    syncer = getattr(backend, "_syncer", None)
    child = _cpu_ticks(syncer.pid) / os.sysconf("SC_CLK_TCK") if syncer and syncer.pid else 0.0
    return time.process_time() + child


async def _run(backend, records: list[Record], concurrency: int) -> tuple[float, float]:
    """Seconds of wall and CPU to submit ``records``, ``concurrency`` at a time."""
    submit = backend.submit
    step = concurrency

    async def worker(k: int) -> None:
        for r in records[k::step]:
            await submit(r)

    wall, cpu = time.perf_counter(), _cpu(backend)
    await asyncio.gather(*(worker(k) for k in range(concurrency)))
    return time.perf_counter() - wall, _cpu(backend) - cpu


async def measure(directory: str, pushes: int, rounds: int, groups: int, concurrency: int) -> dict:
    bodies = _bodies(pushes)
    backends = {mode: await _open(mode, directory) for mode in MODES}
    for backend in backends.values():  # the groups exist before the measurement, as in wrk's
        await _run(backend, _records(bodies[:groups], groups, 1.0), concurrency)
    runs: dict[str, list] = {mode: [] for mode in MODES}
    for n in range(rounds):
        order = MODES[n % 3:] + MODES[:n % 3]
        for mode in order:
            records = _records(bodies, groups, 2.0 + n)  # parsed outside the measurement
            wall, cpu = await _run(backends[mode], records, concurrency)
            runs[mode].append((wall / pushes * 1e6, cpu / pushes * 1e6))
    for backend in backends.values():
        await backend.close()
    out = {"pushes": pushes, "rounds": rounds, "groups": groups, "concurrency": concurrency}
    for mode in MODES:
        out[mode] = {"us_per_push": round(statistics.median(w for w, _ in runs[mode]), 2),
                     "cpu_us_per_push": round(statistics.median(c for _, c in runs[mode]), 2),
                     "runs": [round(w, 2) for w, _ in runs[mode]]}
        if mode != "memory":  # CPU: on a shared machine wall time is mostly the others' load
            out[mode]["log_cpu_us_per_push"] = round(statistics.median(
                c - m for (_, c), (_, m) in zip(runs[mode], runs["memory"])), 2)
    return out


def main() -> None:
    directory = sys.argv[1]
    args = [int(a) for a in sys.argv[2:]] + [0] * 4
    pushes, rounds, groups, concurrency = (args[0] or 20_000, args[1] or 5, args[2] or 1000,
                                           args[3] or 16)
    os.makedirs(directory, mode=0o700, exist_ok=True)
    try:
        print(json.dumps(asyncio.run(measure(directory, pushes, rounds, groups, concurrency))))
    finally:
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()
