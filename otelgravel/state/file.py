"""The embedded backend: an append-only log and snapshots in ``storage.directory``.

Files (all 0600, in a directory of ours that no other user may write)::

    lock                   flock'ed while a gateway (or its snapshot child) uses the directory
    snapshot               the state at one log position (``snapshot.py``)
    log-<first seq, hex>   segments of the log: frames (``framing.py``) of u64 seq + record

A push: the record gets the next sequence number, its frame (``logframe.py``) is written with one
write(2) to the current segment (so it is in the kernel before anything else happens: a
``kill -9`` loses nothing from then on), then it is applied (in log order, synchronously: no
other push comes in between), then the answer waits as ``sync`` says: ``always`` for an fsync
that started after its write (one fsync serves the pushes of a turn of the event loop and every
push that arrived while the previous one ran: group commit); ``interval`` and ``never`` not at
all (an fsync every ``sync_interval``, or when the OS decides). The fsyncs run in a child
process of ours (``fsync_process.py``), not in a thread: no GIL handoff per round.
A write that fails (disk full) is answered 503 and changes nothing; the gateway then refuses
every push until restarted, because the log, not memory, is the truth.

Snapshots (every ``snapshot_interval``; sooner when the log since the last one reaches
``snapshot_log_size`` or the snapshot's own size, whichever is larger, as Redis rewrites its AOF,
so that a restart replays a bounded log at any push rate; and at close): the log is cut at the
current position N (the next record goes to a new segment ``log-<N+1>``), then the process
forks, like Redis'
BGSAVE: the child encodes the state of that instant from its copy-on-write memory and writes it
under an unpredictable temporary name (O_CREAT|O_EXCL|O_NOFOLLOW), fsyncs it, renames it to
``snapshot`` and fsyncs the directory, while the parent goes on serving. Then the parent deletes
the segments the snapshot holds. Why fork: a consistent cut of a million series in the event
loop would stall pushes for the whole encoding (measured: 9 to 14 s for 1,000,000 series, about
10 µs a series), and encoding in steps would need copy-on-write of every series touched
meanwhile; fork gives the exact cut for the price of copying the page tables (measured: 28 ms
with 1,000,000 series, 1.2 GB resident; pushes meanwhile: p99 0.6 ms, worst 53 ms) and costs
memory only for the pages the parent writes while the child runs. The child dies with the
parent (PR_SET_PDEATHSIG) and holds the lock, so no second gateway opens the directory while
it writes.

Start: the snapshot (if any), then every segment in order; records at or before the snapshot's
position are skipped, so a crash between a snapshot and the deletion of the segments it holds
applies nothing twice. A torn last record (a crash mid-write) is dropped with a warning and the
segment truncated there; any other damage stops the start, naming file and offset.
"""
from __future__ import annotations

import asyncio
import ctypes
import fcntl
import gc
import logging
import os
import secrets
import signal
import stat
import struct
import sys
import time
from concurrent.futures import ThreadPoolExecutor

from ..errors import GravelError, StateUnavailable
from .applier import Applier
from .backend import StateBackend
from .framing import DamagedFile, read_frames
from .fsync_process import FsyncProcess, FsyncProcessError
from .logframe import frame_record
from .record import Record, RecordError, decode_record
from .restoring import HeldCollector
from .snapshot import decode_snapshot, encode_snapshot

log = logging.getLogger("otelgravel.state")

SYNC_POLICIES = ("always", "interval", "never")
SNAPSHOT = "snapshot"
LOCK = "lock"
_SEGMENT = "log-"
_TMP = ".tmp-"
_SEQ = struct.Struct("<Q")
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_WRITE_CHUNK = 1 << 20
_LOCK_WAIT = 10.0


class StateFileError(GravelError):
    """The directory or a file in it cannot be used; the message says which and why."""


def segment_name(first_seq: int) -> str:
    return f"{_SEGMENT}{first_seq:016x}"


def segment_seq(name: str) -> int | None:
    """The first sequence number of the segment ``name``, or None when it names no segment."""
    digits = name[len(_SEGMENT):]
    if not name.startswith(_SEGMENT) or len(digits) != 16 or digits.strip("0123456789abcdef"):
        return None
    return int(digits, 16)


def _fsync_dir(dir_fd: int) -> None:
    os.fsync(dir_fd)


