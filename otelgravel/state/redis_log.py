"""The Redis side of the replicated log: where the keys live, one pipeline per tick, one reader.

Keys (``P`` = ``storage.redis.key_prefix``). Every key carries the hash tag ``{P:p0}``, so in a
Redis Cluster they all sit in one slot of one master, and a push touches one slot::

    {P:p0}:log        the stream: one entry per record, fields r (the writing replica's token)
                      and d (``state.record.encode_record``)
    {P:p0}:snapshot   hash: data (the snapshot codec's bytes), position (the last stream id the
                      snapshot includes), previous (the position of the snapshot before it)
    {P:p0}:snaplock   SET NX PX: the one replica writing a snapshot right now

One partition, on purpose. Every replica applies every record (that is what makes any replica
answer with the whole aggregate), so the fleet's push rate is bounded by what ONE replica can
apply, whatever the number of streams; more partitions would spread the Redis side (which is not
the bottleneck: one master takes far more XADDs per second than a Python replica applies) and cost
the one property everything else rests on: a single total order. With it, a new family's type,
a series two groups both claim, the series limit, DELETE, wipe and expiry are all decided by the
position of the record in the log, identically on every replica, and a refused push gets the same
400 on whichever replica it came through. (Several partitions would need each of those decided
fleet-wide outside the log, e.g. the type by HSETNX, and a deterministic merge of the partitions
with a watermark; see the README, "Running replicas".)

Cluster: the client follows the slot. It asks any seed node for the slot's master (CLUSTER
SLOTS; a node without cluster mode is the master itself), talks to that node with plain
``redis.asyncio`` clients, and on a connection error, MOVED, CLUSTERDOWN or READONLY it marks
itself unavailable and looks the master up again (a failover is followed within a second or two
of Redis electing the new master).

Round trips: the XADDs of all the pushes that arrive while the previous pipeline is in flight go
in the next pipeline (group commit), so a push costs at most one round trip, shared. With
``wait_replicas: N`` the pipeline ends with ``WAIT N timeout``: the answer comes once N replica
nodes have the records, which is what makes an acknowledged push survive the death of its master
(Redis replication is otherwise asynchronous); it is in the same round trip, the latency of the
replica's acknowledgement is the cost. The XADD is never retried by the client: an XADD whose
answer was lost may have been appended, and a retry would add it twice.

Refusals: Redis reached but refusing this gateway's settings (WRONGPASS/NOAUTH, NOPERM, a server
certificate the configured CA did not sign) raise ``RedisMisconfigured``, whose message names the
config key to fix (``processors::gravel::storage::redis::password: ...``); like any unavailability
it answers pushes 503 and keeps ``/-/ready`` at 503, and it is retried (the fix may be on Redis'
side, e.g. ``ACL SETUSER``). Any other error reply to an append (OOM, ...) fails that batch's
pushes with 503: never a push left waiting.
"""
from __future__ import annotations

import asyncio
import logging
import os
import time

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.crc import key_slot
from redis.exceptions import AuthenticationError, NoPermissionError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

log = logging.getLogger("otelgravel.state.redis")

CONNECT_TIMEOUT = 0.5   # a push gets its 503 within a second when Redis is unreachable
# A reply's deadline is a timer on the event loop, and a scrape of a large state holds the loop
# for seconds (a cold scrape of 260,000 series: 0.3-3 s): with 2 s, replies already in the socket
# timed out after such a scrape, the replica dropped its connections and answered pushes 503
# (pushes that were in the log: duplicates when retried). A stopped Redis closes or refuses the
# connection, which fails at once; only a silent one (a partition) waits for this.
COMMAND_TIMEOUT = 10.0
READ_BLOCK_MS = 500
READ_COUNT = 2000

KEY = "processors::gravel::storage::redis"   # where the settings are, for the messages

