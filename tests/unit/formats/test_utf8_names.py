"""UTF-8 metric and label names on the way in: quoted names in text (0.0.4 and 1.0.0, one parser)
and OpenMetrics, any UTF-8 in protobuf; the refusals name what is wrong.

The syntax is that of prometheus/common expfmt (the Pushgateway's text parser) and Prometheus'
promparse/openmetricsparse, as their writers produce it: ``{"name","label.x"="v"} 1``,
``name{"label.x"="v"} 1``, ``# TYPE "name" counter``. OpenMetrics follows the 2.0 draft's ABNF
(``name-and-labels-in-braces``: the quoted name first in the braces, never before them)."""
import struct

import pytest

from otelgravel.errors import ParseError
from otelgravel.formats.openmetrics import parse_openmetrics
from otelgravel.formats.prom_protobuf import parse_prom_protobuf
from otelgravel.formats.prom_text import parse_prom_text
from otelgravel.model import COUNTER, GAUGE, HISTOGRAM, INF, UNKNOWN, Family, Point

from .test_prom_protobuf import delimited, labels


def families(parsed):
    """(name, type, help, unit, [(labels, value)], utf8) per family, for compact tables."""
    return [(f.name, f.type, f.help, f.unit,
             [(p.labels, p.value if p.buckets is None else p.buckets) for p in f.points], f.utf8)
            for f in parsed]


# (body, families) accepted by BOTH text and OpenMetrics (the OpenMetrics body gets "# EOF")
BOTH = [
    pytest.param('{"http.server.duration","url.scheme"="https"} 1\n',
                 [("http.server.duration", UNKNOWN, "", "", [((("url.scheme", "https"),), 1.0)],
                   True)], id="name and label in braces"),
    pytest.param('my_metric{"url.scheme"="https"} 1\n',
                 [("my_metric", UNKNOWN, "", "", [((("url.scheme", "https"),), 1.0)], True)],
                 id="quoted label name after a legacy metric name"),
    pytest.param('{"my.metric"} 1\n', [("my.metric", UNKNOWN, "", "", [((), 1.0)], False)],
                 id="name alone in braces"),
    pytest.param('{"legacy_name"} 1\n', [("legacy_name", UNKNOWN, "", "", [((), 1.0)], False)],
                 id="a legacy name may be quoted too"),
    pytest.param('a{"b"="1"} 1\n', [("a", UNKNOWN, "", "", [((("b", "1"),), 1.0)], False)],
                 id="a quoted legacy label name is the plain name"),
    pytest.param('# TYPE "my.metric" counter\n# HELP "my.metric" Dots, and \\\\ too.\n'
                 '{"my.metric_total","a.b"="x"} 3\n',
                 [("my.metric", COUNTER, "Dots, and \\ too.", "", [((("a.b", "x"),), 3.0)],
                   True)], id="TYPE and HELP with a quoted name"),
    pytest.param('{"quote\\"d","new\\nline"="v","back\\\\slash"="w"} 1\n',
                 [('quote"d', UNKNOWN, "", "",
                   [((("back\\slash", "w"), ("new\nline", "v")), 1.0)], True)],
                 id="escapes inside quoted names"),
    pytest.param('{"ünïcødé 名前","x.ラベル"="値"} 1\n',
                 [("ünïcødé 名前", UNKNOWN, "", "", [((("x.ラベル", "値"),), 1.0)], True)],
                 id="non-ASCII and a blank inside quotes"),
    pytest.param('# TYPE "h.x" histogram\n{"h.x_bucket","le"="1"} 1\n{"h.x_bucket",le="+Inf"} 2\n'
                 '{"h.x_count"} 2\n{"h.x_sum"} 3\n',
                 [("h.x", HISTOGRAM, "", "", [((), [(1.0, 1.0), (INF, 2.0)])], False)],
                 id="histogram with a quoted name and a quoted le"),
    pytest.param('{"a.b","c.d"="1"} 1\n{"a.b","c.d"="2"} 2\n',
                 [("a.b", UNKNOWN, "", "", [((("c.d", "1"),), 1.0), ((("c.d", "2"),), 2.0)],
                   True)], id="two series of one quoted family"),
    pytest.param('{"a.b",clear_mode="sum"} 1\n', [("a.b", UNKNOWN, "", "", [((), 1.0)], False)],
                 id="clear_mode beside a quoted name"),
]

