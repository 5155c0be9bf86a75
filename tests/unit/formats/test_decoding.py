"""decode_body: Content-Encoding undone under a hard output cap."""
import gzip
import tracemalloc
import zlib

import pytest
import snappy

from otelgravel.errors import BodyTooLarge, DecodeError, UnsupportedMediaType
from otelgravel.formats import decoding
from otelgravel.formats.decoding import decode_body

TEXT = b"# TYPE a counter\na_total 1\n" * 20
LIMIT = 1 << 20


def zlib_deflate(data: bytes) -> bytes:
    return zlib.compress(data)


def raw_deflate(data: bytes) -> bytes:
    c = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    return c.compress(data) + c.flush()


# A raw deflate stream whose first two bytes are also a valid zlib header (0x78 0x01): a stored
# block holding "x" with non-zero padding bits, then an empty final stored block.
RAW_LOOKING_LIKE_ZLIB = b"\x78\x01\x00\xfe\xffx" + b"\x01\x00\x00\xff\xff"
GZ = gzip.compress(TEXT)

GOOD = [
    pytest.param(TEXT, None, TEXT, id="no header"),
    pytest.param(TEXT, "", TEXT, id="empty header"),
    pytest.param(TEXT, "identity", TEXT, id="identity"),
    pytest.param(TEXT, "IDENTITY", TEXT, id="identity upper case"),
    pytest.param(GZ, "gzip", TEXT, id="gzip"),
    pytest.param(GZ, "x-gzip", TEXT, id="x-gzip"),
    pytest.param(GZ, " GZip ", TEXT, id="gzip spelled loosely"),
    pytest.param(gzip.compress(b"a 1\n") + gzip.compress(b"b 2\n"), "gzip", b"a 1\nb 2\n",
                 id="gzip, two members"),
    pytest.param(GZ + b"\x00" * 8, "gzip", TEXT, id="gzip with NUL padding"),
    pytest.param(gzip.compress(b""), "gzip", b"", id="gzip of nothing"),
    pytest.param(b"", "gzip", b"", id="empty body declared gzip"),
    pytest.param(zlib_deflate(TEXT), "deflate", TEXT, id="deflate, zlib format"),
    pytest.param(raw_deflate(TEXT), "deflate", TEXT, id="deflate, raw"),
    pytest.param(RAW_LOOKING_LIKE_ZLIB, "deflate", b"x", id="deflate, raw with a zlib-like start"),
    pytest.param(snappy.compress(TEXT), "snappy", TEXT, id="snappy block"),
    pytest.param(GZ, "gzip, identity", TEXT, id="list with identity"),
    pytest.param(gzip.compress(zlib_deflate(TEXT)), "deflate, gzip", TEXT,
                 id="list: last applied is undone first"),
    pytest.param(b"x" * 100, None, b"x" * 100, id="exactly at the limit"),
    pytest.param(gzip.compress(b"x" * 100), "gzip", b"x" * 100, id="gzip exactly at the limit"),
]


@pytest.mark.parametrize("body, encoding, expected", GOOD)
def test_decodes(body, encoding, expected):
    limit = 100 if expected == b"x" * 100 else LIMIT
    assert decode_body(body, encoding, limit) == expected


