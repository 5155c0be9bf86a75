"""Node's ``prom-client`` (from the npm registry) pushing to the real gateway, run with the machine's node.

Each ``node`` run is a separate process, i.e. one serverless invocation: a fresh registry, one
increment, one push, exit. The talk's snippet: a counter ``wshim_request_count{clear_mode="sum"}`` and
an info-style gauge ``wshim_info{version,clear_mode="family"}``. Pushed twice it must scrape as a
counter of 2 and a single info series (the latest version).
"""
from __future__ import annotations

import json
import shutil
import subprocess

import pytest

PROM_CLIENT = "prom-client@15"
NPM_TIMEOUT = 300
NODE_TIMEOUT = 60

# One invocation. The argument is a JSON object:
#   url, method ("push" | "pushAdd" | "delete"), params (jobName, groupings), options (constructor
#   options: requireJobName, headers), version, openmetrics (registry content type).
SNIPPET = r"""
'use strict';
const client = require('prom-client');

async function main() {
  const cfg = JSON.parse(process.argv[2]);
  const registry = new client.Registry(cfg.openmetrics ? client.Registry.OPENMETRICS_CONTENT_TYPE
                                                       : client.Registry.PROMETHEUS_CONTENT_TYPE);
  const requestCount = new client.Counter({
    name: 'wshim_request_count', help: 'Requests handled by the shim.',
    labelNames: ['clear_mode'], registers: [registry],
  });
  const info = new client.Gauge({
    name: 'wshim_info', help: 'Build information of the shim.',
    labelNames: ['version', 'clear_mode'], registers: [registry],
  });
  requestCount.inc({ clear_mode: 'sum' });
  info.set({ version: cfg.version, clear_mode: 'family' }, 1);

  const gateway = new client.Pushgateway(cfg.url, cfg.options || {}, registry);
  const { resp } = await gateway[cfg.method](cfg.params || {});
  console.log(JSON.stringify({ status: resp.statusCode }));
}

main().catch((err) => { console.error(String(err && err.stack || err)); process.exit(1); });
"""


