"""storage.directory: every push answered 200 survives kill -9 and SIGTERM, files run no code,
damage stops the start, symlinks redirect nothing, replay applies each record once."""
from __future__ import annotations

import http.client
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
import uuid

import pytest
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricExportResult, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource

from .conftest import REPO

POLICIES = ("always", "interval", "never")
COUNTER = "# TYPE c counter\nc 1\n"
MIXED = ("# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 1.5\nh_count 2\n"
         "# TYPE t gauge\nt{clear_mode=\"mean5m\"} VALUE\n"
         "# TYPE build_info gauge\nbuild_info{version=\"VERSION\",clear_mode=\"family\"} 1\n")


def storage(directory, sync="interval", **more):
    sets = [f"processors.gravel.storage.directory={directory}",
            f"processors.gravel.storage.sync={sync}"]
    return sets + [f"processors.gravel.storage.{k}={v}" for k, v in more.items()]


def port_of(url: str) -> str:
    return url.rsplit(":", 1)[1]


def same_ports(gw) -> list[str]:
    """Sets that bring a restarted gateway up on the ports of ``gw`` (an OTel SDK exporter keeps
    its endpoint, as a function's would)."""
    return [f"receivers.pushgateway.endpoint=127.0.0.1:{port_of(gw.url)}",
            f"exporters.prometheus.endpoint=127.0.0.1:{port_of(gw.scrape_url)}",
            f"receivers.otlp.protocols.http.endpoint=127.0.0.1:{port_of(gw.otlp_url)}"]


class SdkSource:
    """One long-lived process exporting a CUMULATIVE counter with the real OTel SDK."""

    def __init__(self, otlp_url):
        self.exporter = OTLPMetricExporter(endpoint=otlp_url + "/v1/metrics")
        self.results = []
        export = self.exporter.export

        def checked(data, *a, **kw):
            result = export(data, *a, **kw)
            self.results.append(result)
            return result

        self.exporter.export = checked
        reader = PeriodicExportingMetricReader(self.exporter, export_interval_millis=3_600_000)
        self.provider = MeterProvider(resource=Resource.create(
            {"service.name": "sdk", "service.instance.id": str(uuid.uuid4())}), metric_readers=[reader])
        self.counter = self.provider.get_meter("t").create_counter("jobs")

    def add(self, n):
        self.counter.add(n)
        self.results.clear()
        self.provider.force_flush(10_000)
        assert self.results == [MetricExportResult.SUCCESS]


def kill9(gw):
    gw.proc.send_signal(signal.SIGKILL)
    gw.proc.wait(10)


def test_the_gateway_refuses_a_directory_others_can_write(tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o777)
    shared.chmod(0o777)
    result = start_fails(storage(shared))
    assert f"storage directory {shared} is writable by other users (mode 777)" in result.stderr


@pytest.mark.parametrize("sync", POLICIES)
def test_kill_9_loses_no_push_answered_200(gateway_factory, tmp_path, sync):
    state = tmp_path / "state"
    gw = gateway_factory(storage(state, sync))
    sdk = SdkSource(gw.otlp_url)
    sdk.add(5)
    for i in range(30):
        assert gw.push("/metrics/job/fn/instance/i%d" % (i % 3), COUNTER)[0] == 200
        body = MIXED.replace("VALUE", str(i)).replace("VERSION", str(i % 4))
        assert gw.push("/metrics/job/mixed", body)[0] == 200
    assert gw.request("DELETE", "/metrics/job/fn/instance/i2")[0] == 202
    before = gw.samples(openmetrics=True)
    assert before[("t", frozenset({("job", "mixed")}))] == 14.5  # the mean of 0..29
    kill9(gw)

    again = gateway_factory(storage(state, sync) + same_ports(gw))
    assert again.samples(openmetrics=True) == before
    sdk.add(2)  # the same cumulative source goes on: 7 since its start, 2 of it new
    assert again.value("jobs_total", job="sdk", otel_scope_name="t") == 7
    assert again.value("c_total", job="fn", instance="i0") == 10
    sdk.provider.shutdown()


