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
    Record(PUSH, 8.0, (("job", "fn"),), "text", b"c 1\n", key="k-1", fingerprint=b"\x01" * 16),
    Record(OTLP, 9.0, (), "", b"", key="alice\x00" + "k" * 255, fingerprint=b"\xff" * 16),
    Record(DELETE, 10.0, (("job", "fn"),), key="d", fingerprint=b""),
]
KEYED = RECORDS[8:]


def test_a_record_without_a_key_is_version_1_and_pays_no_byte_for_keys():
    plain = Record(PUSH, 8.0, (("job", "fn"),), "text", b"c 1\n")
    keyed = KEYED[0]
    assert encode_record(plain)[0] == 1 and encode_record(keyed)[0] == 2
    # the keyed layout is the plain one with the key and fingerprint after it
    assert encode_record(keyed).startswith(b"\x02" + encode_record(plain)[1:])
    assert len(encode_record(keyed)) == len(encode_record(plain)) + 2 + 3 + 1 + 16


@pytest.mark.parametrize("record", RECORDS, ids=repr)
def test_round_trip(record):
    assert decode_record(encode_record(record)) == record


@pytest.mark.parametrize("record", RECORDS[:5] + KEYED, ids=repr)
def test_every_cut_is_refused(record):
    data = encode_record(record)
    for n in range(len(data)):
        with pytest.raises(RecordError):
            decode_record(data[:n])
    with pytest.raises(RecordError):
        decode_record(data + b"\x00")


@pytest.mark.parametrize("data, reason", [
    (struct.pack("<BBdH", 3, PUSH, 0.0, 0) + b"\x00" + struct.pack("<I", 0), "version 3"),
    (struct.pack("<BBdH", 1, 99, 0.0, 0) + b"\x00" + struct.pack("<I", 0), "unknown record kind"),
    (struct.pack("<BBdH", 1, PUSH, 0.0, 0) + b"\x09" + struct.pack("<I", 0), "unknown record format"),
    (struct.pack("<BBdH", 1, PUSH, 0.0, 0) + b"\x01" + struct.pack("<I", 0) + b"\x00", "does not end"),
    (struct.pack("<BBdH", 2, PUSH, 0.0, 0) + b"\x01" + struct.pack("<I", 0) + struct.pack("<H", 1)
     + b"\xff\x00", "not a record"),
    (struct.pack("<BBdH", 1, PUSH, 0.0, 1) + struct.pack("<H", 1) + b"\xff"
     + struct.pack("<I", 0) + b"\x00" + struct.pack("<I", 0), "not a record"),
])
def test_refusals_say_why(data, reason):
    with pytest.raises(RecordError, match=reason):
        decode_record(data)
