"""The file log's size bound: a snapshot is due once the log since the last one reaches
``snapshot_log_size`` or the snapshot's own size (whichever is larger), whatever the interval."""
import asyncio
import os

import pytest

from otelgravel.config import load_config
from otelgravel.core.store import Store
from otelgravel.errors import ConfigError
from otelgravel.processor import GravelProcessor
from otelgravel.state import PUSH, Applier, Record
from otelgravel.state.file import FileBackend

JOB = (("job", "x"),)


def push(i: int, series: int = 1) -> Record:
    body = "# TYPE c counter\n" + "".join(f'c{{n="{k}"}} 1\n' for k in range(series))
    return Record(PUSH, 1.0 + i, JOB, "text", body.encode())


def applier() -> Applier:
    return Applier(GravelProcessor(Store()))


def log_bytes(directory: str) -> int:
    return sum(os.path.getsize(os.path.join(directory, n)) for n in os.listdir(directory)
               if n.startswith("log-"))


def counting(backend: FileBackend, tries: list) -> FileBackend:
    """Note the log's size at every snapshot the backend starts."""
    real = backend._fork_snapshot

    async def counted():
        tries.append(backend._log_bytes)
        await real()
    backend._fork_snapshot = counted
    return backend


async def settle(backend: FileBackend) -> None:
    """Let a snapshot the log's size asked for finish (a forked child writes it)."""
    for _ in range(500):
        await asyncio.sleep(0.01)
        if not backend._snapshot_due:
            return
    raise AssertionError("the snapshot asked for by the log's size did not finish")


def test_the_log_is_folded_when_it_reaches_its_size_not_only_on_the_interval(tmp_path):
    directory = str(tmp_path / "s")

    async def main():
        b = FileBackend(directory, "interval", 1.0, 3600.0, snapshot_log_size=4096)
        a = applier()
        await b.open(a)
        biggest = 0
        for i in range(400):  # about 40 bytes a record: 16,000 bytes of log in all
            await b.submit(push(i))
            await asyncio.sleep(0.002)  # paced, as pushes arrive: a snapshot takes a few ms
            biggest = max(biggest, log_bytes(directory))
        await settle(b)
        assert os.path.exists(os.path.join(directory, "snapshot"))  # long before the hour
        # the log never grew far past its bound (by what came while a snapshot was written)
        assert biggest < 3 * 4096, biggest
        assert log_bytes(directory) < 2 * 4096
        assert a.store.get("c", (("job", "x"), ("n", "0"))).point.value == 400
        b._closed = True
        b._held.release()  # what a kill -9 leaves frozen is not this process's business  # as a kill -9 would leave it: no last snapshot
        for fd in (b._fd, b._lock, b._dir):
            os.close(fd)
        again = applier()
        b = FileBackend(directory, "never", 1.0, 0)
        await b.open(again)
        assert again.store.get("c", (("job", "x"), ("n", "0"))).point.value == 400  # once each
        await b.close()

    asyncio.run(main())


def test_a_snapshot_larger_than_the_bound_waits_for_as_much_log(tmp_path):
    """As Redis' AOF rewrite: the log may grow as large as the snapshot, so that the snapshots'
    cost stays proportional to what is pushed, not one full snapshot every few pushes."""
    directory = str(tmp_path / "s")
    snapshots = []

    async def main():
        b = counting(FileBackend(directory, "never", 1.0, 0, snapshot_log_size=1024), snapshots)
        await b.open(applier())
        await b.submit(push(0, series=2000))  # a snapshot of about 60 KB: the log's bound now
        await settle(b)
        size = os.path.getsize(os.path.join(directory, "snapshot"))
        assert size > 20_000 and b._log_limit == size
        first = len(snapshots)
        record = len(push(1, series=2000).body)
        below = size // record - 1
        assert below >= 2
        for i in range(1, 1 + below):  # less log than the snapshot's size: no snapshot
            await b.submit(push(i, series=2000))
            await asyncio.sleep(0)
        await asyncio.sleep(0.05)
        assert len(snapshots) == first
        for i in range(1 + below, 4 + below):  # now the log passes it: one more
            await b.submit(push(i, series=2000))
            await asyncio.sleep(0)
        await settle(b)
        assert len(snapshots) == first + 1
        await b.close()

    asyncio.run(main())


def test_a_start_on_a_long_log_folds_it_at_once(tmp_path):
    directory = str(tmp_path / "s")

    async def main():
        b = FileBackend(directory, "never", 1.0, 0, snapshot_log_size=0)  # by time only
        await b.open(applier())
        for i in range(300):
            await b.submit(push(i))
        assert log_bytes(directory) > 8192 and not os.path.exists(os.path.join(directory, "snapshot"))
        b._closed = True
        b._held.release()  # what a kill -9 leaves frozen is not this process's business
        for fd in (b._fd, b._lock, b._dir):  # killed: the whole log is left
            os.close(fd)
        again = applier()
        b = FileBackend(directory, "never", 1.0, 0, snapshot_log_size=4096)
        await b.open(again)
        await settle(b)
        assert os.path.exists(os.path.join(directory, "snapshot"))
        assert log_bytes(directory) < 4096
        assert again.store.get("c", (("job", "x"), ("n", "0"))).point.value == 300
        await b.close()

    asyncio.run(main())


@pytest.mark.parametrize("value, expected", [("64MiB", 64 << 20), ("0", 0), (0, 0),
                                             (1048576, 1 << 20)])
def test_snapshot_log_size_config(tmp_path, value, expected):
    config = load_config(None, [f"processors.gravel.storage.snapshot_log_size={value}"])
    assert config.gravel.storage.snapshot_log_size == expected


def test_snapshot_log_size_must_be_a_size(tmp_path):
    with pytest.raises(ConfigError) as err:
        load_config(None, ["processors.gravel.storage.snapshot_log_size=-5"])
    assert "processors::gravel::storage::snapshot_log_size: must be a size" in str(err.value)


def test_a_failed_snapshot_is_not_retried_on_every_push(tmp_path, monkeypatch):
    """A snapshot that fails (disk full, say) is tried again only after another bound's worth of
    log, not by every push after it (each try forks the gateway)."""
    from otelgravel.state import file

    def broken(*args):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(file, "write_snapshot", broken)  # the forked child inherits it
    directory = str(tmp_path / "s")
    tries = []

    async def main():
        b = counting(FileBackend(directory, "never", 1.0, 0, snapshot_log_size=2048), tries)
        a = applier()
        await b.open(a)
        for i in range(200):  # about 13,000 bytes: six bounds' worth
            await b.submit(push(i))
            await asyncio.sleep(0.002)
        await settle(b)
        assert 2 <= len(tries) <= b._log_bytes // 2048 + 1, tries
        assert a.store.get("c", (("job", "x"), ("n", "0"))).point.value == 200  # pushes go on
        b._closed = True
        b._held.release()  # what a kill -9 leaves frozen is not this process's business
        for fd in (b._fd, b._lock, b._dir):
            os.close(fd)

    asyncio.run(main())
