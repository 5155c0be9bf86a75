"""OTel → Prometheus names, units and labels (the OTel compatibility spec), as tables."""
import pytest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue, KeyValueList

from otelgravel.translate.names import (attribute_value, labels_from_pairs, metric_name,
                                        sanitize_label_name, unit_suffix)

# (otel name, unit, counter, gauge) -> (family name as the model names it, unit word)
METRIC_NAMES = [
    ("http.server.requests", "{request}", True, False, "http_server_requests", ""),
    ("http.server.duration", "ms", False, False, "http_server_duration_milliseconds", "milliseconds"),
    ("http.server.duration", "s", False, False, "http_server_duration_seconds", "seconds"),
    ("system.filesystem.usage", "By", False, True, "system_filesystem_usage_bytes", "bytes"),
    ("system.memory.utilization", "1", False, True, "system_memory_utilization_ratio", "ratio"),
    # "1" -> ratio only for gauges
    ("processed", "1", True, False, "processed", ""),
    ("net.io", "By/s", False, True, "net_io_bytes_per_second", "bytes_per_second"),
    ("packets", "{packet}/s", True, False, "packets_per_second", "per_second"),
    ("requests_total", "", True, False, "requests", ""),         # _total exactly once
    ("requests_total_total", "", True, False, "requests", ""),
    ("requests_total", "", False, True, "requests_total", ""),  # gauges keep their name
    ("foo_seconds_total", "s", True, False, "foo_seconds", "seconds"),  # unit already there
    ("latency_seconds", "s", False, True, "latency_seconds", "seconds"),
    ("seconds", "s", False, True, "seconds", "seconds"),
    ("weird..name--x", "", False, True, "weird_name_x", ""),       # runs of _ collapse
    ("2xx.count", "", True, False, "_2xx_count", ""),              # leading digit
    ("ns:metric", "", False, True, "ns:metric", ""),               # colons are valid
    ("temp", "Cel", False, True, "temp_celsius", "celsius"),
    ("things", "widgets", False, True, "things_widgets", "widgets"),  # unknown unit kept
    ("things", "{a}{b}", False, True, "things", ""),
    ("", "", True, False, "", ""),                                 # unusable: refused by the caller
    ("...", "s", False, True, "", ""),
]


@pytest.mark.parametrize("name,unit,counter,gauge,want,want_unit", METRIC_NAMES)
def test_metric_name(name, unit, counter, gauge, want, want_unit):
    assert metric_name(name, unit, counter=counter, gauge=gauge) == (want, want_unit)


@pytest.mark.parametrize("unit,gauge,want", [
    ("ms", False, "milliseconds"), ("us", False, "microseconds"), ("ns", False, "nanoseconds"),
    ("min", False, "minutes"), ("h", False, "hours"), ("d", False, "days"),
    ("KiBy", False, "kibibytes"), ("MBy", False, "megabytes"), ("%", False, "percent"),
    ("m/s", True, "meters_per_second"), ("1/s", False, "per_second"), ("By/min", False, "bytes_per_minute"),
    ("{request}", False, ""), ("", False, ""), ("1", True, "ratio"),
])
def test_unit_suffix(unit, gauge, want):
    assert unit_suffix(unit, gauge) == want


@pytest.mark.parametrize("key,want", [
    ("http.route", "http_route"), ("route", "route"), ("0day", "key_0day"),
    ("__reserved", "_reserved"), ("a--b", "a_b"), ("ünï", "_n_"), ("", ""),
])
def test_sanitize_label_name(key, want):
    assert sanitize_label_name(key) == want


def test_label_collisions_join_values_in_order_of_original_keys():
    got = labels_from_pairs([("a_b", "2"), ("a.b", "1"), ("a-b", "0"), ("c", "x")])
    # sorted original keys: "a-b" < "a.b" < "a_b"
    assert got == {"a_b": "0;1;2", "c": "x"}


def _av(**kw):
    return AnyValue(**kw)


@pytest.mark.parametrize("value,want", [
    (_av(string_value="x"), "x"),
    (_av(bool_value=True), "true"),
    (_av(bool_value=False), "false"),
    (_av(int_value=-42), "-42"),
    (_av(double_value=1.5), "1.5"),
    (_av(double_value=2.0), "2.0"),
    (_av(double_value=float("inf")), "+Inf"),
    (_av(bytes_value=b"\x00\x01"), "AAE="),
    (_av(array_value=ArrayValue(values=[_av(int_value=1), _av(string_value="a")])), '[1,"a"]'),
    (_av(kvlist_value=KeyValueList(values=[KeyValue(key="k", value=_av(bool_value=True))])),
     '{"k":true}'),
    (AnyValue(), ""),
])
def test_attribute_values(value, want):
    assert attribute_value(value) == want
