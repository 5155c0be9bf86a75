"""HTTP server limits: push throughput with the limits on (the defaults: read_header_timeout,
read_timeout, idle_timeout, max_connections) against all off (aiohttp's own connection handler,
as before them), in the same run. Target (issue 10): on >= 97% of off.

Two gateways of this scenario's own, filled with the same groups, measured with the same wrk push
load in alternating order, repetition after repetition, so that load from other processes spreads
over both. Results: ``result["limits"]``.
"""

from __future__ import annotations

from typing import Any

from common import REPO_DIR
from compare import alternate, push_table
from loadgen import fill
from servers import free_port, otelgravel_argv

NAME = "limits"
INITIAL = None
GROUPS = 1000
OFF = ["read_header_timeout=0s", "read_timeout=0s", "max_connections=0", "idle_timeout=3630s"]
MODES = {"on": [], "off": OFF}


def _argv(mode: str, port: int, otlp_port: int) -> list[str]:
    argv = otelgravel_argv(port, otlp_port)
    for item in MODES[mode]:
        argv += ["--set", f"receivers.pushgateway.{item}"]
    return argv


def run(bench) -> None:
    import asyncio

    out: dict[str, Any] = {"groups": GROUPS, "connections": bench.args.connections, "push": {}}
    bench.result[NAME] = out
    servers = {}
    try:
        for mode in MODES:
            port, otlp_port = free_port(), free_port()
            server = bench.start(f"otelgravel-limits-{mode}", _argv(mode, port, otlp_port), port,
                                 cwd=REPO_DIR)
            info = asyncio.run(fill(server.base, 0, GROUPS, bench.push_body,
                                    bench.args.fill_concurrency, bench.args.fill_timeout,
                                    bench.args.request_timeout))
            if info["contiguous_to"] < GROUPS:
                bench.note(f"limits {mode}: filled only {info['contiguous_to']} groups")
            servers[mode] = server
        out["push"] = alternate(bench, servers, "limits", GROUPS)
        off = out["push"]["off"]["rps"]
        out["on_vs_off"] = round(out["push"]["on"]["rps"] / off, 3) if off else None
    except Exception as exc:
        bench.error("limits pushes", exc)
    finally:
        for server in servers.values():
            server.stop()


def markdown(result: dict) -> str:
    d = result[NAME]
    lines = [f"### HTTP limits ({d['groups']} groups, {d['connections']} connections)", "",
             *push_table("limits", d.get("push", {}))]
    lines += ["", f"On vs off: {d.get('on_vs_off')} (target >= 0.97)."]
    return "\n".join(lines)
