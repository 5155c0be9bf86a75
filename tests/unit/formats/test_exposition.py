"""The writers: valid for prometheus_client's strict parsers, sorted, stable, cache-correct."""
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_om
from prometheus_client.parser import text_string_to_metric_families as parse_text

from otelgravel.core.store import Store
from otelgravel.formats.exposition import format_value, write_openmetrics, write_text
from otelgravel.model import (COUNTER, FAMILY, GAUGE, GAUGEHISTOGRAM, HISTOGRAM, INF, INFO,
                              REPLACE, STATESET, SUM, SUMMARY, UNKNOWN, Exemplar, Family, Point)

G = (("job", "fn"),)


def by_name(families):
    return {s.name: s for f in families for s in f.samples}


def test_openmetrics_output_parses_strictly_with_every_type(full_store):
    text = write_openmetrics(full_store(), now=200)
    families = {f.name: f for f in parse_om(text)}
    assert {n: f.type for n, f in families.items()} == {
        "build": "info", "lat_seconds": "histogram", "misc": "unknown", "push_time_seconds": "gauge",
        "push_failure_time_seconds": "gauge",
        "queue": "gaugehistogram", "req": "counter", "rpc": "summary", "state": "stateset",
        "temp_celsius": "gauge"}
    samples = by_name(families.values())
    assert samples["req_total"].value == 3 and samples["req_total"].labels["route"] == '/a"b\\c'
    assert samples["req_total"].exemplar.labels == {"trace_id": "abc"}
    assert samples["req_created"].value == 100
    assert samples["lat_seconds_count"].value == 3 and samples["lat_seconds_sum"].value == 2.2
    assert families["lat_seconds"].unit == "seconds" and families["temp_celsius"].unit == "celsius"
    assert families["req"].documentation == "Requests.\nAll of them."
    assert samples["build_info"].labels == {"job": "fn", "version": "1.0"}
    assert samples["push_time_seconds"].value == 100
    assert samples["push_failure_time_seconds"].value == 0  # as the Pushgateway: 0 until a refusal
    assert text.endswith("# EOF\n")


def test_text_output_parses_and_names_counters_with_total(full_store):
    text = write_text(full_store(), now=200)
    families = {f.name: f for f in parse_text(text)}
    assert "# TYPE req_total counter" in text and "# TYPE build_info gauge" in text
    samples = by_name(families.values())
    assert samples["req_total"].value == 3
    assert samples["lat_seconds_bucket"].labels["le"] in ("+Inf", "0.1", "1.0")
    assert samples["rpc"].labels["quantile"] in ("0.5", "0.9")
    assert "_created" not in text and "# EOF" not in text


def test_families_and_series_are_sorted_and_a_scrape_is_stable():
    store = Store()
    for job in ("b", "a", "c"):
        store.apply([Family("zeta", GAUGE, points=[Point((), REPLACE, 1)]),
                     Family("alpha", GAUGE, points=[Point((), REPLACE, 2)])], (("job", job),), 1)
    text = write_text(store, 2)
    names = [line.split("{")[0] for line in text.splitlines() if not line.startswith("#")]
    assert names == ["alpha"] * 3 + ["push_failure_time_seconds"] * 3 + ["push_time_seconds"] * 3 + ["zeta"] * 3
    jobs = [line.split('"')[1] for line in text.splitlines() if line.startswith("zeta")]
    assert jobs == ["a", "b", "c"]
    assert write_text(store, 2) == text and write_openmetrics(store, 2) == write_openmetrics(store, 2)


def test_cached_lines_follow_writes():
    store = Store()
    store.apply([Family("c", COUNTER, points=[Point((), SUM, 1)])], G, 1)
    assert 'c_total{job="fn"} 1\n' in write_text(store, 1)
    assert 'c_total{job="fn"} 1 ' not in write_openmetrics(store, 1)
    store.apply([Family("c", COUNTER, points=[Point((), SUM, 2)])], G, 2)
    assert 'c_total{job="fn"} 3\n' in write_text(store, 2)
    assert 'c_total{job="fn"} 3\n' in write_openmetrics(store, 2)


def test_empty_store():
    assert write_text(Store(), 0) == ""
    assert write_openmetrics(Store(), 0) == "# EOF\n"


def test_values():
    assert [format_value(v) for v in (1.0, -2.0, 0.5, 1e20, INF, -INF, float("nan"))] == \
        ["1", "-2", "0.5", "1e+20", "+Inf", "-Inf", "NaN"]
