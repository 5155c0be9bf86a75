"""The push API end to end: real HTTP against the real gateway process, values asserted."""
import base64
import concurrent.futures
import gzip
import random

import pytest

GRAVEL_FIRST = """# TYPE value_total counter
value_total 1
# TYPE value2 gauge
value2{clearmode="aggregate"} 1
# TYPE version gauge
version{version="0.0.1",clearmode="family"} 1
"""
GRAVEL_SECOND = GRAVEL_FIRST.replace("value_total 1", "value_total 3").replace("0.0.1", "0.0.2")


def test_the_talks_counter_example_sums(gateway):
    for _ in range(2):
        assert gateway.push("/metrics/job/wshim", 'wshim_request_count{clear_mode="sum"} 1\n')[0] == 200
    assert gateway.value("wshim_request_count", job="wshim") == 2


def test_the_talks_info_example_keeps_only_the_latest_version(gateway):
    for version in ("1.0", "1.1"):
        body = f'wshim_info{{version="{version}",commit="abc",clear_mode="family"}} 1\n'
        assert gateway.push("/metrics/job/wshim", body)[0] == 200
    samples = gateway.samples()
    info = {k: v for k, v in samples.items() if k[0] == "wshim_info"}
    assert info == {("wshim_info", frozenset({("job", "wshim"), ("version", "1.1"), ("commit", "abc")})): 1}


def test_the_gravel_readme_example(gateway):
    for body in (GRAVEL_FIRST, GRAVEL_SECOND):
        assert gateway.push("/metrics", body)[0] == 200
    text = gateway.scrape("text/plain")
    assert "clear_mode" not in text and "clearmode" not in text
    samples = gateway.samples()
    assert samples[("value_total", frozenset())] == 4
    assert samples[("value2", frozenset())] == 2
    versions = [dict(k[1]) for k in samples if k[0] == "version"]
    assert versions == [{"version": "0.0.2"}]
    assert "clear_mode" not in gateway.scrape("application/openmetrics-text")


def test_put_aggregates_exactly_like_post(gateway):
    for method in ("PUT", "POST", "PUT"):
        assert gateway.push("/metrics/job/fn", "# TYPE hits counter\nhits 1\n", method)[0] == 200
    assert gateway.value("hits_total", job="fn") == 3


def test_grouping_key_encodings_arrive_intact(gateway):
    path_b64 = base64.urlsafe_b64encode(b"/var/tmp").decode().rstrip("=")
    cases = [
        (f"/metrics/job/fn/path@base64/{path_b64}", {"job": "fn", "path": "/var/tmp"}),
        ("/metrics/job/fn/path/a%2Fb%20c", {"job": "fn", "path": "a/b c"}),
        ("/metrics/job/fn/empty@base64/=", {"job": "fn", "empty": ""}),
        ("/metrics/job/fn/trailing/", {"job": "fn", "trailing": ""}),
        ("/metrics/job@base64/" + base64.urlsafe_b64encode(b"a/job").decode(), {"job": "a/job"}),
    ]
    for i, (path, _) in enumerate(cases):
        assert gateway.push(path, f"g{i} 1\n", "PUT")[0] == 200, path
    samples = gateway.samples()
    for i, (path, labels) in enumerate(cases):
        want = frozenset(labels.items())
        assert samples.get((f"g{i}", want)) == 1, (path, [k for k in samples if k[0] == f"g{i}"])


@pytest.mark.parametrize("path, fragment", [
    ("/metrics/job/fn/odd", "odd"),
    ("/metrics/job/fn/__bad/x", "__"),
    ("/metrics/job/fn//x", "empty label name"),
    ("/metrics/job/fn/U__a_2e_b/1/a_b/2", "would both be written"),
    ("/metrics/job/fn/x@base64/!!!", "base64"),
    ("/metrics/job/", "job"),
])
def test_bad_grouping_keys_are_400(gateway, path, fragment):
    status, body, _ = gateway.push(path, "x 1\n")
    assert status == 400 and fragment in body.decode().lower(), body
    assert gateway.samples() == {}


def test_delete_removes_exactly_that_group(gateway):
    gateway.push("/metrics/job/fn/instance/a", "x 1\n")
    gateway.push("/metrics/job/fn/instance/b", "x 2\n")
    assert gateway.request("DELETE", "/metrics/job/fn/instance/a")[0] == 202
    samples = gateway.samples()
    assert ("x", frozenset({("job", "fn"), ("instance", "a")})) not in samples
    assert samples[("x", frozenset({("job", "fn"), ("instance", "b")}))] == 2
    push_times = {k[1] for k in samples if k[0] == "push_time_seconds"}
    assert push_times == {frozenset({("job", "fn"), ("instance", "b")})}


