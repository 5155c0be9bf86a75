"""Number tokens of the text formats, with the syntax Prometheus accepts and nothing more.

Python's ``float()`` is far more liberal than Go's ``strconv.ParseFloat`` as Prometheus calls it
(``1_000``, ``+nan``, non-ASCII digits, surrounding whitespace), so every token is matched
against the grammar first. ``FLOAT`` is exported for the parsers' whole-line fast paths.
"""
from __future__ import annotations

import re

from ..model import INF

# Decimal (``1``, ``1.``, ``.5``, ``1e-3``), infinity with an optional sign, NaN; case-insensitive
# words as in Go and in the OpenMetrics ABNF. No hex, no underscores, no sign on NaN.
FLOAT = (r"[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?"
         r"|[-+]?[iI][nN][fF](?:[iI][nN][iI][tT][yY])?|[nN][aA][nN]")
# An OpenMetrics timestamp: a decimal, never a word.
REAL = r"[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?"

_FLOAT = re.compile(FLOAT)
_REAL = re.compile(REAL)
_INT = re.compile(r"[0-9]+")
_INT64_MAX = 2 ** 63 - 1


def parse_float(token: str) -> float | None:
    """A sample value, or None when Prometheus would refuse it (bad syntax or out of range)."""
    if _FLOAT.fullmatch(token) is None:
        return None
    value = float(token)
    return None if (value == INF or value == -INF) and overflowed(token) else value


def parse_real(token: str) -> float | None:
    """An OpenMetrics timestamp: a finite decimal number."""
    if _REAL.fullmatch(token) is None:
        return None
    value = float(token)
    return None if value == INF or value == -INF else value


def parse_int64_timestamp(token: str) -> int | None:
    """A Prometheus text timestamp: milliseconds as digits that fit an int64."""
    if _INT.fullmatch(token) is None:
        return None
    if len(token) > 19 and len(token.lstrip("0")) > 19:
        return None  # over int64 whatever it is; and int() refuses more than 4300 digits
    value = int(token)
    return value if value <= _INT64_MAX else None


def overflowed(token: str) -> bool:
    """For a token that gave an infinite value: was it a number too large (``1e999``, which Go
    refuses with a range error) rather than an infinity word? The fast paths' one extra check."""
    return token[-1] in "0123456789."
