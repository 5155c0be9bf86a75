"""Sliding windows for the windowed clear modes (``mean5m``, ``p99_1h30m``): pure, time passed in.

A window of S seconds is 60 slices of S/60 s; a read covers the current slice and the 59 before it,
so an observation counts for at least 59/60·S and at most S after it arrived. sum, mean, min, max,
count and last are exact over those. Quantiles interpolate between the two nearest ranks
(h = q·(n-1), numpy's default) of a DDSketch-style log-bucket sketch, each within 1% relative error
while the values span < 1024 buckets (~8.8 decades) per sign; beyond, the buckets nearest 0 merge.

Design notes:

- Slice index ``k = now // (S/60)``: slices are aligned on multiples of S/60 since the epoch. The
  newest slice lives in the window's own slots, so the push hot path touches only those; older
  slices are kept, oldest first, as flat ``k, field, ...`` records in ``_old``. Starting a slice
  evicts every slice ``k <= k_now - 60``, so ``_old`` never holds more than 59 and memory is bounded
  whatever the push rate (``nbytes``: a full mean window ~6 kB, a full p99 window of latencies
  ~90 kB, any p99 window < 0.55 MB). Reads skip the slices ``k <= k_now - 60``: a window never mixes
  stale data in, and reads None once its newest slice is out.
- Each agg keeps only what it needs: sum the sums, mean count and sum, min/max one number per slice,
  last the latest value and its slice. Quantile keeps a sketch per slice (the codes of its first 64
  values, then dense uint32 counts) and the window's total sketch, kept equal to the sum of the
  slices' on observe and on eviction, so a read walks one sketch (O(buckets), in C) instead of
  merging 60. Quantile reads evict expired slices too.
- NaN: sum and mean propagate it; min and max skip it unless every value is NaN; quantiles skip it
  (NaN alone reads NaN). ±Inf is kept by every agg; the quantile sketch counts it apart.
- Time should not go backwards; if it does, a late observation joins the newest slice.
"""
from __future__ import annotations

import math
from abc import ABCMeta, abstractmethod
import operator
import sys
from array import array
from bisect import bisect_right
from itertools import accumulate

from ..model import WINDOW_KIND, ClearMode

SLICES = 60                # slices per window; slice width = seconds / SLICES
RELATIVE_ACCURACY = 0.01   # quantile sketch: relative error of a rank's value
MAX_BUCKETS = 1024         # per sign per sketch; beyond, the buckets nearest zero merge

_GAMMA = (1 + RELATIVE_ACCURACY) / (1 - RELATIVE_ACCURACY)
_LN_GAMMA = math.log(_GAMMA)
_INV_LN_GAMMA = 1 / _LN_GAMMA
_MIDPOINT = 2 / (1 + _GAMMA)   # bucket k holds (γ^(k-1), γ^k]; it stands for 2γ^k/(1+γ)
_NO_FLOOR = -(1 << 30)         # below any key a float can produce (about -37,700)
_INF = math.inf
_NAN = math.nan

_ceil = math.ceil
_log = math.log
_exp = math.exp
_getsizeof = sys.getsizeof


class Window(metaclass=ABCMeta):
    """The observations of one windowed series; ``Window(mode)`` builds the agg's own class."""

    __slots__ = ("_w", "_k", "_end")

    def __new__(cls, mode: ClearMode | None = None):
        if cls is Window:
            if mode is None or mode.kind != WINDOW_KIND or not mode.seconds > 0:
                raise ValueError(f"not a windowed clear mode: {mode!r}")
            cls = _BY_AGG.get(mode.agg)
            if cls is None:
                raise ValueError(f"unknown window aggregation {mode.agg!r} in {mode.text!r}")
        return object.__new__(cls)

    def __init__(self, mode: ClearMode):
        self._w = mode.seconds / SLICES  # slice width, seconds
        self._k = -_INF    # index of the newest slice; -inf before the first observation
        self._end = -_INF  # when the newest slice ends: observe's only test on the hot path

    @abstractmethod
    def observe(self, value: float, now: float) -> None:
        """Count one observation at ``now``."""

    @abstractmethod
    def read(self, now: float) -> float | None:
        """The aggregate over the window at ``now``; None when no observation is in it."""

    def expired(self, now: float) -> bool:
        """True when ``read(now)`` would be None."""
        return self._k <= now // self._w - SLICES

    def nbytes(self) -> int:
        """Bytes held by this window: sys.getsizeof of the object, its containers and numbers."""
        size = _getsizeof(self)
        for name in _all_slots(type(self)):
            value = getattr(self, name)
            if isinstance(value, list):
                size += _getsizeof(value) + sum(_sizeof_item(x) for x in value)
            else:
                size += _sizeof_item(value)
        return size

    def __repr__(self) -> str:
        return f"<{type(self).__name__} width={self._w}s newest_slice={self._k}>"


