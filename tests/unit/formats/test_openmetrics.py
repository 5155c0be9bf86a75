"""parse_openmetrics: OpenMetrics 1.0 text → Batch, as strict as the conformance suite."""
import json
from pathlib import Path

import pytest
from prometheus_client.openmetrics.exposition import generate_latest

from otelgravel.errors import ParseError
from otelgravel.formats.openmetrics import parse_openmetrics
from otelgravel.model import (COUNTER, GAUGE, GAUGEHISTOGRAM, HISTOGRAM, INF, INFO, REPLACE,
                              STATESET, SUM, SUMMARY, UNKNOWN, ClearMode, Exemplar, Family, Point)

# The suite lives beside the repository (../shared), not in it: a user's clone skips it.
CONFORMANCE = (Path(__file__).resolve().parents[3].parent / "shared" / "conformance"
               / "openmetrics" / "parsers")
CASES = sorted(p.name for p in CONFORMANCE.iterdir()) if CONFORMANCE.is_dir() else []
P99_1H = ClearMode("window", "p99_1h", "quantile", 0.99, 3600.0)


def parse(text: str):
    return parse_openmetrics(text.encode())


@pytest.mark.skipif(not CASES, reason=f"no OpenMetrics conformance suite at {CONFORMANCE}")
@pytest.mark.parametrize("case", CASES or ["absent"])
def test_conformance(case):
    spec = json.loads((CONFORMANCE / case / "test.json").read_text())
    body = (CONFORMANCE / case / spec["file"]).read_bytes()
    if spec["shouldParse"]:
        parse_openmetrics(body)
    else:
        with pytest.raises(ParseError):
            parse_openmetrics(body)


