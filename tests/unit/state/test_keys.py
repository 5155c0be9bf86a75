"""Idempotency keys at apply: applied once, replayed the same, 422 for a reused key, bounded
deterministically by count and record time, kept in snapshots."""
import pytest

from otelgravel.core.store import Store
from otelgravel.errors import IdempotencyConflict
from otelgravel.processor import GravelProcessor
from otelgravel.state import (DELETE, OTLP, PUSH, Applier, KeyTable, OtlpResult, Record, Replayed,
                              decode_record, encode_record)
from otelgravel.state.snapshot import decode_snapshot, encode_snapshot
from otelgravel.translate.otlp import OtlpTranslator

from .test_applier import export

JOB = (("job", "fn"),)
ONE = b"# TYPE c counter\nc 1\n"


def applier(max_keys=100, ttl=60.0):
    return Applier(GravelProcessor(Store()), OtlpTranslator(source_ttl=600), KeyTable(max_keys, ttl))


def push(t, key, body=ONE, fp=b"A"):
    return Record(PUSH, t, JOB, "text", body, key=key, fingerprint=fp)


def total(a):
    p = a.store.get("c", JOB)
    return None if p is None else p.point.value


# (records, expected total, what each record's apply gives: None applied, "replay", "422")
TABLE = [
    ("no key twice counts twice", [push(1, None), push(2, None)], 2, [None, None]),
    ("same key, same request: once", [push(1, "k"), push(2, "k")], 1, [None, "replay"]),
    ("same key, other request: 422", [push(1, "k"), push(2, "k", b"# TYPE c counter\nc 5\n", b"B")],
     1, [None, "422"]),
    ("other keys: each once", [push(1, "k1"), push(2, "k2"), push(3, "k1")], 2,
     [None, None, "replay"]),
    ("a refused record leaves no key: its retry is applied",
     [push(1, None), Record(PUSH, 2, JOB, "text", b"# TYPE c gauge\nc 1\n", key="k", fingerprint=b"G"),
      Record(PUSH, 3, JOB, "text", b"# TYPE c gauge\nc 1\n", key="k", fingerprint=b"G"),
      push(4, "k", fp=b"B")],
     2, [None, "400", "400", None]),
]


def outcome(a, record):
    try:
        result = a.apply(record)
    except IdempotencyConflict:
        return "422"
    except Exception:
        return "400"
    return "replay" if type(result) is Replayed else None


@pytest.mark.parametrize("name, records, expected, outcomes", TABLE, ids=[t[0] for t in TABLE])
def test_the_dedupe_table(name, records, expected, outcomes):
    a = applier()
    assert [outcome(a, r) for r in records] == outcomes
    assert total(a) == expected


def test_a_replay_changes_nothing_not_even_push_time():
    a = applier()
    a.apply(push(1, "k"))
    before = a.store.groups[JOB].push_time
    assert type(a.apply(push(50, "k"))) is Replayed
    assert a.store.groups[JOB].push_time == before


def test_the_422_names_the_key_not_its_scope():
    a = applier()
    a.apply(push(1, "alice\x00k-42"))
    with pytest.raises(IdempotencyConflict, match="'k-42'") as err:
        a.apply(push(2, "alice\x00k-42", fp=b"other"))
    assert "alice" not in str(err.value)
    assert outcome(a, push(3, "bob\x00k-42")) is None  # another principal's key is another key
    assert total(a) == 2


def test_delete_with_a_key_is_replayed_too():
    a = applier()
    a.apply(push(1, None))
    assert a.apply(Record(DELETE, 2, JOB, key="d", fingerprint=b"D")) is True
    a.apply(push(3, None))
    replay = a.apply(Record(DELETE, 4, JOB, key="d", fingerprint=b"D"))
    assert type(replay) is Replayed and replay.result is True
    assert total(a) == 1  # the second push is still there: the replayed DELETE did nothing


