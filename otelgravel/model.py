"""The one vocabulary shared by both ways in and the one way out.

A push (Prometheus text, OpenMetrics, protobuf or OTLP) is parsed into a ``Batch``: a list of
``Family``. Each family has one type and a list of ``Point``. A point is one *series* as the
store sees it: its identifying labels (never ``le``, ``quantile`` or ``clear_mode``), the
``ClearMode`` that says what the incoming value means, and its value(s):

- counter, gauge, unknown, info, stateset: ``value``
- histogram, gaugehistogram: ``buckets`` (cumulative, ascending ``le``, last is +Inf), ``sum``,
  ``count`` (``_gsum``/``_gcount`` for gaugehistogram)
- summary: ``quantiles``, ``sum``, ``count``
- a native (exponential) histogram: ``native`` (a ``NativeHistogram``), ``sum``, ``count``, and
  ``buckets`` None. A histogram point is classic or native, never both.

Naming: a counter family is named without ``_total`` (OpenMetrics style) whatever the input
format; writers add the suffix back. An info family is named without ``_info`` when it came typed
``info`` (OpenMetrics); a ``gauge`` called ``x_info`` (prometheus_client's text output) stays a
gauge named ``x_info``.

This module imports nothing from the package.
"""
from __future__ import annotations

from dataclasses import dataclass, field

COUNTER = "counter"
GAUGE = "gauge"
HISTOGRAM = "histogram"
SUMMARY = "summary"
INFO = "info"
STATESET = "stateset"
GAUGEHISTOGRAM = "gaugehistogram"
UNKNOWN = "unknown"
TYPES = frozenset({COUNTER, GAUGE, HISTOGRAM, SUMMARY, INFO, STATESET, GAUGEHISTOGRAM, UNKNOWN})

INF = float("inf")

Labels = tuple  # tuple[tuple[str, str], ...], sorted by label name, no duplicates


@dataclass(frozen=True, slots=True)
class ClearMode:
    """What an incoming value means. ``kind`` is one of SUM, REPLACE, FAMILY, WINDOW.

    For WINDOW: ``agg`` is sum, mean, min, max, count, last or quantile; ``quantile`` is the
    rank in (0, 1) for agg == "quantile" (median is 0.5); ``seconds`` is the window length.
    ``text`` is the spelling the user wrote, for messages.
    """

    kind: str
    text: str
    agg: str = ""
    quantile: float = 0.0
    seconds: float = 0.0


SUM_KIND = "sum"
REPLACE_KIND = "replace"
FAMILY_KIND = "family"
WINDOW_KIND = "window"

SUM = ClearMode(SUM_KIND, "sum")
REPLACE = ClearMode(REPLACE_KIND, "replace")
FAMILY = ClearMode(FAMILY_KIND, "family")

# Per-type default when neither a label, an attribute nor a server rule names a mode.
DEFAULT_MODE = {
    COUNTER: SUM,
    GAUGE: REPLACE,
    HISTOGRAM: SUM,
    SUMMARY: SUM,  # _sum/_count add up; quantiles always take the latest push
    UNKNOWN: SUM,
    INFO: FAMILY,
    STATESET: REPLACE,
    GAUGEHISTOGRAM: REPLACE,
}


@dataclass(slots=True)
class Exemplar:
    labels: Labels
    value: float
    timestamp: float | None = None


@dataclass(slots=True)
class NativeHistogram:
    """The buckets of a native (exponential) histogram, Prometheus' indexing: at ``schema`` s the
    base is 2 ** (2 ** -s) and positive bucket i holds (base**(i-1), base**i]; negative bucket i
    the mirror image; the zero bucket holds [-zero_threshold, zero_threshold]. ``positive`` and
    ``negative`` map a bucket index to its count (absolute counts, no zero entries); OTLP's
    index is Prometheus' minus one. The arithmetic is in ``nativehist.py``."""
    schema: int
    zero_threshold: float = 0.0
    zero_count: float = 0.0
    positive: dict = field(default_factory=dict)
    negative: dict = field(default_factory=dict)


class Point:
    """One series of a push. ``mode`` is None until the processor resolves the default."""

    __slots__ = ("labels", "mode", "value", "buckets", "sum", "count", "quantiles", "exemplar",
                 "bucket_exemplars", "native")

    def __init__(self, labels: Labels, mode: ClearMode | None = None, value: float = 0.0,
                 buckets: list | None = None, sum: float | None = None,
                 count: float | None = None, quantiles: list | None = None,
                 exemplar: Exemplar | None = None, bucket_exemplars: dict | None = None,
                 native: NativeHistogram | None = None):
        self.labels = labels
        self.mode = mode
        self.value = value
        self.buckets = buckets            # list[(le: float, cumulative: float)], ascending, last +Inf
        self.sum = sum
        self.count = count
        self.quantiles = quantiles        # list[(q: float, value: float)], ascending q
        self.exemplar = exemplar          # for single-value points
        self.bucket_exemplars = bucket_exemplars  # {le: Exemplar} for bucketed points
        self.native = native              # a native histogram's buckets (then buckets is None)

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={getattr(self, k)!r}" for k in self.__slots__
                           if getattr(self, k) not in (None, 0.0) or k == "value")
        return f"Point({fields})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Point) and all(
            getattr(self, k) == getattr(other, k) for k in self.__slots__)


class Family:
    """A pushed family. ``utf8`` is set by the parser when a label name of some point may lie
    outside the legacy set (``[a-zA-Z_][a-zA-Z0-9_]*``): only then does the store check that no
    two label names of a series are written alike by an escaping scheme."""
    __slots__ = ("name", "type", "help", "unit", "points", "utf8")

    def __init__(self, name: str, type: str, help: str = "", unit: str = "",
                 points: list[Point] | None = None, utf8: bool = False):
        self.name = name
        self.type = type
        self.help = help
        self.unit = unit
        self.points = [] if points is None else points
        self.utf8 = utf8

    def __repr__(self) -> str:
        return (f"Family({self.name!r}, {self.type!r}, help={self.help!r}, unit={self.unit!r}, "
                f"points={self.points!r}" + (", utf8=True)" if self.utf8 else ")"))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Family) and all(
            getattr(self, k) == getattr(other, k) for k in self.__slots__)


class Batch(list):
    """A push's families (names unique within it) that knows its *shape*, when its parser does.

    Batches with the same ``shape`` (any object; compared by identity) have the same families,
    types, series and ``clear_mode`` labels; only their values differ. The store uses it to skip
    checks it made for the same shape and group before. A plain list is a batch of no known shape.
    """
    __slots__ = ("shape",)

    def __init__(self, families=(), shape: object = None):
        super().__init__(families)
        self.shape = shape