def write_snapshot(dir_fd: int, store, memory, position: int, keys=None) -> tuple[int, int]:
    """Write a snapshot under a fresh temporary name, fsync it, rename it to ``snapshot``,
    fsync the directory; ``(bytes, series)``."""
    tmp = _TMP + secrets.token_hex(16)
    fd = os.open(tmp, _CREATE, 0o600, dir_fd=dir_fd)
    size = 0
    try:
        buf = bytearray()
        for piece in encode_snapshot(store, memory, position, keys):
            buf += piece
            if len(buf) >= _WRITE_CHUNK:
                size += _write_all(fd, buf)
                buf = bytearray()
        size += _write_all(fd, buf)
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        os.unlink(tmp, dir_fd=dir_fd)
        raise
    os.close(fd)
    os.rename(tmp, SNAPSHOT, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    _fsync_dir(dir_fd)
    return size, store.series_count


def _write_all(fd: int, data) -> int:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]
    return len(data)


def _leave_signals_to_parent() -> None:
    """In the snapshot child: the gateway's handlers are asyncio's, which write the signal's
    number to the event loop's wakeup fd, shared with the parent since the fork; a SIGTERM sent
    to the child (or to the group: systemd's stop, Ctrl-C) would reach the parent a second time
    through it. The child ignores them instead, as the fsync process does: it ends with its
    snapshot written, or with the parent (PR_SET_PDEATHSIG)."""
    signal.set_wakeup_fd(-1)
    for number in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(number, signal.SIG_IGN)


def _die_with_parent(parent: int) -> None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, 9)  # PR_SET_PDEATHSIG, SIGKILL
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)