GOOD = [
    pytest.param("# EOF", [], id="only EOF, no newline"),
    pytest.param("# EOF\n", [], id="only EOF"),
    # ---- counters
    pytest.param(
        "# TYPE requests counter\n# HELP requests Requests \\\"served\\\".\n"
        'requests_total{path="/b",code="200"} 3 # {trace_id="abc"} 1 1700000000.5\n'
        'requests_created{path="/b",code="200"} 1700000000\n'
        "requests_total 0 12.5\n# EOF\n",
        [Family("requests", COUNTER, 'Requests "served".', "", [
            Point((("code", "200"), ("path", "/b")), value=3.0,
                  exemplar=Exemplar((("trace_id", "abc"),), 1.0, 1700000000.5)),
            Point((), value=0.0)])],
        id="counter: _total value, exemplar kept, _created and timestamp dropped"),
    pytest.param(
        "# TYPE c counter\nc_created 1\nc_total 2\n# EOF\n",
        [Family("c", COUNTER, points=[Point((), value=2.0)])],
        id="counter _created before _total"),
    pytest.param(
        '# TYPE c counter\nc_total 1 # {} 0.5\nc_total{a="b"} 2 # {x="1",a="2"} 3\n# EOF\n',
        [Family("c", COUNTER, points=[
            Point((), value=1.0, exemplar=Exemplar((), 0.5)),
            Point((("a", "b"),), value=2.0, exemplar=Exemplar((("a", "2"), ("x", "1")), 3.0))])],
        id="exemplar with empty and unsorted labels"),
    # ---- gauges, unknown, stateset, info
    pytest.param(
        "# TYPE t_celsius gauge\n# UNIT t_celsius celsius\n"
        't_celsius{room="a"} -4.25\nt_celsius{room="b"} +Inf\nt_celsius{room="c"} nan\n# EOF\n',
        [Family("t_celsius", GAUGE, unit="celsius", points=[
            Point((("room", "a"),), value=-4.25), Point((("room", "b"),), value=INF),
            Point((("room", "c"),), value=float("nan"))])],
        id="gauge with unit and special values"),
    pytest.param(
        "a 1\nb_total 2\n# TYPE c unknown\nc 3\n# EOF\n",
        [Family("a", UNKNOWN, points=[Point((), value=1.0)]),
         Family("b_total", UNKNOWN, points=[Point((), value=2.0)]),
         Family("c", UNKNOWN, points=[Point((), value=3.0)])],
        id="untyped samples are unknown families named after them"),
    pytest.param(
        '# TYPE s stateset\ns{s="on",host="x"} 1\ns{s="off",host="x"} 0\n# EOF\n',
        [Family("s", STATESET, points=[Point((("host", "x"), ("s", "on")), value=1.0),
                                       Point((("host", "x"), ("s", "off")), value=0.0)])],
        id="stateset keeps its state label"),
    pytest.param(
        '# TYPE build info\nbuild_info{version="1.2"} 1\n# EOF\n',
        [Family("build", INFO, points=[Point((("version", "1.2"),), value=1.0)])],
        id="info named without _info"),
    pytest.param(
        '# TYPE x_info gauge\nx_info{v="1"} 1\n# EOF\n',
        [Family("x_info", GAUGE, points=[Point((("v", "1"),), value=1.0)])],
        id="a gauge named x_info stays a gauge"),
    pytest.param(
        "# TYPE a gauge\na 1 0\na 2 1.5\na 3 1.5\n# EOF\n",
        [Family("a", GAUGE, points=[Point((), value=3.0)])],
        id="several timestamped points of a series: the last one"),
    pytest.param(
        "# HELP a Only help.\n# UNIT a_s s\n# TYPE c counter\n# EOF\n",
        [Family("c", COUNTER)],
        id="metadata only: typed families kept empty, untyped ones dropped"),
    # ---- histograms
    pytest.param(
        "# TYPE lat histogram\n"
        'lat_bucket{path="/",le="0.1"} 1\nlat_bucket{path="/",le="1"} 3 # {t="x"} 0.5\n'
        'lat_bucket{path="/",le="+Inf"} 4\nlat_count{path="/"} 4\nlat_sum{path="/"} 2.5\n'
        'lat_created{path="/"} 1700000000\n# EOF\n',
        [Family("lat", HISTOGRAM, points=[Point(
            (("path", "/"),), buckets=[(0.1, 1.0), (1.0, 3.0), (INF, 4.0)], sum=2.5, count=4.0,
            bucket_exemplars={1.0: Exemplar((("t", "x"),), 0.5)})])],
        id="histogram with exemplar"),
    pytest.param(
        '# TYPE lat histogram\nlat_bucket{le="-1"} 1\nlat_bucket{le="+Inf"} 2\n# EOF\n',
        [Family("lat", HISTOGRAM, points=[Point((), buckets=[(-1.0, 1.0), (INF, 2.0)],
                                                count=2.0)])],
        id="histogram with negative bucket and no _sum: count from +Inf"),
    pytest.param(
        '# TYPE lat histogram\nlat_bucket{le="1e-3",a="1"} 0\nlat_bucket{le="+Inf",a="1"} 1\n'
        'lat_bucket{le="+Inf",a="2"} 5\n# EOF\n',
        [Family("lat", HISTOGRAM, points=[
            Point((("a", "1"),), buckets=[(0.001, 0.0), (INF, 1.0)], count=1.0),
            Point((("a", "2"),), buckets=[(INF, 5.0)], count=5.0)])],
        id="histogram series, le anywhere among the labels"),
    pytest.param(
        '# TYPE lat histogram\nlat_bucket{le="+Inf"} 1 10\nlat_count 1 10\nlat_sum 1 10\n'
        'lat_bucket{le="+Inf"} 3 20\nlat_count 3 20\nlat_sum 4 20\n# EOF\n',
        [Family("lat", HISTOGRAM, points=[Point((), buckets=[(INF, 3.0)], sum=4.0, count=3.0)])],
        id="histogram with two timestamped points: the last one"),
    pytest.param(
        '# TYPE g gaugehistogram\ng_bucket{le="-1"} 1\ng_bucket{le="+Inf"} 2\ng_gcount 2\n'
        "g_gsum -3\n# EOF\n",
        [Family("g", GAUGEHISTOGRAM, points=[Point((), buckets=[(-1.0, 1.0), (INF, 2.0)],
                                                   sum=-3.0, count=2.0)])],
        id="gaugehistogram with negative _gsum beside a negative bucket"),
    # ---- summaries
    pytest.param(
        '# TYPE rpc summary\nrpc{quantile="0.99"} 9\nrpc{quantile="0.5"} NaN\nrpc_sum 100\n'
        "rpc_count 20\nrpc_created 1\n# EOF\n",
        [Family("rpc", SUMMARY, points=[Point((), quantiles=[(0.5, float("nan")), (0.99, 9.0)],
                                              sum=100.0, count=20.0)])],
        id="summary: quantiles ascending, NaN quantile value"),
    pytest.param(
        "# TYPE rpc summary\nrpc_count 2\n# EOF\n",
        [Family("rpc", SUMMARY, points=[Point((), quantiles=[], count=2.0)])],
        id="summary with _count only"),
    # ---- labels
    pytest.param(
        'a{b="q\\"uote",c="back\\\\slash",d="new\\nline",e="kept\\t",f="# {}= ,"} 1\n# EOF\n',
        [Family("a", UNKNOWN, points=[Point(
            (("b", 'q"uote'), ("c", "back\\slash"), ("d", "new\nline"), ("e", "kept\\t"),
             ("f", "# {}= ,")), value=1.0)])],
        id="label escapes, an unknown escape kept as written"),
    pytest.param(
        'a{clear_mode="p99_1h",x="1"} 1\na{x="2",clearmode="replace"} 2\na{x="3"} 3\n# EOF\n',
        [Family("a", UNKNOWN, points=[Point((("x", "1"),), P99_1H, 1.0),
                                      Point((("x", "2"),), REPLACE, 2.0),
                                      Point((("x", "3"),), None, 3.0)])],
        id="clear_mode sets the mode and leaves the labels"),
    pytest.param(
        '# TYPE h histogram\nh_bucket{le="+Inf",clear_mode="sum"} 1\nh_count 1\n'
        'h_sum{clear_mode="aggregate"} 1\n# EOF\n',
        [Family("h", HISTOGRAM, points=[Point((), SUM, buckets=[(INF, 1.0)], sum=1.0,
                                              count=1.0)])],
        id="clear_mode on some lines of a histogram series"),
]


