"""The first ten minutes of a new user, on this machine: a fresh venv, a plain copy of the tree.

One venv for the module: first only the dependencies pyproject.toml lists (no otelgravel metadata
anywhere: the shared environment's install is not visible), where a plain copy of the source tree
must answer ``--version`` and serve a push; then ``pip install <copy>`` with no extras, which must
bring uvloop and a gateway whose ``ready`` line says ``loop=uvloop``.
"""
from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import tomllib
import urllib.request
import venv
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PIP_TIMEOUT = 240
_LISTENING = re.compile(r"msg=listening components=(\S+) endpoint=(\S+)")
_IGNORED = shutil.ignore_patterns(".git", "*.egg-info", "*.dist-info", "build", "dist", "__pycache__",
                                  "results", "node_modules", ".pytest_cache")


def _pip(python: Path, *args: str) -> None:
    """pip install in the venv; skipped (saying why) only when it failed and PyPI is unreachable."""
    proc = subprocess.run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", *args],
                          capture_output=True, text=True, timeout=PIP_TIMEOUT)
    if proc.returncode == 0:
        return
    try:
        socket.create_connection(("pypi.org", 443), timeout=5).close()
    except OSError as exc:
        pytest.skip(f"pip install failed and pypi.org:443 is unreachable ({exc}): no network for pip; "
                    f"pip said: {proc.stderr[-300:]}")
    pytest.fail(f"pip install {' '.join(args)} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")


@pytest.fixture(scope="module")
def fresh(tmp_path_factory):
    """(venv python, plain copy of the tree): the venv has the dependencies, not the package."""
    base = tmp_path_factory.mktemp("first-run")
    copy = base / "otelgravel-src"
    shutil.copytree(REPO, copy, ignore=_IGNORED)
    assert not list(copy.rglob("*.egg-info")) and not list(copy.rglob("*.dist-info"))
    env_dir = base / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    python = env_dir / "bin" / "python"
    deps = tomllib.loads((copy / "pyproject.toml").read_text())["project"]["dependencies"]
    _pip(python, *deps)
    return python, copy


def _env() -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    return env


