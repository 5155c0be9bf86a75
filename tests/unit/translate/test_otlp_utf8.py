"""receivers.otlp.utf8_names: OTel metric and attribute names kept as they are (Prometheus 3's
NoUTF8EscapingWithSuffixes), or translated to legacy names (the default, as before)."""
import pytest

from otelgravel.core.store import Store
from otelgravel.errors import InputError
from otelgravel.model import COUNTER, GAUGE, HISTOGRAM, INFO
from otelgravel.translate.names import utf8_labels_from_pairs, utf8_metric_name
from otelgravel.translate.otlp import DELTA, OtlpTranslator

from .test_otlp_translate import counter, gauge, hist, histogram, num, req, rm

SCOPE = (("otel_scope_name", "lib"), ("otel_scope_version", "1.0"))


def names(utf8: bool, *metrics, **resource):
    """{family name: (type, [labels of each point], utf8 mark)} of one export."""
    t = OtlpTranslator(utf8_names=utf8).translate(req(rm(*metrics, **resource)), now=10)
    assert not t.errors, t.errors
    [(group, families)] = t.groups
    return {f.name: (f.type, [p.labels for p in f.points], f.utf8) for f in families}


def scoped(**kw):
    return tuple(sorted({**dict(SCOPE), **kw}.items()))


@pytest.mark.parametrize("utf8, expected", [
    pytest.param(False, {
        "http_server_requests": (COUNTER, [scoped(url_scheme="https")], False),
        "http_server_duration_milliseconds": (HISTOGRAM, [scoped(url_scheme="https")], False),
        "room_temp_celsius": (GAUGE, [scoped(**{"key_0day": "x"})], False),
        "target": (INFO, [(("cloud_region", "eu"),)], False)}, id="default: legacy names"),
    pytest.param(True, {
        "http.server.requests": (COUNTER, [scoped(**{"url.scheme": "https"})], True),
        "http.server.duration_milliseconds": (HISTOGRAM, [scoped(**{"url.scheme": "https"})],
                                              True),
        "room.temp_celsius": (GAUGE, [scoped(**{"0day": "x"})], True),
        "target": (INFO, [(("cloud.region", "eu"),)], True)}, id="utf8_names: kept"),
])
def test_names(utf8, expected):
    got = names(utf8,
                counter("http.server.requests_total", num(1, {"url.scheme": "https"}),
                        temporality=DELTA),
                histogram("http.server.duration", hist(1, [1, 0], [5.0],
                                                       attrs={"url.scheme": "https"}),
                          unit="ms", temporality=DELTA),
                gauge("room.temp", num(21.5, {"0day": "x"}), unit="Cel"),
                **{"cloud.region": "eu"})
    assert got == expected


@pytest.mark.parametrize("otel, unit, counter_, gauge_, expected", [
    ("http.server.duration", "s", False, False, "http.server.duration_seconds"),
    ("http.server.duration_seconds", "s", False, False, "http.server.duration_seconds"),
    ("jobs.done_total", "", True, False, "jobs.done"),
    ("ratio.x", "1", False, True, "ratio.x_ratio"),
    ("名前", "By", False, True, "名前_bytes"),
])
def test_utf8_metric_name(otel, unit, counter_, gauge_, expected):
    assert utf8_metric_name(otel, unit, counter=counter_, gauge=gauge_)[0] == expected


def test_utf8_labels_keep_keys_and_sanitise_reserved_ones():
    assert utf8_labels_from_pairs([("a.b", "1"), ("", "drop"), ("__x.y", "r"), ("ü", "2")]) == \
        {"a.b": "1", "_x_y": "r", "ü": "2"}
    assert utf8_labels_from_pairs([("_x", "kept"), ("__x", "r")]) == {"_x": "kept"}


def test_attributes_that_collide_once_escaped_are_refused_by_the_store():
    t = OtlpTranslator(utf8_names=True).translate(
        req(rm(gauge("g.x", num(1.0, {"a.b": "1", "a_b": "2"})))), now=10)
    [(group, [family])] = t.groups
    with pytest.raises(InputError, match="label names 'a.b' and 'a_b' would both be written"):
        Store().apply([family], group, now=10)
    # the default translation joins them instead, as before
    t = OtlpTranslator().translate(req(rm(gauge("g.x", num(1.0, {"a.b": "1", "a_b": "2"})))),
                                   now=10)
    [(group, [family])] = t.groups
    assert dict(family.points[0].labels)["a_b"] == "1;2"
