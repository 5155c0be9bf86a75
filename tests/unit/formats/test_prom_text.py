"""parse_prom_text: Prometheus text 0.0.4 → Batch, as strict as Prometheus and the Pushgateway."""
import pytest
from prometheus_client import generate_latest

from otelgravel.errors import ParseError
from otelgravel.formats import prom_text
from otelgravel.formats.prom_text import parse_prom_text
from otelgravel.model import (COUNTER, FAMILY, GAUGE, HISTOGRAM, INF, SUM, SUMMARY, UNKNOWN,
                              ClearMode, Family, Point)

MEAN_5M = ClearMode("window", "mean5m", "mean", 0.0, 300.0)


def parse(text: str):
    return parse_prom_text(text.encode())


GOOD = [
    pytest.param("", [], id="empty body"),
    pytest.param("\n\n# just a comment\n", [], id="blank lines and comments only"),
    # ---- counters: named without _total whichever spelling the TYPE line used
    pytest.param(
        '# HELP requests_total Requests served.\n# TYPE requests_total counter\n'
        'requests_total{path="/b",code="200"} 3\nrequests_total 0 1700000000000\n',
        [Family("requests", COUNTER, "Requests served.", "", [
            Point((("code", "200"), ("path", "/b")), value=3.0), Point((), value=0.0)])],
        id="counter TYPE x_total: family x, labels sorted, timestamp dropped"),
    pytest.param(
        "# TYPE jobs counter\njobs 1.5\n",
        [Family("jobs", COUNTER, points=[Point((), value=1.5)])],
        id="counter TYPE x with sample x"),
    pytest.param(
        "# TYPE jobs counter\njobs_total{a=\"1\"} 2\n# HELP jobs_total Jobs.\n",
        [Family("jobs", COUNTER, "Jobs.", points=[Point((("a", "1"),), value=2.0)])],
        id="counter TYPE x with sample x_total, HELP under the other spelling"),
    pytest.param(
        "# HELP jobs Jobs.\n# TYPE jobs_total counter\njobs_total 2\n",
        [Family("jobs", COUNTER, "Jobs.", points=[Point((), value=2.0)])],
        id="HELP before TYPE under the other counter spelling"),
    # ---- gauges and untyped
    pytest.param(
        "# TYPE temp gauge\ntemp{room=\"a\"} -4.25\ntemp{room=\"b\"} +Inf\ntemp{room=\"c\"} NaN\n",
        [Family("temp", GAUGE, points=[Point((("room", "a"),), value=-4.25),
                                       Point((("room", "b"),), value=INF),
                                       Point((("room", "c"),), value=float("nan"))])],
        id="gauge with special values"),
    pytest.param(
        "x 7\ny_total 1\nx_bucket{le=\"1\"} 2\n",
        [Family("x", UNKNOWN, points=[Point((), value=7.0)]),
         Family("y_total", UNKNOWN, points=[Point((), value=1.0)]),
         Family("x_bucket", UNKNOWN, points=[Point((("le", "1"),), value=2.0)])],
        id="untyped: each sample name is its own unknown family, le an ordinary label"),
    pytest.param(
        "# HELP x The x.\nx 7\n# TYPE u untyped\nu 1\n",
        [Family("x", UNKNOWN, "The x.", points=[Point((), value=7.0)]),
         Family("u", UNKNOWN, points=[Point((), value=1.0)])],
        id="untyped with HELP, TYPE untyped"),
    pytest.param(
        "# TYPE a gauge\na{x=\"1\"} 1\n# TYPE b gauge\nb 2\na{x=\"2\"} 3\n",
        [Family("a", GAUGE, points=[Point((("x", "1"),), value=1.0),
                                    Point((("x", "2"),), value=3.0)]),
         Family("b", GAUGE, points=[Point((), value=2.0)])],
        id="a family split by another one is one family"),
    pytest.param(
        "# TYPE build_info gauge\nbuild_info{version=\"1\"} 1\n",
        [Family("build_info", GAUGE, points=[Point((("version", "1"),), value=1.0)])],
        id="a gauge named x_info stays a gauge named x_info"),
    pytest.param(
        "# TYPE c counter\n# HELP c Nothing yet.\n",
        [Family("c", COUNTER, "Nothing yet.", points=[])],
        id="typed family without samples is kept, empty"),
    pytest.param("# HELP c Nothing.\n", [], id="HELP alone makes no family"),
    # ---- syntax Prometheus accepts
    pytest.param(
        '  a { b = "1" , c="2", } 1.5e3   \n\ta\t2\n',
        [Family("a", UNKNOWN, points=[Point((("b", "1"), ("c", "2")), value=1500.0),
                                      Point((), value=2.0)])],
        id="blanks and tabs around tokens, trailing comma"),
    pytest.param(
        'a{b="1",} 1\nb{} 2\nc{b="x"}3\n',
        [Family("a", UNKNOWN, points=[Point((("b", "1"),), value=1.0)]),
         Family("b", UNKNOWN, points=[Point((), value=2.0)]),
         Family("c", UNKNOWN, points=[Point((("b", "x"),), value=3.0)])],
        id="trailing comma, empty braces, no blank between } and value"),
    pytest.param(
        "a 1",
        [Family("a", UNKNOWN, points=[Point((), value=1.0)])],
        id="no trailing newline"),
    pytest.param(
        'a{b="q\\"uote",c="back\\\\slash",d="new\\nline",e="#{}= ,"} 1\n',
        [Family("a", UNKNOWN, points=[Point((("b", 'q"uote'), ("c", "back\\slash"),
                                             ("d", "new\nline"), ("e", "#{}= ,")), value=1.0)])],
        id="label value escapes and punctuation"),
    pytest.param(
        "# HELP a Back\\\\slash, new\\nline, \\\"quoted\\\".\n# TYPE a gauge\na 1\n",
        [Family("a", GAUGE, 'Back\\slash, new\nline, "quoted".', points=[Point((), value=1.0)])],
        id="HELP escapes"),
    pytest.param(
        "a 1e3\nb -0.5\nc .5\nd 5.\ne -inf\nf Infinity\ng nan\nh 00012\n",
        [Family(n, UNKNOWN, points=[Point((), value=v)]) for n, v in [
            ("a", 1000.0), ("b", -0.5), ("c", 0.5), ("d", 5.0), ("e", -INF), ("f", INF),
            ("g", float("nan")), ("h", 12.0)]],
        id="float spellings Go accepts"),
    pytest.param(
        "#TYPE a summary\n# a comment\n#\n# EOF\n# UNIT a seconds\na 1\n",
        [Family("a", UNKNOWN, points=[Point((), value=1.0)])],
        id="other comments are ignored, #TYPE without a blank is a comment"),
    # ---- histograms and summaries
    pytest.param(
        "# TYPE lat histogram\n"
        'lat_bucket{path="/",le="0.1"} 1\nlat_bucket{path="/",le="1"} 3\n'
        'lat_bucket{path="/",le="+Inf"} 4\nlat_sum{path="/"} 2.5\nlat_count{path="/"} 4\n',
        [Family("lat", HISTOGRAM, points=[Point((("path", "/"),), buckets=[
            (0.1, 1.0), (1.0, 3.0), (INF, 4.0)], sum=2.5, count=4.0)])],
        id="histogram"),
    pytest.param(
        "# TYPE lat histogram\n"
        'lat_count 4\nlat_bucket{le="+Inf"} 4\nlat_bucket{le="1e0"} 3\nlat_sum 1\n',
        [Family("lat", HISTOGRAM, points=[Point((), buckets=[(1.0, 3.0), (INF, 4.0)], sum=1.0,
                                                count=4.0)])],
        id="histogram lines in any order"),
    pytest.param(
        "# TYPE lat histogram\nlat_bucket{le=\"1\"} 1\nlat_bucket{le=\"+Inf\"} 2\n",
        [Family("lat", HISTOGRAM, points=[Point((), buckets=[(1.0, 1.0), (INF, 2.0)],
                                                count=2.0)])],
        id="histogram without _count: count is the +Inf bucket"),
    pytest.param(
        "# TYPE lat histogram\nlat_bucket{le=\"1\"} 1\nlat_count 2\nlat_sum 3\n",
        [Family("lat", HISTOGRAM, points=[Point((), buckets=[(1.0, 1.0), (INF, 2.0)], sum=3.0,
                                                count=2.0)])],
        id="histogram without +Inf bucket: taken from _count"),
    pytest.param(
        "# TYPE lat histogram\n"
        'lat_bucket{a="1",le="+Inf"} 1\nlat_bucket{a="2",le="+Inf"} 2\nlat_count{a="1"} 1\n',
        [Family("lat", HISTOGRAM, points=[
            Point((("a", "1"),), buckets=[(INF, 1.0)], count=1.0),
            Point((("a", "2"),), buckets=[(INF, 2.0)], count=2.0)])],
        id="histogram series interleaved"),
    pytest.param(
        "# TYPE rpc summary\n"
        'rpc{quantile="0.99"} 9\nrpc{quantile="0.5"} 5\nrpc_sum 100\nrpc_count 20\n'
        'rpc_sum{a="x"} 1\n',
        [Family("rpc", SUMMARY, points=[
            Point((), quantiles=[(0.5, 5.0), (0.99, 9.0)], sum=100.0, count=20.0),
            Point((("a", "x"),), quantiles=[], sum=1.0)])],
        id="summary: quantiles ascending, count may be absent"),
    # ---- clear_mode
    pytest.param(
        'a{clear_mode="mean5m",x="1"} 1\na{x="2",clearmode="sum"} 2\na{x="3"} 3\n',
        [Family("a", UNKNOWN, points=[Point((("x", "1"),), MEAN_5M, 1.0),
                                      Point((("x", "2"),), SUM, 2.0),
                                      Point((("x", "3"),), None, 3.0)])],
        id="clear_mode and clearmode set the mode and leave the labels"),
    pytest.param(
        "# TYPE lat histogram\n"
        'lat_bucket{le="+Inf",clear_mode="family"} 1\nlat_sum 1\nlat_count{clear_mode="info"} 1\n',
        [Family("lat", HISTOGRAM, points=[Point((), FAMILY, buckets=[(INF, 1.0)], sum=1.0,
                                                count=1.0)])],
        id="histogram: the label on some lines of the series, aliases agree"),
    pytest.param(
        'a{clear_mode="sum",clearmode="aggregate"} 1\n',
        [Family("a", UNKNOWN, points=[Point((), SUM, 1.0)])],
        id="both spellings with the same meaning"),
]


