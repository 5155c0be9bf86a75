"""``RedisBackend``: the state on a Redis stream that every replica reads; any replica answers.

How a push goes (the keys and the one-partition choice are in ``redis_log.py``)::

    receiver ─▶ submit(record): pending[seq] = (record, future)      (before the XADD: no race)
                 └▶ XADD {P:p0}:log r=<token>.<seq> d=<encoded record>  (one pipeline per batch,
                      + WAIT N when wait_replicas)                     ≤ 1 round trip per push)
    reader task: XREAD BLOCK from the last applied id ─▶ applier.apply(record) for every entry,
                 in stream order; an entry of ours (our token) is applied from the record the
                 receiver already parsed, and its future gets the result: the 200, or the 400
                 the log order decided, the same on every replica.

- Ready: ``open`` starts the reader, which loads the latest snapshot from Redis, then reads the
  stream from the snapshot's position up to the stream's last entry as it was when the replica
  started; only then is ``ready`` True (``/-/ready`` 200). Pushes before that get 503.
- Unavailable: a failed pipeline (Redis down, a failover under way, WAIT not confirmed) answers
  503 with Retry-After and marks the backend unavailable; until the reader reads again (it retries
  every ``RETRY_SECONDS`` and follows a failover), pushes get 503 at once, scrapes go on from the
  last state. Nothing has to restart. When Redis refuses the gateway's settings (credentials,
  ACL, TLS trust), the log says so at error level, once per distinct refusal, naming the config
  key; ``problem`` carries the short form to ``/-/ready``'s 503 and the pushes' 503. It stands
  until an attempt gets through: a retry that merely times out does not replace it.
- Snapshots: every ``snapshot_interval``, and sooner once the stream since the last snapshot holds
  ``snapshot_log_size`` bytes of records or as many as that snapshot has (every replica counts
  what it applies; whichever takes the lock writes, the others wait for as much again), a
  replica that takes the lock key writes the state at
  its applied position (the file backend's codec) and trims the stream behind the snapshot
  before it (``RedisLog.store_snapshot``). A replica whose position is behind the trim point
  (it was away for two snapshot intervals), or whose last applied entry is gone from the stream
  (records a failed master had not replicated), reloads the snapshot before it is ready again.
- Time: every replica applies ``record.time``; the expiry tick is an EXPIRE record (the service's
  tick), applied in log order like any other, so expiry is the same on every replica.
"""
from __future__ import annotations

import asyncio
import logging

from ..errors import GravelError, StateUnavailable
from .applier import Applier
from .backend import StateBackend
from .record import Record, RecordError, decode_record, encode_record
from .redis_log import RedisLog, RedisMisconfigured, RedisUnavailable
from .restoring import HeldCollector
from .snapshot import decode_snapshot, encode_snapshot


def _encode(applier: Applier) -> bytes:
    """The file backend's snapshot codec; the stream id it includes is kept beside it."""
    return b"".join(encode_snapshot(applier.store, applier.memory, 0, applier.keys))


def _decode(applier: Applier, data: bytes) -> None:
    applier.restore(decode_snapshot(data, "redis snapshot"))

log = logging.getLogger("otelgravel.state.redis")

RETRY_SECONDS = 0.2
REFUSED_RETRY_SECONDS = 1.0   # a refused AUTH or certificate: no need to knock five times a second
APPLY_TIMEOUT = 10.0   # an appended record not applied by then (the reader lost Redis): 503
SNAPSHOT_LOCK_SECONDS = 60.0


def stream_id(sid: bytes) -> tuple[int, int]:
    ms, _, seq = sid.partition(b"-")
    return int(ms), int(seq or 0)