@pytest.mark.parametrize("body, expected", GOOD)
def test_parses(body, expected, plain):
    assert plain(parse(body)) == plain(expected)


BAD = [
    # ---- framing
    pytest.param("", 1, "must end with '# EOF'", id="empty body"),
    pytest.param("a 1\n", 1, "must end with '# EOF'", id="no EOF"),
    pytest.param("a 1\n# EOF\n\n", 3, "text after '# EOF'", id="blank line after EOF"),
    pytest.param("# EOF\na 1\n# EOF\n", 2, "text after '# EOF'", id="two EOFs"),
    pytest.param("a 1\n\nb 1\n# EOF\n", 2, "blank line", id="blank line"),
    pytest.param("a 1\r\n# EOF\n", 1, "invalid value '1\r'", id="CRLF"),
    pytest.param("# comment\n# EOF\n", 1, "invalid comment", id="plain comment"),
    pytest.param(" a 1\n# EOF\n", 1, "expected a metric name", id="leading blank"),
    # ---- names and labels
    pytest.param('a{__name__="x"} 1\n# EOF\n', 1, "'__name__' is reserved", id="__name__"),
    pytest.param('a{b="1",b="2"} 1\n# EOF\n', 1, "duplicate label 'b'", id="duplicate label"),
    pytest.param('a{b="1",} 1\n# EOF\n', 1, "expected a label name", id="trailing comma"),
    pytest.param('a{b = "1"} 1\n# EOF\n', 1, "expected '=' after label name 'b'",
                 id="blank in label set"),
    pytest.param('a {b="1"} 1\n# EOF\n', 1, "invalid value '{b=\"1\"}'", id="blank before {"),
    # ---- values and timestamps
    pytest.param("a  1\n# EOF\n", 1, "expected a value after a single space", id="two spaces"),
    pytest.param("a 1e999\n# EOF\n", 1, "out of range", id="overflow"),
    pytest.param("a 1 1e999\n# EOF\n", 1, "invalid timestamp '1e999': out of range",
                 id="timestamp overflow"),
    pytest.param("a 1\na 2\n# EOF\n", 2, "duplicate sample a", id="duplicate series"),
    pytest.param('a{x="1",y="2"} 1\na{y="2",x="1"} 2\n# EOF\n', 2, "duplicate sample",
                 id="duplicate series, labels in another order"),
    pytest.param('a{x="1"} 1\na{x="2"} 1\na{x="1"} 1\n# EOF\n', 3,
                 'the lines of series a{x="1"} are not together', id="series split"),
    pytest.param("a 1 5\na 1 4\n# EOF\n", 2, "goes backwards", id="timestamps backwards"),
    pytest.param("a 1 5\na 1\n# EOF\n", 2, "have a timestamp and others do not",
                 id="timestamp then none"),
    # ---- families
    pytest.param("a 1\nb 1\na 2\n# EOF\n", 3, "family 'a', whose lines came earlier",
                 id="families interleaved"),
    pytest.param("# TYPE a counter\na 1\n# EOF\n", 2, "expected a_total or a_created",
                 id="counter sample without _total"),
    pytest.param("# TYPE a counter\na_created 1\n# EOF\n", 2, "has no _total sample",
                 id="counter with _created only"),
    pytest.param("# TYPE a counter\n# TYPE b gauge\n# TYPE a_total gauge\n# EOF\n", 3,
                 "'a_total', a name that family 'a' uses", id="clash with a counter's sample"),
    pytest.param("# TYPE a_total gauge\n# TYPE a counter\n# EOF\n", 2,
                 "uses the name 'a_total', which family 'a_total' uses too",
                 id="clash found when the counter closes"),
    pytest.param("# HELP a x\n# HELP a x\n# EOF\n", 2, "second HELP line", id="second HELP"),
    pytest.param("a 1\n# HELP a x\n# EOF\n", 2, "HELP line for family 'a' after its samples",
                 id="HELP after samples"),
    pytest.param("# TYPE a Gauge\n# EOF\n", 1, "unknown metric type 'Gauge'", id="type case"),
    pytest.param("# UNIT a_s seconds\n# EOF\n", 1, "unit 'seconds' must be the suffix",
                 id="unit not a suffix"),
    # ---- values by type
    pytest.param("# TYPE a counter\na_total -1\n# EOF\n", 2, "must not be -1.0",
                 id="negative counter"),
    pytest.param("# TYPE a gauge\na 1 # {} 1\n# EOF\n", 2, "exemplars are allowed only",
                 id="exemplar on a gauge"),
    pytest.param("# TYPE a counter\na_total 1 # {" + ",".join(f'l{i}="xxxxxxxxxx"'
                                                              for i in range(12)) + "} 1\n# EOF\n",
                 2, "longer than 128", id="exemplar too long"),
    pytest.param('# TYPE a counter\na_total 1 # {x="1",x="2"} 1\n# EOF\n', 2,
                 "duplicate exemplar label 'x'", id="exemplar duplicate label"),
    pytest.param('# TYPE h histogram\nh_bucket{le="Inf"} 1\n# EOF\n', 2,
                 "must be written +Inf", id="le spelled Inf"),
    pytest.param('# TYPE h histogram\nh_bucket{le="+Inf"} 1\nh_bucket{le="+Inf"} 1\n# EOF\n', 3,
                 'duplicate sample h_bucket le="+Inf"', id="duplicate bucket"),
    pytest.param('# TYPE h histogram\nh_sum{le="1"} 1\n# EOF\n', 2, "must not have a 'le' label",
                 id="le on _sum"),
    pytest.param('# TYPE s summary\ns{quantile="0.5"} 1\ns_count{quantile="0.5"} 1\n# EOF\n', 3,
                 "must not have a 'quantile' label", id="quantile on _count"),
    pytest.param('# TYPE s stateset\ns{s="a"} 0.5\n# EOF\n', 2, "must be 0 or 1",
                 id="stateset value"),
    pytest.param('# TYPE s stateset\ns{x="a"} 1\n# EOF\n', 2, "has no 's' label",
                 id="stateset without its state label"),
    pytest.param('# TYPE i info\ni_info{v="1"} 0\n# EOF\n', 2, "must be 1", id="info value"),
    pytest.param('# TYPE i_s info\n# UNIT i_s s\n# EOF\n', 2, "info 'i_s' cannot have a unit",
                 id="unit on info"),
    pytest.param('# TYPE c counter\nc_total 1\nc_created 1 # {} 1\n# EOF\n', 3,
                 "exemplars are allowed only", id="exemplar on _created"),
    # ---- histogram MetricPoints
    pytest.param('# TYPE h histogram\nh_bucket{le="1"} 1\n# EOF\n', 2, "has no +Inf bucket",
                 id="no +Inf bucket"),
    pytest.param('# TYPE h histogram\nh_bucket{le="+Inf"} 1\nh_count 2\nh_sum 1\n# EOF\n', 2,
                 "has _count 2.0 but its +Inf bucket is 1.0", id="count differs from +Inf"),
    pytest.param('# TYPE h histogram\nh_bucket{le="+Inf"} 1\nh_sum 1\n# EOF\n', 2,
                 "must have both _sum and _count or neither", id="_sum without _count"),
    pytest.param('# TYPE h histogram\nh_bucket{le="-1"} 0\nh_bucket{le="+Inf"} 1\nh_count 1\n'
                 'h_sum 1\n# EOF\n', 2, "below zero, so it must not have a _sum",
                 id="_sum beside a negative bucket"),
    pytest.param('# TYPE g gaugehistogram\ng_bucket{le="+Inf"} 1\ng_gcount 1\ng_gsum -1\n'
                 '# EOF\n', 2, "negative _gsum but no bucket below zero",
                 id="negative _gsum without negative bucket"),
    pytest.param('# TYPE h histogram\nh_bucket{le="2"} 1\nh_bucket{le="1"} 1\n# EOF\n', 3,
                 "increasing 'le' order", id="buckets out of order"),
    pytest.param('# TYPE h histogram\nh_bucket{le="1"} 2\nh_bucket{le="+Inf"} 1\n# EOF\n', 3,
                 "buckets are cumulative", id="buckets not cumulative"),
    pytest.param('# TYPE h histogram\nh_bucket{le="+Inf"} NaN\n# EOF\n', 2,
                 "must be a count, not NaN", id="NaN bucket"),
    pytest.param('# TYPE s summary\ns_sum -1\n# EOF\n', 2, "s_sum must not be -1.0",
                 id="negative summary _sum"),
    # ---- clear_mode
    pytest.param('a{clear_mode="summary5m"} 1\n# EOF\n', 1, 'invalid clear_mode "summary5m"',
                 id="bad mode"),
    pytest.param('# TYPE h histogram\nh_bucket{le="+Inf",clear_mode="sum"} 1\n'
                 'h_count{clear_mode="replace"} 1\nh_sum 1\n# EOF\n', 3,
                 "conflicting clear_mode values 'sum' and 'replace' for one series",
                 id="two modes in a series"),
    pytest.param(b"# HELP a \xc3\x28\n# EOF\n", 1, "not valid UTF-8", id="invalid UTF-8"),
]