# accepted by text only: blanks, trailing comma, the name anywhere (expfmt and promparse)
TEXT_ONLY = [
    pytest.param('{ "a.b" , "c.d" = "1" , } 1\n',
                 [("a.b", UNKNOWN, "", "", [((("c.d", "1"),), 1.0)], True)],
                 id="blanks around quoted names, trailing comma"),
    pytest.param('{"c.d"="1","a.b"} 1\n',
                 [("a.b", UNKNOWN, "", "", [((("c.d", "1"),), 1.0)], True)],
                 id="name after the labels (promparse and expfmt take it)"),
    pytest.param('"a.b"{"c.d"="1"} 1\n',
                 [("a.b", UNKNOWN, "", "", [((("c.d", "1"),), 1.0)], True)],
                 id="quoted name before the braces (expfmt)"),
    pytest.param('"a.b" 1\n', [("a.b", UNKNOWN, "", "", [((), 1.0)], False)],
                 id="quoted name without braces (expfmt)"),
    pytest.param('#\tTYPE\t"a.b"\tgauge\n{"a.b"} 1\n',
                 [("a.b", GAUGE, "", "", [((), 1.0)], False)], id="tabs in a TYPE line"),
]

# (body, line, fragment) refused by both
BOTH_REFUSED = [
    pytest.param('{"a.b} 1\n', 1, "unterminated quoted name", id="unterminated quoted name"),
    pytest.param('a{"b.c="1"} 1\n', 1, "expected '=' after label name", id="quote swallowed"),
    pytest.param('{""} 1\n', 1, "empty metric name", id="empty quoted metric name"),
    pytest.param('a{""="1"} 1\n', 1, "empty label name", id="empty quoted label name"),
    pytest.param('a{"a.b"} 1\n', 1, "metric name given twice: 'a' and 'a.b'",
                 id="name before the braces and in them"),
    pytest.param('{"a.b","c.d"} 1\n', 1, "metric name given twice: 'a.b' and 'c.d'",
                 id="two quoted names"),
    pytest.param('{a="1"} 1\n', 1, "missing metric name", id="labels without a name"),
    pytest.param('{} 1\n', 1, "missing metric name", id="empty braces"),
    pytest.param('a.b 1\n', 1, "", id="an unquoted dotted name stays invalid"),
    pytest.param('a{b.c="1"} 1\n', 1, "expected '=' after label name 'b'",
                 id="an unquoted dotted label stays invalid"),
    pytest.param('# TYPE "a.b counter\n', 1, "unterminated quoted metric name in the TYPE line",
                 id="unterminated quoted name in TYPE"),
    pytest.param('# HELP "" text\n', 1, "empty metric name in the HELP line",
                 id="empty quoted name in HELP"),
    pytest.param('{"a.b","__x"="1"} 1\n', 1, "reserved", id="reserved quoted label name"),
    pytest.param('{"a.b","c"="1","c"="2"} 1\n', 1, "duplicate label 'c'", id="duplicate label"),
    pytest.param('{"a.b","c"="1",c="2"} 1\n', 1, "duplicate label 'c'",
                 id="duplicate label, once quoted"),
    pytest.param(b'{"a\xff"} 1\n', 1, "not valid UTF-8", id="invalid UTF-8 in a quoted name"),
    pytest.param('{"a.b"} 1\n{"a.b"} 2\n', 2, "", id="duplicate series of a quoted family"),
]

TEXT_REFUSED = [
    pytest.param('{"a\\q"} 1\n', 1, "invalid escape sequence '\\q'", id="unknown escape"),
    pytest.param('# TYPE "a.b"counter\n', 1, "invalid metric name in TYPE line",
                 id="no blank after the quoted TYPE name"),
]

