"""The writers under each escaping scheme (SPEC 10): text 0.0.4/1.0.0, OpenMetrics, PrometheusProto.

Stores are built through the store API with names outside the legacy set (as the UTF-8 parsers
will store them: exactly as pushed); every output is read back by a strict parser
(prometheus_client's text and OpenMetrics parsers, which accept quoted names, and the
client_model protobuf classes) and the names compared with the table below.
"""
import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_om
from prometheus_client.parser import text_string_to_metric_families as parse_text

from otelgravel.core.store import Store
from otelgravel.formats.escaping import escape_label_name, unescape_values
from otelgravel.formats.exposition import write_openmetrics, write_text
from otelgravel.formats.protobuf_exposition import write_protobuf
from otelgravel.model import (COUNTER, GAUGE, HISTOGRAM, INF, REPLACE, SUM, Exemplar, Family,
                              Point)
from tests.reliability.strict_scrape import decode_delimited as decode

SCHEMES = ("allow-utf-8", "underscores", "dots", "values")

# (kind, metric name, label name, {scheme: (metric name as written, label name as written)})
NAMES = [
    ("legacy", "http_requests", "method",
     dict.fromkeys(SCHEMES, ("http_requests", "method"))),
    ("dotted", "my.metric", "url.scheme",
     {"allow-utf-8": ("my.metric", "url.scheme"), "underscores": ("my_metric", "url_scheme"),
      "dots": ("my_dot_metric", "url_dot_scheme"), "values": ("U__my_2e_metric", "U__url_2e_scheme")}),
    ("quote, backslash, newline", 'a"b\\c\nd', 'q"\\\n',
     {"allow-utf-8": ('a"b\\c\nd', 'q"\\\n'), "underscores": ("a_b_c_d", "q___"),
      "dots": ("a__b__c__d", "q______"), "values": ("U__a_22_b_5c_c_a_d", "U__q_22__5c__a_")}),
    ("non-ASCII", "température", "zoné",
     {"allow-utf-8": ("température", "zoné"), "underscores": ("temp_rature", "zon_"),
      "dots": ("temp__rature", "zon__"), "values": ("U__temp_e9_rature", "U__zon_e9_")}),
    ("leading digit", "0day", "1st",
     {"allow-utf-8": ("0day", "1st"), "underscores": ("_day", "_st"),
      "dots": ("__day", "__st"), "values": ("U___30_day", "U___31_st")}),
    ("colon label", "ns:requests", "a:b",  # ':' is legal in a metric name, not in a label name
     {"allow-utf-8": ("ns:requests", "a:b"), "underscores": ("ns:requests", "a_b"),
      "dots": ("ns:requests", "a__b"), "values": ("ns:requests", "U__a_3a_b")}),
]
# prometheus_client refuses label names starting with "__" (reserved in Prometheus' data model,
# though Prometheus' own parser reads them): dots turns a leading digit into "__", as
# prometheus/common does; those cases are checked on the line itself
RESERVED = {("leading digit", "dots")}
CASES = [(kind, metric, label, scheme, want[scheme])
         for kind, metric, label, want in NAMES for scheme in SCHEMES]
IDS = [f"{kind}-{scheme}" for kind, _, _, scheme, _ in CASES]


def gauge_store(metric: str, label: str) -> Store:
    store = Store()
    store.apply([Family(metric, GAUGE, "Help with \\ and \"quotes\".\nSecond line.", points=[
        Point(((label, 'v"\\\n'), ("plain", "x")), REPLACE, 1.5)])], (("job", "j"),), 10.0)
    return store


def reserved(kind, scheme, out, parse) -> bool:
    """For a RESERVED case: the line as prometheus/common writes it, which the parser refuses."""
    if (kind, scheme) not in RESERVED:
        return False
    assert '\n__day{__st="v\\"\\\\\\n",job="j",plain="x"} 1.5\n' in out
    with pytest.raises(ValueError, match="Invalid labels"):
        list(parse(out))
    return True


def user_families(families) -> list:
    return [f for f in families if not f.name.startswith("push_")]


@pytest.mark.parametrize("kind, metric, label, scheme, want", CASES, ids=IDS)
def test_text_names_per_scheme_parse_strictly(kind, metric, label, scheme, want):
    out = write_text(gauge_store(metric, label), 20.0, scheme)
    if reserved(kind, scheme, out, parse_text):
        return
    [family] = user_families(parse_text(out))
    [sample] = family.samples
    assert (family.name, family.type, family.documentation) == \
           (want[0], "gauge", "Help with \\ and \"quotes\".\nSecond line.")
    assert sample.name == want[0]
    assert sample.labels == {want[1]: 'v"\\\n', "plain": "x", "job": "j"}
    assert sample.value == 1.5


@pytest.mark.parametrize("kind, metric, label, scheme, want", CASES, ids=IDS)
def test_openmetrics_names_per_scheme_parse_strictly(kind, metric, label, scheme, want):
    out = write_openmetrics(gauge_store(metric, label), 20.0, scheme)
    assert out.endswith("# EOF\n")
    if reserved(kind, scheme, out, parse_om):
        return
    [family] = user_families(parse_om(out))
    [sample] = family.samples
    assert (family.name, family.type) == (want[0], "gauge")
    assert family.documentation == "Help with \\ and \"quotes\".\nSecond line."
    assert sample.labels == {want[1]: 'v"\\\n', "plain": "x", "job": "j"}


