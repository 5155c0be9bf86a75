"""Records: every kind round-trips; anything that is not a whole record is refused."""
import struct

import pytest

from otelgravel.state import (DELETE, EXPIRE, FAILURE, OTLP, PUSH, WIPE, Record, RecordError,
                              decode_record, encode_record)

RECORDS = [
    Record(PUSH, 1700000000.25, (("instance", "é"), ("job", "fn")), "text", b"c 1\n"),
    Record(PUSH, 1.0, (), "openmetrics", b"# EOF\n"),
    Record(PUSH, 2.0, (("job", "x" * 70000),), "protobuf", bytes(range(256)) * 10),
    Record(OTLP, 3.5, (), "", b"\x0a\x00"),
    Record(DELETE, 4.0, (("job", "fn"),)),
    Record(WIPE, 5.0),
    Record(FAILURE, 6.0, (("job", "fn"),)),
    Record(EXPIRE, 7.0),
]


@pytest.mark.parametrize("record", RECORDS, ids=repr)
def test_round_trip(record):
    assert decode_record(encode_record(record)) == record


@pytest.mark.parametrize("record", RECORDS[:5], ids=repr)
def test_every_cut_is_refused(record):
    data = encode_record(record)
    for n in range(len(data)):
        with pytest.raises(RecordError):
            decode_record(data[:n])
    with pytest.raises(RecordError):
        decode_record(data + b"\x00")


@pytest.mark.parametrize("data, reason", [
    (struct.pack("<BBdH", 2, PUSH, 0.0, 0) + b"\x00" + struct.pack("<I", 0), "version 2"),
    (struct.pack("<BBdH", 1, 99, 0.0, 0) + b"\x00" + struct.pack("<I", 0), "unknown record kind"),
    (struct.pack("<BBdH", 1, PUSH, 0.0, 0) + b"\x09" + struct.pack("<I", 0), "does not end"),
    (struct.pack("<BBdH", 1, PUSH, 0.0, 1) + struct.pack("<H", 1) + b"\xff"
     + struct.pack("<I", 0) + b"\x00" + struct.pack("<I", 0), "not a record"),
])
def test_refusals_say_why(data, reason):
    with pytest.raises(RecordError, match=reason):
        decode_record(data)
