"""Windows for the windowed clear modes, on a fake clock: values, decay, memory bounds."""
from __future__ import annotations

import copy
import math
import pickle
import random

import pytest

from otelgravel.clearmode import parse_clear_mode
from otelgravel.core.windows import MAX_BUCKETS, SLICES, Window
from otelgravel.model import REPLACE, ClearMode

T0 = 1_700_000_000.0  # a realistic Unix time: slice indexes are large numbers
ACC = 0.01 + 1e-9     # the sketch's relative accuracy, plus float rounding


def window(text: str) -> Window:
    return Window(parse_clear_mode(text))


def exact_quantile(values: list[float], q: float) -> float:
    """Linear interpolation between the closest ranks, h = q·(n-1) (numpy's default)."""
    xs = sorted(values)
    h = q * (len(xs) - 1)
    i = int(h)
    f = h - i
    if f == 0 or i + 1 >= len(xs):
        return xs[i]
    return xs[i] + f * (xs[i + 1] - xs[i])


def quantile_tolerance(values: list[float], q: float) -> float:
    """The documented guarantee: each of the two neighbouring ranks within 1% relative error."""
    xs = sorted(values)
    h = q * (len(xs) - 1)
    i = int(h)
    f = h - i
    j = min(i + 1, len(xs) - 1)
    return ACC * (abs(xs[i]) * (1 - f) + abs(xs[j]) * f) + 1e-12


def reference(mode: ClearMode, values: list[float]) -> float | None:
    if not values:
        return None
    return {
        "sum": lambda: float(sum(values)),
        "mean": lambda: sum(values) / len(values),
        "min": lambda: min(values),
        "max": lambda: max(values),
        "count": lambda: float(len(values)),
        "last": lambda: values[-1],
        "quantile": lambda: exact_quantile(values, mode.quantile),
    }[mode.agg]()


def in_window(t: float, now: float, seconds: float) -> bool:
    """The documented edge rule: the slice of t is one of the SLICES newest at now."""
    width = seconds / SLICES
    return t // width > now // width - SLICES


def assert_close(mode: ClearMode, got: float | None, values: list[float]) -> None:
    want = reference(mode, values)
    if want is None:
        assert got is None
    elif mode.agg == "quantile":
        assert got is not None, want
        assert abs(got - want) <= quantile_tolerance(values, mode.quantile), (got, want)
    else:
        assert got == pytest.approx(want, rel=1e-12, abs=1e-12)


ALL_MODES = ["sum1m", "mean1m", "min1m", "max1m", "count1m", "last1m", "median1m", "p90_1m",
             "p99_1m", "p01_1m"]


# --- values --------------------------------------------------------------------------------------

ONE_TO_100 = [
    # mode, expected, relative tolerance
    ("sum1m", 5050, 0),
    ("mean1m", 50.5, 0),
    ("min1m", 1, 0),
    ("max1m", 100, 0),
    ("count1m", 100, 0),
    ("last1m", 100, 0),
    ("median1m", 50.5, ACC),
    ("p50_1m", 50.5, ACC),
    ("p90_1m", 90, ACC),
    ("p90_1m", 90.1, ACC),   # the interpolated rank, h = 0.9·99
    ("p99_1m", 99.01, ACC),
    ("p99_1m", 99, ACC),
]


@pytest.mark.parametrize("spread", [0.0, 0.5], ids=["same-instant", "spread-over-50s"])
@pytest.mark.parametrize("text,expected,rel", ONE_TO_100)
def test_one_to_hundred(text, expected, rel, spread):
    w = window(text)
    for i in range(1, 101):
        w.observe(float(i), T0 + i * spread)
    got = w.read(T0 + 100 * spread)
    if rel == 0:
        assert got == expected
    else:
        assert abs(got - expected) <= rel * expected, got


def test_spec_mean3s():
    w = window("mean3s")
    for t, v in [(0, 0.0), (1, 5.0), (2, 10.0)]:
        w.observe(v, T0 + t)
    assert w.read(T0 + 2) == 5
    assert w.read(T0 + 6) is None
    assert w.expired(T0 + 6)
    w.observe(7.0, T0 + 6)
    assert w.read(T0 + 6) == 7
    assert not w.expired(T0 + 6)


