"""Negotiation: Accept → scrape format, Content-Type → push parser, Accept-Encoding → gzip."""
import pytest

from otelgravel.errors import UnsupportedMediaType
from otelgravel.formats.negotiation import (OPENMETRICS_CONTENT_TYPE, TEXT_CONTENT_TYPE,
                                            push_format, scrape_format, wants_gzip)

PROMETHEUS_2 = ("application/openmetrics-text;version=1.0.0,application/openmetrics-text;"
                "version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1")
PROMETHEUS_3 = ("application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.5,"
                "application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=1.0.0;"
                "escaping=allow-utf-8;q=0.3,text/plain;version=0.0.4;q=0.2,*/*;q=0.1")
PROMETHEUS_TEXT_ONLY = "text/plain;version=0.0.4;q=1,*/*;q=0.1"
PROMETHEUS_PROTOBUF_FIRST = ("application/vnd.google.protobuf;proto=io.prometheus.client."
                             "MetricFamily;encoding=delimited;q=0.6," + PROMETHEUS_2.replace(
                                 "version=1.0.0,", "version=1.0.0;q=0.5,"))

SCRAPE = [
    (None, "text"),
    ("", "text"),
    ("*/*", "text"),
    ("text/plain", "text"),
    ("text/plain; version=0.0.4", "text"),
    ("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", "text"),  # a browser
    (PROMETHEUS_2, "openmetrics"),
    (PROMETHEUS_3, "openmetrics"),
    (PROMETHEUS_TEXT_ONLY, "text"),
    (PROMETHEUS_PROTOBUF_FIRST, "openmetrics"),  # protobuf skipped, OpenMetrics next
    ("application/openmetrics-text", "openmetrics"),
    ("Application/OpenMetrics-Text; Version=1.0.0", "openmetrics"),
    ("application/openmetrics-text;version=0.0.1", "openmetrics"),
    ("application/openmetrics-text;version=2.0.0", "text"),  # cannot serve, falls back
    ("application/openmetrics-text;version=2.0.0,application/openmetrics-text;q=0.1",
     "openmetrics"),
    # q-values honoured
    ("text/plain;q=0.9,application/openmetrics-text;q=0.5", "text"),
    ("text/plain;q=0.5,application/openmetrics-text;q=0.9", "openmetrics"),
    ("text/plain,application/openmetrics-text;q=0", "text"),
    ("application/openmetrics-text;q=0,*/*", "text"),
    ("application/openmetrics-text;q=0.1,*/*;q=0.5", "text"),
    ("application/openmetrics-text;q=0.5,*/*;q=0.1", "openmetrics"),
    ("application/openmetrics-text;q=bogus,text/plain;q=0.1", "text"),
    # ties: most specific first, then header order
    ("*/*,application/openmetrics-text", "openmetrics"),
    ("text/plain,application/openmetrics-text", "text"),
    ("application/openmetrics-text,text/plain", "openmetrics"),
    ("text/*;q=0.5,application/openmetrics-text;q=0.5", "openmetrics"),
    # nothing we can serve
    ("application/json", "text"),
    ("garbage", "text"),
    (",,;", "text"),
]


@pytest.mark.parametrize("accept, expected", SCRAPE)
def test_scrape_format(accept, expected):
    assert scrape_format(accept) == expected


def test_content_types():
    assert OPENMETRICS_CONTENT_TYPE == "application/openmetrics-text; version=1.0.0; charset=utf-8"
    assert TEXT_CONTENT_TYPE == "text/plain; version=0.0.4; charset=utf-8"


PB = "application/vnd.google.protobuf"
PUSH = [
    (None, "text"),
    ("", "text"),
    ("text/plain", "text"),
    ("text/plain; version=0.0.4; charset=utf-8", "text"),  # prometheus_client, prom-client
    ("application/x-www-form-urlencoded", "text"),  # curl --data-binary
    ("application/octet-stream", "text"),
    ("bogus", "text"),
    ("application/openmetrics-text; version=1.0.0; charset=utf-8", "openmetrics"),
    ("application/openmetrics-text", "openmetrics"),
    ("APPLICATION/OPENMETRICS-TEXT", "openmetrics"),
    (PB + "; proto=io.prometheus.client.MetricFamily; encoding=delimited", "protobuf"),
    (PB + ";proto=io.prometheus.client.MetricFamily;encoding=delimited", "protobuf"),  # client_golang
    (PB + '; encoding="delimited"; proto="io.prometheus.client.MetricFamily"', "protobuf"),
    ("Application/Vnd.Google.Protobuf; Proto=io.prometheus.client.MetricFamily; "
     "Encoding=Delimited", "protobuf"),
]


@pytest.mark.parametrize("content_type, expected", PUSH)
def test_push_format(content_type, expected):
    assert push_format(content_type) == expected


PUSH_BAD = [
    (PB + "; proto=io.prometheus.client.MetricFamily; encoding=text",
     "unsupported protobuf encoding='text'"),
    (PB + "; proto=io.prometheus.client.MetricFamily; encoding=compact-text",
     "unsupported protobuf encoding='compact-text'"),
    (PB + "; proto=io.prometheus.client.MetricFamily", "unsupported protobuf encoding=''"),
    (PB + "; proto=opentelemetry.proto.metrics.v1.MetricsData; encoding=delimited",
     "unsupported protobuf message proto='opentelemetry.proto.metrics.v1.MetricsData'"),
    (PB, "unsupported protobuf message proto=''"),
]


@pytest.mark.parametrize("content_type, fragment", PUSH_BAD)
def test_push_format_refuses(content_type, fragment):
    with pytest.raises(UnsupportedMediaType) as info:
        push_format(content_type)
    assert fragment in str(info.value)
    assert "encoding=delimited is accepted" in str(info.value)


GZIP = [
    (None, False),
    ("", False),
    ("identity", False),
    ("gzip", True),
    ("GZIP", True),
    ("x-gzip", True),
    ("gzip, deflate, br", True),
    ("br;q=1.0, gzip;q=0.8, *;q=0.1", True),
    ("deflate, br", False),
    ("gzip;q=0", False),
    ("gzip;q=0.0, *", False),  # an explicit refusal beats the wildcard
    ("*", True),
    ("*;q=0", False),
    ("identity;q=1, *;q=0", False),
    ("gzip;q=0.001", True),
    ("gzip;q=bogus", False),
]


@pytest.mark.parametrize("accept_encoding, expected", GZIP)
def test_wants_gzip(accept_encoding, expected):
    assert wants_gzip(accept_encoding) is expected
