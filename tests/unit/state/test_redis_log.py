"""RedisLog on a real redis-server: pipelining, the stream's one slot, snapshots and trimming,
and the storage.redis config checks."""
from __future__ import annotations

import asyncio
import time

import pytest

from otelgravel.config import load_config
from otelgravel.errors import ConfigError
from otelgravel.state.redis_log import RedisLog, RedisUnavailable
from tests.redis_fixtures import needs_redis, redis_node  # noqa: F401


@needs_redis
def test_concurrent_appends_share_round_trips_and_keep_their_order(redis_node):
    async def main():
        log = RedisLog([redis_node.address], key_prefix="t")
        ids = await asyncio.gather(*[log.append(b"rec%d" % i, b"o.%d" % i) for i in range(500)])
        entries = await log.read(b"0-0", block_ms=None, count=1000)
        await log.close()
        return log, ids, entries
    log, ids, entries = asyncio.run(main())
    assert log.appended == 500 and log.round_trips <= 2  # queued in one tick: one pipeline
    assert [e[0] for e in entries] == ids
    assert [e[2] for e in entries] == [b"rec%d" % i for i in range(500)]
    assert entries[7][1] == b"o.7"


@needs_redis
def test_replies_that_arrive_while_the_loop_is_busy_are_not_timeouts(redis_node):
    # a big scrape renders synchronously: the loop stalls for seconds while replies wait in the
    # socket; they must be read, not taken for a dead Redis (the append would answer 503)
    async def main():
        log = RedisLog([redis_node.address], key_prefix="t")
        await log.append(b"warm", b"o.0")
        reading = asyncio.ensure_future(log.read(b"$", block_ms=300))
        appending = log.append(b"during", b"o.1")
        await asyncio.sleep(0.05)          # both sent
        time.sleep(3.5)                    # the stall (longer than the read's BLOCK + 2 s)
        sid = await appending
        await reading
        entries = await log.read(b"0-0", block_ms=None)
        await log.close()
        return sid, entries
    sid, entries = asyncio.run(main())
    assert entries[-1][0] == sid and entries[-1][2] == b"during"


@needs_redis
def test_unreachable_redis_fails_within_a_second(redis_node):
    redis_node.kill()

    async def main():
        log = RedisLog([redis_node.address], key_prefix="t")
        start = time.monotonic()
        with pytest.raises(RedisUnavailable):
            await log.append(b"x", b"o.1")
        return time.monotonic() - start
    assert asyncio.run(main()) < 1.0


@needs_redis
def test_snapshot_trims_behind_the_previous_one(redis_node):
    async def main():
        log = RedisLog([redis_node.address], key_prefix="t")
        ids = [await log.append(b"r%d" % i, b"o") for i in range(30)]
        assert await log.lock_snapshot(5) and not await log.lock_snapshot(5)
        await log.unlock_snapshot()
        assert await log.store_snapshot(b"one", ids[9]) == b"0-0"   # first: nothing trimmed
        assert len(await log.read(b"0-0", block_ms=None)) == 30
        assert await log.store_snapshot(b"two", ids[19]) == ids[9]
        left = await log.read(b"0-0", block_ms=None)
        assert [e[0] for e in left] == ids[9:]                    # the previous snapshot's records stay
        assert await log.load_snapshot() == (b"two", ids[19])
        assert await log.trimmed_up_to() == ids[9]
        await log.close()
    asyncio.run(main())


@pytest.mark.parametrize("key, value, message", [
    ("addresses", "[]", "must be a list of host:port"),
    ("addresses", "[redis]", 'must be host:port (got "redis")'),
    ("key_prefix", "'a{b'", "without braces"),
    ("wait_replicas", "-1", "must be an integer >= 0"),
    ("password", "'${env:OTELGRAVEL_TEST_UNSET}'", "OTELGRAVEL_TEST_UNSET"),
])
def test_redis_config_errors_name_the_key(key, value, message):
    sets = ["processors.gravel.storage.redis.addresses=[127.0.0.1:6379]",
            f"processors.gravel.storage.redis.{key}={value}"]
    with pytest.raises(ConfigError) as err:
        load_config(None, sets)
    assert f"processors::gravel::storage::redis::{key}" in str(err.value)
    assert message in str(err.value)


def test_redis_and_directory_exclude_each_other(tmp_path):
    with pytest.raises(ConfigError, match="exclude each other"):
        load_config(None, ["processors.gravel.storage.redis.addresses=[127.0.0.1:6379]",
                           f"processors.gravel.storage.directory={tmp_path}"])
