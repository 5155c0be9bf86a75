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
    # UTF-8 label names, as the Pushgateway with --push.enable-utf8-names reads them: U__ names
    # decoded from the values escaping (names only, after @base64 is taken off), others as they
    # are once percent-decoded
    ("/job/fn/U__foo_2e_bar/baz", (("foo.bar", "baz"), ("job", "fn"))),
    ("/job/fn/U__foo_2e_bar@base64/YmF6", (("foo.bar", "baz"), ("job", "fn"))),
    ("/job/fn/U__a__b_2e_c/v", (("a_b.c", "v"), ("job", "fn"))),
    ("/job/fn/U__x_1F60A_/v", (("job", "fn"), ("x\U0001F60A", "v"))),
    ("/job/fn/U___55_____x/v", (("U__x", "v"), ("job", "fn"))),  # a literal U__, escaped
    ("/job/fn/U__in_xxx_valid/v", (("U__in_xxx_valid", "v"), ("job", "fn"))),  # bad: kept
    ("/job/fn/U__a_2e/v", (("U__a_2e", "v"), ("job", "fn"))),  # unclosed: kept
    ("/job/fn/U__a_d800_/v", (("U__a_d800_", "v"), ("job", "fn"))),  # surrogate: kept
    ("/job/fn/U__a_10ffff_/v", (("U__a_10ffff_", "v"), ("job", "fn"))),  # 6 digits: kept
    ("/job/fn/U__x/U__a_2e_b", (("job", "fn"), ("x", "U__a_2e_b"))),  # values never decoded
    ("/job/U__a_2e_b", (("job", "U__a_2e_b"),)),  # nor the job
    ("/job/fn/a.b/x", (("a.b", "x"), ("job", "fn"))),
    ("/job/fn/a%2Fb/x", (("a/b", "x"), ("job", "fn"))),
    ("/job/fn/" + quote("x名前") + "/x", (("job", "fn"), ("x名前", "x"))),
    ("/job/fn/a@base64@base64/eA", (("a@base64", "x"), ("job", "fn"))),
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
    ("/job/fn//", "empty label name ''"),
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
    ("/job/fn//x", "empty label name ''"),
    ("/job/fn/@base64/eA", "empty label name '@base64'"),
    ("/job/fn/__name__/x", "label name '__name__' in grouping key '/job/fn/__name__/x' is reserved"),
    ("/job/fn/__x@base64/eA", "label name '__x'"),
    ("/job/fn/U__/x", "empty label name 'U__'"),
    ("/job/fn/U______x/v", "label name '__x' in grouping key '/job/fn/U______x/v' is reserved"),
    ("/job/fn/U__a_2e_b/1/a.b/2", "duplicate label name 'a.b'"),
    ("/job/fn/U__job/x", "duplicate label name 'job'"),
    ("/job/fn/U__a_2e_b/1/a_b/2", "label names 'a.b' and 'a_b' would both be written 'a_b'"),
    ("/job/fn/1a/x", "label name '1a' would be written '__a' for a scraper asking escaping=dots, "
                     "a reserved name"),
    ("/job/fn/U___1F60A_/v", "a reserved name"),
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