BAD = [
    # unknown encodings
    pytest.param(TEXT, "br", UnsupportedMediaType, "unsupported Content-Encoding 'br'",
                 id="brotli"),
    pytest.param(TEXT, "compress", UnsupportedMediaType, "'compress': expected one of deflate, "
                 "gzip, snappy, x-gzip or identity", id="compress"),
    pytest.param(GZ, "gzip, zstd", UnsupportedMediaType, "'zstd'", id="unknown in a list"),
    # corrupt
    pytest.param(TEXT, "gzip", DecodeError, "invalid gzip body: ", id="not gzip"),
    pytest.param(GZ[:-5], "gzip", DecodeError, "invalid gzip body: unexpected end of data",
                 id="gzip cut in the trailer"),
    pytest.param(GZ[:len(GZ) // 2], "gzip", DecodeError, "invalid gzip body: unexpected end",
                 id="gzip cut in the middle"),
    pytest.param(GZ[:-8] + bytes([GZ[-8] ^ 1]) + GZ[-7:], "gzip", DecodeError,
                 "invalid gzip body: ", id="gzip bad crc"),
    pytest.param(GZ + b"garbage!", "gzip", DecodeError, "invalid gzip body: ",
                 id="gzip trailing garbage"),
    pytest.param(b"\x1f\x8b", "gzip", DecodeError, "invalid gzip body: ", id="gzip magic only"),
    pytest.param(b"\xff" * 20, "deflate", DecodeError, "invalid deflate body: ",
                 id="deflate garbage"),
    pytest.param(zlib_deflate(TEXT)[:-3], "deflate", DecodeError, "invalid deflate body: ",
                 id="deflate cut short"),
    pytest.param(zlib_deflate(TEXT) + b"xyz", "deflate", DecodeError,
                 "invalid deflate body: 3 bytes of trailing data", id="deflate trailing data"),
    pytest.param(snappy.compress(TEXT)[:-4], "snappy", DecodeError, "invalid snappy body: ",
                 id="snappy cut short"),
    pytest.param(b"\xff" * 6, "snappy", DecodeError, "invalid snappy body: bad length preamble",
                 id="snappy bad preamble"),
    # too large
    pytest.param(b"x" * 101, None, BodyTooLarge, "larger than the limit of 100 bytes",
                 id="identity over the limit"),
    pytest.param(gzip.compress(b"x" * 101), "gzip", BodyTooLarge, "limit of 100 bytes",
                 id="gzip output over the limit"),
    pytest.param(gzip.compress(b"x" * 60) * 2, "gzip", BodyTooLarge, "limit of 100 bytes",
                 id="gzip members together over the limit"),
    pytest.param(zlib_deflate(b"x" * 101), "deflate", BodyTooLarge, "limit of 100 bytes",
                 id="deflate over the limit"),
    pytest.param(raw_deflate(b"x" * 101), "deflate", BodyTooLarge, "limit of 100 bytes",
                 id="raw deflate over the limit"),
    pytest.param(snappy.compress(b"x" * 101), "snappy", BodyTooLarge, "limit of 100 bytes",
                 id="snappy over the limit"),
]


@pytest.mark.parametrize("body, encoding, error, fragment", BAD)
def test_refuses(body, encoding, error, fragment):
    with pytest.raises(error) as info:
        decode_body(body, encoding, 100 if error is BodyTooLarge else LIMIT)
    assert fragment in str(info.value)


def test_decode_errors_keep_the_library_error():
    with pytest.raises(DecodeError) as info:
        decode_body(b"not gzip at all", "gzip", LIMIT)
    assert isinstance(info.value.__cause__, zlib.error)
    with pytest.raises(DecodeError) as info:
        decode_body(b"\x05abc", "snappy", LIMIT)
    assert isinstance(info.value.__cause__, snappy.UncompressError)


def test_snappy_without_the_library(monkeypatch):
    monkeypatch.setattr(decoding, "_snappy", None)
    with pytest.raises(UnsupportedMediaType, match="needs the python-snappy package"):
        decode_body(snappy.compress(TEXT), "snappy", LIMIT)
    assert decode_body(GZ, "gzip", LIMIT) == TEXT  # other encodings unaffected


def _bomb(size: int, wbits: int) -> bytes:
    c = zlib.compressobj(9, zlib.DEFLATED, wbits)
    block = bytes(1 << 20)
    return b"".join([c.compress(block) for _ in range(size >> 20)] + [c.flush()])


@pytest.mark.parametrize("encoding, wbits", [("gzip", 16 + zlib.MAX_WBITS),
                                             ("deflate", zlib.MAX_WBITS),
                                             ("deflate", -zlib.MAX_WBITS)])
def test_bomb_is_not_inflated_into_memory(encoding, wbits):
    bomb = _bomb(64 << 20, wbits)  # 64 MiB of zeros in about 64 KB
    assert len(bomb) < 100_000
    tracemalloc.start()
    try:
        with pytest.raises(BodyTooLarge, match="limit of 1048576 bytes"):
            decode_body(bomb, encoding, 1 << 20)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 << 20