def test_spec_mean3s_same_instant():
    w = window("mean3s")
    for v in (0.0, 5.0, 10.0):
        w.observe(v, T0)
    assert w.read(T0) == 5
    assert w.read(T0 + 4) is None


@pytest.mark.parametrize("text", ALL_MODES)
def test_edge_rule(text):
    """An observation counts for at least seconds - slice and at most seconds after it arrived."""
    mode = parse_clear_mode(text)
    width = mode.seconds / SLICES
    for offset in (0.0, 0.25, 0.5, 0.999):
        t = T0 + offset * width
        w = Window(mode)
        w.observe(3.0, t)
        assert w.read(t) is not None
        assert w.read(t + mode.seconds - width - 1e-6) is not None
        assert w.read(t + mode.seconds) is None
        assert w.expired(t + mode.seconds)


@pytest.mark.parametrize("text", ALL_MODES + ["mean3s", "p99_1h30m", "sum250ms"])
def test_decay_matches_brute_force(text):
    """Observations spread over several windows: only the recent part counts, as documented."""
    mode = parse_clear_mode(text)
    rng = random.Random(7)
    w = Window(mode)
    seen: list[tuple[float, float]] = []
    now = T0
    for step in range(3000):
        now += rng.expovariate(1.0) * mode.seconds / 40   # about 40 observations per window
        if rng.random() < 0.05:
            now += rng.random() * 2 * mode.seconds       # sometimes a silence
        value = round(rng.uniform(-5, 1000), 3)
        w.observe(value, now)
        seen.append((now, value))
        if step % 7 == 0:  # read a little after the last push, or up to 1.2 windows later
            later = now + rng.random() * mode.seconds * (0.05 if rng.random() < 0.7 else 1.2)
            recent = [v for t, v in seen if in_window(t, later, mode.seconds)]
            assert w.expired(later) == (not recent)
            assert_close(mode, w.read(later), recent)
            now = later  # the clock never goes back


@pytest.mark.parametrize("text", ALL_MODES)
@pytest.mark.parametrize("silence", [1.0, 1.5, 2.0, 61 / 60, 1000.0], ids=lambda s: f"{s:g}windows")
def test_ring_wrap_after_silence_never_brings_old_data_back(text, silence):
    mode = parse_clear_mode(text)
    w = Window(mode)
    t = T0
    for i in range(SLICES * 3):  # fill every slice of the ring, several times over
        t += mode.seconds / SLICES
        w.observe(1e6 + i, t)
    t += silence * mode.seconds
    assert w.read(t) is None and w.expired(t)
    w.observe(2.0, t)
    w.observe(4.0, t + 1)
    assert_close(mode, w.read(t + 1), [2.0, 4.0])


@pytest.mark.parametrize("text", ALL_MODES)
def test_clock_going_back_is_harmless(text):
    """Late observations join the newest slice; nothing breaks and reads stay within the values."""
    rng = random.Random(17)
    w = window(text)
    now = T0
    for _ in range(5000):
        now += rng.uniform(-2.0, 2.5)
        w.observe(rng.uniform(1.0, 10.0), now)
        if rng.random() < 0.2:
            got = w.read(now + rng.uniform(-90.0, 90.0))
            top = 1e9 if text.startswith(("sum", "count")) else 10.0 * 1.01
            assert got is None or 0.99 <= got <= top


def test_idle_window_decays_without_further_pushes():
    w = window("max1m")
    w.observe(5.0, T0)
    reads = [w.read(T0 + s) for s in (0, 30, 58.9, 60, 3600)]
    assert reads == [5.0, 5.0, 5.0, None, None]


NEGATIVE_AND_ZERO = [
    # values, modes checked
    ([0.0] * 10, ["median1m", "p01_1m", "p99_1m"]),
    ([-3.0, 0.0, 0.0, 5.0], ["median1m", "p01_1m", "p99_1m"]),
    ([float(x) for x in range(-50, 51)], ["median1m", "p10_1m", "p25_1m", "p75_1m", "p99_1m"]),
    ([-float(x) for x in range(1, 101)], ["median1m", "p01_1m", "p90_1m", "p99_1m"]),
    ([-1e-9, -2e-9, 0.0, 1e9, 2e9], ["p25_1m", "median1m", "p75_1m"]),
    ([0.0] * 50 + [1.0] * 50, ["p49_1m", "median1m", "p51_1m"]),
]


