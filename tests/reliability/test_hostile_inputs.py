"""Inputs that once gave 500 or forged log lines, against the real gateway: each gets a 4xx, the
next scrape parses with both prometheus_client parsers, and every log line stays one line."""
from __future__ import annotations

import socket
import time
import urllib.parse

import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_om
from prometheus_client.parser import text_string_to_metric_families as parse_text

from tests.e2e.conftest import OM_ACCEPT

OTLP_JSON = "application/json"
# (receiver, content type, body, status)
INPUTS = [
    pytest.param("pushgateway", None, b"a 1 " + b"1" * 5000 + b"\n", 400, id="timestamp of 5000 digits"),
    pytest.param("otlp", OTLP_JSON, b'{"resourceMetrics": [{"\\ud800": 1}]}', 400,
                 id="OTLP JSON key with a lone surrogate escape"),
    pytest.param("otlp", OTLP_JSON, b'{"resourceMetrics": [{"scopeMetrics": [{"metrics": [{"name": "x", '
                 b'"sum": {"aggregationTemporality": 1e400, "dataPoints": [{"asInt": "1"}]}}]}]}]}', 400,
                 id="OTLP JSON enum written 1e400"),
]


def scrape_both(gw) -> tuple[str, str]:
    text, om = gw.scrape("text/plain"), gw.scrape(OM_ACCEPT)
    list(parse_text(text))
    list(parse_om(om))
    return text, om


@pytest.mark.parametrize("receiver, content_type, body, status", INPUTS)
def test_input_is_refused_and_the_scrape_stays_valid(gateway_factory, receiver, content_type, body,
                                                     status):
    gw = gateway_factory()
    assert gw.push("/metrics/job/seed", "seed_total 1\n")[0] == 200
    before = scrape_both(gw)
    headers = {"Content-Type": content_type} if content_type else {}
    if receiver == "otlp":
        got, answer, _ = gw.request("POST", "/v1/metrics", body, headers, base=gw.otlp_url)
    else:
        got, answer, _ = gw.push("/metrics/job/bad", body, headers=headers)
    assert got == status, answer
    assert scrape_both(gw) == before


def test_log_lines_stay_one_line_whatever_the_label_values(gateway_factory):
    gw = gateway_factory(["processors.gravel.max_series=3", "service.telemetry.logs.level=debug"])
    evil = "a\rb\u2028c\x85d\ne"
    quoted = urllib.parse.quote(evil, safe="")
    assert gw.push("/metrics/job/fill", "x 1\n")[0] == 200
    # the series limit's warning (the default level) logs the path; a conflict (debug) the value
    assert gw.push(f"/metrics/job/{quoted}/l/{quoted}", "y 1\n")[0] == 400
    assert gw.push("/metrics/job/other", 'x{job="fill"} 1\n# TYPE x gauge\n')[0] == 400
    assert gw.push("/metrics/job/fill", 'z{v="%s"} -1\n# TYPE z counter\n' % "a\\nb")[0] == 400
    gw.stop()
    assert any("level=warning" in line and "max_series=3" in line for line in gw.log)
    for line in gw.log:
        assert line.startswith("ts=") and len(line.splitlines()) == 1, repr(line)
    assert any("\\u2028" in line and "\\x85" in line and "\\r" in line for line in gw.log)


def test_an_aborted_upload_is_one_debug_line(gateway_factory):
    gw = gateway_factory(["service.telemetry.logs.level=debug"])
    host, port = gw.url[len("http://"):].rsplit(":", 1)
    with socket.create_connection((host, int(port))) as s:
        s.sendall(b"PUT /metrics/job/x HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\na 1\n")
        time.sleep(0.3)  # the handler is reading the body
    deadline = time.monotonic() + 10
    while not any("upload aborted" in line for line in gw.log) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert gw.push("/metrics/job/y", "b 1\n")[0] == 200  # and the gateway serves on
    gw.stop()
    aborted = [line for line in gw.log if "upload aborted" in line]
    assert len(aborted) == 1 and "level=debug" in aborted[0], gw.log
    assert not [line for line in gw.log if "Traceback" in line or "level=error" in line], gw.log
