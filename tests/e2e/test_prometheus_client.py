"""The real Python ``prometheus_client`` pushing to the real gateway, as a serverless function would.

Every "invocation" builds a fresh ``CollectorRegistry`` (a new process would), records one request,
pushes, and is gone. The gateway has to turn five such pushes into the totals a long-lived process
would have exposed. ``push_to_gateway`` is PUT, ``pushadd_to_gateway`` POST; both aggregate.
"""
from __future__ import annotations

import math
import urllib.error

import pytest
from prometheus_client import (CollectorRegistry, Counter, Histogram, Info, delete_from_gateway,
                               push_to_gateway, pushadd_to_gateway)
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_om

OM_ACCEPT = "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"

BUCKETS = (0.1, 1.0)
# (latency observed, deployed version) per invocation; the deploy changes version midway.
INVOCATIONS = [(0.05, "1.0"), (0.5, "1.0"), (0.5, "1.0"), (2.0, "1.1"), (0.05, "1.1")]


def invocation(gateway_url, *, push, latency, version, job="fn", grouping_key=None,
               compression=None, info_mode="family"):
    """One serverless invocation: a fresh registry with a Counter, a Histogram and an Info, pushed."""
    registry = CollectorRegistry()
    requests = Counter("requests", "Requests handled.", registry=registry)
    latency_h = Histogram("latency_seconds", "Request latency.", buckets=BUCKETS, registry=registry)
    build = Info("build", "Build information.", registry=registry)
    requests.inc()
    latency_h.observe(latency)
    info = {"version": version, "commit": "abc123"}
    if info_mode:
        info["clear_mode"] = info_mode
    build.info(info)
    kwargs = {"grouping_key": grouping_key, "timeout": 10}
    if compression:
        kwargs["compression"] = compression
    call(push, gateway_url, job=job, registry=registry, **kwargs)


def call(client_function, *args, **kwargs):
    """Run a prometheus_client push/delete; on an HTTP error, fail with the gateway's answer."""
    try:
        client_function(*args, **kwargs)
    except urllib.error.HTTPError as err:
        pytest.fail(f"{client_function.__name__} -> {err.code} {err.url}: {err.read().decode(errors='replace')}")


def run_five_invocations(gateway, job="fn", grouping_key=None, compression=None):
    for i, (latency, version) in enumerate(INVOCATIONS):
        invocation(gateway.url, push=push_to_gateway if i % 2 == 0 else pushadd_to_gateway,
                   latency=latency, version=version, job=job, grouping_key=grouping_key,
                   compression=compression)


def series(samples, name):
    """{frozenset(labels): value} of one sample name."""
    return {labels: v for (n, labels), v in samples.items() if n == name}


def check_histogram(samples, group):
    """The five observations, merged: exact bucket counts, cumulative, +Inf == _count, _sum."""
    buckets = sorted((float(dict(labels)["le"]), v) for labels, v in series(samples, "latency_seconds_bucket").items()
                     if labels - {("le", dict(labels)["le"])} == group)
    assert buckets == [(0.1, 2), (1.0, 4), (math.inf, 5)], buckets
    counts = [v for _, v in buckets]
    assert counts == sorted(counts), "bucket counts are cumulative"
    assert samples[("latency_seconds_count", group)] == 5
    assert buckets[-1][1] == samples[("latency_seconds_count", group)]
    assert samples[("latency_seconds_sum", group)] == pytest.approx(0.05 + 0.5 + 0.5 + 2.0 + 0.05)


def test_five_invocations_alternating_put_and_post_aggregate(gateway):
    run_five_invocations(gateway)
    group = frozenset({("job", "fn")})
    samples = gateway.samples()

    assert samples[("requests_total", group)] == 5
    check_histogram(samples, group)
    build = series(samples, "build_info")
    assert build == {frozenset({("job", "fn"), ("version", "1.1"), ("commit", "abc123")}): 1}, build
    assert samples[("push_time_seconds", group)] > 1.7e9

    text = gateway.scrape("text/plain")
    assert "clear_mode" not in text and "clearmode" not in text


def test_gzip_compressed_pushes_aggregate_the_same(gateway):
    """prometheus_client's ``compression="gzip"`` (Content-Encoding: gzip), PUT and POST alike."""
    run_five_invocations(gateway, compression="gzip")
    group = frozenset({("job", "fn")})
    samples = gateway.samples()
    assert samples[("requests_total", group)] == 5
    check_histogram(samples, group)
    assert series(samples, "build_info") == {
        frozenset({("job", "fn"), ("version", "1.1"), ("commit", "abc123")}): 1}


