"""One log frame (``framing.py``) of one record (``record.py``), built in one step: by the C
accelerator ``_logframe`` where it was built (``pip install`` builds it when a C compiler is
there, and installs without it when not), else by ``python_frame`` below, byte for byte the same
(``tests/unit/state/test_logframe.py`` holds them to that).

Why C for this one step: under the bench's push load, encoding and framing a record in Python
(about ten small packs, joins and two CRC32 calls) cost the gateway about 4 µs a push, half of
what ``sync: interval`` costs over memory-only; in one C call it is well under 1 µs (the A/B
harness: 88.5 → 84.6 µs of gateway CPU a push, memory-only 80.8).
"""
from __future__ import annotations

import struct

from .framing import frame
from .record import (_FORMAT_CODE, _HEAD, _TAIL, VERSION, VERSION_KEYED, Record, _group_bytes,
                     key_part)

_SEQ = struct.Struct("<Q")


def python_frame(seq: int, version: int, kind: int, time: float, ngroup: int, group: bytes,
                 fmt: int, body: bytes, tail: bytes) -> bytes:
    """The frame of ``u64 seq`` and the record's pieces, in Python (the reference)."""
    return frame(b"".join((_SEQ.pack(seq), _HEAD.pack(version, kind, time, ngroup), group,
                           _TAIL.pack(fmt, len(body)), body, tail)))


try:
    from ._logframe import frame_record as _frame
    ACCELERATED = True
except ImportError:  # built without a C compiler
    _frame = python_frame
    ACCELERATED = False


def frame_record(seq: int, r: Record) -> bytes:
    """The log frame of record ``r`` as record number ``seq``."""
    body = r.body if type(r.body) is bytes else bytes(r.body)
    if r.key is None:
        return _frame(seq, VERSION, r.kind, r.time, len(r.group), _group_bytes(r.group),
                      _FORMAT_CODE[r.fmt], body, b"")
    return _frame(seq, VERSION_KEYED, r.kind, r.time, len(r.group), _group_bytes(r.group),
                  _FORMAT_CODE[r.fmt], body, key_part(r))
