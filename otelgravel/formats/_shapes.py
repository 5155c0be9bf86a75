"""The memory of body shapes, for parsers of line formats whose bodies repeat with new values.

A function pushes the same lines every time; only the numbers change. ``cut`` splits a body into
its *shape* (each line without its last token) and those last tokens. A parser that has read a
body line by line makes a ``Shape`` of it: its plan (the parser's own description of the batch,
with value indexes in place of values) and which token is which value. The next body of that shape
needs only its values read and checked: ``Shape.values``. ``ShapeMemory`` keeps the shapes, bounded,
and only those that came back, so that bodies which never repeat cost no plan.
"""
from __future__ import annotations

import re
from operator import itemgetter

from ..model import INF
from ._numbers import overflowed

# A canonical timestamp (integer milliseconds, at most 18 digits): other spellings are for a
# parser's careful path to judge.
STAMP = "[0-9]{1,18}"
_STAMPS = re.compile(rf"{STAMP}(?: {STAMP})*")
# What float() takes beyond the grammar's FLOAT: other characters (``_``, blanks, non-ASCII
# digits) and a signed NaN.
_NOT_FLOAT = re.compile(r"[^0-9A-Za-z.+\- ]|[-+][nN]")
_HEAD = itemgetter(0)
_LAST = itemgetter(2)


def cut(text: str) -> tuple[tuple, list]:
    """``(shape, tokens)``: each line without its last space-separated token, and those tokens."""
    parts = [line.rpartition(" ") for line in text.split("\n")]
    return tuple(map(_HEAD, parts)), list(map(_LAST, parts))


def _picker(indexes: list):
    """A function of a list that returns the items at ``indexes`` as a tuple."""
    if len(indexes) > 1:
        return itemgetter(*indexes)
    if indexes:
        index = indexes[0]
        return lambda items: (items[index],)
    return lambda items: ()


class Shape:
    """Which of a shape's tokens are values or timestamps, and what the others must be.

    ``value_lines`` has, per value index, the (1-based) line whose last token is that value, or 0
    when the value is part of the shape; ``stamp_lines`` the lines whose last token is a timestamp
    (checked as canonical, then dropped). Every other token (the last word of a HELP line, a type)
    must come back unchanged. ``values`` are the values the plan was read with.
    """
    __slots__ = ("plan", "base", "take_values", "dense", "value_at", "take_fixed", "fixed",
                 "take_stamps")

    def __init__(self, plan: list, values: list, value_lines: list, stamp_lines: list,
                 tokens: list):
        self.plan = plan
        self.base = values
        value_of_line = {line: index for index, line in enumerate(value_lines) if line}
        stamped = set(stamp_lines)
        value_slots, self.value_at, fixed_slots, stamp_slots = [], [], [], []
        for slot in range(len(tokens)):
            index = value_of_line.get(slot + 1)
            if index is not None:
                value_slots.append(slot)
                self.value_at.append(index)
            elif slot + 1 in stamped:
                stamp_slots.append(slot)
            else:
                fixed_slots.append(slot)
        self.take_values = _picker(value_slots)
        self.dense = self.value_at == list(range(len(values)))
        self.take_fixed = _picker(fixed_slots)
        self.fixed = self.take_fixed(tokens)
        self.take_stamps = _picker(stamp_slots) if stamp_slots else None

    def values(self, tokens: list) -> list | None:
        """The values of a body of this shape; None when the line parser must read it (a token
        the grammar refuses or does not spell canonically, another fixed token)."""
        if self.take_fixed(tokens) != self.fixed:
            return None
        if self.take_stamps is not None and \
                _STAMPS.fullmatch(" ".join(self.take_stamps(tokens))) is None:
            return None
        texts = self.take_values(tokens)
        try:
            read = list(map(float, texts))
        except ValueError:
            return None
        if _NOT_FLOAT.search(" ".join(texts)) is not None:
            return None
        if INF in read or -INF in read:
            if any(overflowed(t) for t, v in zip(texts, read) if v == INF or v == -INF):
                return None
        if self.dense:
            return read
        values = list(self.base)
        for index, value in zip(self.value_at, read):
            values[index] = value
        return values


class ShapeMemory:
    """Shapes by their key: bodies up to ``max_text`` characters, at most ``max_chars`` characters
    of keys (then it starts over); a shape is kept when its key comes back (``seen_before``)."""

    def __init__(self, max_text: int = 32 << 10, max_chars: int = 16 << 20,
                 max_seen: int = 1 << 16):
        self.max_text = max_text
        self.max_chars = max_chars
        self.max_seen = max_seen
        self.shapes: dict[tuple, Shape] = {}
        self.chars = 0
        self.seen_once: set[int] = set()  # hashes of the keys met once

    def get(self, key: tuple) -> Shape | None:
        return self.shapes.get(key)

    def seen_before(self, key: tuple) -> bool:
        """True the second time a key is met; the first time it is noted (by its hash)."""
        seen = hash(key)
        if seen in self.seen_once:
            return True
        if len(self.seen_once) >= self.max_seen:
            self.seen_once.clear()
        self.seen_once.add(seen)
        return False

    def remember(self, key: tuple, shape: Shape) -> None:
        if key in self.shapes:
            self.shapes[key] = shape
            return
        size = sum(map(len, key))
        if self.chars + size > self.max_chars:
            self.shapes.clear()
            self.chars = 0
        self.shapes[key] = shape
        self.chars += size

    def clear(self) -> None:
        self.shapes.clear()
        self.seen_once.clear()
        self.chars = 0