class Pusher(threading.Thread):
    """A client pushing one increment at a time on a kept-alive connection, counting 200s.

    ``keyed``: every push has its own Idempotency-Key, and a push that failed (a broken
    connection, a refused one while the gateway is down, a 5xx) is sent again with the same key
    until it is answered 200, within the deadline; ``drain()`` lets the push in hand finish,
    then stops. ``ok`` then counts logical pushes, each answered 200 once."""

    def __init__(self, host, port, deadline, keyed=False):
        super().__init__(daemon=True)
        self.host, self.port, self.deadline, self.keyed = host, port, deadline, keyed
        self.ok = 0
        self.other = 0
        self.retried = 0     # keyed: pushes sent more than once
        self.replayed = 0    # keyed: answers saying Idempotent-Replayed
        self.pending = None  # keyed: the key of the push in hand, until it is answered 200
        self.draining = threading.Event()

    def drain(self):
        self.draining.set()

    def run(self):
        conn = None
        attempts = 0
        while time.monotonic() < self.deadline:
            if self.keyed and self.pending is None:
                if self.draining.is_set():
                    return
                self.pending, attempts = uuid.uuid4().hex, 0
            try:
                if conn is None:
                    conn = http.client.HTTPConnection(self.host, self.port, timeout=10)
                headers = {"Idempotency-Key": self.pending} if self.keyed else {}
                attempts += 1
                if attempts == 2:
                    self.retried += 1
                conn.request("POST", "/metrics/job/load", COUNTER.encode(), headers)
                response = conn.getresponse()
                response.read()
                if response.status == 200:
                    self.ok += 1
                    self.pending = None
                    self.replayed += response.getheader("Idempotent-Replayed") == "true"
                else:
                    self.other += 1
                    if self.keyed and response.status < 500:
                        raise AssertionError(f"push answered {response.status}")
                if response.will_close:
                    conn.close()
                    conn = None
            except ConnectionRefusedError:
                if not self.keyed:
                    return  # the gateway stopped listening and is gone
                time.sleep(0.05)  # keyed: until the gateway is back
                conn = None
            except (OSError, http.client.HTTPException):
                self.other += 1
                if conn is not None:
                    conn.close()
                conn = None


@pytest.mark.parametrize("sync", POLICIES)
def test_sigterm_under_load_keeps_every_push_answered_200(gateway_factory, tmp_path, sync):
    state = tmp_path / "state"
    gw = gateway_factory(storage(state, sync))
    host, port = gw.url[len("http://"):].rsplit(":", 1)
    pushers = [Pusher(host, int(port), time.monotonic() + 20) for _ in range(8)]
    for p in pushers:
        p.start()
    deadline = time.monotonic() + 10
    while sum(p.ok for p in pushers) < 400:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    gw.proc.send_signal(signal.SIGTERM)
    assert gw.proc.wait(30) == 0
    for p in pushers:
        p.join(25)
    answered = sum(p.ok for p in pushers)
    again = gateway_factory(storage(state, sync))
    assert again.value("c_total", job="load") == answered


def test_a_request_on_a_kept_alive_connection_during_shutdown_is_refused(gateway_factory, tmp_path):
    state = tmp_path / "state"
    gw = gateway_factory(storage(state))
    host, port = gw.url[len("http://"):].rsplit(":", 1)
    kept = http.client.HTTPConnection(host, int(port), timeout=10)
    kept.request("POST", "/metrics/job/k", COUNTER.encode())
    assert kept.getresponse().read() == b""
    # a push whose body is still on its way holds the shutdown in its grace period
    slow = socket.create_connection((host, int(port)))
    slow.sendall(b"POST /metrics/job/k HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n"
                 % len(COUNTER) + COUNTER[:5].encode())
    time.sleep(0.3)  # the request reaches its handler (nothing outside can see that happen)
    gw.proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 10
    while not any("shutting down" in line for line in gw.log):
        assert time.monotonic() < deadline
        time.sleep(0.02)
    # stop() sets InFlight.closing right after that line, before its first await
    kept.request("POST", "/metrics/job/k", COUNTER.encode())
    response = kept.getresponse()
    assert response.status == 503 and response.will_close
    assert response.headers["Retry-After"] == "1"
    slow.sendall(COUNTER[5:].encode())
    assert slow.recv(100).startswith(b"HTTP/1.1 200")
    slow.close()
    assert gw.proc.wait(20) == 0
    again = gateway_factory(storage(state))
    assert again.value("c_total", job="k") == 2  # the two 200s, not the 503


