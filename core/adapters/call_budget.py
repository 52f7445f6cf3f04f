"""A per-account hourly call budget kept in Redis, shared by every worker."""

from __future__ import annotations

from redis.asyncio import Redis

from core.ports.clock import Clock

WINDOW_S = 3600


class RedisCallBudget:
    """At most ``per_hour`` calls per account in each clock hour (key ``<prefix>:<id>:<hour>``)."""

    def __init__(self, redis: Redis, clock: Clock, *, per_hour: int, prefix: str) -> None:
        self._redis = redis
        self._clock = clock
        self._per_hour = per_hour
        self._prefix = prefix

    async def take(self, account_id: int, calls: int = 1) -> float | None:
        now = self._clock.now().timestamp()
        window = int(now // WINDOW_S)
        key = f"{self._prefix}:{account_id}:{window}"
        used = int(await self._redis.incrby(key, calls))
        if used == calls:
            await self._redis.expire(key, 2 * WINDOW_S)
        if used > self._per_hour:
            await self._redis.decrby(key, calls)
            return (window + 1) * WINDOW_S - now
        return None