class RedisBackend(StateBackend):
    def __init__(self, redis_log: RedisLog, *, snapshot_interval: float = 300.0,
                 snapshot_log_size: int = 64 << 20, encode_snapshot=_encode,
                 decode_snapshot=_decode):
        self.log = redis_log
        self.snapshot_interval = snapshot_interval
        self.snapshot_log_size = snapshot_log_size  # 0: by time only
        self._log_bytes = 0       # of the records applied since the last snapshot known here
        self._log_limit = snapshot_log_size or float("inf")
        self._snapshot_due: asyncio.Task | None = None
        self._encode_snapshot = encode_snapshot
        self._decode_snapshot = decode_snapshot
        self.applier: Applier | None = None
        self._apply = None
        self.position = b"0-0"            # the last stream id applied
        self._pending: dict[int, tuple[Record, asyncio.Future]] = {}
        self._seq = 0
        self._prefix = redis_log.token + b"."
        self._ready = False
        self._available = False
        self._reader: asyncio.Task | None = None
        self._snapshotter: asyncio.Task | None = None
        self.applied = 0
        self.problem = ""                 # why Redis refuses us, for /-/ready ("" when it does not)
        self._why = "Redis cannot be reached"   # the last failure, for pushes while unavailable
        self._held = HeldCollector()      # the collector, held back while a snapshot is restored

    @property
    def ready(self) -> bool:
        return self._ready

    @property
    def available(self) -> bool:
        return self._available

    async def open(self, applier: Applier) -> None:
        self.applier = applier
        self._apply = applier.apply
        self.log.observe_append = self.observe_sync
        self._reader = asyncio.create_task(self._read_forever())
        if self.snapshot_interval > 0 and self._encode_snapshot is not None:
            self._snapshotter = asyncio.create_task(self._snapshot_every())

    async def close(self) -> None:
        for task in (self._snapshotter, self._snapshot_due, self._reader):
            if task is not None:
                task.cancel()
                try:
                    await task
                except (asyncio.CancelledError, Exception):
                    pass
        for _, fut in self._pending.values():
            if not fut.done():
                fut.set_exception(StateUnavailable("the gateway is stopping"))
        self._pending.clear()
        self._held.release()
        await self.log.close()
        log.info("redis closed", extra={"fields": {  # the benchmark reads these
            "appended": self.log.appended, "round_trips": self.log.round_trips,
            "applied": self.applied}})

    # -- the push path --------------------------------------------------------------------------

    async def submit(self, record: Record):
        if not self._ready:
            raise StateUnavailable("this replica is still reading the state from Redis"
                                   + (f" ({self.problem})" if self.problem else ""))
        if not self._available:
            raise StateUnavailable(self.problem or self._why)
        self._seq += 1
        seq = self._seq
        done = asyncio.get_running_loop().create_future()
        self._pending[seq] = (record, done)
        try:
            await self.log.append(encode_record(record), self._prefix + str(seq).encode())
        except RedisUnavailable as exc:
            # Not acknowledged. (If the XADD did land, its answer lost, the reader applies it
            # like any replica's record: a 503 means "not known to be stored", see the README.)
            self._pending.pop(seq, None)
            self._available = False
            self._why = f"Redis: {exc}"
            raise StateUnavailable(self._why) from None
        # one timer, not wait_for + shield (three futures and a task per push)
        timer = asyncio.get_running_loop().call_later(APPLY_TIMEOUT, self._not_applied, seq)
        try:
            return await done
        finally:
            timer.cancel()

    def _not_applied(self, seq: int) -> None:
        waiter = self._pending.pop(seq, None)
        if waiter is not None and not waiter[1].done():
            waiter[1].set_exception(StateUnavailable(
                "stored in Redis, not applied here yet (the reader lost Redis); it will be"))

    # -- the reader -------------------------------------------------------------------------------

    async def _read_forever(self) -> None:
        refused = ""
        while True:
            pause = RETRY_SECONDS
            try:
                if not self._ready:
                    await self._restore()
                else:
                    await self._check_position()
                self._available = True
                self.problem = refused = ""
                while True:
                    entries = await self.log.read(self.position)
                    self._available = True
                    self._apply_entries(entries)
            except RedisMisconfigured as exc:
                if str(exc) != refused:
                    log.error("redis refused the configuration", extra={"fields": {"error": exc}})
                refused, self.problem = str(exc), exc.hint
                self._available = False
                pause = REFUSED_RETRY_SECONDS
            except RedisUnavailable as exc:
                # A refusal stands until Redis accepts the configuration: an attempt that only
                # timed out or lost the connection (a TLS handshake over CONNECT_TIMEOUT on a
                # loaded machine) proves nothing fixed. Clearing it here made /-/ready lose the
                # key to fix (or name "tls" for "tls::ca_file") for a retry, and the refusal be
                # logged again at the next one.
                if self._available or self._why != f"Redis cannot be reached ({exc})":
                    log.warning("redis unavailable", extra={"fields": {"error": exc}})  # once
                self._why = f"Redis cannot be reached ({exc})"
                self._available = False
                if refused:
                    pause = REFUSED_RETRY_SECONDS
            except asyncio.CancelledError:
                raise
            except Exception:  # a bug must not stop the reader for good; say it, then go on
                log.exception("redis reader failed")
                self._available = False
            await asyncio.sleep(pause)

    def _apply_entries(self, entries) -> None:
        apply = self._apply
        prefix = self._prefix
        pending = self._pending
        size = 0
        for sid, origin, data in entries:
            self.position = sid
            self.applied += 1
            size += len(data)
            waiter = None
            if origin is not None and origin.startswith(prefix):
                waiter = pending.pop(int(origin[len(prefix):]), None)
            if waiter is not None:
                record, done = waiter
            else:
                done = None
                try:
                    record = decode_record(data)
                except RecordError as exc:  # e.g. written by a newer version: say so, go on
                    log.error("redis record skipped", extra={"fields": {"id": sid.decode(),
                                                                         "error": exc}})
                    continue
            try:
                result = apply(record)
            except GravelError as exc:  # a refusal decided by the log order
                if done is not None and not done.done():
                    done.set_exception(exc)
            except Exception as exc:  # a bug: say it; the push that caused it gets a 503
                log.exception("redis record failed", extra={"fields": {"id": sid.decode()}})
                if done is not None and not done.done():
                    done.set_exception(StateUnavailable(f"applying the record failed: {exc}"))
            else:
                if done is not None and not done.done():
                    done.set_result(result)
        self._log_bytes += size
        if self._ready:
            self._check_log_size()

    async def _restore(self) -> None:
        """The latest snapshot, then the stream up to its last entry as of now: then ready."""
        target = await self.log.last_id()
        snapshot = await self.log.load_snapshot()
        self._reset_state()
        position = b"0-0"
        self._log_bytes = 0
        if snapshot is not None and self._decode_snapshot is not None:
            data, position = snapshot
            with self._held:  # no collections while millions of objects are built
                self._decode_snapshot(self.applier, data)
            self._sized(len(data))
        if stream_id(position) < stream_id(await self.log.trimmed_up_to()):
            raise RedisUnavailable("the snapshot is older than the trimmed log (retrying)")
        self.position = position
        while stream_id(self.position) < stream_id(target):
            entries = await self.log.read(self.position, block_ms=None)
            if not entries:
                break
            self._apply_entries(entries)
        self._ready = True
        self._check_log_size()
        log.info("redis state loaded", extra={"fields": {
            "position": self.position.decode(), "series": self.applier.store.series_count}})

    async def _check_position(self) -> None:
        """After a reconnect: reload when the log no longer holds what this replica applied."""
        if self.position == b"0-0":
            return
        trimmed = await self.log.trimmed_up_to()
        if stream_id(self.position) < stream_id(trimmed) or not await self.log.has(self.position):
            log.error("redis log lost entries this replica applied (a failover without WAIT?) "
                      "or was trimmed past it; reloading", extra={"fields": {
                          "position": self.position.decode(), "trimmed": trimmed.decode()}})
            self._ready = False
            await self._restore()

    def _reset_state(self) -> None:
        if self.position != b"0-0" or self.applied:
            self.applier.processor.wipe()
            if self.applier.memory is not None:
                self.applier.memory.reset()
            self.applier.keys.reset()

    # -- snapshots --------------------------------------------------------------------------------

    async def snapshot(self) -> None:
        await self._snapshot()

    async def _snapshot(self) -> bool:
        """Write the state at the applied position, if no other replica is writing one; whether
        this replica wrote it."""
        if not self._ready or self._encode_snapshot is None:
            return False
        if not await self.log.lock_snapshot(SNAPSHOT_LOCK_SECONDS):
            return False
        try:
            position = self.position
            held = self._log_bytes
            data = self._encode_snapshot(self.applier)  # synchronous: the state at ``position``
            await self.log.store_snapshot(data, position)
            self._log_bytes -= held
            self._sized(len(data))
            log.info("redis snapshot", extra={"fields": {"position": position.decode(),
                                                         "bytes": len(data)}})
            return True
        finally:
            await self.log.unlock_snapshot()

    def _sized(self, snapshot_bytes: int) -> None:
        """The latest snapshot has this size: the stream may grow as large before the next."""
        if self.snapshot_log_size:
            self._log_limit = max(self.snapshot_log_size, snapshot_bytes)

    def _check_log_size(self) -> None:
        if self._log_bytes >= self._log_limit and self._snapshot_due is None:
            self._snapshot_due = asyncio.get_running_loop().create_task(self._snapshot_by_size())

    async def _snapshot_by_size(self) -> None:
        """The stream reached its bound: a snapshot now. Not written here (another replica holds
        the lock, or Redis failed): not tried again before as much again has been applied."""
        try:
            written = await self._snapshot()
        except RedisUnavailable as exc:
            log.warning("redis snapshot failed", extra={"fields": {"error": exc}})
            written = False
        except Exception:  # a bug: say so; the stream keeps everything meanwhile
            log.exception("redis snapshot failed")
            written = False
        finally:
            self._snapshot_due = None
        if not written:
            self._log_limit = self._log_bytes + (self.snapshot_log_size or float("inf"))

    async def _snapshot_every(self) -> None:
        while True:
            await asyncio.sleep(self.snapshot_interval)
            try:
                await self.snapshot()
            except RedisUnavailable as exc:
                log.warning("redis snapshot failed", extra={"fields": {"error": exc}})
