"""Undo a request's Content-Encoding, never producing more than ``limit`` bytes.

``decode_body(body, content_encoding, limit)`` picks a decoder from a table keyed by encoding,
as httpx's ``_decoders`` does:

- ``identity`` (or no header): the body itself.
- ``gzip`` / ``x-gzip``: one or more gzip members.
- ``deflate``: the zlib format of RFC 1950 as the standard says, or the raw RFC 1951 stream some
  clients send instead; the two-byte zlib header tells them apart.
- ``snappy``: the block format (as Prometheus remote write), through python-snappy when it is
  installed. The uncompressed length is read from the block's preamble before anything is
  decompressed.

A list (``Content-Encoding: gzip, identity``) is undone last applied first. Output beyond
``limit`` raises ``BodyTooLarge`` as soon as it is produced, so a gzip bomb costs at most
``limit`` bytes of memory; corrupt input raises ``DecodeError`` from the library's error; an
encoding not in the table raises ``UnsupportedMediaType``. An empty body is empty whatever its
declared encoding.
"""
from __future__ import annotations

import zlib

from ..errors import BodyTooLarge, DecodeError, UnsupportedMediaType

try:
    import snappy as _snappy
except ImportError:  # optional: pip install otelgravel[fast]
    _snappy = None

_GZIP_WBITS = 16 + zlib.MAX_WBITS
_ZLIB_WBITS = zlib.MAX_WBITS
_RAW_WBITS = -zlib.MAX_WBITS


def decode_body(body: bytes, content_encoding: str | None, limit: int) -> bytes:
    if content_encoding:  # most pushes have none: nothing to split or look up
        for coding in reversed([c.strip().lower() for c in content_encoding.split(",")]):
            if coding in ("", "identity"):
                continue
            decoder = _DECODERS.get(coding)
            if decoder is None:
                raise UnsupportedMediaType(
                    f"unsupported Content-Encoding {coding!r}: expected one of "
                    f"{', '.join(sorted(_DECODERS))} or identity")
            if body:  # an empty body decodes to itself, whatever its declared encoding
                body = decoder(body, limit)
    if len(body) > limit:
        raise _too_large(limit)
    return body


def _too_large(limit: int) -> BodyTooLarge:
    return BodyTooLarge(f"body is larger than the limit of {limit} bytes")


def _inflate(data: bytes, wbits: int, limit: int, what: str, members: bool) -> bytes:
    """Decompress a zlib/gzip/raw-deflate stream, stopping at ``limit + 1`` bytes of output.

    With ``members`` (gzip), data after the end of a member starts another member; otherwise
    it is an error, as is data that ends before the stream does.
    """
    out = bytearray()
    while True:
        d = zlib.decompressobj(wbits)
        try:
            while not d.eof:
                room = limit + 1 - len(out)
                chunk = d.decompress(data, room)
                out += chunk
                if len(out) > limit:
                    raise _too_large(limit)
                data = d.unconsumed_tail
                if not data:
                    break  # input used up below the cap, so nothing is held back: cut short
        except zlib.error as exc:
            raise DecodeError(f"invalid {what} body: {exc}") from exc
        if not d.eof:
            raise DecodeError(f"invalid {what} body: unexpected end of data")
        data = d.unused_data
        if not data or (members and not data.strip(b"\x00")):
            return bytes(out)  # trailing NUL padding is tolerated, as by Python's gzip module
        if not members:
            raise DecodeError(f"invalid {what} body: {len(data)} bytes of trailing data")


def _gzip(data: bytes, limit: int) -> bytes:
    return _inflate(data, _GZIP_WBITS, limit, "gzip", members=True)


def _looks_like_zlib(data: bytes) -> bool:
    # RFC 1950: CM = 8 (deflate), CINFO <= 7, and the header is a multiple of 31.
    return (len(data) >= 2 and data[0] & 0x0F == 8 and data[0] >> 4 <= 7
            and ((data[0] << 8) | data[1]) % 31 == 0)


def _deflate(data: bytes, limit: int) -> bytes:
    if _looks_like_zlib(data):
        try:
            return _inflate(data, _ZLIB_WBITS, limit, "deflate", members=False)
        except DecodeError as first:
            try:  # a raw stream can start with two bytes that look like a zlib header
                return _inflate(data, _RAW_WBITS, limit, "deflate", members=False)
            except DecodeError:
                raise first from first.__cause__
    return _inflate(data, _RAW_WBITS, limit, "deflate", members=False)


def _snappy_length(data: bytes) -> int:
    """The uncompressed length from a snappy block's varint preamble (at most 32 bits)."""
    length = 0
    for i, byte in enumerate(data[:5]):
        length |= (byte & 0x7F) << (7 * i)
        if not byte & 0x80:
            return length
    raise DecodeError("invalid snappy body: bad length preamble")


def _snappy_block(data: bytes, limit: int) -> bytes:
    if _snappy is None:
        raise UnsupportedMediaType("Content-Encoding 'snappy' needs the python-snappy package, "
                                   "which is not installed (pip install python-snappy)")
    if _snappy_length(data) > limit:
        raise _too_large(limit)
    try:
        return _snappy.uncompress(data)
    except _snappy.UncompressError as exc:
        reason = exc.__cause__ or exc
        raise DecodeError(f"invalid snappy body: {reason or 'corrupt input'}") from exc


_DECODERS = {
    "gzip": _gzip,
    "x-gzip": _gzip,
    "deflate": _deflate,
    "snappy": _snappy_block,
}
