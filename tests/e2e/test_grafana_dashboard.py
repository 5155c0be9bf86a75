"""deploy/grafana/otelgravel.json queries only what the telemetry endpoint serves, and every one of
its queries returns data in a real Prometheus scraping a real gateway."""
import json
import re
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families as parse_text

from .test_prometheus_server import PROMETHEUS, Prometheus, poll

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "otelgravel.json"
_NAME = re.compile(r"\b((?:otelgravel|process)_[a-zA-Z0-9_]+)\b")
_PROMQL = {"$__rate_interval": "30s", "$instance": ".*"}


def expressions() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [t["expr"] for p in dashboard["panels"] for t in p["targets"]]


def promql(expr: str) -> str:
    for var, value in _PROMQL.items():
        expr = expr.replace(var, value)
    return expr


def exercise(gw):
    """Pushes accepted and refused, scrapes, a 404: every family has samples."""
    assert gw.push("/metrics/job/a", "x 1\n")[0] == 200
    assert gw.push("/metrics/job/a", "x{ 1\n")[0] == 400
    gw.scrape("text/plain")
    gw.request("GET", "/nope")


def test_every_metric_the_dashboard_queries_is_on_the_telemetry_endpoint(gateway_factory):
    gw = gateway_factory()
    exercise(gw)
    status, body, _ = gw.request("GET", "/metrics", base=gw.telemetry_url)
    assert status == 200
    served = {s.name for f in parse_text(body.decode()) for s in f.samples}
    queried = {name for expr in expressions() for name in _NAME.findall(expr)}
    assert len(queried) >= 10
    assert queried <= served, sorted(queried - served)


@pytest.mark.skipif(not Path(PROMETHEUS).exists(), reason=f"needs a Prometheus server ({PROMETHEUS})")
def test_every_dashboard_query_returns_data_in_prometheus(gateway_factory, tmp_path):
    gw = gateway_factory()
    prom = Prometheus(tmp_path, gw.telemetry_url[len("http://"):])
    prom.start()
    try:
        exercise(gw)
        # rate() needs two scrapes of the same counters after the pushes
        def scrapes():
            result = prom.api("query", query="count_over_time(otelgravel_store_series[30s])")["result"]
            return result and float(result[0]["value"][1]) >= 3

        poll(scrapes, "three scrapes of the telemetry endpoint", on_timeout=prom.log)
        exercise(gw)
        for expr in expressions():
            poll(lambda: prom.api("query", query=promql(expr))["result"], f"data for {expr}",
                 on_timeout=prom.log)
    finally:
        prom.stop()