def _sizeof_item(x) -> int:
    return x.nbytes() if isinstance(x, _Sketch) else _getsizeof(x)


def _all_slots(cls) -> tuple[str, ...]:
    names: list[str] = []
    for klass in reversed(cls.__mro__):
        names.extend(getattr(klass, "__slots__", ()))
    return tuple(names)


def _evict(old: list, lo: float, stride: int) -> None:
    """Drop the records of slices ``k <= lo`` from the front of a flat ``k, fields...`` list."""
    i = _first_in(old, lo, stride)
    if i:
        del old[:i]


def _first_in(old: list, lo: float, stride: int) -> int:
    """Index of the first record of a slice ``k > lo`` (reads skip the older ones, usually none)."""
    n = len(old)
    i = 0
    while i < n and old[i] <= lo:
        i += stride
    return i


# Each agg starts slices in its own code: shared hooks measured 335 vs 280 ns per such observe.
class _Sum(Window):
    __slots__ = ("_s", "_old")

    def __init__(self, mode: ClearMode):
        Window.__init__(self, mode)
        self._s = 0.0
        self._old: list = []  # k, sum, k, sum, ...

    def observe(self, value: float, now: float) -> None:
        if now < self._end:
            self._s += value
            return
        k = now // self._w
        if k <= self._k:  # float rounding at a slice edge: stay in the newest slice
            self._s += value
            return
        old = self._old
        if self._k != -_INF:
            old += (self._k, self._s)
            _evict(old, k - SLICES, 2)
        self._k = k
        self._end = (k + 1) * self._w
        self._s = value

    def read(self, now: float) -> float | None:
        lo = now // self._w - SLICES
        if self._k <= lo:
            return None
        old = self._old
        return self._s + sum(old[_first_in(old, lo, 2) + 1::2])


class _Count(Window):
    __slots__ = ("_c", "_old")

    def __init__(self, mode: ClearMode):
        Window.__init__(self, mode)
        self._c = 0
        self._old: list = []  # k, count, ...

    def observe(self, value: float, now: float) -> None:
        if now < self._end:
            self._c += 1
            return
        k = now // self._w
        if k <= self._k:
            self._c += 1
            return
        old = self._old
        if self._k != -_INF:
            old += (self._k, self._c)
            _evict(old, k - SLICES, 2)
        self._k = k
        self._end = (k + 1) * self._w
        self._c = 1

    def read(self, now: float) -> float | None:
        lo = now // self._w - SLICES
        if self._k <= lo:
            return None
        old = self._old
        return float(self._c + sum(old[_first_in(old, lo, 2) + 1::2]))


class _Mean(Window):
    __slots__ = ("_c", "_s", "_old")

    def __init__(self, mode: ClearMode):
        Window.__init__(self, mode)
        self._c = 0
        self._s = 0.0
        self._old: list = []  # k, count, sum, ...

    def observe(self, value: float, now: float) -> None:
        if now < self._end:
            self._c += 1
            self._s += value
            return
        k = now // self._w
        if k <= self._k:
            self._c += 1
            self._s += value
            return
        old = self._old
        if self._k != -_INF:
            old += (self._k, self._c, self._s)
            _evict(old, k - SLICES, 3)
        self._k = k
        self._end = (k + 1) * self._w
        self._c = 1
        self._s = value

    def read(self, now: float) -> float | None:
        lo = now // self._w - SLICES
        if self._k <= lo:
            return None
        old = self._old
        i = _first_in(old, lo, 3)
        return (self._s + sum(old[i + 2::3])) / (self._c + sum(old[i + 1::3]))


