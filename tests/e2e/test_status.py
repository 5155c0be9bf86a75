"""The status page and the JSON API on the exporter's endpoint, in real HTTP and a real browser."""
import base64
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from otelgravel.status.redact import SECRET, redact

EVIL = '<script>alert("x")</script>\'q'
EVIL_B64 = base64.urlsafe_b64encode(EVIL.encode()).decode()
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"  # git-ignored
REFUSALS = [
    ("/metrics/job/checkout/instance/fn-1", "x{ 1\n", "line 1"),
    ("/metrics/job/billing", "# TYPE y counter\ny 1\n", "family 'y' is an unknown"),
    ("/metrics/job/extra", "v 1\n", "over the limit max_series=10"),
]


def get(gw, path):
    status, body, headers = gw.request("GET", path, base=gw.scrape_url)
    assert status == 200, body
    return body.decode(), headers


def fill(gw):
    assert gw.push("/metrics/job/checkout/instance/fn-1", "x 1\n# TYPE requests counter\nrequests_total 3\n")[0] == 200
    assert gw.push("/metrics/job/billing", "y 2\n")[0] == 200
    assert gw.push(f"/metrics/job/evil/tag@base64/{EVIL_B64}",
                   f'z{{v="{EVIL.replace(chr(34), chr(92) + chr(34))}"}} 1\n')[0] == 200
    for path, body, message in REFUSALS:
        status, answer, _ = gw.push(path, body)
        assert status == 400 and message.encode() in answer, answer


@pytest.fixture
def filled(gateway_factory):
    # 4 series + 2 gauges for each of 3 groups = 10 exposed: the push to a 4th group is limited
    gw = gateway_factory(["processors.gravel.max_series=10"])
    fill(gw)
    return gw


def test_api_status(filled):
    text, headers = get(filled, "/api/v1/status")
    assert headers["Content-Type"].startswith("application/json")
    answer = json.loads(text)
    assert answer["status"] == "success"
    data = answer["data"]
    assert data["version"] and data["start_time"].endswith("Z") and data["uptime_seconds"] >= 0
    assert (data["series"], data["pushed_series"], data["groups"]) == (10, 4, 3)
    assert data["limits"]["max_series"] == 10
    requests = {(r["receiver"], r["outcome"]): r["count"] for r in data["requests"]}
    assert requests[("pushgateway", "accepted")] == 3 and requests[("pushgateway", "refused")] == 2
    assert data["config"]["processors"]["gravel"]["max_series"] == 10  # the running config


def test_api_metrics_in_the_pushgateway_shape(filled):
    data = json.loads(get(filled, "/api/v1/metrics")[0])["data"]
    by_job = {g["labels"]["job"]: g for g in data}
    assert set(by_job) == {"checkout", "billing", "evil"}
    checkout = by_job["checkout"]
    assert checkout["labels"] == {"job": "checkout", "instance": "fn-1"}
    assert checkout["last_push_successful"] is False  # its later push was refused
    assert checkout["x"]["type"] == "UNTYPED"
    assert checkout["x"]["metrics"] == [{"labels": {"instance": "fn-1", "job": "checkout"}, "value": "1"}]
    assert checkout["requests"]["type"] == "COUNTER"
    assert checkout["push_time_seconds"]["type"] == "GAUGE"
    assert float(checkout["push_failure_time_seconds"]["metrics"][0]["value"]) > 0
    assert by_job["billing"]["last_push_successful"] is False
    assert by_job["evil"]["last_push_successful"] is True


def test_api_refusals_newest_first(filled):
    data = json.loads(get(filled, "/api/v1/refusals")[0])["data"]
    assert [r["outcome"] for r in data] == ["limited", "refused", "refused"]
    assert [r["group"].get("job") for r in data] == ["extra", "billing", "checkout"]
    for (_, _, message), refusal in zip(reversed(REFUSALS), data):
        assert message in refusal["reason"]
        assert refusal["client"] == "127.0.0.1" and refusal["receiver"] == "pushgateway"


def test_markup_and_quotes_are_escaped_on_the_page_and_in_the_json(filled):
    html, headers = get(filled, "/")
    assert "<script>alert" not in html and 'alert("x")' not in html
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&#x27;q" in html
    assert "script-src 'sha256-" in headers["Content-Security-Policy"]
    for path in ("/api/v1/metrics", "/api/v1/status", "/api/v1/refusals"):
        text, _ = get(filled, path)
        assert "<" not in text and ">" not in text  # \u003c ... as Go's encoding/json writes it
    text, _ = get(filled, "/api/v1/metrics")
    assert "\\u003cscript\\u003ealert(\\\"x\\\")\\u003c/script\\u003e'q" in text
    evil = next(g for g in json.loads(text)["data"] if g["labels"]["job"] == "evil")
    assert evil["labels"]["tag"] == EVIL  # the JSON still decodes to the value pushed
    assert evil["z"]["metrics"][0]["labels"]["v"] == EVIL


def test_filter_works_without_javascript(filled):
    html, _ = get(filled, "/?q=job%3Dbilling")
    groups = html[html.index('id="groups"'):html.index("Last refusals")]
    assert 'job=&quot;billing&quot;' in groups and 'job=&quot;checkout&quot;' not in groups
    assert "1 matching" in html
    html, _ = get(filled, "/?q=%3Cnothing%3E")
    assert "No group matches." in html and 'value="&lt;nothing&gt;"' in html


def test_status_config_is_the_redacted_document(gateway_factory, tmp_path):
    gw = gateway_factory(["processors.gravel.max_series=100"])
    data = json.loads(get(gw, "/api/v1/status")[0])["data"]
    assert data["config"] == json.loads(json.dumps(redact(data["config"])))
    assert SECRET not in json.dumps(data["config"])  # nothing secret in this config to hide


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def _chromium(*args, timeout=90):
    return subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
                           "--disable-dev-shm-usage", "--hide-scrollbars", *args],
                          capture_output=True, text=True, timeout=timeout)


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium on PATH (.ci/run installs Debian's)")
def test_the_page_in_headless_chromium(filled, tmp_path):
    url = filled.scrape_url + "/"
    dom = _chromium("--dump-dom", url)
    assert dom.returncode == 0, dom.stderr[-2000:]
    html = dom.stdout
    assert 'job="checkout"' in html or "job=&quot;checkout&quot;" in html
    assert "fn-1" in html and "billing" in html
    for _, _, reason in REFUSALS:
        assert reason.replace("'", "&#x27;") in html or reason in html, reason
    assert "<script>alert" not in html  # the label value stayed text in the rendered DOM
    shot = tmp_path / "status.png"
    result = _chromium(f"--screenshot={shot}", "--window-size=1280,1000", url)
    assert result.returncode == 0 and shot.stat().st_size > 10_000, result.stderr[-2000:]
    ARTIFACTS.mkdir(exist_ok=True)
    shutil.copy(shot, ARTIFACTS / "status.png")