@pytest.mark.parametrize("body, expected", GOOD)
def test_parses(body, expected, plain):
    assert plain(parse(body)) == plain(expected)


BAD = [
    # ---- names
    pytest.param('0a 1', 1, "expected a metric name", id="metric name starts with a digit"),
    pytest.param('a.b 1', 1, "invalid value '.b'", id="dot in metric name"),
    pytest.param('{a="b"} 1', 1, "missing metric name", id="no metric name"),
    pytest.param('a{1="1"} 1', 1, "expected a label name", id="label name starts with a digit"),
    pytest.param('a{b-c="1"} 1', 1, "expected '=' after label name 'b'", id="dash in label"),
    pytest.param('metric{__name__="x"} 1', 1, "'__name__' is reserved", id="__name__"),
    pytest.param('a{__meta="x"} 1', 1, "'__meta' is reserved", id="__ prefix"),
    pytest.param('a{b="1",b="2"} 1', 1, "duplicate label 'b'", id="duplicate label"),
    pytest.param('a{b="1", b="2"} 1', 1, "duplicate label 'b'", id="duplicate label, slow path"),
    # ---- label set syntax
    pytest.param('a{b="c" 1', 1, "expected ',' or '}' after the value of label 'b'",
                 id="unterminated label set"),
    pytest.param('a{b="c",', 1, "unterminated label set", id="label set cut after comma"),
    pytest.param('a{b="c} 1', 1, "unterminated value of label 'b'", id="unterminated value"),
    pytest.param('a{b=c} 1', 1, "expected '\"' to start the value of label 'b'",
                 id="unquoted value"),
    pytest.param("a{b='c'} 1", 1, "expected '\"' to start", id="single quotes"),
    pytest.param('a{b} 1', 1, "expected '=' after label name 'b'", id="no ="),
    pytest.param('a{,} 1', 1, "expected a label name", id="lone comma"),
    pytest.param('a{b="1",,c="2"} 1', 1, "expected a label name", id="double comma"),
    pytest.param('a{b="1"c="2"} 1', 1, "expected ',' or '}'", id="missing comma"),
    pytest.param('a{b="\\z"} 1', 1, "invalid escape sequence '\\z'", id="unknown escape"),
    pytest.param('a{b="\\', 1, "unterminated value", id="backslash at end of line"),
    # ---- values and timestamps
    pytest.param('a abc', 1, "invalid value 'abc'", id="word value"),
    pytest.param('a', 1, "missing value after 'a'", id="missing value"),
    pytest.param('a{b="c"}', 1, "missing value", id="missing value after labels"),
    pytest.param('a 0x1p3', 1, "invalid value '0x1p3'", id="hex float"),
    pytest.param('a 0x10', 1, "invalid value '0x10'", id="hex int"),
    pytest.param('a 1_000', 1, "invalid value '1_000'", id="underscore"),
    pytest.param('a +NaN', 1, "invalid value '+NaN'", id="signed NaN"),
    pytest.param('a 1e999', 1, "out of range", id="overflow"),
    pytest.param('a \u0661', 1, "invalid value", id="non-ASCII digit"),
    pytest.param('a 1\r', 1, "invalid value '1\r'", id="CRLF line ending"),
    pytest.param('a 1 1.5', 1, "invalid timestamp '1.5'", id="float timestamp"),
    pytest.param('a 1 -5', 1, "invalid timestamp '-5'", id="negative timestamp"),
    pytest.param('a 1 99999999999999999999', 1, "invalid timestamp", id="timestamp overflow"),
    pytest.param('a 1 ' + '1' * 5000, 1, "invalid timestamp", id="timestamp of 5000 digits"),
    pytest.param('a{b="c"} 1 ' + '9' * 5000, 1, "invalid timestamp",
                 id="timestamp of 5000 digits after labels"),
    pytest.param('a 1 2 3', 1, "unexpected text after the timestamp", id="three tokens"),
    pytest.param('a 1 # {b="c"} 1', 1, "invalid timestamp '#'", id="exemplar is not 0.0.4"),
    # ---- metadata
    pytest.param('# TYPE a gauge\n# TYPE a gauge\n', 2, "second TYPE line for family 'a'",
                 id="second TYPE"),
    pytest.param('# TYPE a gauge\n# TYPE a counter\n', 2, "second TYPE line", id="TYPE change"),
    pytest.param('# HELP a x\n# HELP a y\n', 2, "second HELP line for family 'a'",
                 id="second HELP"),
    pytest.param('a 1\n# TYPE a gauge\n', 2, "TYPE line for family 'a' after its samples",
                 id="TYPE after samples"),
    pytest.param('a_total 1\n# TYPE a counter\n', 2, "after its samples ('a_total' came first)",
                 id="TYPE after samples under the other spelling"),
    pytest.param('a_bucket{le="1"} 1\n# TYPE a histogram\n', 2, "after its samples",
                 id="TYPE histogram after untyped bucket"),
    pytest.param('# TYPE a info\n', 1, "unknown metric type 'info'", id="OpenMetrics type"),
    pytest.param('# TYPE a Counter\n', 1, "unknown metric type 'Counter'", id="type case"),
    pytest.param('# TYPE a\n', 1, "unknown metric type ''", id="TYPE without type"),
    pytest.param('# TYPE a gauge extra\n', 1, "unknown metric type 'gauge extra'",
                 id="TYPE with extra word"),
    pytest.param('# TYPE 0a gauge\n', 1, "expected a metric name after TYPE", id="bad TYPE name"),
    pytest.param('# HELP a.b x\n', 1, "invalid metric name in HELP line: 'a.b'",
                 id="bad HELP name"),
    pytest.param('# HELP a bad \\t escape\n', 1, "invalid escape sequence '\\t' in HELP text",
                 id="bad HELP escape"),
    pytest.param('# TYPE a counter\n# TYPE a_total gauge\n', 2, "clashes with counter 'a'",
                 id="counter spellings clash"),
    pytest.param('# TYPE a summary\n# TYPE a_sum gauge\n', 2, "clashes with summary 'a'",
                 id="TYPE of a summary's _sum"),
    pytest.param('a_sum 1\n# TYPE a summary\n', 2, "after its samples", id="summary after _sum"),
    pytest.param('# TYPE a_sum gauge\n# TYPE a summary\n', 2,
                 "would own the samples named 'a_sum', which belong to gauge family 'a_sum'",
                 id="summary over a typed _sum"),
    # ---- duplicates
    pytest.param('a 1\na 2\n', 2, "duplicate series a", id="duplicate series"),
    pytest.param('a{x="1",y="2"} 1\na{y="2",x="1"} 2\n', 2, 'duplicate series a{x="1",y="2"}',
                 id="duplicate series, labels in another order"),
    pytest.param('a{x="1"} 1\na{x="1",clear_mode="sum"} 2\n', 2, "duplicate series",
                 id="clear_mode does not make another series"),
    pytest.param('# TYPE a counter\na 1\na_total 2\n', 3, "duplicate series a_total",
                 id="duplicate counter under both spellings"),
    pytest.param('# TYPE h histogram\nh_bucket{le="1"} 1\nh_bucket{le="1.0"} 1\n', 3,
                 'duplicate series h_bucket with le="1.0"', id="duplicate bucket"),
    pytest.param('# TYPE h histogram\nh_sum 1\nh_sum 1\n', 3, "duplicate series h_sum",
                 id="duplicate _sum"),
    pytest.param('# TYPE s summary\ns_count 1\ns_count 1\n', 3, "duplicate series s_count",
                 id="duplicate _count"),
    # ---- histograms and summaries
    pytest.param('# TYPE h histogram\nh_bucket 1\n', 2, "has no 'le' label", id="bucket no le"),
    pytest.param('# TYPE h histogram\nh_bucket{le="x"} 1\n', 2, "invalid 'le' value 'x'",
                 id="le not a float"),
    pytest.param('# TYPE h histogram\nh_bucket{le="NaN"} 1\n', 2, "invalid 'le' value 'NaN'",
                 id="le NaN"),
    pytest.param('# TYPE h histogram\nh 1\n', 2, "expected h_bucket, h_sum or h_count",
                 id="bare histogram name"),
    pytest.param('# TYPE h histogram\nh_sum{le="1"} 1\n', 2, "must not have a 'le' label",
                 id="le on _sum"),
    pytest.param('# TYPE h histogram\nh_sum 1\n', 2, "neither a +Inf bucket nor a _count",
                 id="histogram with only _sum"),
    pytest.param('# TYPE h histogram\nh_bucket{le="1"} 2\nh_bucket{le="+Inf"} 1\n', 2,
                 "buckets are cumulative", id="decreasing buckets"),
    pytest.param('# TYPE h histogram\nh_bucket{le="+Inf"} 1\nh_count 2\n', 2,
                 "_count 2 differs from the +Inf bucket 1", id="count differs from +Inf"),
    pytest.param('# TYPE s summary\ns 1\n', 2, "has no 'quantile' label", id="no quantile"),
    pytest.param('# TYPE s summary\ns{quantile="high"} 1\n', 2, "invalid 'quantile' value",
                 id="quantile not a float"),
    pytest.param('# TYPE s summary\ns_sum{quantile="0.5"} 1\n', 2,
                 "must not have a 'quantile' label", id="quantile on _sum"),
    # ---- clear_mode
    pytest.param('a{clear_mode="bogus"} 1', 1, 'invalid clear_mode "bogus"', id="bad mode"),
    pytest.param('a{clearmode="sum0s"} 1', 1, 'invalid clear_mode "sum0s"', id="zero window"),
    pytest.param('a{clear_mode="sum",clearmode="replace"} 1', 1,
                 "conflicting clear_mode values 'sum' and 'replace'", id="two modes on a line"),
    pytest.param('# TYPE h histogram\nh_bucket{le="+Inf",clear_mode="sum"} 1\n'
                 'h_count{clear_mode="replace"} 1\n', 3,
                 "conflicting clear_mode values 'sum' and 'replace' for one series",
                 id="two modes in a series"),
    # ---- encoding
    pytest.param(b'a 1\nb{x="\xff"} 1\n', 2, "not valid UTF-8", id="invalid UTF-8"),
]