OM_REFUSED = [
    pytest.param('"a.b" 1\n', 1, "a quoted metric name goes inside the braces",
                 id="quoted name before the braces"),
    pytest.param('"a.b"{c="1"} 1\n', 1, "a quoted metric name goes inside the braces",
                 id="quoted name before labels in braces"),
    pytest.param('{c="1","a.b"} 1\n', 1, "must come first in the braces", id="name after labels"),
    pytest.param('{ "a.b"} 1\n', 1, "expected a label name", id="blank in braces"),
    pytest.param('{"a.b",} 1\n', 1, "expected a label name", id="trailing comma"),
    pytest.param('# TYPE  "a.b" counter\n', 1, "malformed TYPE line", id="two spaces in TYPE"),
    pytest.param('# UNIT "a.b seconds\n', 1, "unterminated quoted metric name in the UNIT line",
                 id="unterminated quoted name in UNIT"),
    pytest.param('# TYPE "a.b" histogram\n{"a.b_bucket",le="+Inf"} 1 # {"t.id"="x",t_id="y"} 1\n',
                 2, "exemplar: label names 't.id' and 't_id' would both be written 't_id'",
                 id="exemplar labels that collide once escaped"),
    pytest.param('# TYPE "a.b" histogram\n{"a.b_bucket",le="+Inf"} 1 # {"x.y"} 1\n', 2,
                 "exemplar labels name no metric", id="metric name in an exemplar"),
]


def text(body):
    return parse_prom_text(body if isinstance(body, bytes) else body.encode())


def om(body):
    return parse_openmetrics((body if isinstance(body, bytes) else body.encode()) + b"# EOF\n")


@pytest.mark.parametrize("body, expected", BOTH + TEXT_ONLY)
def test_text_accepts(body, expected):
    assert families(text(body)) == expected


@pytest.mark.parametrize("body, expected", BOTH)
def test_openmetrics_accepts(body, expected):
    assert families(om(body)) == expected


@pytest.mark.parametrize("body, line, fragment", BOTH_REFUSED + TEXT_REFUSED)
def test_text_refuses(body, line, fragment):
    with pytest.raises(ParseError) as caught:
        text(body)
    assert caught.value.line == line
    assert fragment in caught.value.reason


@pytest.mark.parametrize("body, line, fragment", BOTH_REFUSED + OM_REFUSED)
def test_openmetrics_refuses(body, line, fragment):
    with pytest.raises(ParseError) as caught:
        om(body)
    assert caught.value.line == line
    assert fragment in caught.value.reason


@pytest.mark.parametrize("body", [p.values[0] for p in TEXT_ONLY])
def test_openmetrics_refuses_the_text_only_forms(body):
    with pytest.raises(ParseError):
        om(body)


def test_openmetrics_unit_and_unknown_escape():
    [family] = om('# TYPE "req.dur_seconds" gauge\n# UNIT "req.dur_seconds" seconds\n'
                  '{"req.dur_seconds","a\\q"="1"} 1\n')
    assert (family.name, family.unit, family.points[0].labels) == \
        ("req.dur_seconds", "seconds", (("a\\q", "1"),))  # OpenMetrics keeps an unknown escape


def test_exemplar_with_quoted_label_names():
    [family] = om('# TYPE "c.x" counter\n{"c.x_total"} 1 # {"trace.id"="abc"} 1 2\n')
    assert family.points[0].exemplar.labels == (("trace.id", "abc"),)


def test_the_same_shape_pushed_again_reads_the_new_values():
    """The text parser remembers body shapes: quoted lines go through its careful path, whose
    last-token values the shape memory reads again like the fast path's."""
    body = '# TYPE "a.b" counter\n{"a.b_total","c.d"="x"} %d\n{"e.f"}  %d\nlegacy_total 1\n'
    shapes = []
    for value in (1, 2, 3, 4):
        batch = text(body % (value, value))
        [quoted, spaced, _] = batch
        assert quoted.points[0].value == value and spaced.points[0].value == value
        assert quoted.utf8 and not spaced.utf8
        shapes.append(batch.shape)
    assert shapes[1] is not None and shapes[1] is shapes[2] is shapes[3]  # read by the shape


# ---- protobuf ---------------------------------------------------------------------------------

