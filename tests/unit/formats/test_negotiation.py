"""Negotiation: Accept → scrape format, Content-Type → push parser, Accept-Encoding → gzip."""
import pytest

from otelgravel.errors import UnsupportedMediaType
from otelgravel.formats.negotiation import (OPENMETRICS_CONTENT_TYPE, TEXT_CONTENT_TYPE, negotiate,
                                            push_format, scrape_format, wants_gzip)

PB = "application/vnd.google.protobuf"

# The Accept headers real Prometheus servers send, copied from their source (scrape/scrape.go,
# config/config.go): 2.42's two constants, and what 3.x's acceptHeader() builds from its
# ScrapeProtocolsHeaders (weights 0.6 down, */* last; 3.0-3.3 add "escaping=allow-utf-8" to every
# range under UTF-8 validation, and text 1.0.0 carries it twice; 3.4+ add "escaping=<scheme>" to
# text 1.0.0 and OpenMetrics 1.0.0 only).
P242 = ("application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;"
        "q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1")
P242_NATIVE = ("application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;"
               "encoding=delimited,application/openmetrics-text;version=1.0.0;q=0.8,"
               "application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,"
               "*/*;q=0.1")
P30 = ("application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,"
       "application/openmetrics-text;version=0.0.1;escaping=allow-utf-8;q=0.5,"
       "text/plain;version=1.0.0;escaping=allow-utf-8;escaping=allow-utf-8;q=0.4,"
       "text/plain;version=0.0.4;escaping=allow-utf-8;q=0.3,*/*;q=0.2")
P30_PROTO = ("application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;"
             "encoding=delimited;escaping=allow-utf-8;q=0.6,"
             "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.5,"
             "application/openmetrics-text;version=0.0.1;escaping=allow-utf-8;q=0.4,"
             "text/plain;version=1.0.0;escaping=allow-utf-8;escaping=allow-utf-8;q=0.3,"
             "text/plain;version=0.0.4;escaping=allow-utf-8;q=0.2,*/*;q=0.1")
P30_LEGACY = ("application/openmetrics-text;version=1.0.0;q=0.6,application/openmetrics-text;"
              "version=0.0.1;q=0.5,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.4,"
              "text/plain;version=0.0.4;q=0.3,*/*;q=0.2")
P34 = ("application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,"
       "application/openmetrics-text;version=0.0.1;q=0.5,"
       "text/plain;version=1.0.0;escaping=allow-utf-8;q=0.4,text/plain;version=0.0.4;q=0.3,"
       "*/*;q=0.2")
P34_PROTO = ("application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;"
             "encoding=delimited;q=0.6,"
             "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.5,"
             "application/openmetrics-text;version=0.0.1;q=0.4,"
             "text/plain;version=1.0.0;escaping=allow-utf-8;q=0.3,text/plain;version=0.0.4;q=0.2,"
             "*/*;q=0.1")
P34_UNDERSCORES = ("application/openmetrics-text;version=1.0.0;escaping=underscores;q=0.6,"
                   "application/openmetrics-text;version=0.0.1;q=0.5,"
                   "text/plain;version=1.0.0;escaping=underscores;q=0.4,"
                   "text/plain;version=0.0.4;q=0.3,*/*;q=0.2")
P34_TEXT1 = "text/plain;version=1.0.0;escaping=allow-utf-8;q=0.6,*/*;q=0.5"  # scrape_protocols
P34_TEXT1_VALUES = ("text/plain;version=1.0.0;escaping=values;q=0.6,application/vnd.google.protobuf;"
                    "proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.5,*/*;q=0.4")
P34_TEXT004 = "text/plain;version=0.0.4;q=0.6,*/*;q=0.5"
P34_OM001 = "application/openmetrics-text;version=0.0.1;q=0.6,*/*;q=0.5"

PROTO_CT = "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited"
OM1_CT = "application/openmetrics-text; version=1.0.0; charset=utf-8"
OM0_CT = "application/openmetrics-text; version=0.0.1; charset=utf-8"
T1_CT = "text/plain; version=1.0.0; charset=utf-8"
T0_CT = "text/plain; version=0.0.4; charset=utf-8"

# (Accept, kind, version, escaping, Content-Type of the answer)
PROMETHEUS_HEADERS = [
    (P242, "openmetrics", "1.0.0", "underscores", OM1_CT),
    (P242_NATIVE, "protobuf", "", "underscores", PROTO_CT),
    (P30, "openmetrics", "1.0.0", "allow-utf-8", OM1_CT + "; escaping=allow-utf-8"),
    (P30_PROTO, "protobuf", "", "allow-utf-8", PROTO_CT + "; escaping=allow-utf-8"),
    (P30_LEGACY, "openmetrics", "1.0.0", "underscores", OM1_CT),
    (P34, "openmetrics", "1.0.0", "allow-utf-8", OM1_CT + "; escaping=allow-utf-8"),
    # as expfmt: the protobuf range named no scheme, and it is read before the ranges that do
    (P34_PROTO, "protobuf", "", "underscores", PROTO_CT),
    (P34_UNDERSCORES, "openmetrics", "1.0.0", "underscores", OM1_CT + "; escaping=underscores"),
    (P34_TEXT1, "text", "1.0.0", "allow-utf-8", T1_CT + "; escaping=allow-utf-8"),
    (P34_TEXT1_VALUES, "text", "1.0.0", "values", T1_CT + "; escaping=values"),
    (P34_TEXT004, "text", "0.0.4", "underscores", T0_CT),
    (P34_OM001, "openmetrics", "0.0.1", "underscores", OM0_CT),
]


@pytest.mark.parametrize("accept, kind, version, escaping, content_type", PROMETHEUS_HEADERS)
def test_prometheus_accept_headers(accept, kind, version, escaping, content_type):
    assert negotiate(accept) == (kind, version, escaping, content_type)


NEGOTIATE = [
    # (Accept, kind, version, escaping, Content-Type)
    (None, "text", "0.0.4", "underscores", T0_CT),
    ("application/openmetrics-text", "openmetrics", "0.0.1", "underscores", OM0_CT),  # as expfmt
    ("text/plain;version=1.0.0", "text", "1.0.0", "underscores", T1_CT),
    ("text/plain;version=1.0.0;escaping=dots", "text", "1.0.0", "dots", T1_CT + "; escaping=dots"),
    ("text/plain;version=1.0.0;escaping=bogus", "text", "1.0.0", "underscores", T1_CT),  # ignored
    ("text/plain;version=2.0.0,text/plain;q=0.1", "text", "0.0.4", "underscores", T0_CT),
    (PB + ";proto=io.prometheus.client.MetricFamily;encoding=text,text/plain;q=0.5",
     "text", "0.0.4", "underscores", T0_CT),  # only the delimited encoding is served
    (PB + ";proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.4,"
     "application/openmetrics-text;version=1.0.0;q=0.5", "openmetrics", "1.0.0", "underscores",
     OM1_CT),
    ("*/*;escaping=values", "text", "0.0.4", "values", T0_CT + "; escaping=values"),
]


@pytest.mark.parametrize("accept, kind, version, escaping, content_type", NEGOTIATE)
def test_negotiate(accept, kind, version, escaping, content_type):
    assert negotiate(accept) == (kind, version, escaping, content_type)


SCRAPE = [
    (None, "text"),
    ("", "text"),
    ("*/*", "text"),
    ("text/plain", "text"),
    ("text/plain; version=0.0.4", "text"),
    ("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", "text"),  # a browser
    (P242, "openmetrics"),
    (P30, "openmetrics"),
    (P34_TEXT004, "text"),
    (P242_NATIVE, "protobuf"),
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