@pytest.mark.parametrize("body, line, fragment", BAD)
def test_refuses(body, line, fragment):
    with pytest.raises(ParseError) as caught:
        parse_prom_text(body if isinstance(body, bytes) else body.encode())
    assert caught.value.line == line
    assert fragment in caught.value.reason
    assert str(caught.value).startswith(f"line {line}: ")


# ---- what prometheus_client pushes -------------------------------------------------------------

CLIENT = {  # client_registry(metrics) -> what its text parses to
    "counter": [
        Family("requests", COUNTER, "Requests served.", points=[
            Point((("method", "get"),), value=3.0), Point((("method", 'we"ird\\'),), value=1.0)]),
        Family("idle", COUNTER, "Never used.")],
    "gauge and enum": [
        Family("temperature_celsius", GAUGE, "Temperature.", points=[Point((), value=-3.5)]),
        Family("state", GAUGE, "State.", points=[Point((("state", "up"),), value=0.0),
                                                 Point((("state", "down"),), value=1.0)])],
    "histogram": [
        Family("latency_seconds", HISTOGRAM, "Latency.", points=[Point(
            (("path", "/"),), buckets=[(0.1, 0.0), (1.0, 1.0), (INF, 2.0)], sum=5.5,
            count=2.0)])],
    "summary": [
        Family("size_bytes", SUMMARY, "Sizes.", points=[Point((), sum=3.0, count=1.0,
                                                              quantiles=[])])],
    "info": [
        Family("build_info", GAUGE, "Build.", points=[Point((("commit", "abc"), ("version", "1.2")),
                                                            value=1.0)])],
}


