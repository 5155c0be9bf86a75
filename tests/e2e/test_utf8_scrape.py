"""UTF-8 names on the way out, over real HTTP (issue 15, SPEC 10): pushed as OpenMetrics with quoted
names, scraped back under each escaping scheme the Accept header names, in every format, each
answer read by a strict parser (prometheus_client's, which accept quoted names; the client_model
protobuf classes for the delimited MetricFamily messages) and its Content-Type checked; a legacy
store reads back the same in every scheme."""
import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_om
from prometheus_client.parser import text_string_to_metric_families as parse_text

from tests.reliability.strict_scrape import decode_delimited

OM_PUSH = "application/openmetrics-text; version=1.0.0; charset=utf-8"
BODY = '{"my.metric","url.scheme"="https"} 1\n# EOF\n'

PB = "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited"
PROTO_CT = "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited"
OM1_CT = "application/openmetrics-text; version=1.0.0; charset=utf-8"
T1_CT = "text/plain; version=1.0.0; charset=utf-8"
T0_CT = "text/plain; version=0.0.4; charset=utf-8"
# what Prometheus 3.4+ sends by default, and 3.0's protobuf-first header (escaping on every range)
P34 = ("application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,"
       "application/openmetrics-text;version=0.0.1;q=0.5,"
       "text/plain;version=1.0.0;escaping=allow-utf-8;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2")
P30_PROTO = (PB + ";escaping=allow-utf-8;q=0.6,"
             "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.5,"
             "text/plain;version=0.0.4;escaping=allow-utf-8;q=0.2,*/*;q=0.1")
P242 = ("application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;"
        "q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1")
P242_NATIVE = PB + ",application/openmetrics-text;version=1.0.0;q=0.8,*/*;q=0.1"

UTF8 = ("my.metric", "url.scheme")
UNDERSCORES = ("my_metric", "url_scheme")

# (Accept, Content-Type of the answer, format, (metric name, label name) read back)
SCRAPES = [
    (P34, OM1_CT + "; escaping=allow-utf-8", "openmetrics", UTF8),
    ("text/plain;version=1.0.0;escaping=allow-utf-8", T1_CT + "; escaping=allow-utf-8", "text", UTF8),
    (P30_PROTO, PROTO_CT + "; escaping=allow-utf-8", "protobuf", UTF8),
    # no scheme named: underscores
    (P242, OM1_CT, "openmetrics", UNDERSCORES),
    (None, T0_CT, "text", UNDERSCORES),
    ("text/plain;version=1.0.0", T1_CT, "text", UNDERSCORES),
    (P242_NATIVE, PROTO_CT, "protobuf", UNDERSCORES),
    ("application/openmetrics-text;version=1.0.0;escaping=dots", OM1_CT + "; escaping=dots",
     "openmetrics", ("my_dot_metric", "url_dot_scheme")),
    ("text/plain;version=1.0.0;escaping=dots", T1_CT + "; escaping=dots", "text",
     ("my_dot_metric", "url_dot_scheme")),
    ("text/plain;version=1.0.0;escaping=values", T1_CT + "; escaping=values", "text",
     ("U__my_2e_metric", "U__url_2e_scheme")),
    (PB + ";escaping=values", PROTO_CT + "; escaping=values", "protobuf",
     ("U__my_2e_metric", "U__url_2e_scheme")),
]


def read_back(fmt: str, body: bytes) -> dict:
    """{metric name: [labels]} of the pushed family, by the strict parser of ``fmt``."""
    if fmt == "protobuf":
        families = decode_delimited(body)
        return {f.name: [({p.name: p.value for p in m.label}, m.untyped.value) for m in f.metric]
                for f in families if not f.name.startswith("push_")}
    parse = parse_om if fmt == "openmetrics" else parse_text
    return {f.name: [(s.labels, s.value) for s in f.samples]
            for f in parse(body.decode()) if not f.name.startswith("push_")}


@pytest.fixture
def pushed(gateway):
    status, body, _ = gateway.push("/metrics/job/utf8", BODY, headers={"Content-Type": OM_PUSH})
    assert status == 200, body
    return gateway


@pytest.mark.parametrize("accept, content_type, fmt, names", SCRAPES,
                         ids=[f"{f}-{n[0]}-{i}" for i, (_, _, f, n) in enumerate(SCRAPES)])
def test_pushed_utf8_names_scrape_back_per_scheme(pushed, accept, content_type, fmt, names):
    status, body, headers = pushed.request("GET", "/metrics", headers={"Accept": accept} if accept else {},
                                           base=pushed.scrape_url)
    assert status == 200, body
    assert headers["Content-Type"] == content_type
    metric, label = names
    assert read_back(fmt, body) == {metric: [({"job": "utf8", label: "https"}, 1.0)]}


def test_the_exact_lines_as_is_and_with_underscores(pushed):
    status, utf8, _ = pushed.request("GET", "/metrics", headers={"Accept": P34}, base=pushed.scrape_url)
    assert '\n# TYPE "my.metric" unknown\n{"my.metric",job="utf8","url.scheme"="https"} 1\n' in \
           "\n" + utf8.decode()
    status, plain, _ = pushed.request("GET", "/metrics", base=pushed.scrape_url)
    assert '\n# TYPE my_metric untyped\nmy_metric{job="utf8",url_scheme="https"} 1\n' in \
           "\n" + plain.decode()


LEGACY = "# TYPE req counter\nreq_total{route=\"/a\"} 3\n# TYPE up gauge\nup 1\n# EOF\n"


@pytest.mark.parametrize("accept, content_type, fmt", [(a, c, f) for a, c, f, _ in SCRAPES],
                         ids=[f"{f}-{i}" for i, (_, _, f, _) in enumerate(SCRAPES)])
def test_legacy_names_are_the_same_in_every_scheme(gateway, accept, content_type, fmt):
    status, body, _ = gateway.push("/metrics/job/legacy", LEGACY, headers={"Content-Type": OM_PUSH})
    assert status == 200, body
    status, body, headers = gateway.request("GET", "/metrics", headers={"Accept": accept} if accept else {},
                                            base=gateway.scrape_url)
    assert status == 200 and headers["Content-Type"] == content_type
    if fmt == "protobuf":
        families = decode_delimited(body)
        got = {f.name: [({p.name: p.value for p in m.label}, m.counter.value or m.gauge.value)
                        for m in f.metric] for f in families if not f.name.startswith("push_")}
        assert got == {"req_total": [({"job": "legacy", "route": "/a"}, 3.0)],
                       "up": [({"job": "legacy"}, 1.0)]}
        return
    parse = parse_om if fmt == "openmetrics" else parse_text
    got = {(s.name, frozenset(s.labels.items())): s.value for f in parse(body.decode())
           for s in f.samples if not f.name.startswith("push_") and not s.name.endswith("_created")}
    assert got == {("req_total", frozenset({("job", "legacy"), ("route", "/a")})): 3.0,
                   ("up", frozenset({("job", "legacy")})): 1.0}
