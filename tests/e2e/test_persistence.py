"""persistence_file: the store survives a restart (SIGTERM saves, start restores)."""
import pickle


def test_the_store_survives_a_restart(gateway_factory, tmp_path):
    path = tmp_path / "state.bin"
    sets = [f"processors.gravel.persistence_file={path}", "processors.gravel.persistence_interval=1h"]
    gw = gateway_factory(sets)
    assert gw.push("/metrics/job/fn", "# TYPE c counter\nc 2\n")[0] == 200
    assert gw.push("/metrics/job/fn", 'w{clear_mode="max5m"} 7\nv{version="1",clear_mode="family"} 1\n')[0] == 200
    before = gw.samples()
    gw.proc.terminate()
    assert gw.proc.wait(15) == 0
    assert any("msg=persisted" in line for line in gw.log), gw.log
    assert path.exists()

    again = gateway_factory(sets)
    assert any("msg=restored" in line and "series=3" in line for line in again.log), again.log
    assert again.samples() == before
    assert again.push("/metrics/job/fn", "# TYPE c counter\nc 1\n")[0] == 200
    assert again.value("c_total", job="fn") == 3  # the counter goes on from where it was


def test_a_periodic_save_happens_without_a_restart(gateway_factory, tmp_path):
    import time
    path = tmp_path / "state.bin"
    gw = gateway_factory([f"processors.gravel.persistence_file={path}",
                          "processors.gravel.persistence_interval=200ms"])
    assert gw.push("/metrics/job/fn", "x 1\n")[0] == 200
    deadline = time.monotonic() + 10
    while not any("msg=persisted" in line and "series=1" in line for line in gw.log):
        assert time.monotonic() < deadline, gw.log
        time.sleep(0.05)
    assert pickle.loads(path.read_bytes())["file_version"] == 1


def test_an_unreadable_persistence_file_stops_the_start(tmp_path):
    import subprocess
    import sys
    path = tmp_path / "state.bin"
    path.write_bytes(b"not a pickle")
    result = subprocess.run([sys.executable, "-m", "otelgravel",
                             "--set", f"processors.gravel.persistence_file={path}",
                             "--set", "receivers.pushgateway.endpoint=127.0.0.1:0",
                             "--set", "exporters.prometheus.endpoint=127.0.0.1:0",
                             "--set", "receivers.otlp.protocols.http.endpoint=127.0.0.1:0"],
                            capture_output=True, text=True, timeout=20)
    assert result.returncode == 1
    assert f"cannot read persistence file {path}" in result.stderr


def test_otlp_cumulative_sources_survive_a_restart(gateway_factory, tmp_path):
    """One process exports 5 then (after the gateway restarted) 7: the total is 7, not 12."""
    from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
    from opentelemetry.proto.metrics.v1 import metrics_pb2 as pb
    from opentelemetry.proto.resource.v1.resource_pb2 import Resource

    def export(gw, value):
        resource = Resource(attributes=[
            KeyValue(key="service.name", value=AnyValue(string_value="svc")),
            KeyValue(key="service.instance.id", value=AnyValue(string_value="one-process"))])
        metric = pb.Metric(name="jobs", sum=pb.Sum(aggregation_temporality=2, is_monotonic=True, data_points=[
            pb.NumberDataPoint(start_time_unix_nano=1, time_unix_nano=2 + value, as_int=value)]))
        body = ExportMetricsServiceRequest(resource_metrics=[pb.ResourceMetrics(
            resource=resource, scope_metrics=[pb.ScopeMetrics(metrics=[metric])])]).SerializeToString()
        status, _, _ = gw.request("POST", "/v1/metrics", body, {"Content-Type": "application/x-protobuf"},
                                  base=gw.otlp_url)
        assert status == 200

    sets = [f"processors.gravel.persistence_file={tmp_path / 'state.bin'}"]
    gw = gateway_factory(sets)
    export(gw, 5)
    assert gw.value("jobs_total", job="svc") == 5
    gw.proc.terminate()
    assert gw.proc.wait(15) == 0
    again = gateway_factory(sets)
    export(again, 7)
    assert again.value("jobs_total", job="svc") == 7
