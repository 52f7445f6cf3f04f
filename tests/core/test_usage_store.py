"""Graph usage figures shared through Redis between processes, with few Redis calls."""

from __future__ import annotations

from redis.asyncio import Redis

from core.adapters.graph import RedisUsageStore
from core.domain.graph_errors import Usage


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_another_process_sees_a_new_report_within_a_second(redis: Redis) -> None:
    clock = Clock()
    worker_a = RedisUsageStore(redis, clock=clock)
    worker_b = RedisUsageStore(redis, clock=clock)
    assert await worker_b.get("7") is None
    await worker_a.put("7", Usage(business_pct=100, regain_after_s=600))
    clock.now += 1.01
    assert await worker_b.get("7") == Usage(business_pct=100, regain_after_s=600)
    assert 0 < await redis.ttl("graph:usage:7") <= 600


async def test_an_unchanged_report_is_not_written_again_until_it_is_due(redis: Redis) -> None:
    clock = Clock()
    store = RedisUsageStore(redis, clock=clock)
    await store.put("7", Usage(app_pct=10))
    await redis.delete("graph:usage:7")
    await store.put("7", Usage(app_pct=10))
    assert await redis.get("graph:usage:7") is None  # skipped: nothing changed
    await store.put("7", Usage(app_pct=20))
    assert await RedisUsageStore(redis).get("7") == Usage(app_pct=20)  # a change goes out
    await redis.delete("graph:usage:7")
    clock.now += 61
    await store.put("7", Usage(app_pct=20))
    assert await RedisUsageStore(redis).get("7") == Usage(app_pct=20)  # refreshed in time


async def test_a_process_reads_its_own_report_without_asking_redis(redis: Redis) -> None:
    clock = Clock()
    store = RedisUsageStore(redis, clock=clock)
    await store.put("7", Usage(app_pct=95))
    await redis.delete("graph:usage:7")
    assert await store.get("7") == Usage(app_pct=95)
    clock.now += 1.01
    assert await store.get("7") is None