def test_protobuf_takes_any_utf8_names():
    body = delimited(
        {"name": "http.server.duration", "type": "GAUGE",
         "metric": [{"label": labels(**{"url.scheme": "https", "x.名前": "値"}), "gauge": {"value": 2}}]},
        {"name": "1starts-with-a-digit", "type": "COUNTER",
         "metric": [{"label": labels(plain="x"), "counter": {"value": 1}}]},
        {"name": "c.x_total", "type": "COUNTER",
         "metric": [{"counter": {"value": 1, "exemplar": {"label": labels(**{"trace.id": "t"}),
                                                          "value": 1}}}]})
    parsed = parse_prom_protobuf(body)
    assert families(parsed) == [
        ("http.server.duration", GAUGE, "", "", [((("url.scheme", "https"), ("x.名前", "値")), 2.0)],
         True),
        ("1starts-with-a-digit", COUNTER, "", "", [((("plain", "x"),), 1.0)], False),
        ("c.x", COUNTER, "", "", [((), 1.0)], False)]
    assert parsed[2].points[0].exemplar.labels == (("trace.id", "t"),)


@pytest.mark.parametrize("spec, fragment", [
    pytest.param({"type": "GAUGE"}, "empty metric name", id="empty name"),
    pytest.param(b"\x0a\x02\xff\xfe", "metric name is not valid UTF-8", id="name not UTF-8"),
    pytest.param({"name": "g.x", "type": "GAUGE", "metric": [
        {"label": labels(**{"": "v"}), "gauge": {"value": 1}}]}, "empty label name",
        id="empty label name"),
    pytest.param({"name": "g.x", "type": "GAUGE", "metric": [
        {"label": labels(**{"__a.b": "v"}), "gauge": {"value": 1}}]}, "reserved",
        id="reserved label name"),
    pytest.param({"name": "c", "type": "COUNTER", "metric": [{"counter": {"value": 1, "exemplar": {
        "label": labels(**{"t.id": "1", "t_id": "2"}), "value": 1}}}]},
        "exemplar: label names 't.id' and 't_id' would both be written 't_id'",
        id="exemplar labels that collide once escaped"),
    pytest.param({"name": "c", "type": "COUNTER", "metric": [{"counter": {"value": 1, "exemplar": {
        "label": labels(**{"名前": "1"}), "value": 1}}}]},
        "exemplar: label name '名前' would be written '__' for a scraper asking "
        "escaping=underscores", id="exemplar label written with the reserved prefix"),
])
def test_protobuf_refuses(spec, fragment):
    with pytest.raises(ParseError) as caught:
        parse_prom_protobuf(delimited(spec))
    assert fragment in str(caught.value)


def test_protobuf_label_name_not_utf8():
    label = b"\x0a\x02\xff\xfe\x12\x01v"  # LabelPair{name: b"\xff\xfe", value: "v"}
    gauge = b"\x12\x09\x09" + struct.pack("<d", 1.0)  # Gauge{value: 1}
    metric = b"\x0a" + bytes([len(label)]) + label + gauge
    family = b"\x0a\x01g\x18\x01" + b"\x22" + bytes([len(metric)]) + metric
    with pytest.raises(ParseError, match="label name is not valid UTF-8"):
        parse_prom_protobuf(bytes([len(family)]) + family)


def test_legacy_bodies_parse_as_before():
    """Nothing legacy changes: same families, utf8 False, the fast path still taken."""
    assert families(text('a{b="1"} 1\n')) == [("a", UNKNOWN, "", "", [((("b", "1"),), 1.0)], False)]
    assert text('a{b="1"} 1\n') == [Family("a", UNKNOWN, "", "", [Point((("b", "1"),), None, 1.0)])]


@pytest.mark.parametrize("bad", ["1_0", "0x1", "+nan", "1e999", "", "1 2 3"])
def test_a_remembered_quoted_shape_still_refuses_bad_values(bad):
    body = '{"q.%s"} %s\n'
    name = f"v{abs(hash(bad))}"
    for _ in range(3):
        text(body % (name, 5))  # remembered from the second push on
    with pytest.raises(ParseError):
        text(body % (name, bad))
