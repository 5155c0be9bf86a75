"""Build a storage.directory for the restart measurement: a snapshot of GROUPS groups of the bench
push (5 series each) and, after it, a log of PUSHES pushes, as a crashed gateway leaves it.

    python3 bench/durable_state.py DIRECTORY GROUPS PUSHES

Runs the gateway's own FileBackend in process (pushing 1,000,000 series through HTTP would take
longer than the measurement): the snapshot is written as at a shutdown, then a second backend
appends the pushes (each with its own duration value, as bench/push.lua's) and is abandoned
without a snapshot (its files closed, as a kill -9 would). Snapshots by size are off here, so the
log keeps all PUSHES (86 MB for 100,000: more than the default snapshot_log_size, which a
gateway would have folded already; the measurement is the worse case).
Prints one JSON line: series, snapshot bytes, log bytes, seconds.
"""
from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from otelgravel.core.store import Store  # noqa: E402
from otelgravel.formats.prom_text import parse_prom_text  # noqa: E402
from otelgravel.processor import GravelProcessor  # noqa: E402
from otelgravel.state import PUSH, Applier, Record  # noqa: E402
from otelgravel.state.file import FileBackend  # noqa: E402
from otelgravel.translate.otlp import OtlpTranslator  # noqa: E402
from workload import BENCH_JOB, VARYING_VALUE, push_body  # noqa: E402


def _applier() -> Applier:
    return Applier(GravelProcessor(Store(max_series=1 << 40)), OtlpTranslator())


async def build(directory: str, groups: int, pushes: int) -> dict:
    t0 = time.monotonic()
    body = push_body()
    first = FileBackend(directory, "never", 1.0, 0, snapshot_log_size=0)
    applier = _applier()
    await first.open(applier)
    now = time.time() - 60
    for g in range(groups):
        group = (("instance", str(g)), ("job", BENCH_JOB))
        await first.submit(Record(PUSH, now, group, "text", body, parse_prom_text(body)))
    series = applier.store.series_count
    await first.close()  # the snapshot, as at a shutdown
    second = FileBackend(directory, "never", 1.0, 0, snapshot_log_size=0)
    await second.open(_applier())
    for i in range(pushes):
        group = (("instance", str(i % groups)), ("job", BENCH_JOB))
        # each invocation its own duration, as bench/push.lua sends them (VARY)
        varied = body.replace(VARYING_VALUE.encode(), b"0.%03d" % (1 + i % 997))
        await second.submit(Record(PUSH, now + 1, group, "text", varied, parse_prom_text(varied)))
    for fd in (second._fd, second._lock, second._dir):  # abandoned: no last snapshot
        os.close(fd)
    names = os.listdir(directory)
    return {"series": series, "groups": groups, "pushes": pushes,
            "snapshot_bytes": os.path.getsize(os.path.join(directory, "snapshot")),
            "log_bytes": sum(os.path.getsize(os.path.join(directory, n)) for n in names
                             if n.startswith("log-")),
            "build_seconds": round(time.monotonic() - t0, 1)}


if __name__ == "__main__":
    print(json.dumps(asyncio.run(build(sys.argv[1], int(sys.argv[2]), int(sys.argv[3])))))