def size_or_0(path) -> int:
    """A file's size, 0 once it is gone (a snapshot deletes segments while the test lists them)."""
    try:
        return os.path.getsize(path)
    except FileNotFoundError:
        return 0


def segments(state):
    return sorted(p for p in state.iterdir() if p.name.startswith("log-"))


def start_fails(sets):
    args = [sys.executable, "-m", "otelgravel", "--set", "receivers.pushgateway.endpoint=127.0.0.1:0",
            "--set", "exporters.prometheus.endpoint=127.0.0.1:0",
            "--set", "receivers.otlp.protocols.http.endpoint=127.0.0.1:0"]
    for item in sets:
        args += ["--set", item]
    env = dict(os.environ, PYTHONPATH=str(REPO))
    result = subprocess.run(args, capture_output=True, text=True, timeout=30, env=env, cwd=REPO)
    assert result.returncode == 1, result.stderr
    return result


def ten_pushes_then_kill_9(gateway_factory, state):
    gw = gateway_factory(storage(state))
    for _ in range(10):
        assert gw.push("/metrics/job/fn", COUNTER)[0] == 200
    kill9(gw)
    (log,) = segments(state)
    return log


def test_a_torn_last_record_is_dropped_with_a_warning(gateway_factory, tmp_path):
    state = tmp_path / "state"
    log = ten_pushes_then_kill_9(gateway_factory, state)
    size = log.stat().st_size
    os.truncate(log, size - 7)  # the last write cut short
    again = gateway_factory(storage(state))
    assert any("torn last record dropped" in line and str(log) in line for line in again.log), again.log
    assert again.value("c_total", job="fn") == 9  # every whole record
    assert again.push("/metrics/job/fn", COUNTER)[0] == 200
    kill9(again)
    third = gateway_factory(storage(state))  # the repaired log is whole: no warning, nothing lost
    assert not any("torn last record" in line for line in third.log)
    assert third.value("c_total", job="fn") == 10


