"""The gateway's own telemetry: push throughput with it on vs off, in the same run (target: on is
within 5% of off), and what the counting costs a push in-process.

Two gateways of this scenario's own, one with ``service.telemetry.metrics.address`` on a free
port (the router times every request, the receivers count), one with it ``""`` (no timing, no
MeterProvider; the plain counters that feed the status page still run), filled with the same
groups and measured with the same wrk push load in alternating order, repetition after
repetition, so that load from other processes spreads over both. The in-process part times the
calls a push makes (``Stats.accepted``, ``batch_points``, ``BucketHistogram.observe``) with timeit.
Results: ``result["telemetry"]``.
"""

from __future__ import annotations

import timeit
from typing import Any

from common import REPO_DIR
from compare import alternate, push_table
from loadgen import fill
from servers import free_port, otelgravel_argv

NAME = "telemetry"
INITIAL = None
MODES = {"on": [], "off": ["--set", "service.telemetry.metrics.address="]}
GROUPS = 1000


def run(bench) -> None:
    out: dict[str, Any] = {"groups": GROUPS, "connections": bench.args.connections, "push": {}}
    bench.result[NAME] = out
    try:
        out["in_process_ns"] = _in_process()
    except Exception as exc:
        bench.error("telemetry in-process", exc)
    try:
        _pushes(bench, out)
    except Exception as exc:
        bench.error("telemetry pushes", exc)


def _in_process() -> dict:
    import sys
    sys.path.insert(0, str(REPO_DIR))
    from otelgravel.model import Family, Point
    from otelgravel.telemetry.counters import Stats, batch_points

    stats = Stats()
    batch = [Family(f"f{i}", "gauge", points=[Point(())]) for i in range(5)]
    key = ("/metrics/job{tail}", "PUT", 200)
    n = 200_000
    count = timeit.timeit(lambda: stats.accepted("pushgateway", batch_points(batch)), number=n)
    observe = timeit.timeit(lambda: stats.request_duration.observe(key, 0.0004), number=n)
    empty = timeit.timeit(lambda: None, number=n)
    return {"count_push_ns": round((count - empty) / n * 1e9),
            "time_request_ns": round((observe - empty) / n * 1e9)}


def _pushes(bench, out: dict) -> None:
    import asyncio

    servers = {}
    for mode, extra in MODES.items():
        port, otlp_port = free_port(), free_port()
        server = bench.start(f"otelgravel-telemetry-{mode}", otelgravel_argv(port, otlp_port) + extra,
                             port, cwd=REPO_DIR)
        info = asyncio.run(fill(server.base, 0, GROUPS, bench.push_body, bench.args.fill_concurrency,
                                bench.args.fill_timeout, bench.args.request_timeout))
        if info["contiguous_to"] < GROUPS:
            bench.note(f"telemetry {mode}: filled only {info['contiguous_to']} groups")
        servers[mode] = server
    out["push"] = alternate(bench, servers, "telemetry", GROUPS)
    on, off = out["push"]["on"]["rps"], out["push"]["off"]["rps"]
    out["on_vs_off"] = round(on / off, 3) if on and off else None
    for server in servers.values():
        server.stop()


def markdown(result: dict) -> str:
    d = result[NAME]
    lines = [f"### Telemetry on vs off ({d['groups']} groups, {d['connections']} connections)", "",
             *push_table("telemetry", d.get("push", {}))]
    lines += ["", f"On / off: {d.get('on_vs_off')} (target >= 0.95)."]
    ns = d.get("in_process_ns")
    if ns:
        lines.append(f"In-process: counting a push {ns['count_push_ns']} ns, timing a request "
                     f"{ns['time_request_ns']} ns.")
    return "\n".join(lines)