@pytest.mark.parametrize("values,modes", NEGATIVE_AND_ZERO)
def test_quantiles_of_negatives_and_zeros(values, modes):
    for text in modes:
        mode = parse_clear_mode(text)
        w = Window(mode)
        for i, v in enumerate(values):
            w.observe(v, T0 + i * 0.01)
        assert_close(mode, w.read(T0 + len(values) * 0.01), values)
    w = window("median1m")
    w.observe(0.0, T0)
    assert w.read(T0) == 0.0


DISTRIBUTIONS = {
    "lognormal": lambda r: r.lognormvariate(0.0, 1.5),
    "lognormal-latency-ms": lambda r: r.lognormvariate(3.0, 0.8),
    "uniform": lambda r: r.uniform(0.0, 1000.0),
    "uniform-signed": lambda r: r.uniform(-1000.0, 1000.0),
    "exponential": lambda r: r.expovariate(0.01),
    "normal": lambda r: r.gauss(100.0, 30.0),
    "pareto": lambda r: r.paretovariate(1.2),
}


@pytest.mark.parametrize("dist", sorted(DISTRIBUTIONS))
def test_random_quantiles_within_one_percent(dist):
    rng = random.Random(20240601)
    values = [DISTRIBUTIONS[dist](rng) for _ in range(20000)]
    for text in ["p01_5m", "p10_5m", "p25_5m", "median5m", "p75_5m", "p90_5m", "p95_5m", "p99_5m"]:
        mode = parse_clear_mode(text)
        w = Window(mode)
        for i, v in enumerate(values):
            w.observe(v, T0 + i * 0.01)      # 200 s: all inside the 5 min window
        assert_close(mode, w.read(T0 + 200), values)


def test_specials_in_windows():
    nan, inf = math.nan, math.inf
    w = window("median1m")
    w.observe(nan, T0)
    assert math.isnan(w.read(T0))           # NaN alone reads NaN
    w.observe(3.0, T0)
    assert abs(w.read(T0) - 3.0) <= 0.03    # NaN is skipped once there are numbers
    for text, values, want in [
        ("p99_1m", [1.0] * 10 + [inf] * 10, inf),
        ("p01_1m", [1.0] * 10 + [-inf] * 10, -inf),
        ("min1m", [nan, 2.0, 1.0], 1.0),
        ("max1m", [nan, 2.0, 1.0], 2.0),
        ("count1m", [nan, 2.0, 1.0], 3.0),
        ("max1m", [1.0, inf], inf),
    ]:
        w = window(text)
        for v in values:
            w.observe(v, T0)
        assert w.read(T0) == want, text
    w = window("mean1m")
    w.observe(nan, T0)
    w.observe(1.0, T0)
    assert math.isnan(w.read(T0))
    for text, want in [("min1m", -1.0), ("max1m", 9.0)]:   # NaN-only slices among older slices
        w = window(text)
        for i, v in enumerate([nan, 4.0, nan, -1.0, 9.0, nan]):
            w.observe(v, T0 + i * 5)
        assert w.read(T0 + 30) == want, text
        w = window(text)
        w.observe(nan, T0)
        w.observe(nan, T0 + 5)
        assert math.isnan(w.read(T0 + 10))


# --- bounded memory ------------------------------------------------------------------------------

def test_outlier_merges_low_buckets_then_accuracy_returns():
    mode = parse_clear_mode("median1m")
    w = Window(mode)
    rng = random.Random(3)
    values: list[tuple[float, float]] = []
    t = T0
    for step in range(400):  # ~4 windows of small values, one huge outlier early on
        t += 0.6
        v = rng.uniform(1e-6, 1e-5)
        w.observe(v, t)
        values.append((t, v))
        if step == 20:
            w.observe(1e200, t)  # 1e200 and 1e-6 are > MAX_BUCKETS apart: the low buckets merge
            values.append((t, 1e200))
    recent = [v for ts, v in values if in_window(ts, t, mode.seconds)]
    assert_close(mode, w.read(t), recent)


