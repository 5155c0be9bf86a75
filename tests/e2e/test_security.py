"""SPEC 6 end to end: the real gateway over TLS with certificates the test makes, real clients.

One https server carries push, scrape and OTLP (all on 127.0.0.1:0). Pushers authenticate with
``basicauth/functions`` (user ``checkout`` limited to ``checkout(-.*)?``, user ``admin`` unlimited);
``/metrics`` asks for ``bearertokenauth/prometheus``, whose token comes from ``${env:SCRAPE_TOKEN}``.
bcrypt cost 4 keeps the tests fast, except where slowness is the point.
"""
from __future__ import annotations

import base64
import http.client
import json
import os
import signal
import ssl
import subprocess
import sys
import textwrap
import time
import urllib.parse

import bcrypt
import pytest
from prometheus_client import CollectorRegistry, Counter, push_to_gateway
from prometheus_client.exposition import basic_auth_handler

from tests.e2e.pki import make_pki
from tests.e2e.test_prom_client import prom_client_dir  # noqa: F401 (a fixture)
from tests.e2e.test_prometheus_server import Prometheus, poll, wait_target_up, wait_value

TOKEN = "scrape-" + "x" * 24
USERS = {"checkout": "s3cret-checkout", "admin": "s3cret-admin"}
COUNTER = "# TYPE sales counter\nsales 1\n"


def basic(user: str, password: str) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def htpasswd(users: dict, cost: int = 4) -> str:
    return "# test users\n" + "".join(
        f"{u}:{bcrypt.hashpw(p.encode(), bcrypt.gensalt(cost)).decode()}\n" for u, p in users.items())


@pytest.fixture(scope="session")
def pki(tmp_path_factory):
    return make_pki(tmp_path_factory.mktemp("pki"))


def client_context(pki, cert=False) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(pki.ca))
    if cert:
        ctx.load_cert_chain(str(pki.client_cert), str(pki.client_key))
    return ctx


def config(tmp_path, pki, *, client_ca: str = "", cost: int = 4, tls: bool = True,
           scrape_auth: str = "bearertokenauth/prometheus") -> str:
    (tmp_path / "functions.htpasswd").write_text(htpasswd(USERS, cost))
    (tmp_path / "scrapers.htpasswd").write_text(htpasswd({"prometheus": "scrape-pass"}))
    tls_block = f"""
    tls:
      cert_file: {pki.server_cert}
      key_file: {pki.server_key}
      client_ca_file: "{client_ca}"
      min_version: "1.2" """ if tls else ""
    return f"""
extensions:
  basicauth/functions:
    htpasswd:
      file: {tmp_path / 'functions.htpasswd'}
    jobs:
      checkout: ["checkout(-.*)?"]
  basicauth/scrapers:
    htpasswd: {{file: {tmp_path / 'scrapers.htpasswd'}}}
  bearertokenauth/prometheus:
    token: "${{env:SCRAPE_TOKEN}}"
receivers:
  pushgateway:
    endpoint: 127.0.0.1:0
    admin_api: true{tls_block}
    auth:
      authenticator: basicauth/functions
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:0
        auth: {{authenticator: basicauth/functions}}
processors:
  gravel: {{}}
exporters:
  prometheus:
    endpoint: 127.0.0.1:0
    auth: {{authenticator: {scrape_auth}}}
service:
  extensions: [basicauth/functions, basicauth/scrapers, bearertokenauth/prometheus]
  pipelines:
    metrics: {{receivers: [pushgateway, otlp], processors: [gravel], exporters: [prometheus]}}
"""


@pytest.fixture
def secure(gateway_factory, tmp_path, pki, monkeypatch):
    """secure(**config options) starts a gateway with the config above, over https by default."""
    monkeypatch.setenv("SCRAPE_TOKEN", TOKEN)

    def start(**options):
        gw = gateway_factory(config=config(tmp_path, pki, **options))
        if options.get("tls", True):
            assert gw.url.startswith("https://"), gw.log
            gw.ssl_context = client_context(pki, cert=bool(options.get("client_ca")))
        return gw

    return start


