"""hints.looks_like_json: JSON bodies get the OTLP hint, text lines with a quoted UTF-8 name do not."""
import pytest

from otelgravel.hints import looks_like_json


@pytest.mark.parametrize("body, json", [
    (b'{"resourceMetrics": []}', True),
    (b' \n{\n  "resourceMetrics" : []}', True),
    (b'[{"name": "a"}]', True),
    (b"{}", True),
    (b'{"k\\"ey": 1}', True),
    (b'{"my.metric"} 1\n', False),
    (b'{"my.metric","url.scheme"="https"} 1\n', False),
    (b'{ "my.metric" , "a"="b"} 1\n', False),
    (b'{"a.b} 1\n', False),  # an unterminated quoted name: a text error, not JSON
    (b'{"a"="b"} 1\n', False),
    (b"a 1\n", False),
])
def test_looks_like_json(body, json):
    assert looks_like_json(body) is json