@pytest.mark.parametrize("text", ["median1m", "p99_1m", "p01_1m"])
def test_quantile_total_equals_a_fresh_window_of_the_recent_values(text):
    """The window's running total, after evictions, holds exactly the buckets of the values still in
    it: a fresh window fed just those values (no collapse involved) reads the very same number."""
    mode = parse_clear_mode(text)
    rng = random.Random(23)
    w = Window(mode)
    seen: list[tuple[float, float]] = []
    now = T0
    for step in range(4000):
        now += rng.expovariate(1.0) * (0.05 if step % 1000 < 700 else 2.0)  # busy, then sparse
        v = rng.choice([0.0, -rng.lognormvariate(2, 2), rng.lognormvariate(0, 3)])
        w.observe(v, now)
        seen.append((now, v))
        if step % 13 == 0:
            fresh = Window(mode)
            for t, x in seen:
                if in_window(t, now, mode.seconds):
                    fresh.observe(x, now)
            assert w.read(now) == fresh.read(now)


def _total_from_slices(w) -> dict:
    """White box: the total the window should hold, recomputed from its slices and floors."""
    want: dict = {}
    slices = w._old[1::2] + [w._cur]
    for s in slices:
        items = []
        if s.log is not None:
            items = [((c & 1), c >> 1, 1) for c in s.log]
        else:
            for sign, arr, off in ((0, s.pos, s.poff), (1, s.neg, s.noff)):
                if arr is not None:
                    items += [(sign, off + i, c) for i, c in enumerate(arr) if c]
        for sign, key, c in items:
            floor = w._nfloor if sign else w._pfloor
            key = max(key, floor)
            want[sign, key] = want.get((sign, key), 0) + c
    return want


def test_quantile_total_stays_consistent_through_collapses_and_outliers():
    mode = parse_clear_mode("p90_30s")
    rng = random.Random(29)
    w = Window(mode)
    now = T0
    for step in range(8000):  # ~125 values per 0.5 s slice: slices switch to dense counts
        now += rng.expovariate(1.0) * (0.004 if rng.random() < 0.995 else 10.0)
        r = rng.random()
        if r < 0.01:
            v = rng.choice([1e250, -1e250, 1e-250, -1e-250])  # outliers far beyond MAX_BUCKETS
        elif r < 0.5:
            v = 10.0 ** rng.uniform(-6, 6)
        else:
            v = -(10.0 ** rng.uniform(-3, 12))
        w.observe(v, now)
        if step % 50 == 0:
            w.read(now + rng.random() * 0.5)
            now += rng.random() * 0.5
            g = w._agg
            got = {}
            for sign, arr, off in ((0, g.pos, g.poff), (1, g.neg, g.noff)):
                if arr is not None:
                    assert len(arr) <= MAX_BUCKETS
                    got.update({(sign, off + i): c for i, c in enumerate(arr) if c})
            assert got == _total_from_slices(w)
            assert w.nbytes() <= quantile_window_bound()


def test_values_over_600_decades_stay_bounded_and_high_quantiles_stay_accurate():
    w = window("p99_1m")
    rng = random.Random(5)
    values = [10.0 ** rng.uniform(-300, 300) for _ in range(50000)]
    for i, v in enumerate(values):
        w.observe(v, T0 + i * 0.001)
    # the top 1.5% lie in the top 1024 buckets (8.8 decades) that are kept exact
    assert abs(w.read(T0 + 50) - exact_quantile(values, 0.99)) <= quantile_tolerance(values, 0.99)
    assert w.nbytes() <= quantile_window_bound()


def quantile_window_bound() -> int:
    """Upper bound of a quantile window: 60 slice sketches and the total, both signs at the cap."""
    slice_sketch = 100 + 3 * 32 + 2 * (80 + 4 * MAX_BUCKETS) + 160   # dense uint32 counts
    total_sketch = 100 + 3 * 32 + 2 * (80 + 8 * MAX_BUCKETS) + 160   # uint64 counts at worst
    ring = 80 + 8 * 2 * SLICES + SLICES * (24 + slice_sketch)
    return 300 + ring + total_sketch  # 0.54 MB


