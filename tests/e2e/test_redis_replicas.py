"""Replicas on Redis (SPEC 9): real gateways (``python -m otelgravel``) on real ``redis-server``s.

Every test starts its own Redis (a single node, or a three-master cluster made by ``redis-cli
--cluster create``) and two or three gateway replicas on it, pushes real HTTP to them, and reads
their real scrapes. Loads are bounded in count and in time.
"""
from __future__ import annotations

import os
import re
import signal
import threading
import time
import urllib.error
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.redis_fixtures import (RedisCluster, cli, needs_redis, redis_cluster,  # noqa: F401
                                  redis_cluster_with_replicas, redis_node)

pytestmark = needs_redis

PREFIX = "og"


def replica_sets(addresses, *extra):
    return ["receivers.pushgateway.endpoint=127.0.0.1:0",
            "exporters.prometheus.endpoint=127.0.0.1:0",
            "receivers.otlp.protocols.http.endpoint=127.0.0.1:0",
            "receivers.pushgateway.admin_api=true",
            "processors.gravel.storage.redis.addresses=[" + ",".join(addresses) + "]",
            f"processors.gravel.storage.redis.key_prefix={PREFIX}", *extra]


def start_replicas(factory, addresses, n, *extra):
    gws = [factory(replica_sets(addresses, *extra)) for _ in range(n)]
    for gw in gws:
        wait_ready(gw)
    return gws