@pytest.fixture(scope="session")
def prom_client_dir(tmp_path_factory):
    """A directory with prom-client installed from the npm registry and the snippet, once per session."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        pytest.skip(f"prom-client tests need node and npm on PATH (node={node}, npm={npm})")
    root = tmp_path_factory.mktemp("prom-client")
    (root / "package.json").write_text(json.dumps({"name": "otelgravel-e2e", "private": True}))
    try:
        done = subprocess.run([npm, "install", "--no-audit", "--no-fund", "--no-progress", PROM_CLIENT],
                              cwd=root, capture_output=True, text=True, timeout=NPM_TIMEOUT)
    except subprocess.TimeoutExpired:
        pytest.skip(f"`npm install {PROM_CLIENT}` did not finish in {NPM_TIMEOUT}s (no registry access?)")
    if done.returncode != 0:
        pytest.skip(f"`npm install {PROM_CLIENT}` failed ({done.returncode}): {done.stderr.strip()[-800:]}")
    (root / "invoke.js").write_text(SNIPPET)
    return root


@pytest.fixture
def invoke(prom_client_dir, gateway):
    """invoke(method, version, ...) runs the snippet once in a fresh node process against the gateway."""

    def run(method="pushAdd", version="1.0", params=None, options=None, openmetrics=False):
        cfg = {"url": gateway.url, "method": method, "version": version,
               "params": {"jobName": "wshim"} if params is None else params,
               "options": options or {}, "openmetrics": openmetrics}
        done = subprocess.run(["node", "invoke.js", json.dumps(cfg)], cwd=prom_client_dir,
                              capture_output=True, text=True, timeout=NODE_TIMEOUT)
        assert done.returncode == 0, f"prom-client {method} failed:\n{done.stderr}"
        return json.loads(done.stdout.strip().splitlines()[-1])["status"]

    return run


def wshim(samples, name):
    return {labels: v for (n, labels), v in samples.items() if n == name}


def assert_talk_result(gateway, group, version="1.1"):
    """Counter 2, one info series with the latest version; same in both scrape formats; no clear_mode."""
    om = gateway.samples(openmetrics=True)
    assert wshim(om, "wshim_request_count_total") == {group: 2}, wshim(om, "wshim_request_count_total")
    assert wshim(om, "wshim_info") == {group | {("version", version)}: 1}, wshim(om, "wshim_info")
    text = gateway.samples()
    assert wshim(text, "wshim_request_count_total") == {group: 2}
    assert wshim(text, "wshim_info") == {group | {("version", version)}: 1}
    assert text[("push_time_seconds", group)] > 1.7e9
    for accept in ("text/plain", "application/openmetrics-text; version=1.0.0"):
        scraped = gateway.scrape(accept)
        assert "clear_mode" not in scraped, scraped


def test_the_talks_snippet_pushadd_twice(gateway, invoke):
    assert invoke("pushAdd", "1.0") == 200
    assert invoke("pushAdd", "1.1") == 200
    assert_talk_result(gateway, frozenset({("job", "wshim")}))


def test_push_put_aggregates_the_same_way(gateway, invoke):
    assert invoke("push", "1.0") == 200
    assert invoke("push", "1.1") == 200
    assert_talk_result(gateway, frozenset({("job", "wshim")}))


def test_gzip_bodies(gateway, invoke):
    """prom-client gzips its (chunked) body when given ``headers: {'Content-Encoding': 'gzip'}``."""
    gzip_headers = {"headers": {"Content-Encoding": "gzip"}}
    assert invoke("push", "1.0", options=gzip_headers) == 200
    assert invoke("pushAdd", "1.1", options=gzip_headers) == 200
    assert_talk_result(gateway, frozenset({("job", "wshim")}))


def test_put_then_post_then_put_mix(gateway, invoke):
    assert invoke("push", "1.0") == 200
    assert invoke("pushAdd", "1.0") == 200
    assert invoke("push", "1.1") == 200
    om = gateway.samples(openmetrics=True)
    assert om[("wshim_request_count_total", frozenset({("job", "wshim")}))] == 3
    assert wshim(om, "wshim_info") == {frozenset({("job", "wshim"), ("version", "1.1")}): 1}


def test_bare_metrics_path_with_require_job_name_false(gateway, invoke):
    for version in ("1.0", "1.1"):
        assert invoke("pushAdd", version, params={}, options={"requireJobName": False}) == 200
    assert_talk_result(gateway, frozenset())


def test_openmetrics_registry_with_its_content_type(gateway, invoke):
    """prom-client's OpenMetrics registry: ``wshim_request_count_total`` + ``# EOF`` in the body."""
    headers = {"Content-Type": "application/openmetrics-text; version=1.0.0; charset=utf-8"}
    for version in ("1.0", "1.1"):
        assert invoke("pushAdd", version, options={"headers": headers}, openmetrics=True) == 200
    assert_talk_result(gateway, frozenset({("job", "wshim")}))


def test_groupings_slash_space_and_trailing_empty_value_then_delete(gateway, invoke):
    # prom-client percent-encodes values (%2F, %20) and sends "" as an empty trailing component.
    groupings = {"path": "/var/tmp", "name": "a b", "empty": ""}
    params = {"jobName": "wshim", "groupings": groupings}
    for version in ("1.0", "1.1"):
        assert invoke("pushAdd", version, params=params) == 200
    assert invoke("pushAdd", "1.0", params={"jobName": "wshim"}) == 200  # another group
    group = frozenset({("job", "wshim"), *groupings.items()})
    om = gateway.samples(openmetrics=True)
    assert om[("wshim_request_count_total", group)] == 2
    assert om[("wshim_request_count_total", frozenset({("job", "wshim")}))] == 1

    assert invoke("delete", params=params) == 202
    samples = gateway.samples()
    assert [k for k in samples if k[1] == group] == []
    assert samples[("wshim_request_count_total", frozenset({("job", "wshim")}))] == 1
    assert wshim(samples, "wshim_info") == {frozenset({("job", "wshim"), ("version", "1.0")}): 1}