@pytest.mark.parametrize("metrics, expected", CLIENT.items(), ids=list(CLIENT))
def test_prometheus_client(client_registry, metrics, expected):
    assert parse_prom_text(generate_latest(client_registry(metrics))) == expected


def test_created_gauge_is_dropped_only_beside_its_family():
    body = ("# TYPE a counter\na 1\n# TYPE a_created gauge\na_created 5\n"
            "# TYPE b_created gauge\nb_created 6\n")
    assert [f.name for f in parse(body)] == ["a", "b_created"]


# ---- robustness --------------------------------------------------------------------------------

SEED = (b'# HELP a A\\n.\n# TYPE a histogram\na_bucket{x="1",le="0.5"} 1\na_bucket{le="+Inf",x="1"}'
        b' 2 123\na_sum{x="1"} 3\na_count{x="1"} 2\n# TYPE s summary\ns{quantile="0.5"} 1\n'
        b'c{clear_mode="mean5m", b="q\\"",} 1\n  # comment\n')


def test_only_parse_errors_on_mangled_input(mangled):
    alphabet = b'{}"\\=, #\n\t_ae1.0+-InfNaN_le_bucket'
    for body in mangled(SEED, seed=4, alphabet=alphabet, cut_chance=1.0, noise_chance=0.2):
        try:
            parse_prom_text(body)
        except ParseError as err:
            assert isinstance(err.line, int) and err.line >= 1