def test_a_flipped_byte_in_the_log_stops_the_start_naming_file_and_offset(gateway_factory, tmp_path):
    state = tmp_path / "state"
    log = ten_pushes_then_kill_9(gateway_factory, state)
    data = bytearray(log.read_bytes())
    frame = len(data) // 10
    data[frame * 4 + frame // 2] ^= 0x01  # inside the fifth record
    log.write_bytes(bytes(data))
    result = start_fails(storage(state))
    assert f"{log}: damaged at offset {frame * 4}: frame checksum mismatch" in result.stderr


def test_a_flipped_byte_in_the_snapshot_stops_the_start(gateway_factory, tmp_path):
    state = tmp_path / "state"
    gw = gateway_factory(storage(state))
    for i in range(50):
        assert gw.push(f"/metrics/job/fn/instance/{i}", COUNTER)[0] == 200
    gw.proc.send_signal(signal.SIGTERM)
    assert gw.proc.wait(20) == 0
    snapshot = state / "snapshot"
    data = bytearray(snapshot.read_bytes())
    data[len(data) // 2] ^= 0x01
    snapshot.write_bytes(bytes(data))
    result = start_fails(storage(state))
    assert f"{snapshot}: damaged at offset " in result.stderr and "checksum mismatch" in result.stderr


def test_files_are_0600_and_a_snapshot_replaces_a_planted_symlink(gateway_factory, tmp_path):
    state = tmp_path / "state"
    precious = tmp_path / "precious"
    precious.write_text("keep me")
    gw = gateway_factory(storage(state, snapshot_interval="300ms"))
    assert gw.push("/metrics/job/fn", COUNTER)[0] == 200
    os.symlink(precious, state / "snapshot")
    wait_for(gw, "snapshot written")
    assert not (state / "snapshot").is_symlink()  # rename replaced the link, not its target
    assert precious.read_text() == "keep me"
    # the next segment's name, planted: the cut refuses to open it, pushes go on
    (current,) = segments(state)
    following = state / f"log-{int(current.name[4:], 16) + 1:016x}"
    os.symlink(precious, following)
    assert gw.push("/metrics/job/fn", COUNTER)[0] == 200
    wait_for(gw, "snapshot failed")
    assert precious.read_text() == "keep me"
    assert gw.push("/metrics/job/fn", COUNTER)[0] == 200
    os.unlink(following)
    gw.proc.send_signal(signal.SIGTERM)
    assert gw.proc.wait(20) == 0
    assert stat.S_IMODE(state.stat().st_mode) == 0o700
    for path in state.iterdir():
        assert stat.S_IMODE(path.lstat().st_mode) == 0o600, path
    again = gateway_factory(storage(state))
    assert again.value("c_total", job="fn") == 3


@pytest.mark.parametrize("name", ["lock", "snapshot", "log-0000000000000001"])
def test_a_symlink_planted_before_the_start_is_refused_unfollowed(tmp_path, name):
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    precious = tmp_path / "precious"
    precious.write_text("keep me")
    os.symlink(precious, state / name)
    result = start_fails(storage(state))
    assert f"{state / name}: Too many levels of symbolic links" in result.stderr
    assert precious.read_text() == "keep me"


def wait_for(gw, text, timeout=15):
    deadline = time.monotonic() + timeout
    while not any(text in line for line in gw.log):
        assert time.monotonic() < deadline, gw.log
        time.sleep(0.02)


def test_replay_applies_each_record_once_after_a_crash_between_snapshot_and_truncation(
        gateway_factory, tmp_path):
    state = tmp_path / "state"
    gw = gateway_factory(storage(state))
    for _ in range(20):
        assert gw.push("/metrics/job/fn", COUNTER)[0] == 200
    kill9(gw)
    kept = tmp_path / "kept"
    kept.mkdir()
    for log in segments(state):  # the log as it was before any snapshot truncated it
        shutil.copy2(log, kept / log.name)
    again = gateway_factory(storage(state))
    for _ in range(5):
        assert again.push("/metrics/job/fn", COUNTER)[0] == 200
    again.proc.send_signal(signal.SIGTERM)  # the final snapshot holds all 25 and truncates
    assert again.proc.wait(20) == 0
    assert not any(p.name in {k.name for k in kept.iterdir()} for p in segments(state))
    for log in kept.iterdir():  # as if the crash came between the snapshot and the truncation
        shutil.copy2(log, state / log.name)
    third = gateway_factory(storage(state))
    assert any("skipped=20" in line for line in third.log), third.log
    assert third.value("c_total", job="fn") == 25


def test_a_write_the_disk_refuses_is_503_and_nothing_of_it_is_applied(gateway_factory, tmp_path,
                                                                       monkeypatch):
    """A real write error: the gateway runs with a file size limit (RLIMIT_FSIZE: EFBIG)."""
    import resource

    from .conftest import Gateway

    state = tmp_path / "state"
    real_popen = subprocess.Popen

    def limited_popen(*args, **kw):
        kw["preexec_fn"] = lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (2000, 2000))
        return real_popen(*args, **kw)

    monkeypatch.setattr(subprocess, "Popen", limited_popen)
    gw = Gateway(storage(state))
    monkeypatch.setattr(subprocess, "Popen", real_popen)
    try:
        statuses = [gw.push("/metrics/job/fn", COUNTER) for _ in range(60)]
        codes = [s for s, _, _ in statuses]
        ok = codes.index(503)
        assert ok > 0 and set(codes[ok:]) == {503}, codes  # refused from the first failure on
        assert statuses[ok][2]["Retry-After"] == "1"
        assert b"cannot be written" in statuses[ok][1]
        assert gw.value("c_total", job="fn") == ok  # the refused pushes changed nothing
    finally:
        gw.stop()
    again = gateway_factory(storage(state))
    assert again.value("c_total", job="fn") == ok


def test_the_otlp_memory_survives_a_snapshot_too(gateway_factory, tmp_path):
    state = tmp_path / "state"
    gw = gateway_factory(storage(state))
    sdk = SdkSource(gw.otlp_url)
    sdk.add(5)
    gw.proc.send_signal(signal.SIGTERM)  # the last snapshot holds the source; the log is empty
    assert gw.proc.wait(20) == 0
    assert not any(p.stat().st_size for p in segments(state))
    again = gateway_factory(storage(state) + same_ports(gw))
    sdk.add(2)
    assert again.value("jobs_total", job="sdk", otel_scope_name="t") == 7
    sdk.provider.shutdown()


def test_snapshots_under_load_then_kill_9_count_every_push_once(gateway_factory, tmp_path):
    """Snapshots (forked) every 200 ms while 8 clients push, each push with its Idempotency-Key,
    then kill -9: the clients send the push they had in hand again, with its key, to the
    restarted gateway. The total is then exactly the number of pushes answered 200 (a push that
    was in the log but not answered at the kill is answered as a replay, not counted twice)."""
    state = tmp_path / "state"
    # sync: always, so that a push is in the log for an fsync's time before it is answered: the
    # kill finds pushes written and not answered (with interval the window is a few µs)
    gw = gateway_factory(storage(state, "always", snapshot_interval="200ms"))
    host, port = gw.url[len("http://"):].rsplit(":", 1)
    pushers = [Pusher(host, int(port), time.monotonic() + 40, keyed=True) for _ in range(8)]
    for p in pushers:
        p.start()
    deadline = time.monotonic() + 25
    while sum("snapshot written" in line for line in gw.log) < 5:
        assert time.monotonic() < deadline, gw.log
        time.sleep(0.05)
    kill9(gw)
    assert all(p.is_alive() for p in pushers)
    again = gateway_factory(storage(state, "always") + same_ports(gw))
    for p in pushers:
        p.drain()
    for p in pushers:
        p.join(35)
    assert not any(p.is_alive() or p.pending for p in pushers), "a push was never answered 200"
    answered = sum(p.ok for p in pushers)
    assert answered > 100
    assert sum(p.retried for p in pushers) > 0, "no push was in hand at the kill: nothing tested"
    assert again.value("c_total", job="load") == answered


def test_the_log_is_bounded_by_size_under_load_and_kill_9_loses_nothing(gateway_factory, tmp_path):
    """snapshot_log_size: with snapshots by time an hour apart, 4 clients pushing keep the log
    near its 8 KiB bound (snapshots by size, not one per push); kill -9, then the restarted
    gateway holds every push answered 200 exactly once."""
    state = tmp_path / "state"
    gw = gateway_factory(storage(state, "interval", snapshot_interval="1h",
                                 snapshot_log_size="8KiB"))
    host, port = gw.url[len("http://"):].rsplit(":", 1)
    pushers = [Pusher(host, int(port), time.monotonic() + 4) for _ in range(4)]
    for p in pushers:
        p.start()
    biggest = 0
    while any(p.is_alive() for p in pushers):
        logs = [n for n in os.listdir(state) if n.startswith("log-")]
        biggest = max(biggest, sum(size_or_0(state / n) for n in logs))
        time.sleep(0.01)
    answered = sum(p.ok for p in pushers)
    snapshots = sum("snapshot written" in line for line in gw.log)
    record = 90  # about: frame, sequence number, record header, the job label, the body
    assert answered > 500
    assert 3 <= snapshots <= answered * record // 8192 + 2, (snapshots, answered)
    assert biggest < 8 * 8192, biggest  # the bound plus what came while a snapshot was written
    kill9(gw)
    again = gateway_factory(storage(state, "interval") + same_ports(gw))
    assert again.value("c_total", job="load") == answered
