"""Real ``redis-server`` processes on loopback for the tests: a single node, and a Redis Cluster.

No fakes: these are Debian's ``redis-server`` 7 and ``redis-cli``, each node in its own temporary
directory with ``appendonly yes`` and ``appendfsync everysec`` (the setting the README documents:
a node's crash loses at most a second of its own writes; acknowledged pushes survive a master's
death through ``WAIT`` on a replica node, see ``otelgravel/state/redis_log.py``).

Ports: Redis cannot report a port it picked itself (``--port 0`` disables TCP), so a free port is
found by binding port 0 and the server is started on it; if another process wins that race the
start is retried on a new port. A cluster node also needs its bus port (port + 10000) free.
Processes are stopped by their PID only. Tests skip, saying why, where ``redis-server`` is missing.

TLS and ACL (SPEC 9's ``tls.ca_file``, ``username``, ``password``): ``RedisNode(..., tls=pki)``
serves TLS only (``--port 0 --tls-port P``) with the certificate of ``tests/e2e/pki.py`` (signed by
the test's own CA, for 127.0.0.1); ``acl=(user, password)`` turns the ``default`` user off and
makes ``user`` the only one, with that password and every permission. ``node.cli(...)`` talks to
the node with the same TLS and credentials (``redis-cli --tls --cacert --user --pass``); the
module's ``cli(port, ...)`` stays the plain one.
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

REDIS_SERVER = shutil.which("redis-server")
REDIS_CLI = shutil.which("redis-cli")
MISSING = None if REDIS_SERVER and REDIS_CLI else "redis-server/redis-cli not installed (apt-get install redis-server)"
needs_redis = pytest.mark.skipif(MISSING is not None, reason=MISSING or "")


def _free_port(bus: bool = False) -> int:
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port + 10000 > 65535 and bus:
            continue
        if bus:
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", port + 10000))
                except OSError:
                    continue
        return port
    raise RuntimeError("no free port pair found")


def cli(port: int, *args: str, timeout: float = 10, flags: tuple[str, ...] = ()) -> str:
    out = subprocess.run([REDIS_CLI, "-h", "127.0.0.1", "-p", str(port), *flags, *args],
                         capture_output=True, text=True, timeout=timeout)
    return out.stdout + out.stderr


def _security(tls, acl) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(redis-server arguments, redis-cli flags) for a node with this TLS (a ``Pki``) and ACL."""
    server: list[str] = []
    client: list[str] = []
    if tls is not None:
        server += ["--tls-cert-file", str(tls.server_cert), "--tls-key-file", str(tls.server_key),
                   "--tls-ca-cert-file", str(tls.ca), "--tls-auth-clients", "no"]
        client += ["--tls", "--cacert", str(tls.ca)]
    if acl is not None:
        user, password = acl
        server += ["--user", "default", "off", "--user", user, "on", f">{password}", "~*", "&*", "+@all"]
        client += ["--user", user, "--pass", password, "--no-auth-warning"]
    return tuple(server), tuple(client)