class _Extreme(Window):
    """min and max: one number per slice. ``_beats(a, b)`` is ``a < b`` for min, ``a > b`` for max.
    Each subclass writes its comparison inline in ``observe`` and shares the rest."""

    __slots__ = ("_m", "_old")
    _pick = min           # builtins: class attributes that do not bind to self
    _beats = operator.lt

    def __init__(self, mode: ClearMode):
        Window.__init__(self, mode)
        self._m = _NAN
        self._old: list = []  # k, min or max, ...

    def _observe_past_end(self, value: float, now: float) -> None:
        """``observe`` once ``now`` has passed the newest slice's end: start the next slice."""
        k = now // self._w
        if k <= self._k:  # float rounding at a slice edge: stay in the newest slice
            m = self._m
            if self._beats(value, m) or m != m:
                self._m = value
            return
        old = self._old
        if self._k != -_INF:
            old += (self._k, self._m)
            _evict(old, k - SLICES, 2)
        self._k = k
        self._end = (k + 1) * self._w
        self._m = value

    def read(self, now: float) -> float | None:
        lo = now // self._w - SLICES
        if self._k <= lo:
            return None
        m = self._m
        old = self._old
        i = _first_in(old, lo, 2)
        if i < len(old):
            xs = old[i + 1::2]
            x = self._pick(xs)
            if x != x:  # min() and max() return a leading NaN: skip NaN unless all are
                x = self._pick((y for y in xs if y == y), default=x)
            if self._beats(x, m) or m != m:
                m = x
        return m


class _Min(_Extreme):
    __slots__ = ()

    # Inline `<`, not self._beats: a shared observe measured 48 ns against 35 ns per observation.
    def observe(self, value: float, now: float) -> None:
        if now < self._end:
            m = self._m
            if value < m or m != m:
                self._m = value
        else:
            self._observe_past_end(value, now)


class _Max(_Extreme):
    __slots__ = ()
    _pick = max
    _beats = operator.gt

    def observe(self, value: float, now: float) -> None:
        if now < self._end:
            m = self._m
            if value > m or m != m:
                self._m = value
        else:
            self._observe_past_end(value, now)


class _Last(Window):
    """Only the latest observation matters: no slices, just its value and its slice index."""

    __slots__ = ("_v",)

    def __init__(self, mode: ClearMode):
        Window.__init__(self, mode)
        self._v = _NAN

    def observe(self, value: float, now: float) -> None:
        self._v = value
        if now >= self._end:
            k = now // self._w
            if k > self._k:
                self._k = k
                self._end = (k + 1) * self._w

    def read(self, now: float) -> float | None:
        if self._k <= now // self._w - SLICES:
            return None
        return self._v


# --- quantiles ------------------------------------------------------------------------------------

class _Sketch:
    """Log-bucket counts. ``pos[i]`` counts the values in (γ^(k-1), γ^k] for the key k = poff + i,
    ``neg`` likewise the magnitudes of the negative values, ``zero`` the zeros, ``odd`` the NaN,
    -Inf and +Inf (None until one arrives).

    A slice's sketch starts as ``log``, the codes (2·key, 2·key + 1 for a negative value) of its
    first _LOG_MAX values, 4 bytes each; past that it turns into dense uint32 counts. The window's
    total is always dense, uint32 widened to uint64 should a count ever need it.
    """

    __slots__ = ("log", "pos", "poff", "neg", "noff", "zero", "odd")

    def __init__(self, log: array | None = None):
        self.log = log
        self.pos: array | None = None
        self.poff = 0
        self.neg: array | None = None
        self.noff = 0
        self.zero = 0
        self.odd: list | None = None

    def nbytes(self) -> int:
        size = (_getsizeof(self) + _getsizeof(self.poff) + _getsizeof(self.noff)
                + _getsizeof(self.zero))
        for arr in (self.log, self.pos, self.neg):
            if arr is not None:
                size += _getsizeof(arr)
        if self.odd is not None:
            size += _getsizeof(self.odd) + sum(_getsizeof(x) for x in self.odd)
        return size


_LOG_MAX = 64          # a slice keeps up to this many codes before it counts per bucket
_FLOOR_SLACK = MAX_BUCKETS // 8  # lower a raised floor once the total's top fell this far
_U32_MAX = 0xFFFFFFFF


