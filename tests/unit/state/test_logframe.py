"""The C frame of a log record equals the frame the log always wrote (framing.frame of seq +
encode_record, still the one without the accelerator) byte for byte, for every kind of record;
its CRC is zlib's; out-of-range fields raise; and CI does not silently run without it."""
import os
import random
import struct
import zlib

import pytest

from otelgravel.state import logframe
from otelgravel.state.framing import frame, read_frames
from otelgravel.state.record import KINDS, Record, decode_record, encode_record

try:
    from otelgravel.state import _logframe
except ImportError:
    _logframe = None

needs_c = pytest.mark.skipif(_logframe is None, reason="the C accelerator was not built (no C "
                             "compiler at install): the Python frame is the one in use")


def records(n: int, seed: int = 7):
    rng = random.Random(seed)
    names = ["job", "instance", "région", "名前", "a" * 300, ""]
    for i in range(n):
        group = tuple((rng.choice(names) + str(k), rng.choice(names) * rng.randint(0, 3))
                      for k in range(rng.randint(0, 5)))
        size = rng.choice([0, 1, 7, 8, 9, 63, 64, 65, 800, 4096, 100_000])
        body = bytes(rng.getrandbits(8) for _ in range(min(size, 2048))) * (1 + size // 2048)
        body = body[:size]
        key = None if rng.random() < 0.5 else rng.choice(["k", "ключ-" * 20, "x" * 1000])
        fingerprint = bytes(rng.getrandbits(8) for _ in range(rng.choice([0, 16, 32])))
        yield Record(rng.choice(list(KINDS)), rng.choice([0.0, -1.5, 1.7e9 + i / 7, 1e300]),
                     group, rng.choice(["", "text", "openmetrics", "protobuf"]), body,
                     key=key, fingerprint=fingerprint if key is not None else b"")


def reference(seq: int, r: Record) -> bytes:
    """The frame the log always wrote (and writes without the accelerator)."""
    return frame(struct.pack("<Q", seq) + encode_record(r))


def test_the_frame_in_use_is_the_c_one_where_it_was_built_else_the_python_one():
    assert logframe.ACCELERATED == (_logframe is not None)
    assert logframe.frame_record is (logframe.c_frame_record if _logframe is not None
                                     else logframe.python_frame_record)


@needs_c
def test_every_kind_of_record_frames_in_c_as_in_python():
    for seq, r in enumerate(records(400), start=1):
        seq = seq * 977 + (1 << 40)
        data = logframe.c_frame_record(seq, r)
        assert data == reference(seq, r), r
        (_, payload), = list(read_frames(data, "x", torn_ok=False))
        assert decode_record(payload[8:]) == r


@needs_c
def test_the_c_crc_is_zlibs_at_every_length_and_alignment():
    data = os.urandom(300)
    for start in range(9):
        for end in range(start, 300, 7):
            assert _logframe.crc32(data[start:end]) == zlib.crc32(data[start:end])


@needs_c
@pytest.mark.parametrize("field, value", [
    (1, 256), (2, -1), (4, 65536), (6, 300), (0, -1)])
def test_out_of_range_fields_raise_in_c_as_struct_does_in_python(field, value):
    args = [1, 1, 1, 1.0, 0, b"", 1, b"body", b""]
    args[field] = value
    with pytest.raises(OverflowError):
        _logframe.frame_record(*args)


@needs_c
def test_arguments_of_the_wrong_type_raise_typeerror():
    with pytest.raises(TypeError):
        _logframe.frame_record(1, 1, 1, 1.0, 0, "str", 1, b"", b"")
    with pytest.raises(TypeError):
        _logframe.frame_record(1, 1, 1)


def test_a_body_that_is_not_bytes_is_framed_as_its_bytes():
    r = Record(1, 2.0, (("job", "x"),), "text", bytearray(b"c 1\n"))
    assert logframe.frame_record(3, r) == reference(3, Record(1, 2.0, (("job", "x"),), "text",
                                                              b"c 1\n"))


def test_the_accelerator_is_in_use_where_ci_requires_it():
    """.ci/run installs a C compiler and sets OTELGRAVEL_REQUIRE_ACCELERATOR=1: a build that
    silently fell back to Python fails here instead of passing with the slower frame."""
    if os.environ.get("OTELGRAVEL_REQUIRE_ACCELERATOR") != "1":
        pytest.skip("OTELGRAVEL_REQUIRE_ACCELERATOR is not set (only .ci/run sets it)")
    assert logframe.ACCELERATED and _logframe is not None
