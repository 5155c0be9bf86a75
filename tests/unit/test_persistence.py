"""persistence: the store and the OTLP source memory through a file, and nothing but them."""
import asyncio
import os
import pickle

import pytest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.metrics.v1 import metrics_pb2 as pb
from opentelemetry.proto.resource.v1.resource_pb2 import Resource

from otelgravel import persistence
from otelgravel.core.store import Store
from otelgravel.formats.exposition import write_openmetrics
from otelgravel.formats.openmetrics import parse_openmetrics
from otelgravel.formats.prom_text import parse_prom_text
from otelgravel.processor import GravelProcessor
from otelgravel.translate.otlp import CUMULATIVE, OtlpTranslator

GROUP = (("job", "fn"),)
WINDOWS = ("sum1m", "mean1m", "min1m", "max1m", "count1m", "last1m", "p90_1m")
TEXT = ("# TYPE c counter\nc 2\n# TYPE g gauge\ng 1.5\n"
        "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 3\nh_count 2\n"
        "# TYPE s summary\ns{quantile=\"0.5\"} 4\ns_sum 9\ns_count 3\n"
        + "".join(f"w{{agg=\"{m}\",clear_mode=\"{m}\"}} 7\n" for m in WINDOWS))
OPENMETRICS = ("# TYPE build info\nbuild_info{version=\"1\"} 1\n"
               "# TYPE state stateset\nstate{state=\"a\"} 1\nstate{state=\"b\"} 0\n"
               "# TYPE q gaugehistogram\nq_bucket{le=\"+Inf\"} 3\nq_gcount 3\nq_gsum 2\n"
               "# TYPE e counter\ne_total 1 # {trace_id=\"abc\"} 0.5 1.0\n# EOF\n")


def _cumulative_export(value: float) -> ExportMetricsServiceRequest:
    point = pb.NumberDataPoint(start_time_unix_nano=1, time_unix_nano=2, as_double=value)
    metric = pb.Metric(name="calls", sum=pb.Sum(data_points=[point], is_monotonic=True,
                                                aggregation_temporality=CUMULATIVE))
    resource = Resource(attributes=[KeyValue(key="service.name", value=AnyValue(string_value="svc"))])
    return ExportMetricsServiceRequest(resource_metrics=[pb.ResourceMetrics(
        resource=resource, scope_metrics=[pb.ScopeMetrics(metrics=[metric])])])


def _sources(translator: OtlpTranslator) -> list:
    sources, corrections = translator.snapshot()
    return [(key, s.start, s.value, s.buckets, s.sum, s.count) for key, s in sources], corrections


def test_every_kind_of_series_and_the_otlp_memory_come_back(tmp_path):
    store = Store()
    processor = GravelProcessor(store)
    for now in (1.0, 2.0):
        processor.push(GROUP, parse_prom_text(TEXT.encode()), now)
        processor.push(GROUP + (("instance", "b"),), parse_openmetrics(OPENMETRICS.encode()), now)
    translator = OtlpTranslator()
    translation = translator.translate(_cumulative_export(5.0), now=2.0)
    for _, families in translation.groups:
        for family in families:
            translation.commit(family)
    assert _sources(translator)[0], "the translator remembers the cumulative source"
    path = str(tmp_path / "state")

    assert asyncio.run(persistence.save(store, path, translator.snapshot())) == store.series_count
    snapshot, extra = persistence.load(path)
    again = Store()
    again.restore(snapshot)
    restored = OtlpTranslator()
    restored.restore(extra)

    assert write_openmetrics(again, 3.0) == write_openmetrics(store, 3.0)
    assert 'w{agg="p90_1m",job="fn"} 7' in write_openmetrics(again, 3.0)  # windows included
    assert _sources(restored) == _sources(translator)


class _RunsCode:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


@pytest.mark.parametrize("where", ["file", "series blob"])
def test_a_file_that_names_other_globals_is_refused_unrun(tmp_path, where):
    marker = tmp_path / "ran"
    evil = _RunsCode(marker)
    blob = pickle.dumps([evil]) if where == "series blob" else pickle.dumps([])
    data = {"file_version": persistence.FILE_VERSION,
            "snapshot_version": persistence.SNAPSHOT_VERSION, "groups": [],
            "families": [("x", "gauge", "", "", [blob])],
            "extra": evil if where == "file" else None}
    path = tmp_path / "state"
    path.write_bytes(pickle.dumps(data))
    with pytest.raises(persistence.PersistenceError, match="refused global posix.system"):
        persistence.load(str(path))
    assert not marker.exists()