# ---- shapes: a body that differs from an earlier one only in its values --------------------------

def _forget_shapes():
    prom_text._SHAPES.clear()


def _learn(text: str):
    """Parse a body twice: a shape is remembered when it comes back."""
    parse(text)
    return parse(text)


def _doubled(text: str) -> str:
    """Every sample line's last token doubled when it is a value (timestamps, ms, are kept)."""
    lines = []
    for line in text.split("\n"):
        head, space, token = line.rpartition(" ")
        if head and not line.lstrip().startswith("#"):
            try:
                number = float(token)
            except ValueError:
                number = None
            if number is not None and not (token.isdigit() and len(token) >= 12):
                token = repr(number * 2)
        lines.append(head + space + token)
    return "\n".join(lines)


def _outcome(text: str, plain):
    try:
        return plain(parse(text))
    except ParseError as err:
        return str(err)


@pytest.mark.parametrize("body, expected", GOOD)
def test_a_known_shape_with_new_values_parses_as_a_new_body(body, expected, plain):
    changed = _doubled(body)
    _forget_shapes()
    first_seen = _outcome(changed, plain)
    _forget_shapes()
    _learn(body)  # the shape is learnt from the original values
    assert _outcome(changed, plain) == first_seen


FUNCTION_PUSH = (
    "# HELP calls_total Calls.\n# TYPE calls_total counter\ncalls_total{route=\"/a b\"} 1\n"
    "# TYPE took_seconds histogram\ntook_seconds_bucket{le=\"0.1\"} 0\n"
    "took_seconds_bucket{le=\"1\"} 1\ntook_seconds_bucket{le=\"+Inf\"} 1\ntook_seconds_sum 0.25\n"
    "took_seconds_count 1\n# TYPE size summary\nsize{quantile=\"0.5\"} 3\nsize_sum 3\n"
    "size_count 1\n# TYPE last_seen gauge\nlast_seen 5 1700000000000\nup{clear_mode=\"replace\"} 1\n")


