"""Lines of the two text formats, before their labels and numbers: the body as text, and the
whole-line fast path.

A canonical sample line (single spaces, no escapes, no exemplar) matches the expression that
``fast_line`` builds, whose groups are the name, the label block, the value and the timestamp;
``fast_sample`` takes the match apart. A line the expression refuses goes through the parser's
careful path, which also words the errors.
"""
from __future__ import annotations

import re

from ..errors import ParseError
from ..model import INF
from ._labels import FAST_PAIR, FAST_PAIRS, METRIC_NAME
from ._numbers import FLOAT, overflowed

_findall = FAST_PAIRS.findall


def decode(body: bytes) -> str:
    """The body as text; ParseError on the line of the first byte that is not UTF-8."""
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ParseError("body is not valid UTF-8", body.count(b"\n", 0, err.start) + 1) from None


def fast_line(trailing_comma: bool, timestamp: str) -> re.Pattern:
    """The expression of a canonical sample line whose timestamp matches ``timestamp``."""
    comma = ",?" if trailing_comma else ""
    return re.compile(rf"({METRIC_NAME})(?:\{{((?:{FAST_PAIR}(?:,{FAST_PAIR})*{comma})?)\}})? "
                      rf"({FLOAT})(?: ({timestamp}))?")


def fast_sample(match: re.Match, lineno: int) -> tuple[str, list, bool, float, str | None]:
    """``(name, pairs, inspect, value, timestamp token)`` of a matched line. ``inspect`` is False
    when no label name can start with ``__`` or ``clear``: ``series_labels`` may skip its loop."""
    name, block, token, ts = match.groups()
    value = float(token)
    if (value == INF or value == -INF) and overflowed(token):
        raise ParseError(f"invalid value '{token}': out of range", lineno)
    if block:
        return name, _findall(block), "__" in block or "clear" in block, value, ts
    return name, [], False, value, ts
