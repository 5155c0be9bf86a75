"""What the parser tests share. Fixtures, since under --import-mode=importlib a test module cannot
import a sibling: ``plain`` to compare batches, ``client_registry`` for the metrics that
prometheus_client pushes (the same for its text and its OpenMetrics writer), ``mangled`` for the
robustness tests' bodies, ``full_store`` for the writers (a store with every type)."""
import random

import pytest
from prometheus_client import CollectorRegistry, Counter, Enum, Gauge, Histogram, Info, Summary

from otelgravel.core.store import Store
from otelgravel.model import (COUNTER, FAMILY, GAUGE, GAUGEHISTOGRAM, HISTOGRAM, INF, INFO,
                              REPLACE, STATESET, SUM, SUMMARY, UNKNOWN, Exemplar, Family, Point)


def _plain(value):
    if isinstance(value, float) and value != value:
        return "NaN"
    if isinstance(value, (list, tuple)):
        return tuple(_plain(v) for v in value)
    if isinstance(value, dict):
        return tuple((_plain(k), _plain(v)) for k, v in value.items())
    if isinstance(value, (Family, Point, Exemplar)):
        return (type(value).__name__,) + tuple(_plain(getattr(value, k)) for k in value.__slots__)
    return value


@pytest.fixture
def plain():
    """Families and points as nested tuples, NaN as a string: NaN != NaN would fail ==."""
    return _plain


def _counter(r):
    c = Counter("requests", "Requests served.", ["method"], registry=r)
    c.labels("get").inc(3, exemplar={"trace_id": "abc"})  # written in OpenMetrics only
    c.labels('we"ird\\').inc()
    Counter("idle", "Never used.", ["x"], registry=r)


def _gauge_and_enum(r):
    Gauge("temperature_celsius", "Temperature.", unit="celsius", registry=r).set(-3.5)  # unit: OM
    Enum("state", "State.", states=["up", "down"], registry=r).state("down")


def _histogram(r):
    h = Histogram("latency_seconds", "Latency.", ["path"], buckets=[0.1, 1], registry=r)
    h.labels("/").observe(0.5)
    h.labels("/").observe(5)


def _summary(r):
    Summary("size_bytes", "Sizes.", registry=r).observe(3)


def _info(r):
    Info("build", "Build.", registry=r).info({"version": "1.2", "commit": "abc"})


_CLIENT_METRICS = {"counter": _counter, "gauge and enum": _gauge_and_enum,
                   "histogram": _histogram, "summary": _summary, "info": _info}


@pytest.fixture
def client_registry():
    """``client_registry("histogram")``: a fresh registry holding those prometheus_client metrics
    (counter, gauge and enum, histogram, summary, info)."""
    def build(metrics: str) -> CollectorRegistry:
        registry = CollectorRegistry()
        _CLIENT_METRICS[metrics](registry)
        return registry
    return build


@pytest.fixture
def mangled():
    """``mangled(body, seed, alphabet, cut_chance, noise_chance)``: 3,000 bodies made from a good
    one, the same on every run. Each is cut short with ``cut_chance`` (1.0: always, drawing no
    chance), has up to three bytes replaced from ``alphabet``, and with ``noise_chance`` is
    replaced by up to 39 random bytes."""
    def bodies(body: bytes, seed: int, alphabet: bytes, cut_chance: float, noise_chance: float):
        rnd = random.Random(seed)
        for _ in range(3000):
            out = bytearray(body)
            if cut_chance >= 1.0 or rnd.random() < cut_chance:
                out = out[:rnd.randrange(len(out) + 1)]
            for _ in range(rnd.randrange(4)):
                if out:
                    out[rnd.randrange(len(out))] = rnd.choice(alphabet)
            if rnd.random() < noise_chance:
                out = bytearray(rnd.randrange(256) for _ in range(rnd.randrange(40)))
            yield bytes(out)
    return bodies


def _full_store(now=100.0):
    """A store holding one family of every type (group job=fn), pushed at ``now``."""
    store = Store()
    store.apply([
        Family("req", COUNTER, "Requests.\nAll of them.", points=[
            Point((("route", '/a"b\\c'),), SUM, 3, exemplar=Exemplar((("trace_id", "abc"),), 1.0, 99.5))]),
        Family("temp_celsius", GAUGE, "Temperature", "celsius", points=[Point((), REPLACE, 21.5)]),
        Family("lat_seconds", HISTOGRAM, "Latency", "seconds", points=[
            Point((), SUM, buckets=[(0.1, 1), (1.0, 2), (INF, 3)], sum=2.2, count=3,
                  bucket_exemplars={1.0: Exemplar((("trace_id", "x"),), 0.5)})]),
        Family("rpc", SUMMARY, points=[Point((), SUM, sum=5, count=2, quantiles=[(0.5, 1.5), (0.9, 3)])]),
        Family("build", INFO, points=[Point((("version", "1.0"),), FAMILY, 1)]),
        Family("state", STATESET, points=[Point((("state", "a"),), REPLACE, 1),
                                          Point((("state", "b"),), REPLACE, 0)]),
        Family("queue", GAUGEHISTOGRAM, points=[Point((), REPLACE, buckets=[(1.0, 4), (INF, 5)], sum=3, count=5)]),
        Family("misc", UNKNOWN, points=[Point((), SUM, float("nan"))]),
    ], (("job", "fn"),), now)
    return store


@pytest.fixture
def full_store():
    return _full_store
