"""The running config shown by /api/v1/status: every secret replaced by <secret>, nothing else."""
import copy

import yaml

from otelgravel.status.redact import SECRET, redact

# SPEC 6 (authenticators, TLS) and SPEC 9 (Redis) as a user writes them.
DOCUMENT = yaml.safe_load("""
extensions:
  basicauth/functions:
    htpasswd:
      file: /etc/otelgravel/functions.htpasswd
      inline: |
        checkout:$2b$10$abcdefghijklmnopqrstuv
    jobs:
      checkout: ["checkout", "checkout-.*"]
  bearertokenauth/prometheus:
    token: "${env:SCRAPE_TOKEN}"
    jobs: [".*"]
  bearertokenauth/files:
    filename: /etc/otelgravel/tokens
    scheme: Bearer
receivers:
  pushgateway:
    endpoint: 0.0.0.0:4278
    tls: {cert_file: /etc/tls.crt, key_file: /etc/tls.key, client_ca_file: "", min_version: "1.2"}
    auth: {authenticator: basicauth/functions}
processors:
  gravel:
    max_series: 1000
    storage:
      redis:
        addresses: ["redis://app:hunter2@10.0.0.1:6379", "10.0.0.2:6379"]
        username: app
        password: "${env:REDIS_PASSWORD}"
        key_prefix: otelgravel
service:
  extensions: [basicauth/functions, bearertokenauth/prometheus]
  telemetry: {metrics: {address: "localhost:8888"}}
""")


def test_secrets_are_replaced_and_everything_else_is_kept():
    original = copy.deepcopy(DOCUMENT)
    shown = redact(DOCUMENT)
    assert DOCUMENT == original  # the input is untouched
    ext = shown["extensions"]
    assert ext["basicauth/functions"]["htpasswd"] == {"file": "/etc/otelgravel/functions.htpasswd",
                                                      "inline": SECRET}
    assert ext["basicauth/functions"]["jobs"] == {"checkout": ["checkout", "checkout-.*"]}
    assert ext["bearertokenauth/prometheus"] == {"token": SECRET, "jobs": [".*"]}
    # any other authenticator setting is a secret by default
    assert ext["bearertokenauth/files"] == {"filename": "/etc/otelgravel/tokens", "scheme": SECRET}
    tls = shown["receivers"]["pushgateway"]["tls"]
    assert tls == {"cert_file": "/etc/tls.crt", "key_file": SECRET, "client_ca_file": "",
                   "min_version": "1.2"}
    assert shown["receivers"]["pushgateway"]["auth"] == {"authenticator": "basicauth/functions"}
    redis = shown["processors"]["gravel"]["storage"]["redis"]
    assert redis == {"addresses": [f"redis://app:{SECRET}@10.0.0.1:6379", "10.0.0.2:6379"],
                     "username": "app", "password": SECRET, "key_prefix": "otelgravel"}
    assert shown["service"] == DOCUMENT["service"]
    assert shown["processors"]["gravel"]["max_series"] == 1000


def test_no_secret_text_survives_anywhere():
    text = repr(redact(DOCUMENT))
    for secret in ("hunter2", "$2b$10$", "SCRAPE_TOKEN", "REDIS_PASSWORD", "/etc/tls.key"):
        assert secret not in text