def _place(arr: array | None, off: int, key: int) -> tuple[array, int]:
    """Grow ``arr`` (counts of the keys off, off+1, ...) with zeros until it covers ``key``."""
    if arr is None:
        return array("I", [0]), key
    if key < off:
        arr[0:0] = array(arr.typecode, [0]) * (off - key)
        return arr, key
    n = key - off - len(arr) + 1
    if n > 0:
        arr.extend(array(arr.typecode, [0]) * n)
    return arr, off


def _fold(arr: array | None, off: int, floor: int) -> tuple[array | None, int]:
    """Merge the counts of the keys below ``floor`` into the count of ``floor``."""
    if arr is None or off >= floor:
        return arr, off
    cut = floor - off
    folded = sum(arr[:cut])
    if cut >= len(arr):
        arr = array(arr.typecode, [0])
    else:
        del arr[:cut]
    total = arr[0] + folded
    if total > _U32_MAX and arr.typecode == "I":
        arr = array("Q", arr)
    arr[0] = total
    return arr, floor


def _unpad(arr: array | None, off: int) -> tuple[array | None, int]:
    """Drop the zero counts at both ends; None when nothing is left."""
    if arr is None:
        return None, 0
    hi = len(arr)
    while hi and not arr[hi - 1]:
        hi -= 1
    if not hi:
        return None, 0
    lo = 0
    while not arr[lo]:
        lo += 1
    if hi < len(arr):
        del arr[hi:]
    if lo:
        del arr[:lo]
    return arr, off + lo


def _take(total: array, toff: int, part: array | None, off: int, floor: int,
          sign: int = -1) -> None:
    """Subtract (``sign`` = 1: add) a slice's dense counts from (to) the total; keys below the
    floor count at the floor."""
    if part is None:
        return
    key = off
    for c in part:
        if c:
            total[(key if key > floor else floor) - toff] += sign * c
        key += 1


def _value(key: int) -> float:
    return _MIDPOINT * _exp(key * _LN_GAMMA)


