"""FileBackend in process: group commit, snapshots that leave one segment and no open files."""
import asyncio
import os

from otelgravel.core.store import Store
from otelgravel.processor import GravelProcessor
from otelgravel.state import PUSH, Applier, Record
from otelgravel.state.file import FileBackend

JOB = (("job", "x"),)


def push(i: int) -> Record:
    return Record(PUSH, 1.0 + i, JOB, "text", b"# TYPE c counter\nc 1\n")


def applier() -> Applier:
    return Applier(GravelProcessor(Store()))


def test_group_commit_one_fsync_serves_many_concurrent_pushes(tmp_path, monkeypatch):
    fsyncs = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (fsyncs.append(fd), real(fd))[1])

    async def main():
        b = FileBackend(str(tmp_path / "s"), "always", 1.0, 0)
        a = applier()
        await b.open(a)
        fsyncs.clear()
        await asyncio.gather(*(b.submit(push(i)) for i in range(300)))
        assert a.store.get("c", JOB).point.value == 300
        await b.close()

    asyncio.run(main())
    closing = 3  # close: the snapshot file, the log, the directory
    assert 1 <= len(fsyncs) - closing <= 10, len(fsyncs)


def test_snapshots_leave_one_segment_and_no_open_files(tmp_path):
    async def main():
        directory = str(tmp_path / "s")
        for sync in ("never", "interval", "always"):
            b = FileBackend(directory, sync, 1.0, 0)
            await b.open(applier())
            fds = len(os.listdir("/proc/self/fd"))
            for i in range(10):
                await b.submit(push(i))
                await b.snapshot()
            assert len(os.listdir("/proc/self/fd")) == fds
            assert sorted(n for n in os.listdir(directory) if n.startswith("log-")) == [b._segment]
            await b.close()
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
