"""Security: push throughput without authentication, with basic auth (credentials remembered after
the first bcrypt check), and with TLS + basic auth, in the same run.

Three gateways of this scenario's own, each with one config: ``none`` (plain HTTP, no auth),
``basic`` (plain HTTP, ``basicauth`` on the pushgateway receiver, a bcrypt cost-10 hash) and
``tls+basic`` (the same over https with a self-signed certificate made here by openssl). The same
wrk push load (keep-alive, the same password on every request: the bcrypt check runs once per
gateway, every later request is a remembered credential) in rotating order, repetition after
repetition, so that load from other processes spreads over all three. Targets (issue 13):
basic >= 90% of none, tls+basic >= 60% of none. Results: ``result["security"]``.
"""

from __future__ import annotations

import base64
import ssl
import subprocess
import sys
from typing import Any

from common import HOST, REPO_DIR, log
from compare import alternate
from servers import Server, free_port

NAME = "security"
INITIAL = None
MODES = ("none", "basic", "tls+basic")
GROUPS = 1000
USER, PASSWORD = "bench", "bench-password"


def _config(bench, mode: str, port: int, otlp_port: int) -> str:
    import bcrypt

    lines = [f"receivers:\n  pushgateway:\n    endpoint: {HOST}:{port}"]
    if mode != "none":
        hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(10)).decode()
        lines.append(f"    auth: {{authenticator: basicauth/bench}}")
    if mode == "tls+basic":
        cert, key = _certificate(bench)
        lines.append(f"    tls: {{cert_file: {cert}, key_file: {key}}}")
    lines.append(f"  otlp:\n    protocols:\n      http:\n        endpoint: {HOST}:{otlp_port}")
    lines.append(f"processors:\n  gravel: {{}}\nexporters:\n  prometheus:\n    endpoint: {HOST}:{port}")
    lines.append(f"service:\n  telemetry:\n    metrics:\n      address: {HOST}:0")
    if mode != "none":
        lines.insert(0, f"extensions:\n  basicauth/bench:\n    htpasswd:\n"
                        f"      inline: \"{USER}:{hashed}\"")
        lines.append("  extensions: [basicauth/bench]")
    lines.append("  pipelines:\n    metrics: {receivers: [pushgateway, otlp], processors: [gravel], "
                 "exporters: [prometheus]}")
    path = bench.work / f"security-{mode.replace('+', '-')}.yaml"
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def _certificate(bench) -> tuple[str, str]:
    cert, key = bench.work / "security-cert.pem", bench.work / "security-key.pem"
    if not cert.exists():
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1", "-subj",
                        f"/CN={HOST}", "-addext", f"subjectAltName=IP:{HOST}",
                        "-keyout", str(key), "-out", str(cert)],
                       check=True, capture_output=True, timeout=60)
    return str(cert), str(key)


def _start(bench, mode: str) -> Server:
    port, otlp_port = free_port(), free_port()
    argv = [sys.executable, "-m", "otelgravel", "--config", _config(bench, mode, port, otlp_port)]
    server = Server(f"otelgravel-security-{mode.replace('+', '-')}", argv, port, bench.log_dir,
                    REPO_DIR)
    if mode == "tls+basic":
        server.scheme = "https"
        server.ssl_context = ssl._create_unverified_context()  # the bench's own self-signed cert
    bench.all_servers.append(server)  # stopped with the others on any exit
    server.start()
    waited = server.wait_ready(bench.args.ready_timeout)
    log(f"{server.name} ready on {server.base} after {waited:.2f}s (pid {server.proc.pid})")
    return server


def run(bench) -> None:
    out: dict[str, Any] = {"groups": GROUPS, "connections": bench.args.connections, "push": {}}
    bench.result[NAME] = out
    try:
        servers = {mode: _start(bench, mode) for mode in MODES}
        auth = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        # at least 2 repetitions: the first one also creates the groups, on every gateway
        out["push"] = alternate(bench, servers, "security", GROUPS,
                                {mode: auth for mode in MODES if mode != "none"})
    except Exception as exc:
        bench.error("security", exc)
        return
    base = out["push"]["none"]["rps"]
    for mode in ("basic", "tls+basic"):
        rps = out["push"][mode]["rps"]
        out["push"][mode]["vs_none"] = round(rps / base, 3) if base and rps else None
    for server in servers.values():
        server.stop()


def markdown(result: dict) -> str:
    d = result[NAME]
    lines = [f"### Security ({d['groups']} groups, {d['connections']} connections, keep-alive)", "",
             "| gateway | pushes/s | p99 ms | vs none | target |", "|---|---|---|---|---|"]
    targets = {"none": "", "basic": ">= 0.90", "tls+basic": ">= 0.60"}
    for mode, r in d.get("push", {}).items():
        spread = ", ".join(f"{x['rps']:.0f}" for x in r["runs"])
        lines.append(f"| {mode} | {r['rps']:.0f} ({spread}) | {r['p99_ms']:.1f} | "
                     f"{r.get('vs_none', '')} | {targets[mode]} |")
    return "\n".join(lines)