def test_push_time_and_failure_time_carry_the_group_labels(gateway):
    assert gateway.push("/metrics/job/fn", "# TYPE x counter\nx 1\n")[0] == 200
    assert gateway.push("/metrics/job/fn", "x{ 1\n")[0] == 400
    samples = gateway.samples()
    assert samples[("push_time_seconds", frozenset({("job", "fn")}))] > 1.7e9
    assert samples[("push_failure_time_seconds", frozenset({("job", "fn")}))] >= \
        samples[("push_time_seconds", frozenset({("job", "fn")}))]


def test_health_ready_405_and_404(gateway):
    assert gateway.request("GET", "/-/healthy")[:2] == (200, b"OK\n")
    assert gateway.request("GET", "/-/ready")[0] == 200
    assert gateway.request("HEAD", "/-/ready")[:2] == (200, b"")
    status, _, headers = gateway.request("GET", "/metrics/job/fn")
    assert status == 405 and headers["Allow"] == "DELETE,POST,PUT"
    assert gateway.request("PATCH", "/metrics")[0] == 405
    assert gateway.request("GET", "/nowhere")[0] == 404
    assert gateway.request("GET", "/v1/metrics", base=gateway.otlp_url)[0] == 405


def test_wipe_is_404_without_admin_api(gateway_factory):
    gw = gateway_factory(["receivers.pushgateway.admin_api=false"])
    assert gw.push("/metrics/job/fn", "x 1\n")[0] == 200
    assert gw.request("PUT", "/api/v1/admin/wipe")[0] == 404
    assert gw.value("x", job="fn") == 1


def test_gzip_body_and_gzip_scrape(gateway):
    body = gzip.compress(b"# TYPE zipped counter\nzipped 5\n")
    assert gateway.push("/metrics/job/fn", body, headers={"Content-Encoding": "gzip"})[0] == 200
    status, data, headers = gateway.request("GET", "/metrics", headers={"Accept-Encoding": "gzip"})
    assert headers["Content-Encoding"] == "gzip"
    assert 'zipped_total{job="fn"} 5' in gzip.decompress(data).decode()


def test_a_large_gzip_scrape_is_the_identity_scrape_compressed(gateway_factory):
    """Above GZIP_IN_THREAD the compression runs in a thread: the same bytes, compressed."""
    from otelgravel.exporters.prometheus import GZIP_IN_THREAD
    gw = gateway_factory()
    body = "# TYPE big counter\n" + "".join(f'big{{n="{i:05d}"}} {i}\n' for i in range(4000))
    assert gw.push("/metrics/job/fn", body)[0] == 200
    _, plain, headers = gw.request("GET", "/metrics", headers={"Accept-Encoding": "identity"})
    assert "Content-Encoding" not in headers and len(plain) > GZIP_IN_THREAD
    _, zipped, headers = gw.request("GET", "/metrics", headers={"Accept-Encoding": "gzip"})
    assert headers["Content-Encoding"] == "gzip" and len(zipped) < len(plain) // 4
    assert gzip.decompress(zipped) == plain


def test_content_negotiation(gateway):
    gateway.push("/metrics/job/fn", "# TYPE c counter\nc 1\n")
    _, body, headers = gateway.request("GET", "/metrics", headers={
        "Accept": "application/openmetrics-text;version=1.0.0,application/openmetrics-text;"
                  "version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"})
    assert headers["Content-Type"].startswith("application/openmetrics-text; version=1.0.0")
    assert body.decode().endswith("# EOF\n") and 'c_created{job="fn"}' in body.decode()
    _, body, headers = gateway.request("GET", "/metrics")
    assert headers["Content-Type"].startswith("text/plain; version=0.0.4")
    assert "# EOF" not in body.decode() and 'c_total{job="fn"} 1' in body.decode()


def test_body_over_the_limit_is_413(gateway_factory):
    gw = gateway_factory(["receivers.pushgateway.max_body_size=1KiB"])
    big = "".join(f"m{i} 1\n" for i in range(400))
    assert gw.push("/metrics/job/fn", big)[0] == 413
    bomb = gzip.compress(b"# " + b"x" * 100_000 + b"\n")
    status, body, _ = gw.push("/metrics/job/fn", bomb, headers={"Content-Encoding": "gzip"})
    assert status == 413, body
    assert gw.push("/metrics/job/fn", "small 1\n")[0] == 200
    assert gw.value("small", job="fn") == 1