def test_a_known_shape_is_read_without_the_line_parser(monkeypatch):
    _forget_shapes()
    _learn(FUNCTION_PUSH)
    monkeypatch.setattr(prom_text, "_Parser", None)  # a line parse would now fail
    calls, took, size, last_seen, up = parse(_doubled(FUNCTION_PUSH))
    assert calls.points[0].value == 2.0
    assert took.points[0].buckets == [(0.1, 0.0), (1.0, 2.0), (INF, 2.0)]
    assert (took.points[0].sum, took.points[0].count) == (0.5, 2.0)
    assert size.points[0].quantiles == [(0.5, 6.0)] and size.points[0].sum == 6.0
    assert last_seen.points[0].value == 5.0  # its line has a timestamp: read once, kept
    assert up.points[0].value == 2.0 and up.points[0].mode.text == "replace"
    again = parse(FUNCTION_PUSH)
    assert again[0].points[0] is not calls.points[0]  # fresh points every time


@pytest.mark.parametrize("token, fragment", [
    ("abc", "invalid value 'abc'"), ("1_0", "invalid value '1_0'"),
    ("+nan", "invalid value '+nan'"), ("1e999", "out of range"), ("\u0663", "invalid value"),
    ("0x10", "invalid value '0x10'"),
])
def test_a_known_shape_with_a_bad_value_is_refused_as_ever(token, fragment):
    _forget_shapes()
    _learn(FUNCTION_PUSH)
    bad = FUNCTION_PUSH.replace("took_seconds_sum 0.25", f"took_seconds_sum {token}")
    with pytest.raises(ParseError) as caught:
        parse(bad)
    assert caught.value.line == 8 and fragment in caught.value.reason


