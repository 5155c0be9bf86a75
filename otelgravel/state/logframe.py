"""One log frame (``framing.py``) of one record (``record.py``), built in one step: by the C
accelerator ``_logframe`` where it was built (``pip install`` builds it when a C compiler is
there, and installs without it when not), else in Python as before, byte for byte the same
(``tests/unit/state/test_logframe.py`` holds them to that).

Why C for this one step: under the bench's push load, encoding and framing a record in Python
(about ten small packs, joins and two CRC32 calls) cost the gateway about 4 µs a push, half of
what ``sync: interval`` costs over memory-only; in one C call it is well under 1 µs (the A/B
harness: 88.5 → 84.6 µs of gateway CPU a push, memory-only 80.8).
"""
from __future__ import annotations

import struct

from .framing import frame
from .record import (_FORMAT_CODE, VERSION, VERSION_KEYED, Record, _group_bytes, encode_record,
                     key_part)

try:
    from ._logframe import frame_record as _c_frame
except ImportError:  # built without a C compiler
    _c_frame = None
ACCELERATED = _c_frame is not None

_SEQ = struct.Struct("<Q")


def python_frame_record(seq: int, r: Record) -> bytes:
    """The frame in Python: the record's encoding after its sequence number, framed."""
    return frame(_SEQ.pack(seq) + encode_record(r))


def c_frame_record(seq: int, r: Record) -> bytes:
    """The same bytes from one C call."""
    body = r.body if type(r.body) is bytes else bytes(r.body)
    if r.key is None:
        return _c_frame(seq, VERSION, r.kind, r.time, len(r.group), _group_bytes(r.group),
                        _FORMAT_CODE[r.fmt], body, b"")
    return _c_frame(seq, VERSION_KEYED, r.kind, r.time, len(r.group), _group_bytes(r.group),
                    _FORMAT_CODE[r.fmt], body, key_part(r))


frame_record = c_frame_record if ACCELERATED else python_frame_record
