"""Parse a clear_mode spelling (``sum``, ``family``, ``mean5m``, ``p99_1h30m``) into a ClearMode.

Strict on purpose: the Gravel Gateway read ``summary5m`` as a sum by prefix matching and panicked
on ``sum0s``. Here the whole value must match, the duration must be Go-style and positive, and
anything else raises ClearModeError naming the value.
"""
from __future__ import annotations

import re
from functools import lru_cache

from .errors import ClearModeError
from .model import FAMILY, REPLACE, SUM, WINDOW_KIND, ClearMode

_PLAIN = {"sum": SUM, "aggregate": SUM, "replace": REPLACE, "family": FAMILY, "info": FAMILY}
_WINDOWED = re.compile(r"(sum|mean|min|max|count|last|median|p(\d\d))_?((?:\d+(?:\.\d+)?(?:h|ms|m|s))+)")
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(h|ms|m|s)")
_UNIT_SECONDS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
_HELP = ("expected sum, aggregate, replace, family, info, or <agg>[_]<duration> with agg one of "
         "sum, mean, min, max, count, last, median, p01..p99 and a Go duration such as 30s, 5m, 1h30m")


def parse_duration(text: str) -> float:
    """Go-style duration (``1h30m``, ``30s``, ``250ms``) to seconds; ValueError if malformed."""
    pos = 0
    total = 0.0
    for match in _DURATION_PART.finditer(text):
        if match.start() != pos:
            raise ValueError(f"malformed duration {text!r}")
        total += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        pos = match.end()
    if pos != len(text) or not text:
        raise ValueError(f"malformed duration {text!r}")
    return total


@lru_cache(maxsize=1024)
def parse_clear_mode(text: str) -> ClearMode:
    plain = _PLAIN.get(text)
    if plain is not None:
        return plain
    match = _WINDOWED.fullmatch(text)
    if match is None:
        raise ClearModeError(f'invalid clear_mode "{text}": {_HELP}')
    agg, digits, duration = match.groups()
    seconds = parse_duration(duration)
    if seconds <= 0:
        raise ClearModeError(f'invalid clear_mode "{text}": the window must be longer than zero')
    quantile = 0.0
    if agg == "median":
        agg, quantile = "quantile", 0.5
    elif digits is not None:
        if digits == "00":
            raise ClearModeError(f'invalid clear_mode "{text}": quantile p00 is not in p01..p99')
        agg, quantile = "quantile", int(digits) / 100
    return ClearMode(WINDOW_KIND, text, agg, quantile, seconds)
