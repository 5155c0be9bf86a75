"""The store keeps UTF-8 names as pushed and refuses what an escaping scheme would merge: a new
family written like another family, a series with two label names written alike. A refused push
changes nothing; the decision is the store's, so it is the same in log order on every replica."""
import pytest

from otelgravel.core.store import Store
from otelgravel.errors import ConflictError, InputError
from otelgravel.formats.escaping import is_legacy_label
from otelgravel.model import COUNTER, GAUGE, HISTOGRAM, INF, REPLACE, SUM, Family, Point

G1 = (("job", "fn"),)
G2 = (("job", "other"),)


def gauge(name, labels=(), utf8=None):
    if utf8 is None:
        utf8 = not all(is_legacy_label(k) for k, _ in labels)
    return Family(name, GAUGE, points=[Point(tuple(sorted(labels)), REPLACE, 1.0)], utf8=utf8)


def counter(name):
    return Family(name, COUNTER, points=[Point((), SUM, 1.0)])


def hist(name):
    return Family(name, HISTOGRAM, points=[Point((), SUM, buckets=[(INF, 1.0)], sum=1.0, count=1.0)])


def state(store):
    return ({n: (f.type, sorted(f.series)) for n, f in store.families.items()},
            sorted(store.groups), dict(store._owners), dict(store._escaped))


# (pushed first [(group, families)], then pushed, fragment of the refusal naming both names)
FAMILY_CLASHES = [
    pytest.param([gauge("my_metric")], [gauge("my.metric")],
                 "family 'my.metric' would be written 'my_metric' for a scraper asking "
                 "escaping=underscores (the default when a scraper names none), as family "
                 "'my_metric' is", id="dotted after legacy"),
    pytest.param([gauge("my.metric")], [gauge("my_metric")],
                 "family 'my.metric' would be written 'my_metric'", id="legacy after dotted"),
    pytest.param([gauge("my.metric")], [gauge("my-metric")],
                 "family 'my-metric' would be written 'my_metric' for a scraper asking "
                 "escaping=underscores", id="two non-legacy names"),
    pytest.param([gauge("my_dot_metric")], [gauge("my.metric")],
                 "would be written 'my_dot_metric' for a scraper asking escaping=dots",
                 id="dots scheme"),
    pytest.param([gauge("U__my_2e_metric")], [gauge("my.metric")],
                 "would be written 'U__my_2e_metric' for a scraper asking escaping=values",
                 id="values scheme"),
    pytest.param([counter("req")], [gauge("req.total")], "as family 'req' is",
                 id="a gauge written as a counter's _total sample"),
    pytest.param([gauge("req_total")], [counter("req.x")], None, id="no clash: req_x_total"),
    pytest.param([gauge("req_dot_count_")], [counter("req.count")],
                 "would be written 'req_dot_count_' for a scraper asking escaping=dots",
                 id="the OpenMetrics family name of an escaped counter (# TYPE req_dot_count_)"),
    pytest.param([hist("lat.s")], [gauge("lat_s_bucket")],
                 "family 'lat.s' would be written 'lat_s_bucket'", id="histogram sample name"),
    pytest.param([], [gauge("my.metric"), gauge("my_metric")],
                 "family 'my.metric' would be written 'my_metric'", id="both in one push"),
    pytest.param([], [gauge("my_metric"), gauge("my.metric")],
                 "as family 'my_metric' is", id="both in one push, legacy first"),
    pytest.param([gauge("my.metric")], [gauge("my.metric")], None, id="the same family again"),
    pytest.param([gauge("a.b")], [gauge("a.c")], None, id="different once escaped"),
]


@pytest.mark.parametrize("first, then, fragment", FAMILY_CLASHES)
def test_family_names_that_a_scheme_merges(first, then, fragment):
    store = Store()
    if first:
        store.apply(first, G1, now=1)
    before = state(store)
    if fragment is None:
        store.apply(then, G2, now=2)
        return
    with pytest.raises(ConflictError) as caught:
        store.apply(then, G2, now=2)
    assert fragment in str(caught.value)
    assert state(store) == before


LABEL_CLASHES = [
    pytest.param((("a.b", "1"), ("a_b", "2")), G1,
                 "label names 'a.b' and 'a_b' would both be written 'a_b' for a scraper asking "
                 "escaping=underscores", id="dotted and legacy"),
    pytest.param((("a.b", "1"), ("a-b", "2")), G1, "would both be written 'a_b'",
                 id="two non-legacy"),
    pytest.param((("a.b", "1"), ("a_dot_b", "2")), G1,
                 "would both be written 'a_dot_b' for a scraper asking escaping=dots",
                 id="dots scheme"),
    pytest.param((("a.b", "1"),), (("a_b", "g"), ("job", "fn")),
                 "label names 'a.b' and 'a_b'", id="with a grouping label"),
    pytest.param((("x", "1"),), (("a.b", "g"), ("a_b", "h"), ("job", "fn")),
                 "label names 'a.b' and 'a_b'", id="two grouping labels (U__ in the path)"),
    pytest.param((("a.b", "1"), ("a.c", "2")), G1, None, id="no clash"),
    pytest.param((("名前", "1"),), G1, "label name '名前' would be written '__' for a scraper "
                 "asking escaping=underscores", id="written with the reserved prefix"),
    pytest.param((("1st", "1"),), G1, "would be written '__st' for a scraper asking "
                 "escaping=dots", id="a leading digit under dots"),
    pytest.param((("x.名前", "1"),), G1, None, id="a leading letter keeps it legal"),
]


@pytest.mark.parametrize("labels, group, fragment", LABEL_CLASHES)
def test_label_names_that_a_scheme_merges(labels, group, fragment):
    store = Store()
    store.apply([gauge("legacy")], G1, now=1)
    before = state(store)
    if fragment is None:
        store.apply([gauge("m", labels)], group, now=2)
        return
    with pytest.raises(InputError) as caught:
        store.apply([gauge("m", labels)], group, now=2)
    assert fragment in str(caught.value)
    assert state(store) == before


def test_a_family_gone_frees_its_escaped_names():
    store = Store()
    store.apply([gauge("my.metric")], G1, now=1)
    store.delete_group(G1)
    assert store._escaped == {}
    store.apply([gauge("my_metric")], G1, now=2)  # accepted now
    assert set(store.families) == {"my_metric"}


def test_snapshot_restore_keeps_the_escaped_names():
    store = Store()
    store.apply([gauge("my.metric")], G1, now=1)
    restored = Store()
    restored.restore(store.snapshot())
    assert restored._escaped == store._escaped
    with pytest.raises(ConflictError):
        restored.apply([gauge("my_metric")], G2, now=2)


def test_legacy_pushes_look_nothing_up_while_only_legacy_names_exist():
    """The escaped map stays empty and is never consulted for legacy-only pushes."""
    store = Store()
    store.apply([gauge("a"), counter("b"), gauge("c", (("x", "1"),))], G1, now=1)
    assert store._escaped == {}
    calls = []
    store._check_escaped = lambda *args: calls.append(args)
    store.apply([gauge("d"), counter("e")], G2, now=2)
    assert calls == []


def test_the_label_check_needs_the_utf8_mark():
    """Label names are only checked for families a parser marked utf8 (or UTF-8 group labels):
    the legacy path pays nothing; every parser sets the mark (tests/unit/formats)."""
    store = Store()
    store.apply([gauge("m", (("a.b", "1"), ("a_b", "2")), utf8=False)], G1, now=1)
    with pytest.raises(InputError):
        store.apply([gauge("n", (("a.b", "1"), ("a_b", "2")), utf8=True)], G1, now=2)