def scrape(gw, credentials=None) -> dict:
    status, body, _ = gw.request("GET", "/metrics", headers={
        "Authorization": f"Bearer {TOKEN}", "Accept": "text/plain", **(credentials or {})})
    assert status == 200, body
    from prometheus_client.parser import text_string_to_metric_families
    return {(s.name, frozenset(s.labels.items())): s.value
            for f in text_string_to_metric_families(body.decode()) for s in f.samples}


def groups(samples: dict) -> set:
    return {labels for name, labels in samples if name == "push_time_seconds"}


# ---- real clients with and without credentials, over TLS -------------------------------------

def test_prometheus_client_push_to_gateway_with_basic_auth_over_https(secure, pki, monkeypatch):
    gw = secure()
    monkeypatch.setenv("SSL_CERT_FILE", str(pki.ca))  # urllib's default context trusts the test CA
    registry = CollectorRegistry()
    Counter("orders", "Orders taken.", registry=registry).inc(3)

    def handler(user, password):
        return lambda url, method, timeout, headers, data: basic_auth_handler(
            url, method, timeout, headers, data, user, password)

    push_to_gateway(gw.url, job="checkout-eu", registry=registry,
                    handler=handler("checkout", USERS["checkout"]))
    with pytest.raises(OSError, match="401"):
        push_to_gateway(gw.url, job="checkout-eu", registry=registry,
                        handler=handler("checkout", "wrong"))
    with pytest.raises(OSError, match="401"):
        push_to_gateway(gw.url, job="checkout-eu", registry=registry)
    with pytest.raises(OSError, match="403"):
        push_to_gateway(gw.url, job="billing", registry=registry,
                        handler=handler("checkout", USERS["checkout"]))
    samples = scrape(gw)
    assert samples[("orders_total", frozenset({("job", "checkout-eu")}))] == 3
    assert groups(samples) == {frozenset({("job", "checkout-eu")})}


PROM_CLIENT_PUSH = r"""
const client = require('prom-client');
const cfg = JSON.parse(process.argv[2]);
const registry = new client.Registry();
new client.Counter({name: 'node_orders', help: 'Orders.', registers: [registry]}).inc(2);
const gateway = new client.Pushgateway(cfg.url, {headers: cfg.headers}, registry);
gateway.pushAdd({jobName: cfg.job}).then(({resp}) => console.log(JSON.stringify({status: resp.statusCode})))
  .catch((err) => { console.log(JSON.stringify({error: String(err)})); });
"""


def test_prom_client_with_an_authorization_header_over_https(secure, pki, prom_client_dir):
    gw = secure()
    (prom_client_dir / "push_auth.js").write_text(PROM_CLIENT_PUSH)
    env = dict(os.environ, NODE_EXTRA_CA_CERTS=str(pki.ca))

    def push(headers, job="checkout"):
        done = subprocess.run(["node", "push_auth.js", json.dumps({"url": gw.url, "headers": headers,
                                                                     "job": job})],
                              cwd=prom_client_dir, env=env, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout.strip().splitlines()[-1])

    assert push(basic("checkout", USERS["checkout"])) == {"status": 200}
    answer = push({})  # prom-client resolves non-2xx as an error naming the status
    assert "401" in answer.get("error", ""), answer
    answer = push(basic("nobody", "x"))
    assert "401" in answer.get("error", ""), answer
    assert scrape(gw)[("node_orders_total", frozenset({("job", "checkout")}))] == 2


OTEL_EXPORT = r"""
import sys
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricExportResult, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource

results = []
class Checked(OTLPMetricExporter):
    def export(self, *a, **kw):
        results.append(super().export(*a, **kw))
        return results[-1]

exporter = Checked()  # endpoint, headers and CA certificate from OTEL_EXPORTER_OTLP_* variables
reader = PeriodicExportingMetricReader(exporter, export_interval_millis=3_600_000)
provider = MeterProvider(resource=Resource.create({"service.name": sys.argv[1]}), metric_readers=[reader])
provider.get_meter("fn").create_counter("otel.orders").add(5)
provider.force_flush(10_000)
provider.shutdown()
print("SUCCESS" if results and all(r == MetricExportResult.SUCCESS for r in results) else "FAILURE")
"""