class _Quantile(Window):
    """A sketch per slice plus ``_agg``, the window's total: the sum of the sketches of its slices.

    Slices keep each value's true key, except that one slice's dense counts span at most
    MAX_BUCKETS keys (its lowest merge). The total clamps the keys of each sign to a floor
    (``_pfloor``, ``_nfloor``) that rises when it would span more than MAX_BUCKETS keys: its counts
    below the floor merge into the floor's. Evicting a slice subtracts each count at
    max(key, floor), where the total holds it. When the total's top falls well below the floor's
    reach (an outlier left), the total of that sign is rebuilt from the slices with a lower floor,
    so collapsed values regain their accuracy at once.
    """

    __slots__ = ("_q", "_cur", "_agg", "_old", "_pfloor", "_nfloor")

    def __init__(self, mode: ClearMode):
        if not 0.0 < mode.quantile < 1.0:
            raise ValueError(f"quantile rank must be in (0, 1), got {mode.quantile!r}")
        Window.__init__(self, mode)
        self._q = mode.quantile
        self._old: list = []  # k, _Sketch, ...
        self._clear()

    def _clear(self) -> None:
        self._k = -_INF
        self._end = -_INF
        self._cur = _Sketch(array("i"))
        self._agg = _Sketch()
        self._old.clear()
        self._pfloor = _NO_FLOOR
        self._nfloor = _NO_FLOOR

    def observe(self, value: float, now: float) -> None:
        if now >= self._end:
            self._roll(now)
        if value > 0.0:
            try:
                key = _ceil(_log(value) * _INV_LN_GAMMA)
            except OverflowError:  # +Inf
                self._add_odd(2)
                return
            g = self._agg
            b = g.pos
            j = (key if key > self._pfloor else self._pfloor) - g.poff
            if b is not None and 0 <= j < len(b):
                try:
                    b[j] += 1
                except OverflowError:
                    self._widen()
                    g.pos[j] += 1
            else:
                self._grow(key, True)
            code = key + key
        elif value < 0.0:
            try:
                key = _ceil(_log(-value) * _INV_LN_GAMMA)
            except OverflowError:  # -Inf
                self._add_odd(1)
                return
            g = self._agg
            b = g.neg
            j = (key if key > self._nfloor else self._nfloor) - g.noff
            if b is not None and 0 <= j < len(b):
                try:
                    b[j] += 1
                except OverflowError:
                    self._widen()
                    g.neg[j] += 1
            else:
                self._grow(key, False)
            code = key + key + 1
        elif value == 0.0:
            self._cur.zero += 1
            self._agg.zero += 1
            return
        else:  # NaN
            self._add_odd(0)
            return
        log = self._cur.log
        if log is not None and len(log) < _LOG_MAX:
            log.append(code)
        else:
            self._count(code)

    def _add_odd(self, i: int) -> None:
        for s in (self._cur, self._agg):
            if s.odd is None:
                s.odd = [0, 0, 0]
            s.odd[i] += 1

    def _widen(self) -> None:
        g = self._agg
        if g.pos is not None and g.pos.typecode == "I":
            g.pos = array("Q", g.pos)
        if g.neg is not None and g.neg.typecode == "I":
            g.neg = array("Q", g.neg)

    def _grow(self, key: int, positive: bool) -> None:
        """Count ``key`` in the total where the total must grow, raising the floor if it would
        span more than MAX_BUCKETS keys."""
        g = self._agg
        if positive:
            b, boff, floor = g.pos, g.poff, self._pfloor
        else:
            b, boff, floor = g.neg, g.noff, self._nfloor
        if key < floor:
            key = floor
        if b is not None:
            hi = boff + len(b) - 1
            if key < boff and hi - key >= MAX_BUCKETS:
                key = floor = hi - MAX_BUCKETS + 1
            elif key > hi and key - boff >= MAX_BUCKETS:
                floor = key - MAX_BUCKETS + 1
                b, boff = _fold(b, boff, floor)
        b, boff = _place(b, boff, key)
        i = key - boff
        if b[i] == _U32_MAX and b.typecode == "I":
            b = array("Q", b)
        b[i] += 1
        if positive:
            g.pos, g.poff, self._pfloor = b, boff, floor
        else:
            g.neg, g.noff, self._nfloor = b, boff, floor

    def _count(self, code: int) -> None:
        """Count a code in the newest slice's dense counts, switching from the log first if needed.
        (A slice's uint32 counts cannot overflow: that would take 4e9 pushes within one slice.)"""
        s = self._cur
        log = s.log
        if log is not None:
            s.log = None
            for c in log:
                self._count(c)
        key = code >> 1
        if code & 1:
            a, off = s.neg, s.noff
        else:
            a, off = s.pos, s.poff
        if a is None or not 0 <= key - off < len(a):
            if a is not None:  # one slice spans MAX_BUCKETS keys at most; its lowest merge
                hi = off + len(a) - 1
                if key < off and hi - key >= MAX_BUCKETS:
                    key = hi - MAX_BUCKETS + 1
                elif key > hi and key - off >= MAX_BUCKETS:
                    a, off = _fold(a, off, key - MAX_BUCKETS + 1)
            a, off = _place(a, off, key)
            if code & 1:
                s.neg, s.noff = a, off
            else:
                s.pos, s.poff = a, off
        a[key - off] += 1

    def _roll(self, now: float) -> None:
        k = now // self._w
        if k <= self._k:  # float rounding at a slice edge: stay in the newest slice
            return
        if self._k != -_INF:
            self._old += (self._k, self._cur)
            self._cur = _Sketch(array("i"))
        self._k = k
        self._end = (k + 1) * self._w
        self._evict(k - SLICES)

    def _evict(self, lo: float) -> None:
        """Subtract the slices ``k <= lo`` from the total and drop them (the newest is in)."""
        old = self._old
        if not old or old[0] > lo:
            return
        g = self._agg
        pfloor, nfloor = self._pfloor, self._nfloor
        n = len(old)
        i = 0
        while i < n and old[i] <= lo:
            s = old[i + 1]
            if s.log is not None:
                pos, poff, neg, noff = g.pos, g.poff, g.neg, g.noff
                for code in s.log:
                    key = code >> 1
                    if code & 1:
                        neg[(key if key > nfloor else nfloor) - noff] -= 1
                    else:
                        pos[(key if key > pfloor else pfloor) - poff] -= 1
            else:
                _take(g.pos, g.poff, s.pos, s.poff, pfloor)
                _take(g.neg, g.noff, s.neg, s.noff, nfloor)
            g.zero -= s.zero
            if s.odd is not None:
                godd = g.odd
                for j in range(3):
                    godd[j] -= s.odd[j]
            i += 2
        del old[:i]
        g.pos, g.poff = _unpad(g.pos, g.poff)
        g.neg, g.noff = _unpad(g.neg, g.noff)
        if pfloor != _NO_FLOOR:
            self._lower_floor(True)
        if nfloor != _NO_FLOOR:
            self._lower_floor(False)

    def _lower_floor(self, positive: bool) -> None:
        """Rebuild one sign of the total with a lower floor once its top fell far enough."""
        g = self._agg
        if positive:
            arr, off, floor = g.pos, g.poff, self._pfloor
        else:
            arr, off, floor = g.neg, g.noff, self._nfloor
        if arr is not None:
            hi = off + len(arr) - 1
            if hi - floor >= MAX_BUCKETS - _FLOOR_SLACK:
                return
            slices = self._old[1::2]
            slices.append(self._cur)
            sign = 0 if positive else 1
            lowest = hi
            for s in slices:
                if s.log is not None:
                    for code in s.log:
                        if code & 1 == sign and code >> 1 < lowest:
                            lowest = code >> 1
                else:
                    a, aoff = (s.pos, s.poff) if positive else (s.neg, s.noff)
                    if a is not None and aoff < lowest:
                        lowest = aoff
            floor = hi - MAX_BUCKETS + 1
            if lowest >= floor:
                floor = _NO_FLOOR
            base = lowest if lowest > floor else floor
            arr = array(arr.typecode, [0]) * (hi - base + 1)
            for s in slices:
                if s.log is not None:
                    for code in s.log:
                        if code & 1 == sign:
                            key = code >> 1
                            arr[(key if key > floor else floor) - base] += 1
                else:
                    a, aoff = (s.pos, s.poff) if positive else (s.neg, s.noff)
                    if a is not None:
                        _take(arr, base, a, aoff, floor, 1)
            off = base
        else:
            floor = _NO_FLOOR
        if positive:
            g.pos, g.poff, self._pfloor = arr, off, floor
        else:
            g.neg, g.noff, self._nfloor = arr, off, floor

    def read(self, now: float) -> float | None:
        lo = now // self._w - SLICES
        if self._k <= lo:
            if self._k != -_INF:
                self._clear()  # everything left the window: forget it all
            return None
        self._evict(lo)
        return _quantile(self._agg, self._q)