BAD_BODIES = [
    ("a{b=\"c\" 1\n", "line 3"),
    ('metric{__name__="x"} 1\n', "__name__"),
    ("# TYPE a counter\n# TYPE a counter\na 1\n", "TYPE"),
    ("a 1\n# TYPE a counter\n", "TYPE"),
    ('# TYPE h histogram\nh_bucket{le="x"} 1\n', "le"),
    ("ok 1\nbad 1 2 3 4\n", "line 4"),
    ('x{clear_mode="bogus"} 1\n', "bogus"),
    ('x{clear_mode="sum0s"} 1\n', "sum0s"),
    ('x{clear_mode="summary5m"} 1\n', "summary5m"),
    ('x{clear_mode="mean-1m"} 1\n', "mean-1m"),
    ('x{clear_mode="p100_5m"} 1\n', "p100_5m"),
    ("\x00\xff\xfe garbage", ""),
]


@pytest.mark.parametrize("body, fragment", BAD_BODIES)
def test_bad_bodies_are_400_and_change_nothing(gateway, body, fragment):
    assert gateway.push("/metrics/job/fn", "# TYPE kept counter\nkept 1\n")[0] == 200
    before = gateway.samples()
    status, reply, headers = gateway.push("/metrics/job/fn", "# TYPE kept counter\nkept 1\n" + body)
    assert status == 400, reply
    assert headers["Content-Type"].startswith("text/plain")
    assert fragment in reply.decode(errors="replace")
    after = gateway.samples()
    failure = [k for k in after if k[0] == "push_failure_time_seconds"]
    assert failure, "the refused push is recorded"
    assert {k: v for k, v in after.items() if k[0] != "push_failure_time_seconds"} == \
        {k: v for k, v in before.items() if k[0] != "push_failure_time_seconds"}
    gateway.samples(openmetrics=True)  # the next scrape still parses


def test_type_conflicts_and_foreign_series_are_refused(gateway):
    assert gateway.push("/metrics/job/a", "# TYPE x counter\nx 1\n")[0] == 200
    status, body, _ = gateway.push("/metrics/job/b", "# TYPE x gauge\nx 1\n")
    assert status == 400 and "counter" in body.decode()
    assert gateway.push("/metrics/job/a", 'y{instance="i"} 1\n')[0] == 200
    status, body, _ = gateway.push("/metrics/job/a/instance/i", "y 1\n")
    assert status == 400 and "group" in body.decode()
    assert gateway.value("x_total", job="a") == 1


def test_bad_gzip_and_random_bytes_never_5xx(gateway):
    rng = random.Random(7)
    statuses = set()
    for i in range(60):
        body = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 200)))
        headers = {"Content-Encoding": "gzip"} if i % 3 == 0 else {}
        if i % 4 == 1:
            headers["Content-Type"] = "application/openmetrics-text; version=1.0.0"
        if i % 4 == 2:
            headers["Content-Type"] = ("application/vnd.google.protobuf; "
                                       "proto=io.prometheus.client.MetricFamily; encoding=delimited")
        status, reply, _ = gateway.push("/metrics/job/fuzz", body, headers=headers)
        statuses.add(status)
        assert 400 <= status < 500, (status, body, reply)
        assert reply.strip(), "a refusal says why"
    assert gateway.push("/metrics/job/fuzz", "alive 1\n")[0] == 200
    gateway.samples(openmetrics=True)


def test_concurrent_pushers_lose_nothing(gateway):
    def pusher(i):
        for _ in range(50):
            status, body, _ = gateway.push("/metrics/job/load", "# TYPE inc counter\ninc 1\n")
            assert status == 200, body

    with concurrent.futures.ThreadPoolExecutor(20) as pool:
        list(pool.map(pusher, range(20)))
    assert gateway.value("inc_total", job="load") == 1000


def test_histograms_with_different_layouts_scrape_valid(gateway):
    a = '# TYPE lat histogram\nlat_bucket{le="0.1"} 1\nlat_bucket{le="1"} 3\nlat_bucket{le="+Inf"} 4\nlat_sum 2\nlat_count 4\n'
    b = '# TYPE lat histogram\nlat_bucket{le="0.5"} 2\nlat_bucket{le="5"} 5\nlat_bucket{le="+Inf"} 6\nlat_sum 9\nlat_count 6\n'
    gateway.push("/metrics/job/fn", a)
    gateway.push("/metrics/job/fn", b)
    samples = gateway.samples(openmetrics=True)
    buckets = sorted((float(dict(k[1])["le"]), v) for k, v in samples.items() if k[0] == "lat_bucket")
    counts = [v for _, v in buckets]
    assert counts == sorted(counts) and counts == [1, 3, 5, 8, 10]
    assert buckets[-1] == (float("inf"), samples[("lat_count", frozenset({("job", "fn")}))])