def test_same_build_without_clear_mode_is_one_series(gateway):
    """No clear_mode label: Info pushed as a gauge by prometheus_client, same labels every time → one series."""
    for i in range(5):
        invocation(gateway.url, push=push_to_gateway if i % 2 == 0 else pushadd_to_gateway,
                   latency=0.5, version="2.0", info_mode=None)
    samples = gateway.samples()
    assert series(samples, "build_info") == {
        frozenset({("job", "fn"), ("version", "2.0"), ("commit", "abc123")}): 1}
    assert samples[("requests_total", frozenset({("job", "fn")}))] == 5


def test_openmetrics_scrape_parses_strictly(gateway):
    run_five_invocations(gateway)
    status, body, headers = gateway.request("GET", "/metrics", headers={"Accept": OM_ACCEPT},
                                            base=gateway.scrape_url)
    assert status == 200
    assert headers["Content-Type"].startswith("application/openmetrics-text; version=1.0.0")
    text = body.decode()
    assert text.endswith("# EOF\n")
    families = {f.name: f for f in parse_om(text)}  # strict: raises on anything invalid

    assert families["requests"].type == "counter"
    req = {s.name: s.value for s in families["requests"].samples if s.labels == {"job": "fn"}}
    assert req["requests_total"] == 5
    assert req["requests_created"] > 1.7e9

    assert families["latency_seconds"].type == "histogram"
    om_samples = {(s.name, frozenset(s.labels.items())): s.value
                  for s in families["latency_seconds"].samples}
    check_histogram(om_samples, frozenset({("job", "fn")}))

    build = [s for f in families.values() for s in f.samples if s.name == "build_info"]
    assert [(s.labels, s.value) for s in build] == [({"commit": "abc123", "job": "fn", "version": "1.1"}, 1)]
    assert "clear_mode" not in text


def test_delete_from_gateway_removes_the_group_and_its_push_time(gateway):
    run_five_invocations(gateway, job="fn")
    invocation(gateway.url, push=pushadd_to_gateway, latency=0.5, version="9", job="other")
    before = gateway.samples()
    assert before[("requests_total", frozenset({("job", "fn")}))] == 5
    assert ("push_time_seconds", frozenset({("job", "fn")})) in before

    call(delete_from_gateway, gateway.url, job="fn", timeout=10)

    after = gateway.samples()
    fn_series = [k for k in after if ("job", "fn") in k[1]]
    assert fn_series == [], fn_series
    # the other group is untouched
    assert after[("requests_total", frozenset({("job", "other")}))] == 1
    assert after[("push_time_seconds", frozenset({("job", "other")}))] == \
        before[("push_time_seconds", frozenset({("job", "other")}))]

    # the group starts from zero after a delete
    invocation(gateway.url, push=push_to_gateway, latency=0.5, version="1.2", job="fn")
    assert gateway.value("requests_total", job="fn") == 1


GROUPING_KEY = {
    "path": "/var/tmp/spool",   # '/' → prometheus_client sends path@base64/...
    "name": "a b  c",           # ' ' → base64 too
    "empty": "",                # ''  → empty@base64/=
    "region": "eu-west-1",      # plain
    "odd": "käse&co+x%y",       # plain, but quote_plus-encoded (%C3%A4, %26, %2B, %25)
}


def test_grouping_keys_with_slashes_spaces_and_empty_values_arrive_intact(gateway):
    job = "batch/nightly run"   # job@base64 as well
    run_five_invocations(gateway, job=job, grouping_key=GROUPING_KEY)
    group = frozenset({("job", job), *GROUPING_KEY.items()})
    samples = gateway.samples()
    assert samples.get(("requests_total", group)) == 5, [k for k in samples if k[0] == "requests_total"]
    check_histogram(samples, group)
    assert ("push_time_seconds", group) in samples
    om = gateway.samples(openmetrics=True)
    assert om[("requests_total", group)] == 5

    # a different value of one key is a different group
    other = dict(GROUPING_KEY, empty="x")
    invocation(gateway.url, push=pushadd_to_gateway, latency=0.5, version="1.1", job=job,
               grouping_key=other)
    samples = gateway.samples()
    assert samples[("requests_total", group)] == 5
    assert samples[("requests_total", frozenset({("job", job), *other.items()}))] == 1

    # DELETE decodes the same key the same way
    call(delete_from_gateway, gateway.url, job=job, grouping_key=GROUPING_KEY, timeout=10)
    samples = gateway.samples()
    assert [k for k in samples if k[1] == group or k[1] - {("le", dict(k[1]).get("le"))} == group] == []
    assert samples[("requests_total", frozenset({("job", job), *other.items()}))] == 1
