"""Label sets of the text formats: reading ``{a="1",b="2"}``, unescaping, and turning the pairs
into a series' identity (sorted, no duplicates, no reserved names, clear_mode split off).

The two dialects differ only in a few places, selected by ``om``: Prometheus text allows blanks
around tokens and a trailing comma and refuses unknown escapes (as the Pushgateway's parser
does); OpenMetrics allows neither blanks nor the trailing comma and keeps an unknown escape as
written (the conformance suite's ``escaping`` case).

UTF-8 names (Prometheus 3, prometheus/common ``expfmt``, the OpenMetrics 2.0 draft): a label name
outside ``[a-zA-Z_][a-zA-Z0-9_]*`` is written quoted (``{"url.scheme"="https"}``), a metric name
outside ``[a-zA-Z_:][a-zA-Z0-9_:]*`` goes inside the braces, quoted, without ``=``
(``{"http.server.duration","url.scheme"="https"}``). Quoted names take the escapes of label
values and must not be empty; a line names its metric once. OpenMetrics wants the quoted metric
name first in the braces (its ABNF); the text format takes it anywhere in them, as Prometheus'
``promparse`` and ``expfmt`` do.
"""
from __future__ import annotations

import re

from ..clearmode import parse_clear_mode
from ..errors import ClearModeError, ParseError

METRIC_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL_NAME = r"[a-zA-Z_][a-zA-Z0-9_]*"
# One pair without escapes or blanks, for the whole-line fast paths; FAST_PAIRS then splits a
# block of them and agrees with parse_label_set on every block made of FAST_PAIR.
FAST_PAIR = LABEL_NAME + r'="[^"\\]*"'
FAST_PAIRS = re.compile(rf'({LABEL_NAME})="([^"\\]*)"')

_BLANKS = re.compile(r"[ \t]*")
_NAME = re.compile(LABEL_NAME)
QUOTED = r'"(?:[^"\\]|\\.)*"'  # a label value or a quoted name, escapes included
_VALUE = re.compile(r'"((?:[^"\\]++|\\.)*+)"')
_ESCAPE = re.compile(r"\\(.?)")
_ESCAPES = {"\\": "\\", '"': '"', "n": "\n"}
_MODE_LABELS = ("clear_mode", "clearmode")


def found(text: str, pos: int) -> str:
    """What stands at ``pos``, for messages."""
    return f"found {text[pos:pos + 12]!r}" if pos < len(text) else "found end of line"


def unescape(raw: str, line: int, om: bool, what: str) -> str:
    """Undo ``\\\\``, ``\\"`` and ``\\n``; any other escape is an error, or kept in OpenMetrics."""
    if "\\" not in raw:
        return raw

    def replace(match: re.Match) -> str:
        char = match.group(1)
        plain = _ESCAPES.get(char)
        if plain is not None:
            return plain
        if om:
            return match.group(0)
        raise ParseError(f"invalid escape sequence '\\{char}' in {what}", line)

    return _ESCAPE.sub(replace, raw)


def parse_label_set(text: str, pos: int, line: int, om: bool, name: str | None = None,
                    exemplar: bool = False) -> tuple[list, int, str | None]:
    """Read the pairs of a label set from just after its ``{``; return them, the index after
    the closing ``}`` and the metric name: ``name`` (the one written before the braces, or None)
    or the quoted one found inside. Pairs are in input order, names and values unescaped."""
    pairs = []
    blanks = None if om else _BLANKS
    if blanks:
        pos = blanks.match(text, pos).end()
    if text[pos:pos + 1] == "}":
        return pairs, pos + 1, name
    while True:
        if text[pos:pos + 1] == '"':
            match = _VALUE.match(text, pos)
            if match is None:
                raise ParseError("unterminated quoted name: missing closing '\"'", line)
            key = unescape(match.group(1), line, om, "a quoted name")
            start = pos
            pos = match.end()
            if blanks:
                pos = blanks.match(text, pos).end()
            if text[pos:pos + 1] in (",", "}"):  # standing alone: the metric name
                name = _metric_name(key, name, pairs, om, exemplar, line)
                if text[pos] == "}":
                    return pairs, pos + 1, name
                pos += 1
                if blanks:
                    pos = blanks.match(text, pos).end()
                    if text[pos:pos + 1] == "}":
                        return pairs, pos + 1, name
                continue
            if not key:
                raise ParseError("empty label name: a quoted label name must not be empty", line)
            label = key
            if text[pos:pos + 1] != "=":
                raise ParseError(f"expected '=' after label name {text[start:match.end()]}, "
                                 f"{found(text, pos)}", line)
        else:
            match = _NAME.match(text, pos)
            if match is None:
                if pos >= len(text):
                    raise ParseError("unterminated label set: missing '}'", line)
                raise ParseError(f"expected a label name, {found(text, pos)}", line)
            label = match.group()
            pos = match.end()
            if blanks:
                pos = blanks.match(text, pos).end()
            if text[pos:pos + 1] != "=":
                raise ParseError(f"expected '=' after label name '{label}', {found(text, pos)}",
                                 line)
        pos += 1
        if blanks:
            pos = blanks.match(text, pos).end()
        match = _VALUE.match(text, pos)
        if match is None:
            if text[pos:pos + 1] == '"':
                raise ParseError(f"unterminated value of label '{label}': missing closing '\"'",
                                 line)
            raise ParseError(f"expected '\"' to start the value of label '{label}', "
                             f"{found(text, pos)}", line)
        pairs.append((label, unescape(match.group(1), line, om, f"the value of label '{label}'")))
        pos = match.end()
        if blanks:
            pos = blanks.match(text, pos).end()
        char = text[pos:pos + 1]
        if char == "}":
            return pairs, pos + 1, name
        if char != ",":
            if not char:
                raise ParseError("unterminated label set: missing '}'", line)
            raise ParseError(f"expected ',' or '}}' after the value of label '{label}', "
                             f"{found(text, pos)}", line)
        pos += 1
        if blanks:
            pos = blanks.match(text, pos).end()
            if text[pos:pos + 1] == "}":
                return pairs, pos + 1, name


