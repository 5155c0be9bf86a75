"""Start the real gateway (``python -m otelgravel``) on free loopback ports, talk real HTTP.

Ports come from the gateway itself: it binds port 0 and logs ``listening ... endpoint=HOST:PORT``,
which the fixture waits for (no fixed ports, no sleeps).
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_om
from prometheus_client.parser import text_string_to_metric_families as parse_text

REPO = Path(__file__).resolve().parents[2]
OM_ACCEPT = "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
_LISTENING = re.compile(r"msg=listening components=(\S+) endpoint=(\S+)(?: scheme=(https?))?")


class Gateway:
    def __init__(self, sets=(), config: str | None = None, tmp_path: Path | None = None):
        args = [sys.executable, "-m", "otelgravel"]
        if config is not None:
            path = (tmp_path or Path("/tmp")) / f"otelgravel-{os.getpid()}-{id(self)}.yaml"
            path.write_text(config)
            args += ["--config", str(path)]
        defaults = ["receivers.pushgateway.endpoint=127.0.0.1:0",
                    "exporters.prometheus.endpoint=127.0.0.1:0",
                    "receivers.otlp.protocols.http.endpoint=127.0.0.1:0",
                    "receivers.pushgateway.admin_api=true"]
        if not any(item.startswith("service.telemetry.metrics") for item in sets) and \
                "telemetry" not in (config or ""):
            # no test listens on the default localhost:8888: sessions run side by side
            sets = ["service.telemetry.metrics.address=127.0.0.1:0", *sets]
        for item in (defaults if config is None else []) + list(sets):
            args += ["--set", item]
        env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
        self.proc = subprocess.Popen(args, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                     text=True, cwd=REPO, env=env)
        self.log: list[str] = []
        self.endpoints: dict[str, str] = {}
        self.schemes: dict[str, str] = {}
        self.ssl_context = None  # for https endpoints: an ssl.SSLContext trusting the test's CA
        self._ready = threading.Event()
        threading.Thread(target=self._read_log, daemon=True).start()
        if not self._ready.wait(20) or self.proc.poll() is not None:
            self.stop()
            raise RuntimeError("gateway did not start:\n" + "\n".join(self.log))
        url = {c: f"{self.schemes[c]}://{e}" for c, e in self.endpoints.items()}
        self.url = url.get("pushgateway", url.get("prometheus", ""))
        self.scrape_url = url["prometheus"]
        self.otlp_url = url.get("otlp")
        self.telemetry_url = url.get("telemetry")

    def _read_log(self):
        for line in self.proc.stderr:
            self.log.append(line.rstrip("\n"))
            match = _LISTENING.search(line)
            if match:
                for component in match.group(1).split(","):
                    self.endpoints[component] = match.group(2)
                    self.schemes[component] = match.group(3) or "http"
            if "msg=ready" in line:
                self._ready.set()
        self._ready.set()

    def request(self, method, path, body=None, headers=None, base=None):
        """(status, body bytes, headers) for one real HTTP request; never raises on 4xx/5xx."""
        req = urllib.request.Request((base or self.url) + path, data=body, method=method,
                                     headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=30, context=self.ssl_context) as resp:
                return resp.status, resp.read(), resp.headers
        except urllib.error.HTTPError as err:
            return err.code, err.read(), err.headers

    def push(self, path, body, method="POST", headers=None):
        data = body.encode() if isinstance(body, str) else body
        return self.request(method, path, data, headers)

    def scrape(self, accept=None) -> str:
        status, body, headers = self.request("GET", "/metrics", headers={"Accept": accept} if accept else {},
                                             base=self.scrape_url)
        assert status == 200, body
        return body.decode()

    def samples(self, openmetrics=False) -> dict:
        """{(sample name, frozenset(labels)): value} from a scrape, checked by prometheus_client's parser."""
        if openmetrics:
            families = parse_om(self.scrape(OM_ACCEPT))
        else:
            families = parse_text(self.scrape("text/plain"))
        return {(s.name, frozenset(s.labels.items())): s.value for f in families for s in f.samples}

    def value(self, name, openmetrics=False, **labels):
        return self.samples(openmetrics).get((name, frozenset(labels.items())))

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def gateway_factory(tmp_path):
    started = []

    def start(sets=(), config=None):
        gw = Gateway(sets, config, tmp_path)
        started.append(gw)
        return gw

    yield start
    for gw in started:
        gw.stop()


@pytest.fixture(scope="session")
def shared_gateway():
    gw = Gateway()
    yield gw
    gw.stop()


@pytest.fixture
def gateway(shared_gateway):
    """One gateway for the session, wiped before each test."""
    status, _, _ = shared_gateway.request("PUT", "/api/v1/admin/wipe")
    assert status == 202
    return shared_gateway
