"""Idempotency keys: which keyed records were applied, so that a retry changes nothing.

A push sent with ``Idempotency-Key`` (``receivers/idempotency.py`` reads the header) carries the
key and a fingerprint of the request in its record. The applier decides here, in log order:

- a key not in the table: the record is applied; if it was applied (no refusal), the key is
  remembered with the fingerprint, the record's time and the outcome to answer again;
- a key in the table with the same fingerprint: nothing is applied; the answer is the first
  one's (``Replayed``), the receiver adds ``Idempotent-Replayed: true``;
- the same key with another fingerprint: ``IdempotencyConflict`` (422), nothing changes.

A refused record (a type conflict, the series limit) leaves no key: it changed nothing, so its
retry is decided afresh (as Stripe does for a request that failed validation).

The table is part of the state (snapshots hold it) and its bound is deterministic, so every
replica and every replay forgets the same keys: at most ``max_keys`` (the oldest applied go
first), and a key older than ``ttl`` seconds of *record* time is forgotten. The table's clock
(``now``) is the latest time of a keyed record it has seen, never a wall clock; it is in the
snapshot too, so a replay from a snapshot decides as the live gateway did.
"""
from __future__ import annotations

from collections import OrderedDict

from ..errors import IdempotencyConflict

DEFAULT_MAX_KEYS = 100_000
DEFAULT_TTL = 3600.0


class Replayed:
    """The answer of a record whose key was applied before: ``result`` is the first one's."""

    __slots__ = ("result",)

    def __init__(self, result):
        self.result = result


class KeyTable:
    """key -> (fingerprint, time, outcome), in the order the keys were applied."""

    __slots__ = ("max_keys", "ttl", "entries", "now")

    def __init__(self, max_keys: int = DEFAULT_MAX_KEYS, ttl: float = DEFAULT_TTL):
        self.max_keys = max_keys
        self.ttl = ttl
        self.entries: OrderedDict[str, tuple[bytes, float, object]] = OrderedDict()
        self.now = 0.0

    def __len__(self) -> int:
        return len(self.entries)

    def seen(self, key: str, fingerprint: bytes, time: float):
        """The outcome remembered for ``key`` (a ``Replayed``), or None when the record is to be
        applied; IdempotencyConflict when the key was used for another request."""
        if time > self.now:
            self.now = time
            self._forget_old()
        entry = self.entries.get(key)
        if entry is None:
            return None
        if entry[1] <= self.now - self.ttl:  # too old, not yet at the front of the table
            del self.entries[key]
            return None
        if entry[0] != fingerprint:
            raise IdempotencyConflict(
                f"422: Idempotency-Key {key.rpartition(chr(0))[2]!r} was used for another "
                "request (other method, path, Content-Type or body); send a new key")
        return Replayed(entry[2])

    def remember(self, key: str, fingerprint: bytes, time: float, outcome) -> None:
        entries = self.entries
        entries[key] = (fingerprint, time, outcome)
        while len(entries) > self.max_keys:
            entries.popitem(last=False)

    def _forget_old(self) -> None:
        entries = self.entries
        oldest = self.now - self.ttl
        while entries:
            first = next(iter(entries.values()))
            if first[1] > oldest:
                return
            entries.popitem(last=False)

    def reset(self) -> None:
        self.entries.clear()
        self.now = 0.0

    # ---- snapshots ------------------------------------------------------------------------

    def dump(self) -> tuple[float, list]:
        """``(now, [(key, fingerprint, time, outcome), ...])`` in table order."""
        return self.now, [(k, fp, t, o) for k, (fp, t, o) in self.entries.items()]

    def restore(self, dumped: tuple[float, list] | None) -> None:
        """The table of a snapshot (None: a snapshot without keys), under this gateway's bound."""
        self.reset()
        if dumped is None:
            return
        now, rows = dumped
        self.now = now
        for key, fingerprint, time, outcome in rows:
            self.entries[key] = (fingerprint, time, outcome)
        self._forget_old()
        while len(self.entries) > self.max_keys:
            self.entries.popitem(last=False)
