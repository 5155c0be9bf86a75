"""/api/v1/metrics per series kind, from a real store (Pushgateway API v1 shape, string values)."""
import pytest

from otelgravel.clearmode import parse_clear_mode
from otelgravel.core.store import Store
from otelgravel.model import REPLACE, SUM, Family, NativeHistogram, Point
from otelgravel.status import views

GROUP = (("job", "a"),)


@pytest.mark.parametrize("family, expected", [
    (Family("c", "counter", points=[Point((), SUM, value=2.0)]), ("COUNTER", {"value": "2"})),
    (Family("g", "gauge", points=[Point((), REPLACE, value=0.5)]), ("GAUGE", {"value": "0.5"})),
    (Family("h", "histogram", points=[Point((), SUM, buckets=[(1.0, 1.0), (float("inf"), 3.0)],
                                            sum=4.0, count=3.0)]),
     ("HISTOGRAM", {"buckets": {"1.0": "1", "+Inf": "3"}, "count": "3", "sum": "4"})),
    (Family("s", "summary", points=[Point((), SUM, quantiles=[(0.5, 7.0)], sum=9.0, count=2.0)]),
     ("SUMMARY", {"quantiles": {"0.5": "7"}, "count": "2", "sum": "9"})),
    (Family("n", "histogram", points=[Point((), SUM, sum=3.0, count=2.0,
                                            native=NativeHistogram(0, 0.0, 0.0, {1: 1.0, 2: 1.0}))]),
     ("HISTOGRAM", {"count": "2", "sum": "3", "native": {
         "schema": 0, "zero_threshold": "0", "zero_count": "0", "positive": {"1": "1", "2": "1"},
         "negative": {}}})),
    (Family("w", "gauge", points=[Point((), parse_clear_mode("mean5m"), value=4.0)]),
     ("GAUGE", {"value": "4"})),
])
def test_each_kind(family, expected):
    store = Store()
    store.apply([family], GROUP, 100.0)
    (group,) = views.metrics(store, 101.0)
    entry = group[family.name]
    assert (entry["type"], {k: v for k, v in entry["metrics"][0].items() if k != "labels"}) == expected
    assert entry["metrics"][0]["labels"] == {"job": "a"}
    assert group["last_push_successful"] is True


def test_an_empty_window_shows_nothing():
    store = Store()
    store.apply([Family("w", "gauge", points=[Point((), parse_clear_mode("mean1m"), value=4.0)])],
                GROUP, 100.0)
    (group,) = views.metrics(store, 1000.0)
    assert "w" not in group