class FileBackend(StateBackend):
    def __init__(self, directory: str, sync: str = "interval", sync_interval: float = 1.0,
                 snapshot_interval: float = 300.0, snapshot_log_size: int = 64 << 20):
        if sync not in SYNC_POLICIES:
            raise ValueError(f"sync must be one of {SYNC_POLICIES}")
        self.directory = directory
        self.sync = sync
        self.sync_interval = sync_interval
        self.snapshot_interval = snapshot_interval
        self.snapshot_log_size = snapshot_log_size  # 0: by time only
        self._log_bytes = 0     # in the segments after the snapshot on disk
        self._log_limit = snapshot_log_size or float("inf")  # a snapshot is due at this size
        self._snapshot_due = False  # one asked for by the log's size, not yet done
        self.applier: Applier | None = None
        self._apply = None
        self._dir = -1
        self._lock = -1
        self._fd = -1
        self._segment = ""
        self._seq = 0          # the last record written
        self._position = 0     # the last record the snapshot on disk holds
        self._unsynced: list[int] = []  # fds of cut segments still to fsync and close
        self._dirty = False    # written since the last fsync
        self._broken: BaseException | None = None
        self._closed = False
        self._ready = False
        self._next_sync: asyncio.Future | None = None  # the waiters of the next fsync round
        # the round in flight: its waiters, the cut segments it fsyncs, when it started
        self._syncing: tuple[asyncio.Future, list[int], float] | None = None
        self._syncer = FsyncProcess()
        self._snapshotting: asyncio.Task | None = None
        self._tasks: list[asyncio.Task] = []
        self._held = HeldCollector()
        self._io = ThreadPoolExecutor(1, thread_name_prefix="otelgravel-snapshot")  # at close

    # ---- properties --------------------------------------------------------------------------

    @property
    def ready(self) -> bool:
        return self._ready

    @property
    def available(self) -> bool:
        return self._broken is None and not self._closed

    # ---- open --------------------------------------------------------------------------------

    async def open(self, applier: Applier) -> None:
        self.applier = applier
        self._apply = applier.apply
        self._open_directory()
        await self._take_lock()
        started = time.monotonic()
        with self._held:  # no collections while millions of objects are built (restoring.py)
            self._restore(applier)
        # the new segment starts after the last record; an empty one of that name is ours
        name = segment_name(self._seq + 1)
        if name in self._replayed:
            os.unlink(name, dir_fd=self._dir)
        self._fd = self._create(name, os.O_APPEND)
        self._segment = name
        _fsync_dir(self._dir)
        try:
            self._syncer.start()
        except FsyncProcessError as exc:
            raise StateFileError(str(exc)) from None
        self._ready = True
        log.info("state restored", extra={"fields": {
            "directory": self.directory, **self._restored,
            "seconds": round(time.monotonic() - started, 3)}})
        if self.sync == "interval":
            self._tasks.append(asyncio.create_task(self._sync_every()))
        if self.snapshot_interval > 0:
            self._tasks.append(asyncio.create_task(self._snapshot_every()))
        if self._log_bytes >= self._log_limit:  # a long log replayed: fold it now
            self._snapshot_soon()

    def _restore(self, applier: Applier) -> None:
        names = os.listdir(self._dir)
        for name in names:
            if name.startswith(_TMP):  # a snapshot a crash left half-written
                os.unlink(name, dir_fd=self._dir)
        position = 0
        series = 0
        if SNAPSHOT in names:
            data = self._read(SNAPSHOT)
            self._sized(len(data))
            snap = decode_snapshot(data, self._path(SNAPSHOT))
            applier.restore(snap)
            position = snap.position
            series = applier.store.series_count
        segments = sorted((segment_seq(n), n) for n in names if segment_seq(n) is not None)
        self._position = self._seq = position
        replayed = skipped = refused = 0
        for i, (first, name) in enumerate(segments):
            r, s, f = self._replay(name, last=i == len(segments) - 1)
            replayed += r
            skipped += s
            refused += f
        self._replayed = {n for _, n in segments}
        self._restored = {"snapshot_series": series, "snapshot_position": position,
                          "replayed": replayed, "skipped": skipped, "refused": refused}

    def _path(self, name: str) -> str:
        return os.path.join(self.directory, name)

    def _open_directory(self) -> None:
        path = self.directory
        try:
            os.makedirs(path, mode=0o700, exist_ok=True)
            self._dir = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as exc:
            raise StateFileError(f"storage directory {path}: {exc.strerror}") from None
        st = os.fstat(self._dir)
        if st.st_uid != os.geteuid():
            raise StateFileError(f"storage directory {path} belongs to uid {st.st_uid}, not to "
                                 f"this gateway's uid {os.geteuid()}")
        if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
            raise StateFileError(f"storage directory {path} is writable by other users (mode "
                                 f"{stat.S_IMODE(st.st_mode):o}): chmod go-w it")

    async def _take_lock(self) -> None:
        try:
            self._lock = os.open(LOCK, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC,
                                 0o600, dir_fd=self._dir)
        except OSError as exc:
            raise StateFileError(f"{self._path(LOCK)}: {exc.strerror}") from None
        deadline = time.monotonic() + _LOCK_WAIT
        while True:
            try:
                fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise StateFileError(f"storage directory {self.directory} is in use by another "
                                         "gateway (or its snapshot process)") from None
                await asyncio.sleep(0.05)

    def _read(self, name: str) -> bytes:
        try:
            fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=self._dir)
        except OSError as exc:
            raise StateFileError(f"{self._path(name)}: {exc.strerror}") from None
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise StateFileError(f"{self._path(name)}: not a regular file")
            chunks = []
            while True:
                chunk = os.read(fd, 16 << 20)
                if not chunk:
                    break
                chunks.append(chunk)
            return b"".join(chunks)
        finally:
            os.close(fd)

    def _create(self, name: str, flags: int = 0) -> int:
        try:
            return os.open(name, _CREATE | flags, 0o600, dir_fd=self._dir)
        except OSError as exc:
            raise StateFileError(f"{self._path(name)}: {exc.strerror}") from None

    def _replay(self, name: str, last: bool) -> tuple[int, int, int]:
        path = self._path(name)
        data = self._read(name)
        frames = read_frames(data, path, torn_ok=last)
        replayed = skipped = refused = 0
        apply = self._apply
        while True:
            try:
                offset, payload = next(frames)
            except StopIteration as end:
                whole = end.value
                break
            if len(payload) < _SEQ.size:
                raise DamagedFile(path, offset, "frame too short for a record")
            (seq,) = _SEQ.unpack_from(payload)
            if seq <= self._position:
                skipped += 1  # the snapshot holds it
                continue
            if seq != self._seq + 1:
                raise DamagedFile(path, offset, f"record {seq} where record {self._seq + 1} "
                                                "was expected (records missing)")
            try:
                record = decode_record(payload[_SEQ.size:])
            except RecordError as exc:
                raise DamagedFile(path, offset, str(exc)) from None
            self._seq = seq
            try:
                apply(record)
                replayed += 1
            except GravelError:
                refused += 1  # refused when it came in too: the same answer again
            except Exception:  # a bug must not make the directory unusable; say where
                log.exception("replaying a record failed", extra={"fields": {
                    "file": path, "offset": offset}})
        self._log_bytes += whole
        if whole < len(data):
            log.warning("torn last record dropped", extra={"fields": {
                "file": path, "offset": whole, "bytes": len(data) - whole}})
            fd = os.open(name, os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=self._dir)
            try:
                os.ftruncate(fd, whole)
                os.fsync(fd)
            finally:
                os.close(fd)
        return replayed, skipped, refused

    # ---- submit ------------------------------------------------------------------------------

    async def submit(self, record: Record):
        if self._broken is not None or self._closed:
            raise self._unavailable()
        seq = self._seq + 1
        data = frame_record(seq, record)
        try:
            n = os.write(self._fd, data)
            if n != len(data):
                raise OSError(f"short write ({n} of {len(data)} bytes)")
        except OSError as exc:
            self._fail(exc)
            raise self._unavailable() from None
        self._seq = seq
        self._dirty = True
        self._log_bytes += n
        if self._log_bytes >= self._log_limit and not self._snapshot_due:
            self._snapshot_soon()
        if self.sync != "always":
            return self._apply(record)
        done = self._sync_soon()
        result = self._apply(record)  # a refusal raises here: its answer need not wait
        await asyncio.shield(done)  # a push cancelled while it waits leaves the round to the rest
        return result

    def _unavailable(self) -> StateUnavailable:
        if self._closed:
            return StateUnavailable("the gateway is shutting down")
        return StateUnavailable(f"the state cannot be written: {self._broken}")

    def _fail(self, exc: BaseException) -> None:
        if self._broken is None:
            self._broken = exc
            log.error("state write failed: refusing pushes until restarted",
                      extra={"fields": {"directory": self.directory, "error": exc}})

    def _sync_soon(self) -> asyncio.Future:
        """A future done when an fsync that starts after now has finished (group commit): it
        starts at the end of this turn of the event loop, so the turn's pushes share it, or
        when the one in flight ends, for every push that came meanwhile."""
        if self._next_sync is None:
            loop = asyncio.get_running_loop()
            self._next_sync = loop.create_future()
            if self._syncing is None:
                loop.call_soon(self._start_sync)
        return self._next_sync

    def _start_sync(self) -> None:
        waiters, self._next_sync = self._next_sync, None
        if waiters is None:
            return
        cut, self._unsynced = self._unsynced, []
        self._dirty = False
        self._syncing = (waiters, cut, time.monotonic())
        self._syncer.fsync([*cut, self._fd], self._synced)

    def _synced(self, error: OSError | None) -> None:
        (waiters, cut, started), self._syncing = self._syncing, None
        for fd in cut:  # the segments cut before the round, now on disk
            os.close(fd)
        if error is not None:
            self._fail(error)
            if not waiters.done():
                waiters.set_exception(self._unavailable())
        else:
            if self.observe_sync is not None:
                self.observe_sync(time.monotonic() - started)
            if not waiters.done():
                waiters.set_result(None)
        if self._next_sync is not None:
            self._start_sync()

    async def _sync_every(self) -> None:
        while True:
            await asyncio.sleep(self.sync_interval)
            if self._dirty or self._unsynced:
                try:  # shielded: cancelling this task (at close) must not cancel the round's
                    # future, which close() and the pushes of the round await too
                    await asyncio.shield(self._sync_soon())
                except StateUnavailable:
                    pass  # _fail has said why; pushes are refused from now on

    # ---- snapshots ---------------------------------------------------------------------------

    async def _snapshot_every(self) -> None:
        while True:
            await asyncio.sleep(self.snapshot_interval)
            await self._snapshot_logged()

    def _snapshot_soon(self) -> None:
        """The log reached its limit: a snapshot now, whatever the interval says."""
        if self._closed or self._snapshot_due:
            return
        self._snapshot_due = True  # until it is done: one trigger, not one per push meanwhile
        task = asyncio.get_running_loop().create_task(self._snapshot_logged())
        self._tasks.append(task)
        task.add_done_callback(self._snapshot_done)

    def _snapshot_done(self, task: asyncio.Task) -> None:
        self._snapshot_due = False
        if task in self._tasks:
            self._tasks.remove(task)
        if not task.cancelled() and not task.result():  # failed: not again before as much log
            self._log_limit = self._log_bytes + (self.snapshot_log_size or float("inf"))
        elif self._log_bytes >= self._log_limit:  # pushed meanwhile as much again: once more
            self._snapshot_soon()

    async def _snapshot_logged(self) -> bool:
        """A snapshot; False when it failed (said in the log: the log still has everything)."""
        try:
            await self.snapshot()
            return True
        except (OSError, GravelError) as exc:
            log.error("snapshot failed", extra={"fields": {"directory": self.directory,
                                                           "error": exc}})
        except Exception:  # a bug: say so, and keep the log growing rather than stop
            log.exception("snapshot failed", extra={"fields": {"directory": self.directory}})
        return False

    def _sized(self, snapshot_bytes: int) -> None:
        """The snapshot on disk has this size: the log may grow as large before the next one."""
        if self.snapshot_log_size:
            self._log_limit = max(self.snapshot_log_size, snapshot_bytes)

    async def snapshot(self) -> None:
        """Cut the log at the current position and write a snapshot of it from a forked child."""
        if self._snapshotting is not None:
            return await asyncio.shield(self._snapshotting)
        if self._broken is not None or self._closed:
            return
        self._snapshotting = asyncio.get_running_loop().create_task(self._fork_snapshot())
        try:
            await asyncio.shield(self._snapshotting)
        finally:
            self._snapshotting = None

    def _cut(self) -> int:
        """Start a new segment after the last record; the old one is fsynced and closed later."""
        position = self._seq
        name = segment_name(position + 1)
        if name == self._segment:  # nothing written to it yet (a snapshot right after the start)
            return position
        fd = self._create(name, os.O_APPEND)
        self._unsynced.append(self._fd)
        self._fd, self._segment = fd, name
        return position

    async def _fork_snapshot(self) -> None:
        if self._seq == self._position:
            return  # nothing new since the snapshot on disk
        started = time.monotonic()
        # No await from the cut to the fork: the child's state is exactly the records <= position.
        position = self._cut()
        held = self._log_bytes  # what the snapshot will hold of the log
        applier = self.applier
        parent = os.getpid()
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:  # the child: write and leave, touching nothing of the parent's
            code = 1
            try:
                _leave_signals_to_parent()
                _die_with_parent(parent)
                gc.disable()  # no collection walking (and copying) the parent's pages
                write_snapshot(self._dir, applier.store, applier.memory, position, applier.keys)
                code = 0
            except BaseException as exc:  # noqa: BLE001 - reported through the exit code
                try:
                    os.write(2, f"snapshot child failed: {exc!r}\n".encode())
                except OSError:
                    pass
            finally:
                os._exit(code)
        forked = time.monotonic() - started
        _, status = await asyncio.get_running_loop().run_in_executor(None, os.waitpid, pid, 0)
        if os.waitstatus_to_exitcode(status) != 0:
            raise StateFileError(f"the snapshot process exited with {os.waitstatus_to_exitcode(status)}")
        if self._unsynced:  # fsync and close the cut segment (with sync: never, only here)
            await self._sync_soon()
        self._truncate(position)
        self._log_bytes -= held
        self._sized(os.stat(SNAPSHOT, dir_fd=self._dir, follow_symlinks=False).st_size)
        log.info("snapshot written", extra={"fields": {
            "position": position, "fork_ms": round(forked * 1000, 1),
            "seconds": round(time.monotonic() - started, 3)}})

    def _truncate(self, position: int) -> None:
        """Delete the segments the snapshot at ``position`` holds (all before the current one)."""
        self._position = position
        for name in os.listdir(self._dir):
            first = segment_seq(name)
            if first is not None and name != self._segment and first <= position:
                os.unlink(name, dir_fd=self._dir)
        _fsync_dir(self._dir)

    # ---- close -------------------------------------------------------------------------------

    async def close(self) -> None:
        """The last snapshot: every request has been answered or refused, nothing comes in."""
        self._closed = True
        for task in self._tasks:
            task.cancel()
        self._held.release()
        if self._snapshotting is not None:
            try:
                await asyncio.shield(self._snapshotting)
            except (OSError, GravelError):
                pass
        loop = asyncio.get_running_loop()
        try:
            if self._fd >= 0 and self._broken is None:
                if self._next_sync is not None or self._syncing is not None:
                    await self._sync_soon()
                if self._seq != self._position:
                    position = self._seq
                    size, series = await loop.run_in_executor(
                        self._io, write_snapshot, self._dir, self.applier.store,
                        self.applier.memory, position, self.applier.keys)
                    await self._sync_soon()
                    self._segment = ""  # the current segment is in the snapshot too
                    self._truncate(position)
                    self._segment = segment_name(position + 1)
                    log.info("snapshot written", extra={"fields": {
                        "position": position, "bytes": size, "series": series}})
        finally:
            cut = self._syncing[1] if self._syncing is not None else []
            self._syncing = None
            self._syncer.close()
            for fd in (*cut, *self._unsynced, self._fd, self._lock, self._dir):
                if fd >= 0:
                    os.close(fd)
            self._fd = self._lock = self._dir = -1
            self._io.shutdown(wait=False)