_REDIRECTS = ("MOVED", "ASK", "CLUSTERDOWN", "READONLY", "TRYAGAIN", "LOADING", "MASTERDOWN")


class RedisUnavailable(Exception):
    """Redis could not be reached, or could not confirm the write; the push is not stored."""


class RedisMisconfigured(RedisUnavailable):
    """Redis answered and refused this gateway's credentials, permissions or TLS trust. The
    message names the config key and the node; ``hint`` is the short form for ``/-/ready``."""

    def __init__(self, message: str, hint: str):
        super().__init__(message)
        self.hint = hint


def _transient(exc: Exception) -> bool:
    if isinstance(exc, (RedisConnectionError, RedisTimeoutError, OSError)):
        return True
    return isinstance(exc, ResponseError) and str(exc).split(" ", 1)[0] in _REDIRECTS


def _pack(*args: bytes) -> bytes:
    """One command in RESP."""
    return b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args)


def parse_address(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f'"{text}" is not host:port')
    return host.strip("[]") or "127.0.0.1", int(port)


class RedisLog:
    """The stream, the snapshot and the lock of one key prefix, on a node or a cluster."""

    def __init__(self, addresses: list[str], *, username: str = "", password: str = "",
                 ca_file: str = "", key_prefix: str = "otelgravel", wait_replicas: int = 0,
                 wait_timeout: float = 0.5):
        self.seeds = [parse_address(a) for a in addresses]
        self.tag = "{" + key_prefix + ":p0}"
        self.stream = self.tag + ":log"
        self.snapshot_key = self.tag + ":snapshot"
        self.lock_key = self.tag + ":snaplock"
        self.slot = key_slot(self.stream.encode())
        key = self._stream_key = self.stream.encode()
        self._xadd_head = b"*7\r\n$4\r\nXADD\r\n$%d\r\n%s\r\n$1\r\n*\r\n$1\r\nr\r\n" % (len(key), key)
        self.token = os.urandom(8).hex().encode()  # marks this replica's own records
        self.wait_replicas = wait_replicas
        self.wait_ms = int(wait_timeout * 1000)
        self._auth = {"username": username or None, "password": password or None}
        self.ca_file = ca_file
        self._served_tls: set[str] = set()  # addresses seen to answer a TLS handshake
        if ca_file:
            self._auth.update(ssl=True, ssl_ca_certs=ca_file)
        self._master: tuple[str, int] | None = None
        self._writer: aioredis.Redis | None = None
        self._reader: aioredis.Redis | None = None
        self._held: dict[int, object] = {}   # id(client) -> its connection for _exchange
        self._queue: list[tuple[bytes, asyncio.Future]] = []
        self._flushing = False
        self.round_trips = 0     # pipelines sent for appends (the benchmark reads them)
        self.observe_append = None  # called with each append round trip's seconds (telemetry)
        self.appended = 0

    # -- connections --------------------------------------------------------------------------

    def explain(self, exc: Exception, address: str, first: bool = False) -> RedisUnavailable:
        """What went wrong talking to ``address``, naming the setting to check (``first``: the
        first contact, where a TLS mismatch shows as a timeout or a closed connection)."""
        text = str(exc) or type(exc).__name__
        user = self._auth["username"] or "default"
        if isinstance(exc, AuthenticationError):
            secret = "the configured password" if self._auth["password"] else "no password"
            return RedisMisconfigured(
                f"{KEY}::password: Redis at {address} refused user \"{user}\" with {secret} ({text}); "
                f"check {KEY}::username and {KEY}::password (and the variable they name)",
                f"Redis refused the credentials: check {KEY}::username and {KEY}::password")
        if isinstance(exc, NoPermissionError):
            return RedisMisconfigured(
                f"{KEY}::username: Redis at {address} refuses user \"{user}\" a command ({text}); "
                f"the ACL the gateway needs is in the README, \"Running replicas\"",
                f"Redis' ACL refuses user \"{user}\" a command: check {KEY}::username")
        if "CERTIFICATE_VERIFY_FAILED" in text:
            self._served_tls.add(address)  # it sent a certificate: it serves TLS
            return RedisMisconfigured(
                f"{KEY}::tls::ca_file: the certificate of Redis at {address} is not trusted with "
                f"\"{self.ca_file}\" ({text})",
                f"the Redis server's certificate is not trusted: check {KEY}::tls::ca_file")
        if (first and self.ca_file and address not in self._served_tls
                and ("SSL" in text or "Timeout" in text)):
            text += f" ({KEY}::tls is set: does {address} serve TLS?)"
        elif first and not self.ca_file and ("reset by peer" in text or "Connection closed" in text):
            text += f" (if {address} serves TLS only, set {KEY}::tls::ca_file)"
        return RedisUnavailable(text)

    def _client(self, host: str, port: int, read_timeout: float | None) -> aioredis.Redis:
        return aioredis.Redis(host=host, port=port, socket_connect_timeout=CONNECT_TIMEOUT,
                              socket_timeout=read_timeout, retry=Retry(NoBackoff(), 0),
                              **self._auth)

    async def _discover(self) -> tuple[str, int]:
        """The master of our slot: the node itself, or what CLUSTER SLOTS says."""
        last: RedisUnavailable | None = None
        seeds = ([self._master] if self._master else []) + [s for s in self.seeds if s != self._master]
        for host, port in seeds:
            client = self._client(host, port, COMMAND_TIMEOUT)
            try:
                info = await client.info("cluster")
                if self.ca_file:
                    self._served_tls.add(f"{host}:{port}")
                if not info.get("cluster_enabled"):
                    return host, port
                for lo, hi, master, *_ in await client.execute_command("CLUSTER SLOTS"):
                    if lo <= self.slot <= hi:
                        mhost = master[0].decode() if isinstance(master[0], bytes) else master[0]
                        return (mhost or host), int(master[1])
                last = RedisUnavailable(f"no master serves slot {self.slot}")
            except (RedisError, OSError) as exc:
                last = self.explain(exc, f"{host}:{port}", first=True)
            finally:
                await client.aclose()
        if isinstance(last, RedisMisconfigured):
            raise last
        raise RedisUnavailable(f"no Redis node reachable ({last})")

    async def _connect(self) -> None:
        master = await self._discover()
        if master != self._master or self._writer is None:
            await self._drop()
            self._master = master
            self._writer = self._client(*master, COMMAND_TIMEOUT + self.wait_ms / 1000)
            self._reader = self._client(*master, COMMAND_TIMEOUT + READ_BLOCK_MS / 1000)
            # connected (TCP, TLS, AUTH) now, before the replica is ready: not by its first push,
            # which would wait for a TLS handshake and get the 503 of a slow one
            for client in (self._writer, self._reader):
                self._held[id(client)] = await client.connection_pool.get_connection()
            log.info("redis master", extra={"fields": {"address": f"{master[0]}:{master[1]}",
                                                       "slot": self.slot}})

    async def _exchange(self, client: aioredis.Redis, packed: bytes, count: int) -> tuple[list, Exception | None]:
        """Send ``count`` packed commands and read their ``count`` replies: (replies, the first
        error reply or None). On a connection of ``client`` (its auth, TLS and parser) held for
        these round trips: taken from its pool once, since a checkout per round trip cost more
        CPU than parsing the replies. One caller at a time per client (the flush, the reader)."""
        conn = self._held.get(id(client))
        if conn is None:
            conn = self._held[id(client)] = await client.connection_pool.get_connection()
        replies: list = []
        failure = None
        try:
            await conn.send_packed_command(packed, check_health=False)
            for _ in range(count):
                try:
                    replies.append(await conn.read_response())
                except ResponseError as exc:  # one refused command: read the others, then say so
                    failure = failure or exc
                    replies.append(None)
        except BaseException:
            self._held.pop(id(client), None)
            await conn.disconnect()  # replies may still be on their way: never reuse it
            await client.connection_pool.release(conn)
            raise
        return replies, failure

    async def _drop(self) -> None:
        for client in (self._writer, self._reader):
            if client is not None:
                try:
                    await client.aclose()
                except Exception:
                    pass
        self._writer = self._reader = None
        self._held = {}

    async def _call(self, which: str, fn):
        """Run ``fn(client)`` on the writer or reader; a transient failure drops the connection
        (the next call looks the master up again) and raises RedisUnavailable."""
        try:
            if self._writer is None:
                await self._connect()
            return await fn(self._writer if which == "w" else self._reader)
        except (RedisError, OSError) as exc:
            if not _transient(exc) and not isinstance(exc, (AuthenticationError, NoPermissionError)):
                raise
            address = "%s:%s" % (self._master or ("?", "?"))
            if not isinstance(exc, NoPermissionError):  # the connection itself is fine then
                await self._drop()
            raise self.explain(exc, address) from None
        except RedisUnavailable:
            await self._drop()
            raise

    async def close(self) -> None:
        await self._drop()

    # -- appends: one pipeline per batch ------------------------------------------------------

    def append(self, data: bytes, origin: bytes) -> asyncio.Future:
        """Queue one record (``origin``: field r, who wrote it); the future gets its stream id
        (bytes) or RedisUnavailable."""
        fut = asyncio.get_running_loop().create_future()
        self._queue.append((data, origin, fut))
        if not self._flushing:
            self._flushing = True
            asyncio.get_running_loop().create_task(self._flush())
        return fut

    async def _flush(self) -> None:
        try:
            while self._queue:
                batch, self._queue = self._queue, []
                started = time.monotonic()
                try:
                    ids = await self._call("w", lambda c: self._pipeline(c, batch))
                except Exception as exc:  # unreachable, refused (OOM, ...): every push of it 503
                    text = str(exc) if isinstance(exc, RedisUnavailable) else \
                        f"the append was refused: {exc}"
                    for *_, fut in batch:
                        if not fut.done():
                            fut.set_exception(RedisUnavailable(text))
                    continue
                if self.observe_append is not None:
                    self.observe_append(time.monotonic() - started)
                for (*_, fut), sid in zip(batch, ids):
                    if not fut.done():
                        fut.set_result(sid)
        finally:
            self._flushing = False

    async def _pipeline(self, client: aioredis.Redis, batch) -> list:
        """XADD every record of the batch (+ WAIT), one write and one read: the commands are
        packed here (redis-py's pipeline costs ~30 us of CPU per command, this ~9) and sent on
        one of the client's own connections (its auth, TLS and parser)."""
        head = self._xadd_head
        parts = []
        for data, origin, _ in batch:
            parts.append(b"%s$%d\r\n%s\r\n$1\r\nd\r\n$%d\r\n" % (head, len(origin), origin, len(data)))
            parts.append(data)
            parts.append(b"\r\n")
        count = len(batch)
        if self.wait_replicas:
            wait_args = (b"WAIT", str(self.wait_replicas).encode(), str(self.wait_ms).encode())
            parts.append(_pack(*wait_args))
            count += 1
        self.round_trips += 1
        replies, failure = await self._exchange(client, b"".join(parts), count)
        if failure is not None:
            raise failure
        if self.wait_replicas and replies[-1] < self.wait_replicas:
            # Appended on the master, not confirmed on a replica node: not acknowledged (503).
            # The records stay in the log and are applied; see the README on what a 503 means.
            raise RedisUnavailable(f"WAIT: {replies[-1]} of {self.wait_replicas} replica nodes "
                                   f"confirmed within {self.wait_ms} ms")
        self.appended += len(batch)
        return replies[:len(batch)]

    # -- reading -----------------------------------------------------------------------------

    async def read(self, after: bytes, block_ms: int | None = READ_BLOCK_MS, count: int = READ_COUNT):
        """Entries after stream id ``after``: [(id, token, data)], [] after ``block_ms``.
        Packed here and read raw, like the appends: redis-py's ``xread`` (its reply callbacks,
        its streaming-lag recording) cost more CPU per entry than applying a small push."""
        args = [b"XREAD", b"COUNT", b"%d" % count]
        if block_ms is not None:
            args += [b"BLOCK", b"%d" % block_ms]
        args += [b"STREAMS", self._stream_key, after]
        packed = _pack(*args)

        async def xread(client):
            replies, failure = await self._exchange(client, packed, 1)
            if failure is not None:
                raise failure
            return replies[0]
        reply = await self._call("r", xread)
        if not reply:
            return []
        entries = next(iter(reply.values())) if isinstance(reply, dict) else reply[0][1]  # RESP3 / 2
        out = []
        for sid, fields in entries:
            if len(fields) == 4 and fields[0] == b"r" and fields[2] == b"d":  # as append writes them
                out.append((sid, fields[1], fields[3]))
            else:
                named = dict(zip(fields[::2], fields[1::2]))
                out.append((sid, named.get(b"r"), named[b"d"]))
        return out

    async def last_id(self) -> bytes:
        """The id of the stream's last entry (b"0-0" when empty): what a starting replica must
        have applied before it is ready."""
        async def info(client):
            return await client.xrevrange(self.stream, count=1)
        entries = await self._call("r", info)
        return entries[0][0] if entries else b"0-0"

    async def has(self, sid: bytes) -> bool:
        async def get(client):
            return await client.xrange(self.stream, sid, sid, count=1)
        return bool(await self._call("r", get))

    async def trimmed_up_to(self) -> bytes:
        """The id the log was last trimmed to (entries before it are gone), b"0-0" if never."""
        async def get(client):
            return await client.hget(self.snapshot_key, b"trimmed")
        return await self._call("r", get) or b"0-0"

    # -- snapshots ---------------------------------------------------------------------------

    async def load_snapshot(self) -> tuple[bytes, bytes] | None:
        """(data, position) of the latest snapshot, or None."""
        async def get(client):
            return await client.hmget(self.snapshot_key, [b"data", b"position"])
        data, position = await self._call("r", get)
        return None if data is None else (data, position)

    async def lock_snapshot(self, ttl: float) -> bool:
        async def lock(client):
            return await client.set(self.lock_key, self.token, nx=True, px=int(ttl * 1000))
        return bool(await self._call("w", lock))

    async def unlock_snapshot(self) -> None:
        async def unlock(client):
            # only our own lock: compare and delete in one step
            return await client.eval("if redis.call('get', KEYS[1]) == ARGV[1] then "
                                     "return redis.call('del', KEYS[1]) end return 0",
                                     1, self.lock_key, self.token)
        await self._call("w", unlock)

    async def store_snapshot(self, data: bytes, position: bytes) -> bytes:
        """Write the snapshot, then trim the log behind the PREVIOUS snapshot's position (a
        replica that just loaded that one still finds every record after it). Returns the id
        trimmed up to."""
        async def put(client):
            previous = await client.hget(self.snapshot_key, b"position") or b"0-0"
            pipe = client.pipeline(transaction=True)
            pipe.hset(self.snapshot_key, mapping={b"data": data, b"position": position,
                                                  b"previous": previous, b"trimmed": previous})
            if previous != b"0-0":
                pipe.xtrim(self.stream, minid=previous, approximate=False)
            await pipe.execute()
            return previous
        return await self._call("w", put)

    async def wipe_all(self) -> None:
        """Tests and tools only: remove every key of this prefix."""
        async def wipe(client):
            await client.delete(self.stream, self.snapshot_key, self.lock_key)
        await self._call("w", wipe)
