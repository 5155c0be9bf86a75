"""The validity rule for UTF-8 names: whatever the gateway accepts with names outside the legacy
set, it writes validly in every format and every escaping scheme: both prometheus_client parsers
read every text and OpenMetrics scrape, and the escaped scrapes show legacy names only."""
from __future__ import annotations

import re

import pytest
from google.protobuf.internal.encoder import _VarintBytes
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_om
from prometheus_client.parser import text_string_to_metric_families as parse_text

from otelgravel.formats.prom_protobuf import MetricFamily

PROTOBUF = ("application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; "
            "encoding=delimited")
OPENMETRICS = "application/openmetrics-text; version=1.0.0; charset=utf-8"
LEGACY_METRIC = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
LEGACY_LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")


def _protobuf() -> bytes:
    family = MetricFamily(name="pb.gauge", type=1, metric=[
        {"label": [{"name": "x.名前", "value": "値"}, {"name": "a:b", "value": "colon"}],
         "gauge": {"value": 1}}])
    return _VarintBytes(family.ByteSize()) + family.SerializeToString()


PUSHES = [
    ("/metrics/job/v/U__zone_2e_id/eu", OPENMETRICS,
     '# TYPE "om.counter" counter\n# HELP "om.counter" Quote \\" and \\\\.\n'
     '{"om.counter_total","url.scheme"="https"} 3 # {"trace.id"="abc"} 1\n'
     '# TYPE "om.hist" histogram\n{"om.hist_bucket","a.b"="x",le="1.0"} 1\n'
     '{"om.hist_bucket","a.b"="x",le="+Inf"} 2\n{"om.hist_count","a.b"="x"} 2\n'
     '{"om.hist_sum","a.b"="x"} 1.5\n# EOF\n'),
    ("/metrics/job/v", "text/plain; version=0.0.4",
     '# TYPE "text.gauge" gauge\n{"text.gauge","quote\\"d"="1","new\\nline"="2"} 4\n'
     '"0day"{"a1st"="x"} 5\n'),
    ("/metrics/job/v/x/y", PROTOBUF, _protobuf()),
]


@pytest.mark.parametrize("escaping", [None, "allow-utf-8", "underscores", "dots", "values"])
def test_utf8_pushes_scrape_valid_in_every_scheme(gateway, escaping):
    for path, content_type, body in PUSHES:
        data = body if isinstance(body, bytes) else body.encode()
        status, answer, _ = gateway.push(path, data, headers={"Content-Type": content_type})
        assert status == 200, answer
    suffix = f";escaping={escaping}" if escaping else ""
    text = list(parse_text(gateway.scrape("text/plain;version=1.0.0" + suffix)))
    om = list(parse_om(gateway.scrape("application/openmetrics-text;version=1.0.0" + suffix)))
    for families in (text, om):
        names = {s.name for f in families for s in f.samples}
        labels = {k for f in families for s in f.samples for k in s.labels}
        assert any("om" in n and "counter" in n for n in names), names
        if escaping in (None, "underscores", "dots", "values"):
            assert all(LEGACY_METRIC.fullmatch(n) for n in names), names
            assert all(LEGACY_LABEL.fullmatch(k) for k in labels), labels
        else:
            assert {"om.counter_total", "text.gauge", "0day", "pb.gauge"} <= names, names
            assert {"url.scheme", "zone.id", "quote\"d", "new\nline", "x.名前", "a:b"} <= labels