def otel_export(gw, pki, service, headers: str | None) -> str:
    # requests lets REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE (set machine-wide here) win over the
    # exporter's certificate, so they go, as they would on a function's runtime
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("OTEL_") and k not in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")}
    env.update(OTEL_EXPORTER_OTLP_ENDPOINT=gw.otlp_url, OTEL_EXPORTER_OTLP_CERTIFICATE=str(pki.ca),
               OTEL_METRIC_EXPORT_TIMEOUT="10000", OTEL_EXPORTER_OTLP_TIMEOUT="10")
    if headers is not None:
        env["OTEL_EXPORTER_OTLP_HEADERS"] = headers
    done = subprocess.run([sys.executable, "-c", OTEL_EXPORT, service], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


def test_otel_sdk_exporter_with_headers_and_certificate_from_the_environment(secure, pki):
    gw = secure()
    assert gw.otlp_url.startswith("https://")
    token = base64.b64encode(f"checkout:{USERS['checkout']}".encode()).decode()
    assert otel_export(gw, pki, "checkout", f"Authorization=Basic%20{token}") == "SUCCESS"
    assert otel_export(gw, pki, "checkout", None) == "FAILURE"
    assert otel_export(gw, pki, "billing", f"Authorization=Basic%20{token}") == "FAILURE"  # 403
    samples = scrape(gw)
    orders = {labels: v for (name, labels), v in samples.items() if name == "otel_orders_total"}
    assert orders == {frozenset({("job", "checkout"), ("otel_scope_name", "fn")}): 5}, orders
    assert not [k for k in samples if ("job", "billing") in k[1]]


@pytest.mark.parametrize("how", ["authorization", "basic_auth"])
def test_prometheus_scrapes_over_https_with_credentials(secure, pki, tmp_path, how):
    """Debian's Prometheus with ``tls_config.ca_file`` and ``authorization`` or ``basic_auth``."""
    if how == "basic_auth":
        gw = secure(scrape_auth="basicauth/scrapers")
        credentials = 'basic_auth: {username: prometheus, password: "scrape-pass"}'
    else:
        gw = secure()
        credentials = f'authorization: {{type: Bearer, credentials: "{TOKEN}"}}'
    status, _, _ = gw.push("/metrics/job/checkout-eu", "# TYPE paid counter\npaid 7\n",
                           headers=basic("checkout", USERS["checkout"]))
    assert status == 200
    target = urllib.parse.urlsplit(gw.scrape_url).netloc
    prom = Prometheus(tmp_path, target)
    prom.config.write_text(textwrap.dedent(f"""
        global: {{scrape_interval: 1s, scrape_timeout: 1s, evaluation_interval: 1s}}
        scrape_configs:
          - job_name: gateway
            honor_labels: true
            scheme: https
            tls_config: {{ca_file: {pki.ca}}}
            {credentials}
            static_configs: [{{targets: ["{target}"]}}]
        """))
    prom.start()
    try:
        wait_target_up(prom)
        assert wait_value(prom, 'paid_total{job="checkout-eu"}', 7.0) == 7.0
        assert prom.scalar('up{job="gateway"}') == 1.0
    finally:
        prom.stop()


# ---- refusals: 401, nothing applied, no group created or touched -----------------------------

BAD_CREDENTIALS = [
    ("wrong password", basic("checkout", "wrong")),
    ("unknown user", basic("nobody", USERS["checkout"])),
    ("no header", {}),
    ("malformed base64", {"Authorization": "Basic !!!not-base64"}),
    ("no colon", {"Authorization": "Basic " + base64.b64encode(b"checkout").decode()}),
    ("another scheme", {"Authorization": f"Bearer {TOKEN}"}),
    ("empty basic", {"Authorization": "Basic "}),
    ("the hash as the password", None),
]


def test_bad_credentials_are_401_and_touch_nothing(secure, tmp_path):
    gw = secure()
    stored_hash = (tmp_path / "functions.htpasswd").read_text().splitlines()[1].split(":", 1)[1]
    ok = basic("checkout", USERS["checkout"])
    assert gw.push("/metrics/job/checkout", COUNTER, headers=ok)[0] == 200
    for reason, headers in BAD_CREDENTIALS:
        headers = basic("checkout", stored_hash) if headers is None else headers
        for path, body in (("/metrics/job/checkout", COUNTER),            # an existing group
                           ("/metrics/job/checkout", "not a metric line"), # a body that would 400
                           ("/metrics/job/checkout-new", COUNTER),        # a group that would be new
                           ("/metrics", COUNTER)):
            status, text, answer = gw.push(path, body, headers=headers)
            assert status == 401, (reason, path, status, text)
            assert answer["WWW-Authenticate"] == 'Basic realm="otelgravel"', reason
            assert len(text) < 100 and answer["Content-Type"].startswith("text/plain")
        status, _, answer = gw.request("DELETE", "/metrics/job/checkout", headers=headers)
        assert status == 401 and answer["WWW-Authenticate"] == 'Basic realm="otelgravel"'
        status, _, _ = gw.request("PUT", "/api/v1/admin/wipe", headers=headers)
        assert status == 401
    samples = scrape(gw)
    assert samples[("sales_total", frozenset({("job", "checkout")}))] == 1
    assert groups(samples) == {frozenset({("job", "checkout")})}
    assert samples[("push_failure_time_seconds", frozenset({("job", "checkout")}))] == 0
    assert not any("s3cret" in line or stored_hash in line for line in gw.log)  # no secrets logged
    assert any("authentication failed" in line for line in gw.log)


# ---- authorization by job --------------------------------------------------------------------

def otlp_body(*services: str) -> bytes:
    from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
    request = ExportMetricsServiceRequest()
    for service in services:
        rm = request.resource_metrics.add()
        attr = rm.resource.attributes.add()
        attr.key, attr.value.string_value = "service.name", service
        metric = rm.scope_metrics.add().metrics.add()
        metric.name = "otlp_orders"
        point = metric.gauge.data_points.add()
        point.as_double = 4
        point.time_unix_nano = time.time_ns()
    return request.SerializeToString()


def test_a_user_limited_to_checkout_jobs(secure):
    gw = secure()
    checkout, admin = basic("checkout", USERS["checkout"]), basic("admin", USERS["admin"])
    assert gw.push("/metrics/job/checkout-eu", COUNTER, headers=checkout)[0] == 200
    assert gw.push("/metrics/job/checkout", COUNTER, headers=checkout)[0] == 200
    assert gw.push("/metrics/job/billing", COUNTER, headers=admin)[0] == 200
    for path in ("/metrics/job/billing", "/metrics/job/checkoutx", "/metrics",
                 "/metrics/job@base64/YmlsbGluZw"):  # base64 "billing"
        status, text, _ = gw.push(path, COUNTER, headers=checkout)
        assert status == 403, (path, status)
        assert b"job '" in text, text
    status, text, _ = gw.request("DELETE", "/metrics/job/billing", headers=checkout)
    assert status == 403 and b"billing" in text
    otlp = {"Content-Type": "application/x-protobuf"}
    status, text, _ = gw.request("POST", "/v1/metrics", otlp_body("checkout-eu", "billing"),
                                 headers={**checkout, **otlp}, base=gw.otlp_url)
    assert status == 403 and b"billing" in text, (status, text)
    status, text, _ = gw.request("PUT", "/api/v1/admin/wipe", headers=checkout)
    assert status == 403, (status, text)
    samples = scrape(gw)
    assert groups(samples) == {frozenset({("job", j)}) for j in ("checkout-eu", "checkout", "billing")}
    assert samples[("sales_total", frozenset({("job", "billing")}))] == 1
    assert not [k for k in samples if k[0] == "otlp_orders"]  # the other resource was not applied
    status, _, _ = gw.request("POST", "/v1/metrics", otlp_body("checkout-eu"),
                              headers={**checkout, **otlp}, base=gw.otlp_url)
    assert status == 200
    assert scrape(gw)[("otlp_orders", frozenset({("job", "checkout-eu")}))] == 4
    assert gw.request("DELETE", "/metrics/job/checkout", headers=checkout)[0] == 202
    assert gw.request("PUT", "/api/v1/admin/wipe", headers=admin)[0] == 202
    assert groups(scrape(gw)) == set()


def test_health_is_open_and_metrics_asks_for_the_exporters_credentials(secure):
    gw = secure()
    for path in ("/-/healthy", "/-/ready"):
        assert gw.request("GET", path)[0] == 200
    status, _, answer = gw.request("GET", "/metrics", headers=basic("admin", USERS["admin"]))
    assert status == 401 and answer["WWW-Authenticate"] == 'Bearer realm="otelgravel"'
    assert gw.request("GET", "/metrics", headers={"Authorization": "Bearer wrong"})[0] == 401
    assert gw.request("GET", "/metrics")[0] == 401
    for path in ("/", "/api/v1/status", "/api/v1/metrics", "/api/v1/refusals"):  # the status page too
        assert gw.request("GET", path, headers=basic("admin", USERS["admin"]))[0] == 401, path
        assert gw.request("GET", path, headers={"Authorization": f"Bearer {TOKEN}"})[0] == 200, path
    # and the scrape token does not push
    assert gw.push("/metrics/job/checkout", COUNTER, headers={"Authorization": f"Bearer {TOKEN}"})[0] == 401
    scrape(gw)


# ---- TLS ------------------------------------------------------------------------------------

def test_client_certificates_required_a_client_without_one_cannot_connect(secure, pki):
    gw = secure(client_ca=str(pki.ca))
    host, port = urllib.parse.urlsplit(gw.url).netloc.split(":")
    assert gw.request("GET", "/-/healthy")[0] == 200  # with the client certificate
    for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
        ctx = client_context(pki)
        ctx.minimum_version = ctx.maximum_version = version
        with pytest.raises((ssl.SSLError, ConnectionResetError, BrokenPipeError)):
            conn = http.client.HTTPSConnection(host, int(port), context=ctx, timeout=10)
            conn.request("GET", "/-/healthy")  # TLS 1.3: the server's alert arrives on first read
            conn.getresponse()
    # a plain-HTTP client gets no HTTP answer either
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    with pytest.raises((http.client.HTTPException, ConnectionError)):
        conn.request("GET", "/-/healthy")
        conn.getresponse()


# ---- SIGHUP --------------------------------------------------------------------------------

def test_sighup_rereads_htpasswd_and_certificates_open_connections_too(secure, tmp_path, pki):
    gw = secure()
    host, port = urllib.parse.urlsplit(gw.url).netloc.split(":")
    old_pw, new_pw = USERS["checkout"], "a-new-password"

    def push(conn, password):
        conn.request("PUT", "/metrics/job/checkout", body=COUNTER.encode(),
                     headers=basic("checkout", password))
        response = conn.getresponse()
        response.read()
        return response.status

    before = http.client.HTTPSConnection(host, int(port), context=client_context(pki), timeout=10)
    assert push(before, old_pw) == 200
    sock = before.sock
    old_cert = sock.getpeercert(binary_form=True)

    def reloaded(what, count, authenticator=""):
        # every SIGHUP reloads every extension and certificate: count the lines of this one
        return lambda: sum(what in line and authenticator in line for line in gw.log) >= count

    # a broken file is refused: the previous credentials stay
    (tmp_path / "functions.htpasswd").write_text("checkout:plaintext\n")
    gw.proc.send_signal(signal.SIGHUP)
    poll(reloaded("credentials not reloaded", 1), "the refused reload", 20)
    assert push(before, old_pw) == 200

    (tmp_path / "functions.htpasswd").write_text(htpasswd({**USERS, "checkout": new_pw}))
    pki.server_cert.write_bytes(pki.other_server_cert.read_bytes())
    gw.proc.send_signal(signal.SIGHUP)
    poll(reloaded("msg=\"credentials reloaded\"", 1, "basicauth/functions"), "the reload", 20)
    poll(reloaded("msg=\"certificate reloaded\"", 2), "the certificate reload", 20)
    assert push(before, old_pw) == 401
    assert push(before, new_pw) == 200
    assert before.sock is sock  # the same connection all along
    assert sock.getpeercert(binary_form=True) == old_cert
    after = http.client.HTTPSConnection(host, int(port), context=client_context(pki), timeout=10)
    assert push(after, old_pw) == 401
    assert push(after, new_pw) == 200
    new_cert = after.sock.getpeercert(binary_form=True)
    assert new_cert != old_cert and new_cert == ssl.PEM_cert_to_DER_cert(pki.other_server_cert.read_text())
    before.close()
    after.close()


# ---- a flood of wrong passwords ------------------------------------------------------------

FLOOD = r"""
import asyncio, base64, json, random, ssl, string, sys
import aiohttp

url, ca, count = sys.argv[1], sys.argv[2], int(sys.argv[3])

async def main():
    rng = random.Random(13)
    connector = aiohttp.TCPConnector(ssl=ssl.create_default_context(cafile=ca), limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        async def push():
            user = rng.choice(["checkout", "admin", "nobody"])
            password = "".join(rng.choices(string.ascii_letters, k=12))
            auth = base64.b64encode(f"{user}:{password}".encode()).decode()
            async with session.put(url + "/metrics/job/checkout", data="sales 1\n",
                                   headers={"Authorization": "Basic " + auth}) as resp:
                await resp.read()
                return resp.status
        return await asyncio.gather(*(push() for _ in range(count)))

print(json.dumps(asyncio.run(main())))
"""


def test_a_flood_of_wrong_passwords_does_not_delay_a_right_one(secure, pki):
    """200 pushes with random wrong passwords from another process (the attacker's) are in flight;
    pushes whose credentials were verified before stay fast, on an open connection and a new one."""
    gw = secure(cost=10)  # real-world slow hashes (bcrypt default 12, htpasswd -B 5): ~0.1 s a check
    host, port = urllib.parse.urlsplit(gw.url).netloc.split(":")
    ok = basic("checkout", USERS["checkout"])

    def push(conn):
        conn.request("PUT", "/metrics/job/checkout", body=COUNTER.encode(), headers=ok)
        response = conn.getresponse()
        response.read()
        return response.status

    warm = http.client.HTTPSConnection(host, int(port), context=client_context(pki), timeout=30)
    assert push(warm) == 200  # verified once (slow), remembered from now on
    failures_before = sum("authentication failed" in line for line in gw.log)
    flood = subprocess.Popen([sys.executable, "-c", FLOOD, gw.url, str(pki.ca), "200"],
                             stdout=subprocess.PIPE, text=True)
    try:
        poll(lambda: sum("authentication failed" in line for line in gw.log) > failures_before,
             "the flood to reach the gateway", 30)
        timings = []
        for _ in range(5):
            for conn in (warm, http.client.HTTPSConnection(host, int(port),
                                                           context=client_context(pki), timeout=30)):
                start = time.monotonic()
                assert push(conn) == 200
                timings.append(time.monotonic() - start)
        still_flooding = flood.poll() is None
        out, _ = flood.communicate(timeout=120)
    finally:
        if flood.poll() is None:
            flood.kill()
            flood.wait()
    statuses = json.loads(out)
    assert still_flooding, "the flood was over before the right pushes were timed"
    assert max(timings) < 1.0, timings
    assert len(statuses) == 200 and set(statuses) <= {401, 503} and 401 in statuses, \
        sorted(set(statuses))
    assert scrape(gw)[("sales_total", frozenset({("job", "checkout")}))] == 11


def test_the_status_api_shows_secret_where_the_running_config_holds_one(secure, tmp_path, pki):
    """/api/v1/status shows the running config: the token (from the environment), the htpasswd
    hashes and the TLS key path never appear; <secret> stands where they were."""
    gw = secure()
    (tmp_path / "functions.htpasswd").read_text()  # the hashes the config points to
    status, body, _ = gw.request("GET", "/api/v1/status", headers={"Authorization": f"Bearer {TOKEN}"})
    assert status == 200, body
    text = body.decode()
    config = json.loads(text)["data"]["config"]  # the Pushgateway API v1 envelope
    assert TOKEN not in text and "$2b$" not in text and str(pki.server_key) not in text
    assert config["extensions"]["bearertokenauth/prometheus"]["token"] == "<secret>"
    assert config["receivers"]["pushgateway"]["tls"]["key_file"] == "<secret>"
    # what is not a secret is shown as it is
    assert config["receivers"]["pushgateway"]["tls"]["cert_file"] == str(pki.server_cert)
