"""RedisBackend in process on a real redis-server: what a replica does when it loads a snapshot."""
from __future__ import annotations

import asyncio
import gc
import time

from otelgravel.core.store import Store
from otelgravel.processor import GravelProcessor
from otelgravel.state import PUSH, Applier, Record, restoring
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
