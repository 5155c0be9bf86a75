"""Frames: a torn tail is told apart from damage, which names the offset."""
import pytest

from otelgravel.state.framing import HEADER_SIZE, DamagedFile, frame, read_frames

PAYLOADS = [b"first", b"second" * 50, b"third"]
DATA = b"".join(frame(p) for p in PAYLOADS)
SECOND = len(frame(PAYLOADS[0]))
THIRD = SECOND + len(frame(PAYLOADS[1]))


def read(data, torn_ok=True):
    gen = read_frames(data, "log", torn_ok=torn_ok)
    out = []
    while True:
        try:
            out.append(next(gen))
        except StopIteration as end:
            return out, end.value


def flip(data, at):
    b = bytearray(data)
    b[at] ^= 0x10
    return bytes(b)


def test_whole_frames():
    frames, end = read(DATA, torn_ok=False)
    assert [p for _, p in frames] == PAYLOADS and [o for o, _ in frames] == [0, SECOND, THIRD]
    assert end == len(DATA)


@pytest.mark.parametrize("data, whole", [
    (DATA[:-1], 2),                            # the last payload cut short
    (DATA[:THIRD + 5], 2),                     # the last header cut short
    (DATA + b"\0" * 100, 3),                   # zeros after the end (never written)
    (flip(DATA, len(DATA) - 1), 2),            # the last frame not wholly on disk
])
def test_a_torn_tail_ends_the_whole_frames(data, whole):
    frames, end = read(data)
    assert len(frames) == whole and end == (THIRD if whole == 2 else len(DATA))
    with pytest.raises(DamagedFile):
        read(data, torn_ok=False)


@pytest.mark.parametrize("at, offset, reason", [
    (SECOND + 20, SECOND, "frame checksum mismatch"),            # a payload byte mid-log
    (SECOND + 1, SECOND, "frame header checksum mismatch"),      # a length byte: no wild read
    (SECOND + 9, SECOND, "frame header checksum mismatch"),      # the header's own checksum
    (HEADER_SIZE, 0, "frame checksum mismatch"),
])
def test_damage_before_the_end_names_the_offset(at, offset, reason):
    with pytest.raises(DamagedFile, match=f"log: damaged at offset {offset}: {reason}"):
        read(flip(DATA, at))
