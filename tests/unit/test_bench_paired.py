"""bench/scenario_durable.py's paired ratio: each repetition's pair divided, then the median, so
that a machine that slows down over the run (both modes of a repetition alike) moves it less than
the ratio of the two medians; pairs with errors are left out."""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from common import median  # noqa: E402
from scenario_durable import paired_ratio  # noqa: E402


def _runs(*rps, bad=()):
    return [{"rps": r, "ok": i not in bad} for i, r in enumerate(rps)]


def test_drift_cancels_in_pairs():
    # repetition 2's durable run was slowed (540 beside 1000), then the whole machine slowed
    # (600 and 540): the ratio of the medians says 0.54, the pairs say 0.9
    base = _runs(1000, 1000, 600)
    durable = _runs(900, 540, 540)
    assert median([r["rps"] for r in durable]) / median([r["rps"] for r in base]) == 0.54
    assert paired_ratio(durable, base) == 0.9


def test_pairs_with_errors_left_out():
    base = _runs(1000, 1000, 1000, bad={1})
    durable = _runs(950, 10, 950, bad={2})
    assert paired_ratio(durable, base) == 0.95


def test_no_pairs():
    assert paired_ratio([], []) is None
    assert paired_ratio(_runs(0), _runs(100)) is None
