"""One validity rule: whatever the gateway accepts, it can write in every format it offers: both
prometheus_client parsers (strict in places) read the text 0.0.4, text 1.0.0 and OpenMetrics
scrapes, and the PrometheusProto scrape passes ``strict_scrape`` in every escaping scheme. Per
case the gateway either refuses the push with a 400 saying why, or writes a form every parser
accepts (README, compatibility notes): (case, receiver, body, status, message fragment,
OpenMetrics check)."""
from __future__ import annotations

import pytest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.metrics.v1 import metrics_pb2 as pb
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_om
from prometheus_client.parser import text_string_to_metric_families as parse_text

from tests.e2e.conftest import OM_ACCEPT
from tests.e2e.test_otlp_http import NOW_NS, SPAN_ID, TRACE_ID, resource_metrics
from tests.reliability.strict_scrape import ESCAPINGS, check_every_format

PROTOBUF = ("application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; "
            "encoding=delimited")


def _otlp(*metrics) -> bytes:
    return ExportMetricsServiceRequest(
        resource_metrics=[resource_metrics("valid", *metrics)]).SerializeToString()


def _exp_histogram_with_negative_buckets() -> bytes:
    return _otlp(pb.Metric(name="temp_delta", exponential_histogram=pb.ExponentialHistogram(
        aggregation_temporality=1, data_points=[pb.ExponentialHistogramDataPoint(
            time_unix_nano=NOW_NS, count=4, sum=-3.5, scale=0, zero_count=0,
            positive=pb.ExponentialHistogramDataPoint.Buckets(offset=0, bucket_counts=[1]),
            negative=pb.ExponentialHistogramDataPoint.Buckets(offset=0, bucket_counts=[2, 1]))])))


def _counter_with_long_exemplar() -> bytes:
    """As client_golang sends it (protobuf): nothing there bounds an exemplar's labels."""
    from google.protobuf.internal.encoder import _VarintBytes

    from otelgravel.formats.prom_protobuf import MetricFamily
    family = MetricFamily(name="orders_total", type=0, metric=[{"counter": {"value": 2, "exemplar": {
        "label": [{"name": "trace_id", "value": "t" * 64}, {"name": "user", "value": "u" * 64}],
        "value": 1}}}])
    return _VarintBytes(family.ByteSize()) + family.SerializeToString()


def _native_count_above_buckets() -> bytes:
    from google.protobuf.internal.encoder import _VarintBytes

    from otelgravel.formats.prom_protobuf import MetricFamily
    family = MetricFamily(name="native_seconds", type=4, metric=[{"histogram": {
        "sample_count": 5, "sample_sum": 1.5, "schema": 0, "zero_threshold": 0.001,
        "zero_count": 1, "positive_span": [{"offset": 0, "length": 1}], "positive_delta": [2]}}])
    return _VarintBytes(family.ByteSize()) + family.SerializeToString()


def _gauge_with_exemplar() -> bytes:
    return _otlp(pb.Metric(name="room_temp", gauge=pb.Gauge(data_points=[pb.NumberDataPoint(
        time_unix_nano=NOW_NS, as_double=21.5, exemplars=[pb.Exemplar(
            time_unix_nano=NOW_NS, as_double=21.5, trace_id=TRACE_ID, span_id=SPAN_ID)])])))


CASES = [
    pytest.param("text", "# TYPE c counter\nc NaN\n", 400, "NaN", None, id="NaN counter as text"),
    pytest.param("text", "# TYPE c counter\nc -1\n", 400, "negative", None, id="negative counter"),
    pytest.param("text", '# TYPE h histogram\nh_bucket{le="1"} 1\nh_bucket{le="+Inf"} 2\nh_count 2\n',
                 200, None, ("h_bucket", "no _count"), id="histogram _count without _sum"),
    pytest.param("text", '# TYPE h histogram\nh_bucket{le="1"} 1\nh_bucket{le="+Inf"} 2\n'
                 "h_count 2\nh_sum -5\n", 200, None, ("h_bucket", "no _count"),
                 id="histogram with a negative _sum"),
    pytest.param("text", '# TYPE s summary\ns{quantile="0.5"} 1\ns_sum -3\ns_count 2\n', 200, None,
                 ("s_count", "no _sum"), id="summary with a negative _sum"),
    pytest.param("text", '# TYPE s summary\ns{quantile="0.5"} -1\ns_sum 3\ns_count 2\n', 400,
                 "negative quantile value", None, id="summary with a negative quantile value"),
    pytest.param("text", '# TYPE s summary\ns{quantile="0.5"} NaN\ns_sum 0\ns_count 0\n', 200, None,
                 ("s", "quantile"), id="summary with NaN quantiles (no observations)"),
    pytest.param("otlp", _exp_histogram_with_negative_buckets(), 200, None,
                 ("temp_delta_bucket", "no _count"),
                 id="exponential histogram with negative buckets and a _sum"),
    pytest.param("protobuf", _counter_with_long_exemplar(), 200, None, ("orders_total", "no exemplar"),
                 id="exemplar labels over 128 characters"),
    pytest.param("otlp", _gauge_with_exemplar(), 200, None, ("room_temp", "no exemplar"),
                 id="exemplar on a gauge"),
    pytest.param("text", '# TYPE h histogram\nh_bucket{le="1"} 0.5\nh_bucket{le="+Inf"} 2.5\n'
                 "h_count 2.5\nh_sum 1\n", 400, "OpenMetrics counts observations in integers", None,
                 id="histogram with fractional counts"),
    pytest.param("protobuf", _native_count_above_buckets(), 400, "count 5 but 3 observations", None,
                 id="native histogram count above its buckets (Prometheus refuses the sample)"),
]


def _push(gw, receiver, body):
    if receiver == "otlp":
        return gw.request("POST", "/v1/metrics", body, {"Content-Type": "application/x-protobuf"},
                          base=gw.otlp_url)
    if receiver == "protobuf":
        return gw.push("/metrics/job/valid", body, headers={"Content-Type": PROTOBUF})
    return gw.push("/metrics/job/valid", body)


@pytest.mark.parametrize("receiver, body, status, fragment, check", CASES)
def test_everything_accepted_scrapes_valid_in_both_formats(gateway, receiver, body, status,
                                                           fragment, check):
    got, answer, _ = _push(gateway, receiver, body)
    assert got == status, answer
    if fragment is not None:
        assert fragment in answer.decode(), answer
    text = list(parse_text(gateway.scrape("text/plain")))
    om = list(parse_om(gateway.scrape(OM_ACCEPT)))  # raises on anything OpenMetrics forbids
    for escaping in ESCAPINGS:  # text 1.0.0 and PrometheusProto, strictly
        check_every_format(lambda accept: gateway.request(
            "GET", "/metrics", headers={"Accept": accept}, base=gateway.scrape_url)[:2], escaping)
    if check is None:
        assert gateway.scrape("text/plain") == gateway.scrape("text/plain")
        return
    name, what = check
    om_samples = [s for f in om for s in f.samples if s.name.startswith(name)]
    assert om_samples, om
    if what == "no _count":  # buckets alone: +Inf is the count
        assert not [s for s in om_samples if s.name.endswith(("_count", "_sum"))]
        assert [s for f in text for s in f.samples if s.name.endswith("_count")]  # text keeps it
    elif what == "no _sum":
        assert not [s for s in om_samples if s.name.endswith("_sum")]
        assert [s for s in om_samples if s.name.endswith("_count")]
    elif what == "no exemplar":
        assert all(s.exemplar is None for s in om_samples)
    elif what == "quantile":
        assert [s for s in om_samples if "quantile" in s.labels]
