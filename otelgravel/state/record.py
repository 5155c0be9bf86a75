"""A record: one change to the state, as the log holds it (file log, Redis stream).

Layout (version 1), all integers little-endian::

    u8  version (1)   u8 kind   f64 time
    u16 number of grouping labels, then per label: u16 len, name (UTF-8), u32 len, value (UTF-8)
    u8  format (0 none, 1 text, 2 openmetrics, 3 protobuf)
    u32 len, body

Version 2 is version 1 followed by the request's idempotency key (``Idempotency-Key``, scoped
by the principal: see ``receivers/idempotency.py``) and its fingerprint::

    u16 len, key (UTF-8)   u8 len, fingerprint

A record without a key is written as version 1, byte for byte as before keys existed (logs
written by an older gateway read the same, and an unkeyed push pays no byte more).

Framing (length prefix, checksum, sequence number) is the log's business, not the record's.
Decoding builds only strings, floats and bytes: it runs no code whatever the input, and any input
that is not a whole record raises ``RecordError``.
"""
from __future__ import annotations

import struct
from functools import lru_cache

from ..errors import GravelError

VERSION = 1
VERSION_KEYED = 2  # version 1 + the idempotency key and fingerprint

PUSH = 1     # a Pushgateway push: group, fmt, body
OTLP = 2     # an OTLP export: body is the ExportMetricsServiceRequest as protobuf
DELETE = 3   # DELETE of a group
WIPE = 4     # the admin wipe
FAILURE = 5  # a push refused before it reached the store (push_failure_time_seconds)
EXPIRE = 6   # the expiry tick: series, groups and OTLP sources expire at ``time``
KINDS = {PUSH: "push", OTLP: "otlp", DELETE: "delete", WIPE: "wipe", FAILURE: "failure",
         EXPIRE: "expire"}

FORMATS = ("", "text", "openmetrics", "protobuf")
_FORMAT_CODE = {name: code for code, name in enumerate(FORMATS)}

_HEAD = struct.Struct("<BBdH")
_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")
_TAIL = struct.Struct("<BI")
_KEY = struct.Struct("<H")


class RecordError(GravelError):
    """Bytes that are not a record of a version this gateway reads."""


class Record:
    """``parsed`` (the Batch or message the receiver already parsed) is not encoded: it spares
    the local apply a second parse, and is None for a record read back from a log. ``key`` (the
    scoped idempotency key, or None) and ``fingerprint`` (bytes) are decided on at apply
    (``state/keys.py``)."""

    __slots__ = ("kind", "time", "group", "fmt", "body", "parsed", "key", "fingerprint")

    def __init__(self, kind: int, time: float, group: tuple = (), fmt: str = "",
                 body: bytes = b"", parsed: object = None, key: str | None = None,
                 fingerprint: bytes = b""):
        self.kind = kind
        self.time = time
        self.group = group
        self.fmt = fmt
        self.body = body
        self.parsed = parsed
        self.key = key
        self.fingerprint = fingerprint

    def __repr__(self) -> str:
        key = "" if self.key is None else f", key={self.key!r}"
        return (f"Record({KINDS.get(self.kind, self.kind)}, time={self.time}, group={self.group!r}, "
                f"fmt={self.fmt!r}, body={len(self.body)} bytes{key})")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Record) and all(
            getattr(self, k) == getattr(other, k)
            for k in ("kind", "time", "group", "fmt", "body", "key", "fingerprint"))


@lru_cache(maxsize=8192)  # a function instance pushes to the same group again and again
def _group_bytes(group: tuple) -> bytes:
    parts = []
    for name, value in group:
        n = name.encode()
        v = value.encode()
        parts += (_U16.pack(len(n)), n, _U32.pack(len(v)), v)
    return b"".join(parts)


def key_part(r: Record) -> bytes:
    """What version 2 adds after the body: the idempotency key and its fingerprint."""
    key = r.key.encode()
    fingerprint = r.fingerprint
    if len(key) > 0xFFFF or len(fingerprint) > 0xFF:
        raise RecordError("idempotency key or fingerprint too long for a record")
    return b"".join((_KEY.pack(len(key)), key, bytes((len(fingerprint),)), fingerprint))


def encode_record(r: Record) -> bytes:
    body = r.body
    if r.key is None:
        return b"".join((_HEAD.pack(VERSION, r.kind, r.time, len(r.group)), _group_bytes(r.group),
                         _TAIL.pack(_FORMAT_CODE[r.fmt], len(body)), body))
    return b"".join((_HEAD.pack(VERSION_KEYED, r.kind, r.time, len(r.group)),
                     _group_bytes(r.group), _TAIL.pack(_FORMAT_CODE[r.fmt], len(body)), body,
                     key_part(r)))


def decode_record(b: bytes) -> Record:
    try:
        version, kind, time, n = _HEAD.unpack_from(b, 0)
        if version != VERSION and version != VERSION_KEYED:
            raise RecordError(f"record version {version} (this gateway reads {VERSION} and "
                              f"{VERSION_KEYED})")
        if kind not in KINDS:
            raise RecordError(f"unknown record kind {kind}")
        at = _HEAD.size
        group = []
        for _ in range(n):
            (size,) = _U16.unpack_from(b, at)
            at += 2
            name = b[at:at + size]
            at += size
            (size,) = _U32.unpack_from(b, at)
            at += 4
            value = b[at:at + size]
            at += size
            if at > len(b):
                raise RecordError("record cut short in its grouping labels")
            group.append((name.decode(), value.decode()))
        fmt = b[at]
        (size,) = _U32.unpack_from(b, at + 1)
        at += 5
        body = bytes(b[at:at + size])
        at += size
        if fmt >= len(FORMATS):
            raise RecordError(f"unknown record format {fmt}")
        key = None
        fingerprint = b""
        if version == VERSION_KEYED:
            (size,) = _KEY.unpack_from(b, at)
            at += 2
            key = bytes(b[at:at + size]).decode()
            at += size
            size = b[at]
            fingerprint = bytes(b[at + 1:at + 1 + size])
            at += 1 + size
        if at != len(b):
            raise RecordError("record body does not end where the record does")
    except (struct.error, IndexError, UnicodeDecodeError) as exc:
        raise RecordError(f"not a record: {exc}") from None
    return Record(kind, time, tuple(group), FORMATS[fmt], body, None, key, fingerprint)
