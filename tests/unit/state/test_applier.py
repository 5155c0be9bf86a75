"""The applier: records in, the same state whether they come from a receiver or a log."""
import pytest

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.metrics.v1 import metrics_pb2 as pb
from opentelemetry.proto.resource.v1.resource_pb2 import Resource

from otelgravel.core.store import Store
from otelgravel.errors import ConflictError
from otelgravel.formats.prom_text import parse_prom_text
from otelgravel.processor import GravelProcessor
from otelgravel.state import (DELETE, EXPIRE, FAILURE, OTLP, PUSH, WIPE, Applier, Record,
                              decode_record, encode_record)
from otelgravel.translate.otlp import OtlpTranslator

JOB = (("job", "fn"),)


def applier(**store):
    return Applier(GravelProcessor(Store(**store)), OtlpTranslator(source_ttl=60))


def export(value: int) -> bytes:
    resource = Resource(attributes=[KeyValue(key="service.name", value=AnyValue(string_value="svc"))])
    metric = pb.Metric(name="jobs", sum=pb.Sum(aggregation_temporality=2, is_monotonic=True, data_points=[
        pb.NumberDataPoint(start_time_unix_nano=1, time_unix_nano=2, as_int=value)]))
    return ExportMetricsServiceRequest(resource_metrics=[pb.ResourceMetrics(
        resource=resource, scope_metrics=[pb.ScopeMetrics(metrics=[metric])])]).SerializeToString()


def log():
    return [Record(PUSH, 10.0, JOB, "text", b"# TYPE c counter\nc 2\n"),
            Record(PUSH, 11.0, JOB, "text", b'w{clear_mode="mean5m"} 4\n'),
            Record(PUSH, 12.0, JOB, "text", b"# TYPE c gauge\nc 1\n"),  # refused: c is a counter
            Record(OTLP, 13.0, body=export(5)),
            Record(OTLP, 14.0, body=export(7)),
            Record(FAILURE, 15.0, (("job", "other"),)),
            Record(PUSH, 16.0, (("job", "gone"),), "text", b"g 1\n"),
            Record(DELETE, 17.0, (("job", "gone"),))]


def replay(a, records):
    for r in records:
        try:
            a.apply(decode_record(encode_record(r)))
        except ConflictError:
            pass


def test_a_log_replayed_gives_the_state_of_its_live_apply():
    live = applier()
    for r in log():
        if r.kind == PUSH:
            r.parsed = parse_prom_text(r.body)
        try:
            live.apply(r)
        except ConflictError:
            pass
    again = applier()
    replay(again, log())
    for a in (live, again):
        assert a.store.get("c", JOB).point.value == 2
        assert a.store.get("jobs", (("job", "svc"),)).point.value == 7  # 5, then the increase 2
        assert a.store.get("c", JOB).created == 10.0  # _created is the record's time
        assert a.store.groups[JOB].failure_time == 12.0  # the refused push marked its group
        assert (("job", "gone"),) not in a.store.groups
    assert again.store.get("w", JOB).window.read(20.0) == live.store.get("w", JOB).window.read(20.0) == 4


def test_a_refusal_raises_and_changes_nothing_else():
    a = applier()
    a.apply(Record(PUSH, 1.0, JOB, "text", b"# TYPE c counter\nc 2\n"))
    with pytest.raises(ConflictError):
        a.apply(Record(PUSH, 2.0, JOB, "text", b"# TYPE c gauge\nc 1\n"))
    assert a.store.get("c", JOB).point.value == 2


def test_expire_and_wipe_are_records_applied_at_their_time():
    a = Applier(GravelProcessor(Store(expire_after=10)), OtlpTranslator(source_ttl=5))
    a.apply(Record(PUSH, 1.0, JOB, "text", b"x 1\n"))
    a.apply(Record(OTLP, 1.0, body=export(5)))
    assert a.expiry_due(2.0)
    a.apply(Record(EXPIRE, 5.0))
    assert a.store.series_count == 2 and len(a.memory) == 1
    a.apply(Record(EXPIRE, 7.0))  # the OTLP source is forgotten after source_ttl
    assert len(a.memory) == 0
    a.apply(Record(EXPIRE, 12.0))
    assert a.store.series_count == 0
    a.apply(Record(OTLP, 13.0, body=export(5)))
    a.apply(Record(WIPE, 14.0))
    assert a.store.series_count == 0 and len(a.memory) == 0
