"""The otelgravel command: bad config exits at once naming the key; SIGTERM exits 0 cleanly."""
import subprocess
import sys
import time



def run_cli(*args, timeout=20):
    return subprocess.run([sys.executable, "-m", "otelgravel", *args], capture_output=True,
                          text=True, timeout=timeout)


def test_invalid_config_exits_non_zero_naming_the_key():
    result = run_cli("--set", "processors.gravel.expire_after=-1s")
    assert result.returncode == 2
    assert 'processors::gravel::expire_after: must be a duration >= 0' in result.stderr
    assert '(got "-1s")' in result.stderr


def test_version():
    result = run_cli("--version")
    assert result.returncode == 0 and result.stdout.startswith("otelgravel 0.")


def test_missing_config_file_exits_non_zero(tmp_path):
    result = run_cli("--config", str(tmp_path / "nope.yaml"))
    assert result.returncode == 2 and "cannot read config" in result.stderr


def test_sigterm_finishes_and_exits_zero(gateway_factory):
    gw = gateway_factory()
    assert gw.push("/metrics/job/fn", "x 1\n")[0] == 200
    gw.proc.terminate()
    assert gw.proc.wait(15) == 0
    # one pushed series; a scrape also shows the group's two push-time gauges
    assert any("msg=stopped series=1 exposed=3" in line for line in gw.log), gw.log


def test_in_flight_request_completes_during_shutdown(gateway_factory):
    """A push whose body is still arriving when SIGTERM lands is answered, not dropped."""
    import http.client
    gw = gateway_factory()
    host, port = gw.url[len("http://"):].split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=15)
    body = b"# TYPE slow counter\nslow 1\n"
    conn.putrequest("POST", "/metrics/job/fn")
    conn.putheader("Content-Length", str(len(body)))
    conn.endheaders()
    conn.send(body[:10])
    # A request on another connection, answered after ours was sent, shows the gateway's loop
    # has read our headers: the push is in flight (body pending) when the signal arrives.
    assert gw.request("GET", "/-/ready")[0] == 200
    gw.proc.terminate()
    deadline = time.monotonic() + 10
    while not any("msg=\"shutting down\"" in line for line in gw.log):
        assert time.monotonic() < deadline, gw.log
        time.sleep(0.01)
    conn.send(body[10:])
    response = conn.getresponse()
    assert response.status == 200
    assert gw.proc.wait(15) == 0
