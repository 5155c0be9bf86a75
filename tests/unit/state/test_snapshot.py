"""The snapshot codec: every kind of state comes back exactly, and nothing else can be read."""
import json
import zlib

import pytest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.metrics.v1 import metrics_pb2 as pb
from opentelemetry.proto.resource.v1.resource_pb2 import Resource

from otelgravel.core.store import Store
from otelgravel.formats.exposition import write_openmetrics
from otelgravel.formats.openmetrics import parse_openmetrics
from otelgravel.formats.prom_text import parse_prom_text
from otelgravel.model import HISTOGRAM, INF, SUM, Family, NativeHistogram, Point
from otelgravel.processor import GravelProcessor
from otelgravel.state.framing import DamagedFile, frame
from otelgravel.state.snapshot import decode_snapshot, encode_snapshot
from otelgravel.translate.otlp import CUMULATIVE, OtlpTranslator

GROUP = (("job", "fn"),)
WINDOWS = ("sum1m", "mean1m", "min1m", "max1m", "count1m", "last1m", "p90_1m", "median5m")
TEXT = ("# TYPE c counter\nc 2\n# TYPE g gauge\ng 1.5\n"
        "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 3\nh_count 2\n"
        "# TYPE s summary\ns{quantile=\"0.5\"} 4\ns_sum 9\ns_count 3\n"
        + "".join(f"w{{agg=\"{m}\",clear_mode=\"{m}\"}} {{v}}\n" for m in WINDOWS))
OPENMETRICS = ("# TYPE build info\nbuild_info{version=\"1\"} 1\n"
               "# TYPE state stateset\nstate{state=\"a\"} 1\nstate{state=\"b\"} 0\n"
               "# TYPE q gaugehistogram\nq_bucket{le=\"+Inf\"} 3\nq_gcount 3\nq_gsum 2\n"
               "# TYPE e counter\ne_total 1 # {trace_id=\"abc\"} 0.5 1.0\n"
               "# TYPE hx histogram\nhx_bucket{le=\"1\"} 1 # {span_id=\"s\"} 0.5\n"
               "hx_bucket{le=\"+Inf\"} 1\nhx_count 1\nhx_sum 0.5\n# EOF\n")


def _export(value: float) -> ExportMetricsServiceRequest:
    points = [pb.NumberDataPoint(start_time_unix_nano=1, time_unix_nano=2, as_double=value)]
    resource = Resource(attributes=[KeyValue(key="service.name", value=AnyValue(string_value="svc"))])
    metrics = [pb.Metric(name="queue", sum=pb.Sum(data_points=points, is_monotonic=False,
                                                  aggregation_temporality=CUMULATIVE)),
               pb.Metric(name="calls", sum=pb.Sum(data_points=points, is_monotonic=True,
                                                  aggregation_temporality=CUMULATIVE))]
    return ExportMetricsServiceRequest(resource_metrics=[pb.ResourceMetrics(
        resource=resource, scope_metrics=[pb.ScopeMetrics(metrics=metrics)])])


def _state():
    store = Store(expire_after=600)
    processor = GravelProcessor(store)
    for i in range(200):  # windows over several slices, quantile slices past their first 64 values
        now = 1000.0 + i * 0.7
        processor.push(GROUP, parse_prom_text(TEXT.replace("{v}", str(i % 17 - 3)).encode()), now)
    for now in (1500.0, 1501.0):
        processor.push(GROUP + (("instance", "b"),), parse_openmetrics(OPENMETRICS.encode()), now)
    processor.push((("job", "empty"),), parse_prom_text(b"# TYPE m gauge\n"), 1502.0)
    store.record_failure(GROUP, 1503.5)
    store.apply([Family("nh", HISTOGRAM, points=[Point((), SUM, native=NativeHistogram(
        3, 0.001, 2.0, {1: 3.0, 5: 1.0}, {2: 1.0}), sum=1.5, count=7.0)])], GROUP, 1504.0)
    translator = OtlpTranslator(max_sources=1)  # one of the two sources is evicted: a correction
    translation = translator.translate(_export(5.0), now=2.0)
    translation.commit_all()
    return store, translator.memory


def _roundtrip(store, memory, position=42):
    snap = decode_snapshot(b"".join(encode_snapshot(store, memory, position)), "snapshot")
    again = Store(expire_after=600)
    again.restore(snap.store)
    restored = OtlpTranslator(max_sources=1)
    if snap.otlp is not None:
        restored.memory.restore(snap.otlp)
    return snap, again, restored.memory


def test_every_kind_of_state_comes_back_exactly():
    store, memory = _state()
    snap, again, restored = _roundtrip(store, memory)
    assert snap.position == 42
    # the same state writes the same snapshot: every slot of every point, window, sketch, group
    # and OTLP source is equal
    assert list(encode_snapshot(again, restored, 42)) == list(encode_snapshot(store, memory, 42))
    assert 'w{agg="p90_1m",job="fn"}' in write_openmetrics(again, 1140.0)
    write_openmetrics(store, 1140.0)  # reads evict old slices: read both at the same times
    for at in (1170.0, 1300.0):  # (a read changes windows: later times only)
        assert write_openmetrics(again, at) == write_openmetrics(store, at)
    assert again.get("c", GROUP).created == store.get("c", GROUP).created == 1000.0
    assert again.get("nh", GROUP).point.native == NativeHistogram(
        3, 0.001, 2.0, {1: 3.0, 5: 1.0}, {2: 1.0})
    assert len(restored) == 1 and len(restored.corrections) == 1
    assert list(again._by_update) and [s.key for s in again._by_update] == [s.key for s in store._by_update]


