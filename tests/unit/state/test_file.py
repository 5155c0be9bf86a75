"""FileBackend in process: group commit, snapshots that leave one segment and no open files."""
import asyncio
import os
import time

import pytest

from otelgravel.core.store import Store
from otelgravel.processor import GravelProcessor
from otelgravel.state import PUSH, Applier, Record
from otelgravel.state.file import LOCK, FileBackend

JOB = (("job", "x"),)


def push(i: int) -> Record:
    return Record(PUSH, 1.0 + i, JOB, "text", b"# TYPE c counter\nc 1\n")


def applier() -> Applier:
    return Applier(GravelProcessor(Store()))


def test_group_commit_one_fsync_serves_many_concurrent_pushes(tmp_path):
    async def main():
        b = FileBackend(str(tmp_path / "s"), "always", 1.0, 0)
        a = applier()
        await b.open(a)
        before = b._syncer.rounds
        await asyncio.gather(*(b.submit(push(i)) for i in range(300)))
        assert a.store.get("c", JOB).point.value == 300
        rounds = b._syncer.rounds - before
        await b.close()
        return rounds

    rounds = asyncio.run(main())
    assert 1 <= rounds <= 10, rounds  # 300 pushes of one turn: one round, a few at most


def open_files(directory: str) -> list[str]:
    """The names of what this process holds open in ``directory`` ("." for the directory itself;
    a deleted segment still open keeps its name)."""
    names = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:  # closed since the listing (the listing's own fd, for one)
            continue
        target = target.removesuffix(" (deleted)")
        if target == directory:
            names.append(".")
        elif os.path.dirname(target) == directory:
            names.append(os.path.basename(target))
    return sorted(names)


async def settled(check, timeout: float = 20.0):
    """Poll ``check()`` until it holds or ``timeout`` passes; the last value.

    Why poll: a segment cut by the snapshot is closed when the fsync round that took it returns
    from the fsync process, and with ``sync: interval`` the periodic round can be the one that
    took it (during the snapshot's wait for its child): then snapshot() returns while that round
    is still in flight, and the fd closes a moment later (on a loaded machine, 100s of ms). A
    leaked fd never closes: the deadline fails it.
    """
    deadline = time.monotonic() + timeout
    while not check() and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    return check()


def test_snapshots_leave_one_segment_and_no_open_files(tmp_path):
    async def main():
        directory = str(tmp_path / "s")
        real = os.path.realpath(directory)
        fds = len(os.listdir("/proc/self/fd"))  # before any backend
        for sync in ("never", "interval", "always"):
            b = FileBackend(directory, sync, 1.0, 0)
            await b.open(applier())
            for i in range(10):
                await b.submit(push(i))
                await b.snapshot()
            # open: the directory, the lock and the current segment, nothing else (no cut
            # segment, no snapshot file), and no other fd of this process but the fsync
            # process's socket
            want = sorted([".", LOCK, b._segment])
            assert await settled(lambda: open_files(real) == want), (sync, open_files(real), want)
            assert await settled(lambda: len(os.listdir("/proc/self/fd")) == fds + 4), \
                (sync, os.listdir("/proc/self/fd"), fds)
            assert sorted(n for n in os.listdir(directory) if n.startswith("log-")) == [b._segment]
            await b.close()
            assert await settled(lambda: open_files(real) == []), (sync, open_files(real))
        assert await settled(lambda: len(os.listdir("/proc/self/fd")) == fds), \
            (os.listdir("/proc/self/fd"), fds)
        again = applier()
        b = FileBackend(directory, "never", 1.0, 0)
        await b.open(again)
        assert again.store.get("c", JOB).point.value == 30
        await b.close()

    asyncio.run(main())


def test_the_restored_state_is_left_out_of_collections_for_a_while(tmp_path, monkeypatch):
    """After a restore its objects are frozen (not walked by the first collections after the
    start), then unfrozen (UNFREEZE_AFTER, or at close) so their cycles are collected again."""
    import gc

    from otelgravel.state import restoring

    async def main():
        directory = str(tmp_path / "s")
        b = FileBackend(directory, "never", 1.0, 0)
        await b.open(applier())
        await b.submit(push(0))
        await b.close()
        assert gc.get_freeze_count() == 0
        monkeypatch.setattr(restoring, "UNFREEZE_AFTER", 0.2)
        again = applier()
        b = FileBackend(directory, "never", 1.0, 0)
        await b.open(again)
        assert gc.get_freeze_count() > 0 and gc.isenabled()
        await asyncio.sleep(0.5)
        assert gc.get_freeze_count() == 0
        await b.close()

    asyncio.run(main())


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_a_signal_sent_to_the_snapshot_child_does_not_reach_the_gateway(tmp_path, monkeypatch,
                                                                        loop):
    """The forked snapshot child inherits the gateway's signal handling (asyncio's: the signal's
    number written to the loop's wakeup fd, which the fork shares). A SIGTERM to the child must
    neither stop the gateway (it did: the parent read the child's signal as its own) nor the
    snapshot: the child ignores it and writes the snapshot."""
    import signal

    from otelgravel.state import file as state_file

    factory = asyncio.new_event_loop if loop == "asyncio" else \
        pytest.importorskip("uvloop").new_event_loop  # the gateway's loop where installed

    directory = str(tmp_path / "s")
    started = tmp_path / "child-started"
    real = state_file.write_snapshot

    def slow(*args, **kw):  # runs in the child
        open(started, "w").close()
        time.sleep(0.5)
        return real(*args, **kw)

    monkeypatch.setattr(state_file, "write_snapshot", slow)

    def children() -> set[int]:
        pid = os.getpid()
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return {int(p) for p in f.read().split()}

    async def main():
        loop = asyncio.get_running_loop()
        got = []
        loop.add_signal_handler(signal.SIGTERM, got.append, "SIGTERM")
        try:
            b = FileBackend(directory, "never", 1.0, 0)
            await b.open(applier())
            await b.submit(push(0))
            before = children()  # the fsync process
            snapshot = asyncio.ensure_future(b.snapshot())
            deadline = time.monotonic() + 20
            while not started.exists() and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
            (child,) = children() - before
            os.kill(child, signal.SIGTERM)
            await asyncio.wait_for(snapshot, 20)  # raises if the child did not write it
            await asyncio.sleep(0.2)
            assert got == [], got
            assert b._position == 1
            await b.close()
        finally:
            loop.remove_signal_handler(signal.SIGTERM)

    with asyncio.Runner(loop_factory=factory) as runner:
        runner.run(main())
