"""Frames: how the log and the snapshot cut a file into checksummed pieces.

A frame is ``u32 length, u32 crc32(payload), u32 crc32(the 8 bytes before), payload``
(little-endian). The header has its own checksum, so a flipped bit in a length is seen as damage
rather than read as a frame that runs past the end of the file. ``read_frames`` tells a *torn
tail* (the last frame cut short by a crash mid-write, or a last frame whose payload never fully
reached the disk) from *damage* (a bad frame with more data after it), which it raises as
``DamagedFile`` naming the file and the offset.
"""
from __future__ import annotations

import struct
import zlib

from ..errors import GravelError

HEADER = struct.Struct("<III")
HEADER_SIZE = HEADER.size
MAX_FRAME = 1 << 31
_LEN_CRC = struct.Struct("<II")


class DamagedFile(GravelError):
    """A state file that is not what the gateway wrote; names the file and the offset."""

    def __init__(self, path: str, offset: int, reason: str):
        self.path = path
        self.offset = offset
        super().__init__(f"{path}: damaged at offset {offset}: {reason}")


def frame(payload: bytes) -> bytes:
    head = _LEN_CRC.pack(len(payload), zlib.crc32(payload))
    return head + zlib.crc32(head).to_bytes(4, "little") + payload


def read_frames(data, path: str, *, torn_ok: bool):
    """Yield ``(offset, payload)`` for each frame of ``data``; return the offset where the whole
    frames end (generator return value). A torn tail raises DamagedFile unless ``torn_ok``;
    damage always does."""
    view = memoryview(data)
    size = len(data)
    at = 0
    while at < size:
        rest = size - at
        if rest < HEADER_SIZE:
            if torn_ok:
                return at
            raise DamagedFile(path, at, f"{rest} bytes where a frame header needs {HEADER_SIZE}")
        length, crc, head_crc = HEADER.unpack_from(data, at)
        if zlib.crc32(view[at:at + 8]) != head_crc:
            if torn_ok and not any(view[at:]):  # zeros to the end: a tail that never got written
                return at
            raise DamagedFile(path, at, "frame header checksum mismatch")
        end = at + HEADER_SIZE + length
        if end > size:
            if torn_ok:
                return at
            raise DamagedFile(path, at, f"frame of {length} bytes runs past the end of the file")
        payload = view[at + HEADER_SIZE:end]
        if zlib.crc32(payload) != crc:
            if torn_ok and end == size:  # the last frame, not wholly on disk
                return at
            raise DamagedFile(path, at, "frame checksum mismatch")
        yield at, bytes(payload)
        at = end
    return at