def test_restored_windows_and_sources_go_on_like_the_originals():
    store, memory = _state()
    _, again, restored = _roundtrip(store, memory)
    for s in (store, again):
        GravelProcessor(s).push(GROUP, parse_prom_text(TEXT.replace("{v}", "100").encode()), 1200.0)
    assert write_openmetrics(again, 1201.0) == write_openmetrics(store, 1201.0)
    assert restored.expire(10_000.0)[0][1][0].points[0].value == memory.expire(10_000.0)[0][1][0].points[0].value


def test_an_empty_state():
    snap, again, _ = _roundtrip(Store(), None, 0)
    assert again.series_count == 0 and snap.otlp is None


def _frames(store, memory):
    return list(encode_snapshot(store, memory, 7))


def _json(f: bytes) -> bytes:
    """The JSON part of a frame (after the 12-byte frame header and the u32 JSON length)."""
    size = int.from_bytes(f[12:16], "little")
    return f[16:16 + size]


def _with_json(f: bytes, text: bytes) -> bytes:
    """The frame ``f`` with its JSON replaced (its binary columns kept)."""
    size = int.from_bytes(f[12:16], "little")
    return frame(len(text).to_bytes(4, "little") + text + f[16 + size:])


def _doc(doc: dict) -> bytes:
    """A frame of a JSON document and no columns."""
    return _with_json(frame(b"\0\0\0\0"), json.dumps(doc).encode())


@pytest.mark.parametrize("damage, reason", [
    (lambda fs: fs[:-1], "no end frame"),
    # a family frame left out: the tables are the file's, so the next frame's label pairs (or,
    # when it used only pairs written before, the end frame's counts) miss it
    (lambda fs: fs[:2] + fs[3:], "IndexError|counts"),
    (lambda fs: fs[:-3] + fs[-2:], "counts"),  # the last family frame left out
    (lambda fs: fs[:1] + fs[2:], "IndexError"),  # the groups left out
    (lambda fs: [_doc({"format": "other"})] + fs[1:], "not an otelgravel snapshot"),
    (lambda fs: [_with_json(fs[0], _json(fs[0]).replace(b'"version":2', b'"version":9'))] + fs[1:],
     "version 9"),
    (lambda fs: [_with_json(fs[0], _json(fs[0]).replace(b'"version":2', b'"version":1'))] + fs[1:],
     "version 1/.* reads 2/2; remove the snapshot and the log"),
    (lambda fs: [_with_json(fs[0], _json(fs[0]).replace(b'"_Source"', b'"x"').replace(
        b'"seen"', b'"evil"'))] + fs[1:], "does not know"),
    (lambda fs: fs[:1] + [_with_json(fs[1], _json(fs[1]).replace(b'"b":[', b'"b":[["z","I",9],'))]
     + fs[2:], "runs past the end of its frame"),
    (lambda fs: fs[:1] + [_with_json(fs[1], _json(fs[1]).replace(b'"b":[', b'"b":[["z","I",-1],'))]
     + fs[2:], "of -1 values"),
    (lambda fs: fs[:1] + [_with_json(fs[1], _json(fs[1]).replace(b'"b":[', b'"b":[["z","O",0],'))]
     + fs[2:], "KeyError: 'O'"),
    (lambda fs: fs[:1] + [frame(fs[1][12:] + b"\0")] + fs[2:], "1 bytes after the frame's columns"),
    (lambda fs: fs + fs[-1:], "after the end"),
    (lambda fs: [b"".join(fs)[:-3]], "past the end"),
])
def test_what_is_not_a_whole_snapshot_of_ours_is_refused(damage, reason):
    store, memory = _state()
    data = b"".join(damage(_frames(store, memory)))
    with pytest.raises(DamagedFile, match=reason):
        decode_snapshot(data, "snap")


