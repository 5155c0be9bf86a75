"""RedisBackend in process on a real redis-server: what a replica does when it loads a snapshot."""
from __future__ import annotations

import asyncio
import gc
import time

from otelgravel.core.store import Store
from otelgravel.processor import GravelProcessor
from otelgravel.state import PUSH, Applier, Record, encode_record, restoring
from otelgravel.state.redis_backend import RedisBackend
from otelgravel.state.redis_log import RedisLog
from tests.redis_fixtures import needs_redis, redis_node  # noqa: F401

JOB = (("job", "x"),)


def push(i: int) -> Record:
    return Record(PUSH, 1.0 + i, JOB, "text", b"# TYPE c counter\nc 1\n")


async def ready(backend: RedisBackend, applier: Applier, timeout: float = 10.0) -> None:
    await backend.open(applier)
    deadline = time.monotonic() + timeout
    while not backend.ready:
        assert time.monotonic() < deadline, backend.problem
        await asyncio.sleep(0.01)


@needs_redis
def test_a_restored_snapshot_is_left_out_of_collections_for_a_while(redis_node, monkeypatch):
    """As the file backend: the snapshot's objects are built with the collector held back, then
    frozen (not walked by the first collections), unfrozen UNFREEZE_AFTER later or at close."""
    monkeypatch.setattr(restoring, "UNFREEZE_AFTER", 0.3)
    gc.unfreeze()  # whatever an earlier test in this process left frozen

    async def main():
        first = RedisBackend(RedisLog([redis_node.address], key_prefix="t"), snapshot_interval=0)
        await ready(first, Applier(GravelProcessor(Store())))
        for i in range(3):
            await first.submit(push(i))
        await first.snapshot()
        await first.close()
        assert gc.get_freeze_count() == 0  # nothing restored: nothing frozen

        again = Applier(GravelProcessor(Store()))
        second = RedisBackend(RedisLog([redis_node.address], key_prefix="t"), snapshot_interval=0)
        await ready(second, again)
        assert again.store.get("c", JOB).point.value == 3
        assert gc.get_freeze_count() > 0 and gc.isenabled()
        await asyncio.sleep(0.6)
        assert gc.get_freeze_count() == 0
        await second.close()

        third = RedisBackend(RedisLog([redis_node.address], key_prefix="t"), snapshot_interval=0)
        await ready(third, Applier(GravelProcessor(Store())))
        assert gc.get_freeze_count() > 0
        await third.close()  # closing leaves nothing frozen
        assert gc.get_freeze_count() == 0 and gc.isenabled()

    asyncio.run(main())


@needs_redis
def test_the_stream_is_folded_into_a_snapshot_when_it_reaches_its_size(redis_node):
    """Two replicas on one stream, snapshots by time off: once the records since the last
    snapshot pass snapshot_log_size, one replica (the lock's winner) writes a snapshot and the
    stream is trimmed behind the one before it; the other does not write one each record."""
    async def main():
        def replica():
            return RedisBackend(RedisLog([redis_node.address], key_prefix="s"),
                                snapshot_interval=0, snapshot_log_size=2048)
        a, b = replica(), replica()
        sa, sb = Applier(GravelProcessor(Store())), Applier(GravelProcessor(Store()))
        await ready(a, sa)
        await ready(b, sb)
        written = []
        for backend, name in ((a, "a"), (b, "b")):
            real = backend.log.store_snapshot

            async def counted(data, position, real=real, name=name):
                written.append(name)
                return await real(data, position)
            backend.log.store_snapshot = counted
        record = len(encode_record(push(0)))  # what the stream holds of a push
        for i in range(300):  # about 45 bytes a record: six bounds' worth
            await a.submit(push(i))
            await asyncio.sleep(0.002)
        for _ in range(200):
            if a._snapshot_due is None and b._snapshot_due is None:
                break
            await asyncio.sleep(0.01)
        assert 3 <= len(written) <= 300 * record // 2048 + 2, written
        snapshot = await a.log.load_snapshot()
        assert snapshot is not None
        length = await a.log._call("r", lambda client: client.xlen(a.log.stream))
        assert length < 3 * 2048 // record, length  # trimmed: about two bounds' worth remain
        await a.close()
        await b.close()
        c = replica()
        sc = Applier(GravelProcessor(Store()))
        await ready(c, sc)  # from the snapshot and the stream after it: every push once
        assert sc.store.get("c", JOB).point.value == 300
        await c.close()

    asyncio.run(main())