@pytest.mark.parametrize("kind, metric, label, scheme, want", CASES, ids=IDS)
def test_protobuf_names_per_scheme(kind, metric, label, scheme, want):
    [family] = user_families(decode(write_protobuf(gauge_store(metric, label), 20.0, scheme)))
    assert family.name == want[0]
    assert {p.name: p.value for p in family.metric[0].label} == \
           {want[1]: 'v"\\\n', "plain": "x", "job": "j"}


# the lines allow-utf-8 writes, and underscores (the default) for the same store
EXACT = {
    "text": ('# HELP "my.metric" h\n# TYPE "my.metric" gauge\n'
             '{"my.metric","url.scheme"="https"} 1\n',
             "# HELP my_metric h\n# TYPE my_metric gauge\nmy_metric{url_scheme=\"https\"} 1\n"),
    "openmetrics": ('# TYPE "my.metric" gauge\n# HELP "my.metric" h\n'
                    '{"my.metric","url.scheme"="https"} 1\n',
                    "# TYPE my_metric gauge\n# HELP my_metric h\nmy_metric{url_scheme=\"https\"} 1\n"),
}


@pytest.mark.parametrize("fmt", EXACT)
def test_exact_lines(fmt):
    store = Store()
    store.apply([Family("my.metric", GAUGE, "h", points=[
        Point((("url.scheme", "https"),), REPLACE, 1)])], (), 10.0)
    write = write_text if fmt == "text" else write_openmetrics
    utf8, default = EXACT[fmt]
    assert write(store, 20.0, "allow-utf-8").startswith(utf8)
    assert write(store, 20.0).startswith(default)  # no scheme named: underscores


UTF8_GROUP = (("job", "fn"), ("service.name", "s"))


def shaped_store(group=UTF8_GROUP) -> Store:
    """A counter, a histogram with an exemplar and a unit, and a legacy family with a UTF-8
    label, in a group whose label name is UTF-8 too (push_time_seconds carries it)."""
    store = Store()
    ex = Exemplar((("trace.id", "abc"),), 0.5, 12.0)
    store.apply([
        Family("req.count", COUNTER, "Requests.", points=[
            Point((("http.method", "GET"),), SUM, 3, exemplar=Exemplar((("trace.id", "t"),), 1.0))]),
        Family("rpc.duration_seconds", HISTOGRAM, "Latency.", unit="seconds", points=[
            Point((("k", "v"),), SUM, buckets=[(0.1, 1), (1.0, 2), (INF, 3)], sum=1.5, count=3,
                  bucket_exemplars={1.0: ex})]),
        Family("up", GAUGE, points=[Point((("zone.name", "a"),), REPLACE, 1),
                                    Point((("zone", "b"),), REPLACE, 0)]),
    ], group, 10.0)
    return store


SHAPED = {  # scheme -> the sample names prometheus_client reads back from OpenMetrics
    "allow-utf-8": {"req.count_total", "req.count_created", "rpc.duration_seconds_bucket",
                    "rpc.duration_seconds_count", "rpc.duration_seconds_sum",
                    "rpc.duration_seconds_created", "up"},
    "underscores": {"req_count_total", "req_count_created", "rpc_duration_seconds_bucket",
                    "rpc_duration_seconds_count", "rpc_duration_seconds_sum",
                    "rpc_duration_seconds_created", "up"},
    # as prometheus/common: the exposed name (with _total) is escaped as a whole
    "dots": {"req_dot_count__total", "req_dot_count__created", "rpc_dot_duration__seconds_bucket",
             "rpc_dot_duration__seconds_count", "rpc_dot_duration__seconds_sum",
             "rpc_dot_duration__seconds_created", "up"},
    "values": {"U__req_2e_count__total", "U__req_2e_count__created",
               "U__rpc_2e_duration__seconds_bucket", "U__rpc_2e_duration__seconds_count",
               "U__rpc_2e_duration__seconds_sum", "U__rpc_2e_duration__seconds_created", "up"},
}


