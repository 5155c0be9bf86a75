"""Native histogram arithmetic: merges keep every observation, at the coarser schema."""
import pytest

from otelgravel import nativehist
from otelgravel.model import INF, NativeHistogram as H


@pytest.mark.parametrize("a, b, want", [
    # same schema: bucket by bucket
    (H(2, 0, 1, {1: 2}), H(2, 0, 2, {1: 1, 3: 4}), H(2, 0, 3, {1: 3, 3: 4})),
    # schema 4 and 2 merge at 2: Prometheus index i -> ((i - 1) >> 2) + 1
    (H(4, 0, 0, {1: 1, 4: 1, 5: 1, 9: 2}), H(2, 0, 0, {2: 5}), H(2, 0, 0, {1: 2, 2: 6, 3: 2})),
    # negative buckets downscale the same way
    (H(1, 0, 0, {}, {3: 1, 4: 1}), H(0, 0, 0, {}, {2: 1}), H(0, 0, 0, {}, {2: 3})),
    # a wider zero bucket swallows the buckets below it, widening to a bucket boundary
    (H(0, 0.5, 1, {0: 2, 1: 1, 3: 1}), H(0, 1.0, 1, {2: 1}), H(0, 1.0, 2 + 2, {1: 1, 2: 1, 3: 1})),
    (H(0, 0, 0, {1: 1, 2: 1}), H(0, 1.5, 0, {}), H(0, 2.0, 1, {2: 1})),  # (1, 2] straddles 1.5
])
def test_add(a, b, want):
    got = nativehist.add(a, b)
    assert got == want
    assert nativehist.total(got) == nativehist.total(a) + nativehist.total(b)


def test_subtract_is_none_on_a_reset():
    assert nativehist.subtract(H(0, 0, 1, {1: 2}), H(0, 0, 0, {1: 1})) == H(0, 0, 1, {1: 1})
    assert nativehist.subtract(H(0, 0, 0, {1: 1}), H(0, 0, 0, {1: 2})) is None


def test_spans_round_trip_and_classic_view():
    buckets = {-3: 1, -2: 2, 1: 1, 3: 4, 10: 1}
    spans, counts = nativehist.to_spans(buckets)
    assert spans == [[-3, 7], [6, 1]]  # gaps of up to two buckets are filled with zeros
    assert nativehist.from_spans(spans, deltas=nativehist.deltas(counts)) == buckets
    classic = nativehist.to_classic(H(0, 0.25, 1, {1: 1, 3: 4}, {2: 2}), 8)
    assert classic == [(-2.0, 2.0), (0.25, 3.0), (2.0, 4.0), (8.0, 8.0), (INF, 8.0)]