def test_a_known_shape_with_blanks_after_a_value_is_read_by_the_line_parser():
    _forget_shapes()
    _learn(FUNCTION_PUSH)
    took = parse(FUNCTION_PUSH.replace("took_seconds_sum 0.25", "took_seconds_sum 2\t"))[1]
    assert took.points[0].sum == 2.0


def test_a_known_shape_with_buckets_out_of_order_is_refused():
    _forget_shapes()
    _learn(FUNCTION_PUSH)
    with pytest.raises(ParseError, match="line 5: .*less than the 5 of a lower bucket"):
        parse(FUNCTION_PUSH.replace('le="0.1"} 0', 'le="0.1"} 5'))


def test_other_words_at_a_line_end_must_come_back_unchanged():
    _forget_shapes()
    first = _learn("# HELP a Some words\n# TYPE a gauge\na 1 100\n")
    second = parse("# HELP a Some text\n# TYPE a gauge\na 1 200\n")
    assert (first[0].help, second[0].help) == ("Some words", "Some text")
    assert second.shape is not first.shape  # the newer words replaced the shape
    with pytest.raises(ParseError, match="line 3: invalid timestamp 'x'"):
        parse("# HELP a Some text\n# TYPE a gauge\na 1 x\n")
    with pytest.raises(ParseError, match="line 2: unknown metric type 'gauges'"):
        parse("# HELP a Some text\n# TYPE a gauges\na 1 200\n")


