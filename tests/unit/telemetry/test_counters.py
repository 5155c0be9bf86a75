"""The plain counters the edges bump: histogram folding, outcomes, the bounded refusal ring."""
import pytest

from otelgravel.errors import (BodyTooLarge, ConflictError, LimitError, ParseError, StateUnavailable,
                               UnsupportedMediaType)
from otelgravel.telemetry.counters import REFUSALS_KEPT, BucketHistogram, Stats, outcome_of


def test_histogram_folds_into_cumulative_buckets_with_le_semantics():
    h = BucketHistogram((0.1, 1.0), ("route",))
    for v in (0.05, 0.1, 0.5, 1.0, 3.0):  # a value equal to a bound belongs to that bucket
        h.observe(("/a",), v)
    h.observe(("/b",), 0.2)
    rows = list(h.rows())
    assert rows[0] == (("/a",), [(0.1, 2), (1.0, 4), (float("inf"), 5)], 5, pytest.approx(4.65))
    assert rows[1][0] == ("/b",) and rows[1][1] == [(0.1, 0), (1.0, 1), (float("inf"), 1)]


@pytest.mark.parametrize("exc, outcome", [
    (ParseError("x", 1), "refused"),
    (ConflictError("x"), "refused"),
    (UnsupportedMediaType("x"), "refused"),
    (LimitError("x"), "limited"),
    (BodyTooLarge("x"), "too_large"),
    (StateUnavailable("x"), "unavailable"),
])
def test_outcome_of(exc, outcome):
    assert outcome_of(exc) == outcome


def test_every_outcome_starts_at_zero_and_counts():
    stats = Stats()
    assert stats.requests[("otlp", "forbidden")] == 0
    stats.accepted("pushgateway", 3)
    stats.refused("pushgateway", LimitError("full"), 2, (("job", "a"),), "127.0.0.1", 10.0)
    stats.count_request("pushgateway", "unauthorized")
    assert stats.requests[("pushgateway", "accepted")] == 1
    assert stats.requests[("pushgateway", "limited")] == 1
    assert stats.requests[("pushgateway", "unauthorized")] == 1
    assert stats.points[("pushgateway", "accepted")] == 3
    assert stats.points[("pushgateway", "limited")] == 2
    (refusal,) = stats.refusals
    assert (refusal.group, refusal.client, refusal.outcome, refusal.reason) == \
        ((("job", "a"),), "127.0.0.1", "limited", "full")


def test_the_refusal_ring_keeps_the_last_hundred_and_cuts_long_reasons():
    stats = Stats()
    for i in range(REFUSALS_KEPT + 20):
        stats.refusal("otlp", ConflictError(f"r{i}" + "x" * 1000), (), None, float(i))
    assert len(stats.refusals) == REFUSALS_KEPT
    assert stats.refusals[0].time == 20.0 and stats.refusals[-1].time == REFUSALS_KEPT + 19
    assert len(stats.refusals[-1].reason) == 500 and stats.refusals[-1].reason.endswith("...")