def test_an_otlp_replay_answers_the_first_partial_success():
    a = applier()  # the export's counter conflicts with a gauge of the same name: refused points
    a.apply(Record(PUSH, 1, (("job", "svc"),), "text", b"# TYPE jobs_total gauge\njobs_total 1\n"))
    first = a.apply(Record(OTLP, 2, body=export(5), key="o", fingerprint=b"O"))
    assert isinstance(first, OtlpResult) and first.rejected == 1 and first.errors
    again = a.apply(Record(OTLP, 3, body=export(5), key="o", fingerprint=b"O"))
    assert type(again) is Replayed
    assert (again.result.rejected, again.result.errors) == (first.rejected, first.errors)


def test_the_count_bound_forgets_the_oldest_applied_first():
    a = applier(max_keys=3)
    for i in range(5):
        a.apply(push(i, f"k{i}"))
    assert list(a.keys.entries) == ["k2", "k3", "k4"]
    assert outcome(a, push(10, "k0")) is None  # forgotten: applied again (outside the bound)
    assert outcome(a, push(11, "k4")) == "replay"
    assert total(a) == 6


def test_the_age_bound_is_record_time_and_the_same_on_a_replay():
    records = [push(100, "old"), push(130, "mid"), push(159, "new"),
               push(160.5, "x"),    # 160.5 - 60 > 100: "old" is forgotten
               push(161, "old"),    # so it is applied again
               push(170, "mid")]    # 170 - 60 < 130: still remembered
    live = applier(ttl=60)
    assert [outcome(live, r) for r in records] == [None] * 5 + ["replay"]
    assert total(live) == 5
    # a replica (or a replay) reading the encoded records decides the same
    other = applier(ttl=60)
    assert [outcome(other, decode_record(encode_record(r))) for r in records] == [None] * 5 + ["replay"]
    assert list(other.keys.entries) == list(live.keys.entries)


def test_an_expired_key_not_at_the_front_is_forgotten_on_lookup():
    # records of two replicas interleave: times are not in table order
    a = applier(ttl=60)
    a.apply(push(100, "late"))
    a.apply(push(90, "early"))  # inserted after "late", older
    assert outcome(a, push(155, "early")) is None  # 155 - 60 > 90: forgotten, applied again
    assert outcome(a, push(156, "late")) == "replay"


def test_keys_survive_a_snapshot_and_decide_the_same_after_it():
    live = applier(ttl=60)
    for r in [push(100, "a"), push(120, "b"), Record(OTLP, 121, body=export(3), key="o", fingerprint=b"O")]:
        live.apply(r)
    data = b"".join(encode_snapshot(live.store, live.memory, 7, live.keys))
    snap = decode_snapshot(data, "snap")
    restored = applier(ttl=60)
    restored.restore(snap)
    assert restored.keys.dump() == live.keys.dump()
    after = [push(161, "x"), push(162, "a"), push(163, "b"), push(164, "b", fp=b"Z"),
             Record(OTLP, 165, body=export(3), key="o", fingerprint=b"O")]
    assert [outcome(live, r) for r in after] == [outcome(restored, r) for r in after] \
        == [None, None, "replay", "422", "replay"]
    assert total(live) == total(restored) == 4


def test_a_snapshot_without_keys_has_no_keys_frame_and_restores_an_empty_table():
    a = applier()
    a.apply(push(1, None))
    data = b"".join(encode_snapshot(a.store, a.memory, 1, a.keys))
    assert b'"t":"keys"' not in data
    b = applier()
    b.apply(push(1, "stale"))
    b.restore(decode_snapshot(data, "snap"))
    assert len(b.keys) == 0


def test_a_smaller_bound_after_a_restart_keeps_the_newest():
    a = applier(max_keys=10)
    for i in range(6):
        a.apply(push(i, f"k{i}"))
    b = applier(max_keys=2)
    b.restore(decode_snapshot(b"".join(encode_snapshot(a.store, a.memory, 1, a.keys)), "snap"))
    assert list(b.keys.entries) == ["k4", "k5"]