def test_shapes_are_bounded(monkeypatch):
    _forget_shapes()
    monkeypatch.setattr(prom_text._SHAPES, "max_chars", 200)
    for i in range(50):
        _learn(f"# TYPE a gauge\na{{i=\"{i}\"}} 1\n")  # 16 characters of shape each
        assert prom_text._SHAPES.chars <= 200
    assert 0 < len(prom_text._SHAPES.shapes) <= 12
    big = "a{x=\"" + "y" * prom_text._SHAPES.max_text + "\"} 1\n"
    _forget_shapes()
    assert _learn(big)[0].points[0].value == 1.0
    assert not prom_text._SHAPES.shapes  # too large to be remembered


def test_a_batch_names_its_shape():
    _forget_shapes()
    assert parse(FUNCTION_PUSH).shape is None  # met once
    first = parse(FUNCTION_PUSH)
    assert parse(_doubled(FUNCTION_PUSH)).shape is first.shape is not None
    assert _learn(FUNCTION_PUSH + "other 1\n").shape is not first.shape


def test_bodies_that_never_come_back_are_not_remembered():
    _forget_shapes()
    for i in range(100):
        assert parse(f"# TYPE a gauge\na{{call=\"{i}\"}} 1\n")[0].points[0].value == 1.0
    assert not prom_text._SHAPES.shapes and len(prom_text._SHAPES.seen_once) == 100


def test_timestamps_are_checked_and_dropped_without_the_line_parser(monkeypatch):
    _forget_shapes()
    _learn("a 1 1700000000000\nb 2\n")
    lines = prom_text._Parser
    monkeypatch.setattr(prom_text, "_Parser", None)
    a, b = parse("a 1 1700000000001\nb 3\n")
    assert (a.points[0].value, b.points[0].value) == (1.0, 3.0)
    monkeypatch.setattr(prom_text, "_Parser", lines)
    assert parse("a 1 1234567890123456789\nb 3\n")[0].points[0].value == 1.0  # 19 digits: careful
    with pytest.raises(ParseError, match="line 1: invalid timestamp '1.5'"):
        parse("a 1 1.5\nb 3\n")
