"""The logfmt formatter: whatever a client puts in a path or a label, a log line stays one line."""
from __future__ import annotations

import logging

import pytest

from otelgravel.__main__ import LogfmtFormatter

# (value, what the field must read as): every line break Python's str.splitlines() knows, the
# other controls, the bidi overrides; plain values stay bare.
CASES = [
    ("plain", "plain"),
    ("127.0.0.1:4278", "127.0.0.1:4278"),
    ("", '""'),
    ("a b", '"a b"'),
    ('say "hi"', r'"say \"hi\""'),
    ("back\\slash", r'"back\\slash"'),
    ("line\nfeed", r'"line\nfeed"'),
    ("carriage\rreturn", r'"carriage\rreturn"'),
    ("tab\t", r'"tab\t"'),
    ("vt\x0bff\x0c", r'"vt\x0bff\x0c"'),
    ("fs\x1cgs\x1drs\x1e", r'"fs\x1cgs\x1drs\x1e"'),
    ("nel\x85", r'"nel\x85"'),
    ("ls\u2028ps\u2029", r'"ls\u2028ps\u2029"'),
    ("esc\x1b[31m", r'"esc\x1b[31m"'),
    ("del\x7f", r'"del\x7f"'),
    ("rlo\u202eevil", r'"rlo\u202eevil"'),
    ("nul\x00", r'"nul\x00"'),
    ("é", "é"),
    ("€", '"€"'),
]


def _line(**fields) -> str:
    record = logging.LogRecord("otelgravel", logging.WARNING, __file__, 1, "push refused", (), None)
    record.fields = fields
    return LogfmtFormatter().format(record)


@pytest.mark.parametrize("value, written", CASES, ids=[repr(c[0]) for c in CASES])
def test_values_are_escaped_to_one_line(value, written):
    line = _line(path=value)
    assert line.endswith(f" path={written}")
    assert len(line.splitlines()) == 1


def test_a_traceback_is_one_line():
    try:
        raise ValueError("bad\r\nthing\u2028")
    except ValueError:
        import sys
        record = logging.LogRecord("otelgravel", logging.ERROR, __file__, 1, "failed", (),
                                   sys.exc_info())
    line = LogfmtFormatter().format(record)
    assert len(line.splitlines()) == 1 and "ValueError: bad\\r\\nthing\\u2028" in line