class RedisNode:
    """One ``redis-server`` in its own directory. ``stop()``/``kill()`` by PID; ``start()`` again
    reuses the same port and directory (the AOF is replayed, as after a real restart)."""

    def __init__(self, base: Path, cluster: bool = False, extra: tuple[str, ...] = (),
                 tls=None, acl: tuple[str, str] | None = None):
        self.cluster = cluster
        self.tls = tls
        self.security, self.cli_flags = _security(tls, acl)
        self.extra = extra
        self.port = 0
        self.dir = base
        self.proc: subprocess.Popen | None = None
        for _ in range(5):
            self.port = _free_port(bus=cluster)
            self.dir = base / f"node-{self.port}"
            self.dir.mkdir(parents=True, exist_ok=True)
            if self.start(check=False):
                return
        raise RuntimeError(f"redis-server did not start:\n{self.log()}")

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def cli(self, *args: str, timeout: float = 10) -> str:
        """redis-cli on this node, with its TLS and credentials."""
        return cli(self.port, *args, timeout=timeout, flags=self.cli_flags)

    def log(self) -> str:
        path = self.dir / "redis.log"
        return path.read_text() if path.exists() else ""

    def start(self, check: bool = True) -> bool:
        ports = ["--port", str(self.port)] if self.tls is None else ["--port", "0", "--tls-port", str(self.port)]
        args = [REDIS_SERVER, *ports, "--bind", "127.0.0.1",
                "--dir", str(self.dir), "--logfile", "redis.log", "--save", "",
                "--appendonly", "yes", "--appendfsync", "everysec", "--protected-mode", "no"]
        if self.cluster:
            args += ["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                     "--cluster-node-timeout", "1000", "--cluster-replica-validity-factor", "0"]
            if self.tls is not None:  # the bus always checks the peer's client certificate
                args += ["--tls-cluster", "yes", "--tls-replication", "yes",
                         "--tls-client-cert-file", str(self.tls.client_cert),
                         "--tls-client-key-file", str(self.tls.client_key)]
        args += [*self.security, *self.extra]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                if check:
                    raise RuntimeError(f"redis-server exited:\n{self.log()}")
                return False
            if "PONG" in self.cli("ping", timeout=2):
                return True
            time.sleep(0.05)
        self.kill()
        if check:
            raise RuntimeError(f"redis-server not answering:\n{self.log()}")
        return False

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


class RedisCluster:
    """Three masters (and optionally one replica node per master) made by ``redis-cli --cluster
    create``; ready once every node says ``cluster_state:ok``."""

    def __init__(self, base: Path, masters: int = 3, replicas: int = 0, tls=None,
                 acl: tuple[str, str] | None = None):
        self.nodes = [RedisNode(base, cluster=True, tls=tls, acl=acl)
                      for _ in range(masters * (1 + replicas))]
        try:
            out = subprocess.run([REDIS_CLI, *self.nodes[0].cli_flags, "--cluster", "create",
                                  *[n.address for n in self.nodes],
                                  "--cluster-replicas", str(replicas), "--cluster-yes"],
                                 capture_output=True, text=True, timeout=60)
        except subprocess.TimeoutExpired:  # nodes that never meet: stop them, say so
            self.stop()
            raise
        if out.returncode != 0:
            self.stop()
            raise RuntimeError(f"cluster create failed:\n{out.stdout}\n{out.stderr}")
        self.wait_ok()
        if replicas:
            self.wait_replicas_online()

    @property
    def addresses(self) -> list[str]:
        return [n.address for n in self.nodes]

    def alive(self) -> list[RedisNode]:
        return [n for n in self.nodes if n.proc is not None and n.proc.poll() is None]

    def wait_ok(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all("cluster_state:ok" in n.cli("cluster", "info", timeout=2) for n in self.alive()):
                return
            time.sleep(0.1)
        raise RuntimeError("cluster not ok:\n" + "\n".join(n.cli("cluster", "nodes")
                                                            for n in self.alive()))

    def wait_replicas_online(self, timeout: float = 30) -> None:
        """Every master has its replica node attached and in sync (WAIT would count it)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            infos = [n.cli("info", "replication", timeout=2) for n in self.alive()]
            masters = [i for i in infos if "role:master" in i]
            if masters and all("connected_slaves:0" not in i and "state=online" in i for i in masters):
                return
            time.sleep(0.1)
        raise RuntimeError("replica nodes not in sync")

    def node_for(self, key: str, timeout: float = 10) -> RedisNode:
        """The node that serves ``key``'s slot as master (waits while a failover settles)."""
        deadline = time.monotonic() + timeout
        while True:
            node = self._master_of(key)
            if node is not None or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        if node is None:
            raise RuntimeError(f"no master for {key}")
        return node

    def _master_of(self, key: str) -> RedisNode | None:
        node0 = self.alive()[0]
        slot = int(node0.cli("cluster", "keyslot", key).strip())
        for line in node0.cli("cluster", "nodes").splitlines():
            fields = line.split()
            if len(fields) < 8 or "master" not in fields[2] or "fail" in fields[2]:
                continue
            for span in fields[8:]:
                lo, _, hi = span.partition("-")
                if lo.isdigit() and int(lo) <= slot <= int(hi or lo):
                    port = int(fields[1].split(":")[1].split("@")[0])
                    return next((n for n in self.nodes if n.port == port), None)
        return None

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()


@pytest.fixture
def redis_node(tmp_path):
    if MISSING:
        pytest.skip(MISSING)
    node = RedisNode(tmp_path / "redis")
    yield node
    node.stop()


@pytest.fixture
def redis_cluster(tmp_path):
    if MISSING:
        pytest.skip(MISSING)
    cluster = RedisCluster(tmp_path / "cluster")
    yield cluster
    cluster.stop()


@pytest.fixture
def redis_cluster_with_replicas(tmp_path):
    if MISSING:
        pytest.skip(MISSING)
    cluster = RedisCluster(tmp_path / "cluster", replicas=1)
    yield cluster
    cluster.stop()
