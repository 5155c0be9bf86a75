"""Windowed clear modes through the store: values, decay, bounded memory, mode changes."""
import random

import pytest

from otelgravel.clearmode import parse_clear_mode
from otelgravel.core.store import Store
from otelgravel.formats.exposition import write_openmetrics
from otelgravel.model import GAUGE, REPLACE, SUM, Family, Point
from otelgravel.processor import GravelProcessor, Rule

G = (("job", "fn"),)


def push(store, name, value, mode, now, labels=()):
    store.apply([Family(name, GAUGE, points=[Point(labels, parse_clear_mode(mode), value)])], G, now)


def read(store, name, now, labels=G):
    series = store.get(name, labels)
    return None if series is None else series.window.read(now)


@pytest.mark.parametrize("mode, expected, tolerance", [
    ("sum2m", 5050, 0), ("mean2m", 50.5, 0), ("min2m", 1, 0), ("max2m", 100, 0),
    ("count2m", 100, 0), ("last2m", 100, 0), ("median2m", 50.5, 0.01), ("p90_2m", 90, 0.01),
])
def test_one_to_a_hundred(mode, expected, tolerance):
    store = Store()
    for i in range(1, 101):
        push(store, "w", float(i), mode, now=1000 + i * 0.1)
    got = read(store, "w", now=1011)
    assert got == pytest.approx(expected, rel=tolerance) if tolerance else got == expected


def test_mean3s_decays_and_comes_back_with_only_the_new_value():
    store = Store()
    for v in (0.0, 5.0, 10.0):
        push(store, "m", v, "mean3s", now=100.0)
    assert read(store, "m", 100.5) == 5
    assert "m{" in write_openmetrics(store, 100.5)
    assert read(store, "m", 104.0) is None
    assert "m{" not in write_openmetrics(store, 104.0)
    store.expire(104.0)
    assert store.series_count == 0 and store.get("m", G) is None
    push(store, "m", 7.0, "mean3s", now=105.0)
    assert read(store, "m", 105.0) == 7


def test_changing_the_window_mode_starts_a_new_window():
    store = Store()
    push(store, "m", 10.0, "mean5m", now=1)
    push(store, "m", 20.0, "max5m", now=2)
    push(store, "m", 5.0, "max5m", now=3)
    assert read(store, "m", 4) == 20
    store.apply([Family("m", GAUGE, points=[Point((), REPLACE, 3.0)])], G, 5)
    assert store.get("m", G).window is None and store.get("m", G).point.value == 3.0


def test_memory_of_10000_windowed_series_stays_flat_under_100000_pushes():
    """After one window of traffic the size is what it will stay, however many pushes follow."""
    store = Store()
    rng = random.Random(1)
    keys = [(("fn", str(i)),) for i in range(10_000)]
    mode = parse_clear_mode("mean1m")

    def pushes(count, start):
        for i in range(count):
            k = keys[rng.randrange(10_000)] if i >= 10_000 or start else keys[i]
            store.apply([Family("mem", GAUGE, points=[Point(k, mode, rng.random())])], G, start + i * 0.003)

    pushes(50_000, 0.0)  # 150 s: every series exists, two and a half windows have turned over
    warm = store.windowed_nbytes()
    pushes(100_000, 150.0)  # 300 s more: five whole windows turn over
    after = store.windowed_nbytes()
    assert store.series_count == 10_000
    assert after <= warm * 1.05, (warm, after)
    assert after / 10_000 < 6_500  # a full 60-slice mean window is about 6.3 kB


def test_a_rule_sets_the_mode_and_a_label_still_wins():
    store = Store()
    processor = GravelProcessor(store, [Rule("^mem_.*", parse_clear_mode("mean5m"))])
    for v in (0.0, 10.0):
        processor.push(G, [Family("mem_used", GAUGE, points=[Point((), None, v)]),
                           Family("mem_free", GAUGE, points=[Point((), parse_clear_mode("replace"), v)]),
                           Family("other", GAUGE, points=[Point((), None, v)])], now=1)
    assert read(store, "mem_used", 2) == 5
    assert store.get("mem_free", G).window is None and store.get("mem_free", G).point.value == 10
    assert store.get("other", G).point.value == 10


def test_windowed_counters_and_untyped_become_gauges():
    from otelgravel.model import COUNTER, UNKNOWN
    store = Store()
    processor = GravelProcessor(store)
    processor.push(G, [Family("cold_starts", COUNTER, points=[Point((), parse_clear_mode("sum1m"), 2.0)]),
                       Family("payload", UNKNOWN, points=[Point((), parse_clear_mode("max1m"), 9.0)]),
                       Family("plain", COUNTER, points=[Point((), SUM, 1.0)])], now=1)
    assert store.families["cold_starts_total"].type == GAUGE
    assert store.families["payload"].type == GAUGE
    assert store.families["plain"].type == COUNTER
    text = write_openmetrics(store, 2)
    assert 'cold_starts_total{job="fn"} 2\n' in text and "# TYPE cold_starts_total gauge" in text


def test_a_conflict_caused_by_a_windowed_mode_says_so():
    from otelgravel.errors import ConflictError
    from otelgravel.model import UNKNOWN
    processor = GravelProcessor(Store())
    processor.push(G, [Family("y", UNKNOWN, points=[Point((), None, 1.0)])], now=1)
    with pytest.raises(ConflictError, match=r"family 'y' is an unknown in the gateway; this push "
                                            r"sends it as a gauge \(a windowed clear_mode makes 'y' a gauge\)"):
        processor.push(G, [Family("y", UNKNOWN, points=[Point((), parse_clear_mode("p99_5m"), 1.0)])], now=2)
