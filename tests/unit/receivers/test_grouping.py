"""parse_grouping_key: the raw path tail after /metrics → sorted label pairs."""
import base64
from urllib.parse import quote

import pytest

from otelgravel.errors import GroupingKeyError
from otelgravel.receivers.grouping import parse_grouping_key


def b64(text: str) -> str:
    """What prometheus_client puts in the path for a value containing '/'."""
    return base64.urlsafe_b64encode(text.encode()).decode()


GOOD = [
    ("", ()),
    ("/", ()),
    ("/job/fn", (("job", "fn"),)),
    ("/job/fn/", (("job", "fn"),)),  # Pushgateway: a lone trailing slash adds no label
    ("/job/fn/instance/x", (("instance", "x"), ("job", "fn"))),
    ("/job/fn/zone/b/az/a", (("az", "a"), ("job", "fn"), ("zone", "b"))),
    # empty values
    ("/job/fn/instance/", (("instance", ""), ("job", "fn"))),  # prom-client sending ""
    ("/job/fn/instance@base64/=", (("instance", ""), ("job", "fn"))),  # prometheus_client ""
    ("/job/fn/instance@base64/", (("instance", ""), ("job", "fn"))),
    # base64, padding optional, URL-safe alphabet
    ("/job@base64/Zm4=", (("job", "fn"),)),
    ("/job@base64/Zm4", (("job", "fn"),)),
    ("/job@base64/Zm4==", (("job", "fn"),)),
    ("/job/fn/path@base64/L3Zhci90bXA", (("job", "fn"), ("path", "/var/tmp"))),
    ("/job/fn/path@base64/L3Zhci90bXA=", (("job", "fn"), ("path", "/var/tmp"))),
    ("/job/fn/v@base64/" + b64("a?>b"), (("job", "fn"), ("v", "a?>b"))),  # '-'/'_' alphabet
    ("/job/fn/v@base64/" + b64("é/ü"), (("job", "fn"), ("v", "é/ü"))),
    ("/job/fn/v@base64/Zm4%3D", (("job", "fn"), ("v", "fn"))),  # '=' percent-encoded
    # percent-encoding decodes after the split
    ("/job/a%2Fb", (("job", "a/b"),)),
    ("/job/fn/path/%2Fvar%2Ftmp", (("job", "fn"), ("path", "/var/tmp"))),
    ("/job/fn/name/hello%20world", (("job", "fn"), ("name", "hello world"))),
    ("/job/fn/name/" + quote("héllo"), (("job", "fn"), ("name", "héllo"))),
    ("/job/fn/name/a+b", (("job", "fn"), ("name", "a+b"))),  # a path: '+' is not a space
    ("/job/fn/na%6De/x", (("job", "fn"), ("name", "x"))),
    ("/job/fn/_private/x", (("_private", "x"), ("job", "fn"))),
    ("/job/fn/le/0.5", (("job", "fn"), ("le", "0.5"))),
]


@pytest.mark.parametrize("tail, expected", GOOD)
def test_parses(tail, expected):
    assert parse_grouping_key(tail) == expected


BAD = [
    # odd number of components
    ("/job", "odd number of components"),
    ("/job/fn/instance", "odd number of components"),
    ("/job/fn/a/b/c", "odd number of components"),
    ("/job/fn/a/b/", "odd number of components"),
    ("/job/fn//", "invalid label name ''"),
    # the first pair is the job
    ("/instance/x", "must start with /job/<JOB>"),
    ("/instance/x/job/fn", "must start with /job/<JOB>"),
    ("/JOB/fn", "must start with /job/<JOB>"),
    # empty job
    ("/job/", "empty job name"),
    ("/job//instance/x", "empty job name"),
    ("/job@base64/=", "empty job name"),
    ("/job@base64/", "empty job name"),
    # label names
    ("/job/fn/1a/x", "invalid label name '1a'"),
    ("/job/fn/a-b/x", "invalid label name 'a-b'"),
    ("/job/fn/a.b/x", "invalid label name 'a.b'"),
    ("/job/fn//x", "invalid label name ''"),
    ("/job/fn/@base64/eA", "invalid label name ''"),
    ("/job/fn/a%2Fb/x", "invalid label name 'a/b'"),
    ("/job/fn/__name__/x", "label name '__name__' in grouping key '/job/fn/__name__/x' is reserved"),
    ("/job/fn/__x@base64/eA", "label name '__x'"),
    ("/job/fn/a@base64@base64/eA", "invalid label name 'a@base64'"),
    # base64
    ("/job@base64/Zm4!", "invalid base64 value 'Zm4!' for label 'job'"),
    ("/job/fn/v@base64/Z", "invalid base64 value 'Z' for label 'v'"),
    ("/job/fn/v@base64/Zm+v", "invalid base64 value 'Zm+v'"),  # standard alphabet refused
    ("/job/fn/v@base64/Z%2Fmv", "invalid base64 value 'Z/mv'"),
    ("/job/fn/v@base64/Zm=4", "invalid base64 value 'Zm=4'"),
    ("/job/fn/v@base64/_w", "invalid base64 value '_w' for label 'v'"),  # not UTF-8
    # duplicates
    ("/job/fn/job/other", "duplicate label name 'job'"),
    ("/job/fn/a/1/a/2", "duplicate label name 'a'"),
    ("/job/fn/a/1/a@base64/Mg", "duplicate label name 'a'"),
    # percent-encoding
    ("/job/fn/a/%zz", "invalid percent-encoding in '%zz'"),
    ("/job/fn/a/100%", "invalid percent-encoding"),
    ("/job/fn/a/%ff", "is not UTF-8 once percent-decoded"),
    # not a tail
    ("job/fn", "must start with '/'"),
]


@pytest.mark.parametrize("tail, fragment", BAD)
def test_refuses(tail, fragment):
    with pytest.raises(GroupingKeyError) as info:
        parse_grouping_key(tail)
    assert fragment in str(info.value)


def test_prometheus_client_paths_round_trip():
    """prometheus_client escapes values with quote_plus, '' as @base64/= and '/' as base64."""
    from prometheus_client.exposition import _escape_grouping_key

    key = {"instance": "host:9100", "path": "/srv/x", "empty": "", "zone": "eu-west"}
    tail = "/job/fn" + "".join("/{}/{}".format(*_escape_grouping_key(k, v))
                               for k, v in key.items())
    assert parse_grouping_key(tail) == tuple(sorted({**key, "job": "fn"}.items()))