def test_a_flipped_byte_anywhere_is_refused_naming_the_offset():
    store, memory = _state()
    data = bytearray(b"".join(_frames(store, memory)))
    for at in range(0, len(data), max(1, len(data) // 97)):
        data[at] ^= 0x20
        with pytest.raises(DamagedFile, match=r"snap: damaged at offset \d+"):
            decode_snapshot(bytes(data), "snap")
        data[at] ^= 0x20
    decode_snapshot(bytes(data), "snap")


def test_a_class_the_file_names_that_is_not_ours_is_refused():
    """The decoder only builds classes from its own table: a file naming os.system builds nothing."""
    fs = _frames(*_state())
    head = json.loads(_json(fs[0]))
    head["classes"]["posix.system"] = []
    with pytest.raises(DamagedFile, match="unknown class 'posix.system'"):
        decode_snapshot(_with_json(fs[0], json.dumps(head).encode()) + b"".join(fs[1:]), "snap")
    evil = _doc({"t": "otlp", "sources": [[["O", "posix.system"], None]], "corrections": []})
    with pytest.raises(DamagedFile, match="posix.system"):
        decode_snapshot(b"".join(fs[:-2]) + evil + fs[-1], "snap")
    assert zlib.crc32(b"")  == 0


def test_deep_nesting_is_refused_as_damage_not_a_crash():
    fs = _frames(Store(), None)
    deep = "[" * 100_000 + "]" * 100_000
    evil = _with_json(frame(b"\0\0\0\0"),
                      ('{"t":"otlp","sources":' + deep + ',"corrections":[]}').encode())
    with pytest.raises(DamagedFile, match="RecursionError"):
        decode_snapshot(b"".join(fs[:-1]) + evil + fs[-1], "snap")


def test_a_large_mixed_family_spans_frames_and_comes_back_exactly():
    """More series than a frame holds, label sets of several lengths, histograms of two bucket
    layouts and native ones in one family, values that are not floats: every column codec's
    general path (the fast ones are for a family of one layout and one label length)."""
    from otelgravel.state import snapshot as codec
    store = Store()
    processor = GravelProcessor(store)
    n = codec.CHUNK * 2 + 7
    for i in range(n):
        group = (("instance", str(i % 97)), ("job", "big"))
        extra = "".join(f',l{j}="{i}"' for j in range(i % 3))
        bounds = ("1", "+Inf") if i % 2 else ("0.5", "2", "+Inf")
        text = "# TYPE big histogram\n" + "".join(
            f'big_bucket{{le="{le}",k="{i}"{extra}}} {i}\n' for le in bounds) + \
            f'big_sum{{k="{i}"{extra}}} {i * 0.5}\nbig_count{{k="{i}"{extra}}} {i}\n'
        processor.push(group, parse_prom_text(text.encode()), 1000.0 + i)
    store.apply([Family("big", HISTOGRAM, points=[Point((("k", "native"),), SUM, native=NativeHistogram(
        0, 0.0, 1.0, {1: 2.0}), sum=1.0, count=3.0)])], (("job", "big"),), 5000.0)
    store.get("big", (("instance", "3"), ("job", "big"), ("k", "3"))).point.sum = 3  # an int
    frames = list(encode_snapshot(store, None, 9))
    assert len(frames) > 4  # head, groups, three family frames, end
    snap = decode_snapshot(b"".join(frames), "snapshot")
    again = Store()
    again.restore(snap.store)
    assert again.series_count == store.series_count == n + 1
    assert list(encode_snapshot(again, None, 9)) == frames
    assert write_openmetrics(again, 6000.0) == write_openmetrics(store, 6000.0)
    key = (("instance", "5"), ("job", "big"), ("k", "5"), ("l0", "5"), ("l1", "5"))
    assert again.get("big", key).point.buckets == [(1.0, 5.0), (INF, 5.0)]
    assert again.get("big", key).point == store.get("big", key).point
    # the label pairs are shared: one tuple per pair in the whole state
    a = again.get("big", key).key[1]
    b = again.get("big", (("instance", "5"), ("job", "big"), ("k", "102"))).key[1]
    assert a is b


def _with_column(f: bytes, name: str, values: list) -> bytes:
    """The frame ``f`` with its binary column ``name`` replaced by u32 ``values``."""
    from array import array
    size = int.from_bytes(f[12:16], "little")
    doc = json.loads(f[16:16 + size])
    at, parts = 16 + size, []
    for col, code, count in doc["b"]:
        width = 8 if code == "d" else 4
        data = f[at:at + count * width]
        at += count * width
        if col == name:
            data = array("I", values).tobytes()
        parts.append(data)
    text = json.dumps(doc).encode()
    return frame(len(text).to_bytes(4, "little") + text + b"".join(parts))


@pytest.mark.parametrize("column, values, reason", [
    ("g", [10**6], "a series of group 1000000, of 3 groups"),  # a group that is not there
    ("k", [10**6] * 2, "IndexError"),                           # a label pair that is not there
])
def test_an_index_out_of_the_tables_is_damage(column, values, reason):
    store = Store()
    GravelProcessor(store).push(GROUP, parse_prom_text(b"# TYPE c counter\nc{a=\"1\"} 2\n"), 1.0)
    GravelProcessor(store).push((("job", "b"),), parse_prom_text(b"# TYPE d counter\nd 1\n"), 1.0)
    GravelProcessor(store).push((("job", "c"),), parse_prom_text(b"# TYPE d counter\nd 1\n"), 1.0)
    fs = _frames(store, None)
    family = next(i for i, f in enumerate(fs) if b'"t":"family"' in _json(f))
    decode_snapshot(b"".join(fs), "snap")
    fs[family] = _with_column(fs[family], column, values)
    with pytest.raises(DamagedFile, match=reason):
        decode_snapshot(b"".join(fs), "snap")