def _quantile(g: _Sketch, q: float) -> float:
    """The q-quantile of the counts in ``g``: linear interpolation between the closest ranks."""
    odd = g.odd
    _, ninf, pinf = odd if odd is not None else (0, 0, 0)
    neg, pos, zero = g.neg, g.pos, g.zero
    ncum = list(accumulate(reversed(neg))) if neg is not None else ()
    pcum = list(accumulate(pos)) if pos is not None else ()
    nn = ncum[-1] if ncum else 0
    pn = pcum[-1] if pcum else 0
    n = ninf + nn + zero + pn + pinf
    if n == 0:
        return _NAN  # only NaN observations
    top = g.noff + len(neg) - 1 if neg is not None else 0

    def nth(i: int) -> float:  # the value of rank i (0-based) in ascending order
        if i < ninf:
            return -_INF
        i -= ninf
        if i < nn:
            return -_value(top - bisect_right(ncum, i))
        i -= nn
        if i < zero:
            return 0.0
        i -= zero
        if i < pn:
            return _value(g.poff + bisect_right(pcum, i))
        return _INF

    h = q * (n - 1)
    i = int(h)
    v = nth(i)
    f = h - i
    if f and i + 1 < n:
        w = nth(i + 1)
        if w != v:
            if v == -_INF or w == _INF:
                return v if f < 0.5 else w
            v += f * (w - v)
    return v


_BY_AGG = {"sum": _Sum, "count": _Count, "mean": _Mean, "min": _Min, "max": _Max, "last": _Last,
           "quantile": _Quantile}