def test_max_series_refuses_the_whole_push_and_logs_it(gateway_factory):
    # 5 = a, b and the group's push_time_seconds and push_failure_time_seconds, then c
    gw = gateway_factory(["processors.gravel.max_series=5"])
    assert gw.push("/metrics/job/fn", "a 1\nb 1\n")[0] == 200
    status, body, _ = gw.push("/metrics/job/fn", "a 1\nc 1\nd 1\n")
    assert status == 400 and "max_series=5" in body.decode()
    assert gw.push("/metrics/job/fn", "a 1\nc 1\n")[0] == 200
    samples = gw.samples()
    assert [(k[0], v) for k, v in sorted(samples.items()) if k[0] in "abcd"] == [("a", 2), ("b", 1), ("c", 1)]
    assert any("level=warning" in line and "max_series=5" in line for line in gw.log)


def test_protobuf_delimited_push_as_client_golang_sends_it(gateway):
    from google.protobuf.internal.encoder import _VarintBytes
    from otelgravel.formats.prom_protobuf import MetricFamily
    counter = MetricFamily(name="jobs_total", help="Jobs.", type=0, metric=[
        {"label": [{"name": "queue", "value": "q1"}], "counter": {"value": 3}}])
    hist = MetricFamily(name="wait_seconds", type=4, metric=[{"histogram": {
        "sample_count": 2, "sample_sum": 1.5,
        "bucket": [{"upper_bound": 0.5, "cumulative_count": 1}, {"upper_bound": 1, "cumulative_count": 2}]}}])
    body = b"".join(_VarintBytes(m.ByteSize()) + m.SerializeToString() for m in (counter, hist))
    ctype = "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited"
    for _ in range(2):
        assert gateway.push("/metrics/job/go", body, "PUT", {"Content-Type": ctype})[0] == 200
    samples = gateway.samples(openmetrics=True)
    assert samples[("jobs_total", frozenset({("job", "go"), ("queue", "q1")}))] == 6
    assert samples[("wait_seconds_count", frozenset({("job", "go")}))] == 4
    assert samples[("wait_seconds_bucket", frozenset({("job", "go"), ("le", "+Inf")}))] == 4
    assert samples[("wait_seconds_bucket", frozenset({("job", "go"), ("le", "0.5")}))] == 2


def test_chunked_bodies_and_missing_or_unknown_content_types_are_text(gateway):
    import http.client
    host, port = gateway.url[len("http://"):].split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    chunks = [b"# TYPE chunked counter\n", b"chunked 2\n", b"untyped_", b"too 1\n"]
    conn.request("POST", "/metrics/job/fn", body=iter(chunks), encode_chunked=True,
                 headers={"Transfer-Encoding": "chunked"})
    assert conn.getresponse().status == 200
    assert gateway.push("/metrics/job/fn", "unknown_type 3\n", headers={"Content-Type": "application/x-what"})[0] == 200
    req_no_type = gateway.request("POST", "/metrics/job/fn", b"no_type 4\n", {"Content-Type": ""})
    assert req_no_type[0] == 200
    samples = gateway.samples()
    assert samples[("chunked_total", frozenset({("job", "fn")}))] == 2
    assert samples[("untyped_too", frozenset({("job", "fn")}))] == 1
    assert samples[("unknown_type", frozenset({("job", "fn")}))] == 3
    assert samples[("no_type", frozenset({("job", "fn")}))] == 4


def test_expect_100_continue_is_answered_before_the_body(gateway):
    """curl sends Expect: 100-continue for large bodies and waits for the interim answer."""
    import socket
    host, port = gateway.url[len("http://"):].split(":")
    body = b"# TYPE expected counter\nexpected 1\n"
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(b"POST /metrics/job/fn HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
                     b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n")
        assert sock.recv(100).startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
        sock.sendall(body)
        assert sock.recv(1000).startswith(b"HTTP/1.1 200 OK")
    assert gateway.value("expected_total", job="fn") == 1
    status, body, _ = gateway.request("POST", "/metrics/job/fn", b"x 1\n", {"Expect": "something-else"})
    assert status == 417 and b"unsupported Expect" in body