def _metric_name(key: str, name: str | None, pairs: list, om: bool, exemplar: bool,
                 line: int) -> str:
    """The quoted metric name found in a label set, if it may stand there."""
    if exemplar:
        raise ParseError(f"quoted name '{key}' without '=' in an exemplar: exemplar labels name "
                         "no metric", line)
    if not key:
        raise ParseError("empty metric name: a quoted metric name must not be empty", line)
    if name is not None:
        raise ParseError(f"metric name given twice: '{name}' and '{key}'", line)
    if om and pairs:
        raise ParseError(f"the quoted metric name '{key}' must come first in the braces, before "
                         "the labels (OpenMetrics)", line)
    return key


def read_quoted(text: str, pos: int, line: int, om: bool, what: str) -> tuple[str, int]:
    """A quoted metric name starting at ``pos`` (a ``"``): the name unescaped, and the index
    after its closing quote; ``what`` ("metric name in a HELP line") words the errors."""
    match = _VALUE.match(text, pos)
    if match is None:
        raise ParseError(f"unterminated quoted {what}: missing closing '\"'", line)
    name = unescape(match.group(1), line, om, f"the quoted {what}")
    if not name:
        raise ParseError(f"empty {what}: a quoted name must not be empty", line)
    return name, match.end()


def check_unique(pairs: list, line: int, what: str = "label") -> None:
    if len(pairs) > 1 and len(dict(pairs)) != len(pairs):
        seen = set()
        for name, _ in pairs:
            if name in seen:
                raise ParseError(f"duplicate {what} '{name}'", line)
            seen.add(name)


def series_labels(pairs: list, line: int, inspect: bool = True, special: str | None = None):
    """Return ``(labels, mode, special_value)`` for a sample's pairs.

    ``labels`` is the sorted tuple without ``special`` (``le``/``quantile``, whose value is
    returned, None when absent) and without clear_mode, whose parsed value is ``mode``. With
    ``inspect`` False the caller vouches that no name starts with ``__`` or ``clear``: the fast
    paths check that on the raw label block, sparing a loop.
    """
    check_unique(pairs, line)
    mode = None
    special_value = None
    if inspect or special:
        kept = []
        for pair in pairs:
            name = pair[0]
            if name == special:
                special_value = pair[1]
            elif name in _MODE_LABELS:
                mode = _mode(pair[1], mode, line)
            elif name[:2] == "__":
                raise ParseError(f"label name '{name}' is reserved (names starting with '__')",
                                 line)
            else:
                kept.append(pair)
        pairs = kept
    if len(pairs) > 1:
        pairs.sort()
    return tuple(pairs), mode, special_value


def _mode(text: str, previous, line: int):
    try:
        mode = parse_clear_mode(text)
    except ClearModeError as err:
        raise ParseError(str(err), line) from None
    if previous is not None and previous != mode:
        raise ParseError(f"conflicting clear_mode values '{previous.text}' and '{text}'", line)
    return mode


def merge_mode(previous, mode, line: int):
    """The mode of a series whose lines each may carry the label; they must agree."""
    if previous is None:
        return mode
    if mode is None or mode == previous:
        return previous
    raise ParseError(f"conflicting clear_mode values '{previous.text}' and '{mode.text}' "
                     "for one series", line)


def series_text(name: str, labels: tuple) -> str:
    """``name{a="1"}`` for messages (values escaped as in the text formats)."""
    if not labels:
        return name
    inner = ",".join(f'{k}="{_escape(v)}"' for k, v in labels)
    return f"{name}{{{inner}}}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
