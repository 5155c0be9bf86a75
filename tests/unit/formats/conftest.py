"""What the parser tests share. Fixtures, since under --import-mode=importlib a test module cannot
import a sibling: ``plain`` to compare batches, ``client_registry`` for the metrics that
prometheus_client pushes (the same for its text and its OpenMetrics writer), ``mangled`` for the
robustness tests' bodies."""
import random

import pytest
from prometheus_client import CollectorRegistry, Counter, Enum, Gauge, Histogram, Info, Summary

from otelgravel.model import Exemplar, Family, Point


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