@pytest.mark.parametrize("body, line, fragment", BAD)
def test_refuses(body, line, fragment):
    with pytest.raises(ParseError) as caught:
        parse_openmetrics(body if isinstance(body, bytes) else body.encode())
    assert caught.value.line == line
    assert fragment in caught.value.reason


# ---- what prometheus_client writes as OpenMetrics ----------------------------------------------

def test_prometheus_client_counter(client_registry):
    [requests, idle] = parse_openmetrics(generate_latest(client_registry("counter")))
    assert (requests.name, requests.type, requests.help) == ("requests", COUNTER,
                                                             "Requests served.")
    [point, weird] = requests.points
    assert (point.labels, point.value, point.mode) == ((("method", "get"),), 3.0, None)
    assert point.exemplar.labels == (("trace_id", "abc"),) and point.exemplar.value == 3.0
    assert weird == Point((("method", 'we"ird\\'),), value=1.0)
    assert idle == Family("idle", COUNTER, "Never used.")


CLIENT = {  # client_registry(metrics) -> what its OpenMetrics parses to (the counter: above)
    "gauge and enum": [
        Family("temperature_celsius", GAUGE, "Temperature.", "celsius",
               [Point((), value=-3.5)]),
        Family("state", STATESET, "State.", points=[Point((("state", "up"),), value=0.0),
                                                    Point((("state", "down"),), value=1.0)])],
    "histogram": [
        Family("latency_seconds", HISTOGRAM, "Latency.", points=[Point(
            (("path", "/"),), buckets=[(0.1, 0.0), (1.0, 1.0), (INF, 2.0)], sum=5.5,
            count=2.0)])],
    "summary": [
        Family("size_bytes", SUMMARY, "Sizes.", points=[Point((), sum=3.0, count=1.0,
                                                              quantiles=[])])],
    "info": [
        Family("build", INFO, "Build.", points=[Point((("commit", "abc"), ("version", "1.2")),
                                                      value=1.0)])],
}


@pytest.mark.parametrize("metrics, expected", CLIENT.items(), ids=list(CLIENT))
def test_prometheus_client(client_registry, metrics, expected):
    assert parse_openmetrics(generate_latest(client_registry(metrics))) == expected


# ---- robustness --------------------------------------------------------------------------------

SEED = (b'# HELP a A\\n.\n# TYPE a histogram\na_bucket{x="1",le="0.5"} 1 # {t="1"} 0.2 5\n'
        b'a_bucket{le="+Inf",x="1"} 2\na_sum{x="1"} 3\na_count{x="1"} 2\n# TYPE s summary\n'
        b's{quantile="0.5"} 1\n# TYPE c counter\nc_total{clear_mode="mean5m",b="q\\""} 1 2\n'
        b'# EOF\n')


def test_only_parse_errors_on_mangled_input(mangled):
    alphabet = b'{}"\\=, #\n\t_ae1.0+-InfNaN_le_bucket_total'
    for body in mangled(SEED, seed=7, alphabet=alphabet, cut_chance=0.3, noise_chance=0.1):
        try:
            parse_openmetrics(body)
        except ParseError as err:
            assert isinstance(err.line, int) and err.line >= 1