FLAT = [
    # mode, value generator, bound in bytes for one window
    ("mean1m", lambda r: r.uniform(0, 100), 8 * 1024),
    ("sum1m", lambda r: r.uniform(0, 100), 8 * 1024),
    ("min1m", lambda r: r.uniform(0, 100), 8 * 1024),
    ("count1m", lambda r: r.uniform(0, 100), 8 * 1024),
    ("last1m", lambda r: r.uniform(0, 100), 256),
    ("p99_1m", lambda r: r.lognormvariate(3.0, 1.0), 160 * 1024),
    ("p99_1m", lambda r: 10.0 ** r.uniform(-300, 300), quantile_window_bound()),
]


@pytest.mark.parametrize("text,gen,bound", FLAT)
def test_nbytes_flat_over_100k_observations(text, gen, bound):
    w = window(text)
    rng = random.Random(11)
    sizes = []
    for i in range(100_000):
        w.observe(gen(rng), T0 + i * 0.005)   # 500 s: more than 8 windows, 1667 per slice
        if i % 10_000 == 9_999:
            sizes.append(w.nbytes())
    assert max(sizes) <= bound, sizes
    # flat: the second half of the run is no bigger than the first
    assert max(sizes[5:]) <= max(sizes[:5]) * 1.1, sizes


@pytest.mark.parametrize("text,bound_each", [("mean5m", 300), ("max5m", 300), ("last5m", 200),
                                             ("p99_5m", 1500)])
def test_nbytes_10k_windows_of_10_observations(text, bound_each):
    """10,000 series × 10 pushes: mean ≤ 300 B each (3 MB in all), last ≤ 200 B (2 MB), p99 of
    latency-like values ≤ 1.5 kB each (15 MB in all)."""
    mode = parse_clear_mode(text)
    rng = random.Random(13)
    windows = [Window(mode) for _ in range(10_000)]
    for i, w in enumerate(windows):
        for j in range(10):
            w.observe(rng.lognormvariate(3.0, 0.5), T0 + i * 0.001 + j * 0.01)
    total = sum(w.nbytes() for w in windows)
    assert total <= 10_000 * bound_each, total


# --- the rest of the contract --------------------------------------------------------------------

EXPIRED = [
    # observation times (offsets), read offset, expired?
    ([], 0.0, True),
    ([0.0], 0.0, False),
    ([0.0], 59.0, False),
    ([0.0], 60.0, True),
    ([0.0, 30.0], 60.0, False),
    ([0.0, 30.0], 89.0, False),
    ([0.0, 30.0], 90.0, True),
    ([0.0], 1e6, True),
]


@pytest.mark.parametrize("text", ALL_MODES)
@pytest.mark.parametrize("times,at,expired", EXPIRED)
def test_expired(text, times, at, expired):
    w = window(text)
    for t in times:
        w.observe(1.0, T0 + t)
    assert w.expired(T0 + at) is expired
    assert (w.read(T0 + at) is None) is expired


@pytest.mark.parametrize("text", ALL_MODES)
def test_reads_do_not_disturb_later_reads(text):
    mode = parse_clear_mode(text)
    w = Window(mode)
    a = Window(mode)
    for i in range(200):
        for x in (w, a):
            x.observe(float(i % 17), T0 + i)
        w.read(T0 + i + 0.5)
    assert w.read(T0 + 200) == a.read(T0 + 200)


@pytest.mark.parametrize("text", ALL_MODES)
def test_windows_copy_and_pickle(text):
    w = window(text)
    for i in range(50):
        w.observe(float(i), T0 + i)
    for clone in (copy.deepcopy(w), pickle.loads(pickle.dumps(w))):
        assert clone.read(T0 + 50) == w.read(T0 + 50)
        clone.observe(1000.0, T0 + 51)
        assert clone.read(T0 + 51) != w.read(T0 + 51) or text.startswith(("min", "p01"))


@pytest.mark.parametrize("mode", [REPLACE, ClearMode("window", "x1m", "bogus", 0, 60),
                                  ClearMode("window", "sum0s", "sum", 0, 0),
                                  ClearMode("window", "p100_1m", "quantile", 1.0, 60)])
def test_not_a_window(mode):
    with pytest.raises(ValueError):
        Window(mode)


def test_window_of_each_agg_is_a_window():
    for text in ALL_MODES:
        assert isinstance(window(text), Window)