@pytest.mark.parametrize("scheme", SCHEMES)
def test_counters_histograms_exemplars_units_and_push_times(scheme):
    store = shaped_store()
    om = write_openmetrics(store, 20.0, scheme)
    families = {f.name: f for f in parse_om(om)}
    samples = {s.name for f in families.values() for s in f.samples if not f.name.startswith("push_")}
    assert samples == SHAPED[scheme]
    service = "service.name" if scheme == "allow-utf-8" else escape_label_name("service.name", scheme)
    trace = "trace.id" if scheme == "allow-utf-8" else escape_label_name("trace.id", scheme)
    for family in families.values():
        for s in family.samples:
            assert s.labels.get(service) == "s", s  # the grouping label, push times included
    counter = [s for f in families.values() if f.type == "counter" for s in f.samples
               if s.name.endswith("_total")][0]
    assert counter.exemplar.labels == {trace: "t"} and counter.value == 3
    hist = [f for f in families.values() if f.type == "histogram"][0]
    assert hist.unit == "seconds"
    assert [s.exemplar.labels for s in hist.samples if s.exemplar] == [{trace: "abc"}]
    text = write_text(store, 20.0, scheme)
    text_names = {s.name for f in parse_text(text) for s in f.samples}
    # text 0.0.4 has no _created: the same names otherwise, in every format
    assert text_names - {"push_time_seconds", "push_failure_time_seconds"} == \
           {n for n in SHAPED[scheme] if not n.endswith("_created")}
    pb = {f.name for f in decode(write_protobuf(store, 20.0, scheme))}
    counter_name = next(n for n in SHAPED[scheme] if n.endswith("total"))
    hist_name = next(n for n in SHAPED[scheme] if n.endswith("_bucket")).removesuffix("_bucket")
    assert {counter_name, hist_name, "up"} <= pb


def test_values_escaping_decodes_back():
    store = gauge_store("température.ok", "ключ.x")
    [family] = user_families(parse_text(write_text(store, 20.0, "values")))
    assert unescape_values(family.name) == "température.ok"
    assert unescape_values(next(k for k in family.samples[0].labels if k.startswith("U__"))) == \
           "ключ.x"


def test_a_legacy_store_keeps_one_rendering_for_every_scheme():
    store = Store()
    store.apply([Family("req", COUNTER, points=[Point((("a", "1"),), SUM, 1)]),
                 Family("lat", HISTOGRAM, points=[
                     Point((("a", "1"),), SUM, buckets=[(1.0, 1), (INF, 1)], sum=1, count=1)])],
                (("job", "j"),), 10.0)
    outs = {}
    for scheme in SCHEMES:
        outs[scheme] = (write_text(store, 20.0, scheme), write_openmetrics(store, 20.0, scheme),
                        write_protobuf(store, 20.0, scheme))
    assert len(set(outs.values())) == 1  # byte for byte the same
    for family in store.families.values():
        assert family.escaped == 0
        for series in family.series.values():
            assert type(series.text) is str and type(series.om) is str
            assert type(series.pb) is bytes and type(series.label_text) is str


def test_utf8_series_keep_one_rendering_per_scheme_until_they_change():
    store = shaped_store((("job", "fn"),))
    for scheme in SCHEMES:
        write_text(store, 20.0, scheme), write_openmetrics(store, 20.0, scheme)
        write_protobuf(store, 20.0, scheme)
    up = store.families["up"]
    utf8, legacy = (up.series[k] for k in sorted(up.series, key=lambda k: "zone.name" not in dict(k)))
    assert set(utf8.text) == set(utf8.om) == set(utf8.pb) == set(SCHEMES)
    assert type(legacy.text) is str and type(legacy.pb) is bytes  # its neighbour is not affected
    assert up.escaped == 7
    first = write_text(store, 20.0, "dots")
    store.apply([Family("up", GAUGE, points=[Point((("zone.name", "a"),), REPLACE, 5)])],
                (("job", "fn"),), 11.0)
    assert utf8.text is None  # dropped by the change
    again = write_text(store, 20.0, "dots")
    assert again != first and 'up{job="fn",zone_dot_name="a"} 5\n' in again


def test_the_per_scheme_loop_is_left_once_no_utf8_series_remains():
    store = Store()
    store.apply([Family("up", GAUGE, points=[Point((("a.b", "1"),), REPLACE, 1)])],
                (("job", "utf8"),), 10.0)
    store.apply([Family("up", GAUGE, points=[Point((("a", "1"),), REPLACE, 1)])],
                (("job", "legacy"),), 10.0)
    write_text(store, 20.0, "values"), write_openmetrics(store, 20.0), write_protobuf(store, 20.0)
    family = store.families["up"]
    assert family.escaped == 7
    store.delete_group((("job", "utf8"),))
    write_text(store, 21.0, "values"), write_openmetrics(store, 21.0), write_protobuf(store, 21.0)
    assert family.escaped == 0
    assert 'up{a="1",job="legacy"} 1\n' in write_text(store, 22.0)


def test_a_legacy_series_with_a_utf8_exemplar_label():
    """A legacy series whose exemplar has a UTF-8 label name is kept per scheme in OpenMetrics
    and protobuf (text has no exemplars and keeps one rendering)."""
    store = Store()
    store.apply([Family("req", COUNTER, points=[
        Point((("a", "1"),), SUM, 1, exemplar=Exemplar((("trace.id", "x"),), 1.0))])], (), 10.0)
    series = next(iter(store.families["req"].series.values()))
    assert 'trace_id="x"' in write_openmetrics(store, 20.0)
    assert '"trace.id"="x"' in write_openmetrics(store, 20.0, "allow-utf-8")
    assert type(series.om) is dict and type(write_text(store, 20.0)) is str
    assert type(series.text) is str
    [family] = [f for f in decode(write_protobuf(store, 20.0, "values")) if f.name == "req_total"]
    assert {p.name for p in family.metric[0].counter.exemplar.label} == {"U__trace_2e_id"}