def _start(python: Path, cwd: Path, *extra: str):
    """``python -m otelgravel`` on free loopback ports; (process, endpoints, log lines) once ready."""
    argv = [str(python), "-m", "otelgravel",
            "--set", "receivers.pushgateway.endpoint=127.0.0.1:0",
            "--set", "exporters.prometheus.endpoint=127.0.0.1:0",
            "--set", "receivers.otlp.protocols.http.endpoint=127.0.0.1:0",
            "--set", "service.telemetry.metrics.address=127.0.0.1:0", *extra]
    proc = subprocess.Popen(argv, cwd=cwd, env=_env(), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    log: list[str] = []
    endpoints: dict[str, str] = {}
    ready = threading.Event()

    def read():
        for line in proc.stderr:
            log.append(line.rstrip("\n"))
            match = _LISTENING.search(line)
            if match:
                for component in match.group(1).split(","):
                    endpoints[component] = match.group(2)
            if "msg=ready" in line:
                ready.set()
        ready.set()

    threading.Thread(target=read, daemon=True).start()
    if not ready.wait(30) or proc.poll() is not None:
        proc.kill()
        proc.wait(10)
        pytest.fail("gateway did not start:\n" + "\n".join(log))
    return proc, endpoints, log


def _stop(proc) -> None:
    proc.terminate()
    try:
        assert proc.wait(15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def test_plain_checkout_without_metadata_answers_version_and_serves_a_push(fresh):
    python, copy = fresh
    probe = subprocess.run([str(python), "-c", "import importlib.metadata as m\n"
                            "try:\n  m.version('otelgravel'); print('found')\n"
                            "except m.PackageNotFoundError:\n  print('none')"],
                           cwd=copy, env=_env(), capture_output=True, text=True, timeout=30)
    assert probe.stdout.strip() == "none", "the venv must not see otelgravel's metadata"
    version = subprocess.run([str(python), "-m", "otelgravel", "--version"], cwd=copy, env=_env(),
                             capture_output=True, text=True, timeout=30)
    assert version.returncode == 0, version.stderr
    expected = re.search(r'__version__ = "([^"]+)"', (copy / "otelgravel" / "__init__.py").read_text())[1]
    assert version.stdout.strip() == f"otelgravel {expected}"
    proc, endpoints, _ = _start(python, copy)
    try:
        req = urllib.request.Request(f"http://{endpoints['pushgateway']}/metrics/job/first",
                                     data=b"# TYPE first_run_total counter\nfirst_run_total 3\n", method="PUT")
        with urllib.request.urlopen(req, timeout=15) as resp:
            assert resp.status == 200
        with urllib.request.urlopen(f"http://{endpoints['prometheus']}/metrics", timeout=15) as resp:
            assert 'first_run_total{job="first"} 3' in resp.read().decode()
    finally:
        _stop(proc)


def test_pip_install_without_extras_gives_uvloop_and_the_ready_line_says_so(fresh):
    python, copy = fresh
    _pip(python, str(copy))
    check = subprocess.run([str(python), "-c", "import uvloop, importlib.metadata as m; "
                            "print(m.version('otelgravel'))"],
                           cwd="/", env=_env(), capture_output=True, text=True, timeout=30)
    assert check.returncode == 0, check.stderr
    proc, _, log = _start(python, Path("/"))  # cwd "/": the installed package, not the copy
    try:
        ready = next(line for line in log if "msg=ready" in line)
        assert "loop=uvloop" in ready, ready
    finally:
        _stop(proc)


def test_help_is_plain_text():
    result = subprocess.run([sys.executable, "-m", "otelgravel", "--help"], cwd=REPO, capture_output=True,
                            text=True, timeout=30)
    assert result.returncode == 0 and "usage: otelgravel" in result.stdout
    text = result.stdout
    for markup in ("``", "**", ".. ", "::"):
        assert markup not in text, f"reStructuredText {markup!r} in --help:\n{text}"
    assert not re.search(r":[a-z]+:`", text), text  # :role:`x`
    assert not re.search(r"`[^`\n]+`_?", text), text  # `interpreted text` and links


def test_ready_line_names_the_event_loop(gateway_factory):
    gw = gateway_factory()
    ready = next(line for line in gw.log if "msg=ready" in line)
    import importlib.util
    expected = "loop=uvloop" if importlib.util.find_spec("uvloop") else "loop=asyncio"
    assert expected in ready, ready


# (where, method, path, content type, body, status, fragments the answer must name; "{otlp}" and
# "{push}" are the gateway's bound URLs)
HINTS = [
    ("push", "POST", "/v1/metrics", "application/x-protobuf", b"\x0a\x00", 404,
     ["{otlp}/v1/metrics", "OTLP/HTTP is served at"]),
    ("push", "POST", "/v1/metrics", "application/json", b'{"resourceMetrics": []}', 404,
     ["{otlp}/v1/metrics"]),
    ("push", "PUT", "/metric/job/x", "text/plain", b"a 1\n", 404, ["did you mean /metrics/job/x?"]),
    ("push", "PUT", "/metric", "text/plain", b"a 1\n", 404, ["did you mean /metrics?"]),
    ("push", "POST", "/push/job/x", "text/plain", b"a 1\n", 404, ["/metrics/job/<JOB>"]),
    ("otlp", "PUT", "/metrics/job/x", "text/plain", b"a 1\n", 404,
     ["the push API is served at {push}/metrics/job/<JOB>"]),
    ("push", "PUT", "/metrics/job/x", "application/json", b'{"resourceMetrics": []}', 400,
     ["Prometheus text 0.0.4", "OpenMetrics", "protobuf", "looks like JSON", "{otlp}/v1/metrics"]),
    ("push", "POST", "/metrics/job/x", "", b' [{"name": "a", "value": 1}]', 400,
     ["the push API takes the Prometheus formats", "OTLP JSON", "{otlp}/v1/metrics"]),
]


@pytest.mark.parametrize("where,method,path,ctype,body,status,fragments", HINTS)
def test_near_misses_are_told_the_right_place(gateway_factory, where, method, path, ctype, body, status,
                                              fragments):
    # OTLP on a server of its own ("localhost:0" is another endpoint than "127.0.0.1:0")
    gateway = gateway_factory(["receivers.otlp.protocols.http.endpoint=localhost:0"])
    assert gateway.otlp_url != gateway.url
    base = gateway.url if where == "push" else gateway.otlp_url
    code, answer, _ = gateway.request(method, path, body, {"Content-Type": ctype} if ctype else {}, base=base)
    assert code == status
    text = answer.decode()
    for fragment in fragments:
        assert fragment.format(otlp=gateway.otlp_url, push=gateway.url) in text, text


def test_a_parse_error_that_is_not_json_is_unchanged(gateway):
    code, answer, _ = gateway.request("PUT", "/metrics/job/x", b"a{b=1} 1\n", {"Content-Type": "text/plain"})
    assert code == 400 and "JSON" not in answer.decode()


@pytest.mark.skipif(not (shutil.which("prometheus-pushgateway") and shutil.which("wrk")),
                    reason="the bench needs prometheus-pushgateway and wrk (apt-get install prometheus-pushgateway wrk)")
def test_bench_exits_non_zero_naming_why_when_otelgravel_does_not_start():
    result = subprocess.run([sys.executable, str(REPO / "bench" / "run.py"), "--quick", "--no-install",
                             "--otelgravel-set", "processors.gravel.expire_after=-1s"],
                            capture_output=True, text=True, timeout=180)
    assert result.returncode == 1, result.stdout[-2000:] + result.stderr[-2000:]
    assert "otelgravel did not start" in result.stdout
    assert "processors::gravel::expire_after" in result.stdout  # the gateway's own reason


def _localhost_addresses() -> set[str]:
    return {info[4][0] for info in socket.getaddrinfo("localhost", 0, type=socket.SOCK_STREAM)}


def _ready_on(address: str, port: int) -> int:
    host = f"[{address}]" if ":" in address else address
    with urllib.request.urlopen(f"http://{host}:{port}/-/ready", timeout=15) as resp:
        return resp.status


def test_localhost_endpoint_listens_on_every_address_localhost_resolves_to(gateway_factory):
    gw = gateway_factory(["receivers.pushgateway.endpoint=localhost:0", "exporters.prometheus.endpoint=localhost:0"])
    port = int(gw.url.rsplit(":", 1)[1])
    for address in _localhost_addresses():
        assert _ready_on(address, port) == 200, address


@pytest.mark.skipif(not {"127.0.0.1", "::1"} <= _localhost_addresses(),
                    reason=f"localhost resolves to {sorted(_localhost_addresses())} here, not to both "
                           f"127.0.0.1 and ::1 (see /etc/hosts)")
def test_localhost_endpoint_answers_on_ipv4_and_ipv6(gateway_factory):
    gw = gateway_factory(["receivers.pushgateway.endpoint=localhost:0", "exporters.prometheus.endpoint=localhost:0"])
    port = int(gw.url.rsplit(":", 1)[1])
    assert _ready_on("127.0.0.1", port) == 200
    assert _ready_on("::1", port) == 200
    assert any("addresses=" in line and "[::1]" in line for line in gw.log), gw.log