def wait_ready(gw, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, _, _ = gw.request("GET", "/-/ready")
        if status == 200:
            return
        time.sleep(0.02)
    raise AssertionError("replica not ready:\n" + "\n".join(gw.log[-20:]))


def post(url, body, timeout=10, headers=None):
    """(status, headers, seconds) of one real push; a connection error is status 0."""
    start = time.monotonic()
    req = urllib.request.Request(url, data=body.encode(), method="POST", headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.headers, time.monotonic() - start
    except urllib.error.HTTPError as err:
        return err.code, err.headers, time.monotonic() - start
    except (urllib.error.URLError, ConnectionError, OSError):
        return 0, {}, time.monotonic() - start


def until(check, timeout=10.0, interval=0.02):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


COUNTER = "# TYPE reqs counter\nreqs_total {v}\n"
HIST = ("# TYPE lat histogram\nlat_bucket{{le=\"0.5\"}} 1\nlat_bucket{{le=\"+Inf\"}} 1\n"
        "lat_sum 0.25\nlat_count 1\n")
INFO = "build_info{{version=\"{v}\",clear_mode=\"family\"}} 1\n"


def counter_total(gw, job="load"):
    return gw.value("reqs_total", job=job) or 0


class Load:
    """``clients`` threads pushing round-robin over ``urls``: counter +1, a histogram
    observation, a family info; counts the 200s of each kind (a failed push is not counted).

    ``keyed``: every push has its own Idempotency-Key, and a push that failed (a broken
    connection, a 5xx) is sent again with the same key to the next replica, until it is answered
    200 (at most ``ATTEMPTS`` times, within ``RETRY_SECONDS``); ``ok`` then counts logical
    pushes, each answered 200 once."""

    ATTEMPTS = 20
    RETRY_SECONDS = 30.0

    def __init__(self, urls, clients=12, per_client=60, seconds=8.0, keyed=False, attempts=ATTEMPTS):
        self.urls = urls
        self.keyed = keyed
        self.attempts = attempts
        self.attempt_statuses: dict[int, int] = {}  # keyed: every attempt's answer
        self.retried = 0     # pushes sent more than once
        self.replayed = 0    # answers saying Idempotent-Replayed: the first attempt had landed
        self.gave_up = 0     # pushes never answered 200 within the bounds
        self.ok = {"counter": 0, "hist": 0, "info": 0}
        self.statuses: dict[int, int] = {}
        self.last_ok = 0.0
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.clients, self.per_client, self.seconds = clients, per_client, seconds
        self.attempted = {"counter": 0, "hist": 0, "info": 0}
        self.killed_at = 0.0

    def client(self, c):
        deadline = time.monotonic() + self.seconds
        for i in range(self.per_client):
            if self.stop.is_set() or time.monotonic() > deadline:
                return
            base = self.urls[(c + i) % len(self.urls)]
            kind = ("counter", "hist", "info")[i % 3]
            if kind == "counter":
                body, path = COUNTER.format(v=1), "/metrics/job/load"
            elif kind == "hist":
                body, path = HIST.format(), "/metrics/job/load"
            else:
                body, path = INFO.format(v=f"c{c}"), f"/metrics/job/load/client/c{c}"
            with self.lock:
                self.attempted[kind] += 1
            if self.keyed:
                status = self.keyed_push(c + i, path, body)
            else:
                status, _, _ = post(base() + path, body)
            with self.lock:
                self.statuses[status] = self.statuses.get(status, 0) + 1
                if status == 200:
                    self.ok[kind] += 1
                    self.last_ok = time.monotonic()

    def keyed_push(self, first, path, body):
        headers = {"Idempotency-Key": uuid.uuid4().hex}
        deadline = time.monotonic() + self.RETRY_SECONDS
        for attempt in range(self.attempts):
            status, answer, _ = post(self.urls[(first + attempt) % len(self.urls)]() + path, body,
                                     headers=headers)
            with self.lock:
                self.attempt_statuses[status] = self.attempt_statuses.get(status, 0) + 1
            if status == 200 or 0 < status < 500 or time.monotonic() > deadline:
                break
            time.sleep(min(0.05 * attempt, 0.5))
        with self.lock:
            self.retried += attempt > 0
            if status == 200:
                self.replayed += answer.get("Idempotent-Replayed") == "true"
            else:
                self.gave_up += 1
        return status

    def run(self, during=None):
        with ThreadPoolExecutor(self.clients + 1) as pool:
            futures = [pool.submit(self.client, c) for c in range(self.clients)]
            if during is not None:
                during()
            for f in futures:
                f.result()


def totals(gw):
    s = gw.samples()
    return (s.get(("reqs_total", frozenset({("job", "load")})), 0),
            s.get(("lat_count", frozenset({("job", "load")})), 0))


def scrape_bytes(gw):
    return gw.request("GET", "/metrics", base=gw.scrape_url)[1]


def assert_identical(gws):
    until(lambda: len({scrape_bytes(g) for g in gws}) == 1, timeout=5)
    bodies = [scrape_bytes(g) for g in gws]
    assert all(b == bodies[0] for b in bodies), "scrapes differ after quiescence"
    return bodies[0].decode()


# ---- a single node, the same config shape -------------------------------------------------------

def test_single_node_two_replicas_sum_exactly(gateway_factory, redis_node):
    a, b = start_replicas(gateway_factory, [redis_node.address], 2)
    load = Load([lambda: a.url, lambda: b.url], clients=6, per_client=40)
    load.run()
    assert load.statuses == {200: 240}, load.statuses
    for gw in (a, b):
        assert totals(gw) == (load.ok["counter"], load.ok["hist"])
    text = assert_identical([a, b])
    assert text.count("build_info{") == 6


# ---- three replicas, three-master cluster, twelve clients ---------------------------------------

def test_cluster_three_replicas_twelve_clients(gateway_factory, redis_cluster):
    gws = start_replicas(gateway_factory, redis_cluster.addresses, 3)
    load = Load([lambda g=g: g.url for g in gws], clients=12, per_client=45)
    load.run()
    assert load.statuses == {200: 12 * 45}, load.statuses
    expected = (load.ok["counter"], load.ok["hist"])
    for gw in gws:  # each replica serves the exact totals within a second of the last 200
        seen = until(lambda: totals(gw) == expected, timeout=max(0.0, load.last_ok + 1.0 - time.monotonic()))
        assert seen, (totals(gw), expected)
    text = assert_identical(gws)
    assert text.count("build_info{") == 12
    # the stream lives in one slot: every key of the prefix on the node that serves it
    node = redis_cluster.node_for("{" + PREFIX + ":p0}")
    assert int(cli(node.port, "xlen", "{" + PREFIX + ":p0}:log").strip()) >= 12 * 45


def test_kill9_replica_mid_load_loses_nothing_and_a_new_one_catches_up(gateway_factory, redis_cluster):
    """Every push carries its Idempotency-Key and a failed one is retried on the next replica with
    the same key: a push the victim had appended to Redis but not answered when it died is then
    answered as a replay, so the survivors' totals EQUAL the pushes answered 200."""
    gws = start_replicas(gateway_factory, redis_cluster.addresses, 3)
    victim, survivors = gws[2], gws[:2]
    load = Load([lambda g=g: g.url for g in gws], clients=12, per_client=60, seconds=10, keyed=True)

    def kill_mid_load():
        until(lambda: sum(load.ok.values()) >= 150, timeout=10)
        load.killed_at = time.monotonic()
        os.kill(victim.proc.pid, signal.SIGKILL)
        victim.proc.wait()

    load.run(during=kill_mid_load)
    assert load.retried > 0, "no push was retried: the kill came after the load, nothing tested"
    assert load.gave_up == 0 and set(load.statuses) == {200}, (load.gave_up, load.statuses)
    acked = (load.ok["counter"], load.ok["hist"])
    for gw in survivors:
        assert until(lambda: totals(gw) == acked, timeout=2), (totals(gw), acked, load.replayed)
    final = totals(survivors[0])
    late = gateway_factory(replica_sets(redis_cluster.addresses))
    # ready only once it serves the same totals: the first 200 of /-/ready
    wait_ready(late)
    assert totals(late) == final
    assert_identical(survivors + [late])


def test_racing_new_family_types_one_wins_everywhere(gateway_factory, redis_node):
    a, b, c = start_replicas(gateway_factory, [redis_node.address], 3)
    for i in range(15):
        name = f"raced_{i}"
        bodies = [(a, f"# TYPE {name} counter\n{name} 1\n"), (b, f"# TYPE {name} gauge\n{name} 1\n")]
        barrier = threading.Barrier(2)

        def push(gw, body):
            barrier.wait()
            return post(gw.url + f"/metrics/job/race{i % 2}", body)[0]

        with ThreadPoolExecutor(2) as pool:
            statuses = list(pool.map(lambda x: push(*x), bodies))
        assert sorted(statuses) == [200, 400], (name, statuses)
        won = "counter" if statuses[0] == 200 else "gauge"
        for gw in (a, b, c):
            text = until(lambda: f"# TYPE {name}" in gw.scrape() and gw.scrape(), timeout=2)
            assert f"# TYPE {name} {won}\n" in text or f"# TYPE {name}_total {won}\n" in text \
                or f"# TYPE {name} {won}" in text, text
    assert_identical([a, b, c])


def test_windows_expiry_delete_and_wipe_as_on_one(gateway_factory, redis_node):
    gws = start_replicas(gateway_factory, [redis_node.address], 3,
                         "processors.gravel.expire_after=2s",
                         "processors.gravel.rules=[{metric: '^win_', clear_mode: max_1h}]")
    a, b, c = gws
    for i, v in enumerate([3, 9, 4, 7]):
        assert post(gws[i % 3].url + "/metrics/job/w", f"win_depth {v}\n")[0] == 200
    assert post(b.url + "/metrics/job/gone", "# TYPE kept gauge\nkept 1\n")[0] == 200
    assert post(c.url + "/metrics/job/stay", "# TYPE other gauge\nother 5\n")[0] == 200
    for gw in gws:
        assert until(lambda: gw.value("win_depth", job="w") == 9, timeout=2)
    assert a.request("DELETE", "/metrics/job/gone")[0] == 202
    for gw in gws:
        assert until(lambda: gw.value("kept", job="gone") is None, timeout=2)
    assert_identical(gws)
    # expiry: nothing pushed for more than expire_after; every replica drops the same series
    # (the expiry tick is an EXPIRE record, applied in log order)
    for gw in gws:
        assert until(lambda: gw.value("other", job="stay") is None, timeout=8)
    assert_identical(gws)
    assert post(a.url + "/metrics/job/x", "y 1\n")[0] == 200
    assert c.request("PUT", "/api/v1/admin/wipe")[0] == 202
    for gw in gws:
        assert until(lambda: gw.value("y", job="x") is None, timeout=2)
    assert_identical(gws)


# ---- Redis away -----------------------------------------------------------------------------

def test_redis_stopped_pushes_503_scrapes_200_and_back_without_restart(gateway_factory, redis_node):
    a, b = start_replicas(gateway_factory, [redis_node.address], 2)
    assert post(a.url + "/metrics/job/r", COUNTER.format(v=5))[0] == 200
    assert until(lambda: b.value("reqs_total", job="r") == 5, timeout=2)
    redis_node.kill()
    for gw in (a, b):
        status, headers, seconds = post(gw.url + "/metrics/job/r", COUNTER.format(v=1))
        assert status == 503 and seconds < 1.0, (status, seconds)
        assert headers.get("Retry-After")
        assert gw.value("reqs_total", job="r") == 5  # the last state, still served
        assert gw.request("GET", "/-/healthy")[0] == 200
    redis_node.start()
    for gw in (a, b):
        assert until(lambda: post(gw.url + "/metrics/job/r", COUNTER.format(v=1))[0] == 200,
                     timeout=10, interval=0.2)
    for gw in (a, b):
        assert until(lambda: gw.value("reqs_total", job="r") == 7, timeout=2), gw.value("reqs_total", job="r")


def test_cluster_master_failover_keeps_acknowledged_pushes(gateway_factory, redis_cluster_with_replicas):
    """A master killed and failed over under load with wait_replicas: 1. Pushes answered 503 (WAIT
    not confirmed: "not known to be stored", maybe in the log) or cut off are retried with their
    Idempotency-Key: every logical push then counts exactly once."""
    cluster = redis_cluster_with_replicas
    gws = start_replicas(gateway_factory, cluster.addresses, 2,
                         "processors.gravel.storage.redis.wait_replicas=1")
    master = cluster.node_for("{" + PREFIX + ":p0}")
    load = Load([lambda g=g: g.url for g in gws], clients=6, per_client=150, seconds=15,
                keyed=True, attempts=400)

    def kill_master():
        until(lambda: sum(load.ok.values()) >= 100, timeout=10)
        master.kill()
        # the replica node takes over (cluster-node-timeout 1 s). With wait_replicas: 1 pushes
        # stay 503 until the new master has a replica again: the old master, restarted, rejoins
        # as its replica (nodes.conf), and pushes resume without a gateway restart.
        cluster.wait_ok(timeout=20)
        until(lambda: cluster.node_for("{" + PREFIX + ":p0}").port != master.port, timeout=20)
        master.start()
        cluster.wait_ok(timeout=20)

    load.run(during=kill_master)
    assert load.attempt_statuses.get(503, 0) > 0, "no push saw the failover: nothing tested"
    assert set(load.attempt_statuses) <= {0, 200, 503}, load.attempt_statuses
    assert load.gave_up == 0, (load.gave_up, load.attempt_statuses)
    for gw in gws:  # pushes are answered 200 again after the failover, without a restart
        assert until(lambda: post(gw.url + "/metrics/job/after", COUNTER.format(v=1))[0] == 200,
                     timeout=15, interval=0.2)
    acked = (load.ok["counter"], load.ok["hist"])
    for gw in gws:  # every logical push once: the retries of the ones that had landed replayed
        assert until(lambda: totals(gw) == acked, timeout=5), (totals(gw), acked, load.replayed)
    assert_identical(gws)
    assert cluster.node_for("{" + PREFIX + ":p0}").port != master.port
    assert "role:slave" in cli(master.port, "info", "replication")


def test_snapshot_in_redis_trims_the_log_and_a_new_replica_starts_from_it(gateway_factory, redis_node):
    a, b = start_replicas(gateway_factory, [redis_node.address], 2,
                          "processors.gravel.storage.snapshot_interval=1s")
    stream = "{" + PREFIX + ":p0}:log"
    for i in range(60):
        assert post((a, b)[i % 2].url + "/metrics/job/load", COUNTER.format(v=1))[0] == 200
    assert until(lambda: cli(redis_node.port, "hget", "{" + PREFIX + ":p0}:snapshot", "position").strip(),
                 timeout=5)
    for i in range(40):
        assert post((a, b)[i % 2].url + "/metrics/job/load", COUNTER.format(v=1))[0] == 200
    # two snapshots later the log behind the older one is gone
    assert until(lambda: int(cli(redis_node.port, "xlen", stream).strip()) < 100, timeout=8), \
        cli(redis_node.port, "xlen", stream)
    late = gateway_factory(replica_sets([redis_node.address]))
    wait_ready(late)
    assert counter_total(late) == 100
    assert "redis state loaded" in "\n".join(late.log)
    assert_identical([a, b, late])
