"""Sends paced per account in Redis, shared by every worker: at most ``limit`` per rolling
window (an hour) per (account, bucket); a send over the pace gets a later slot, never
refused (the outbox defers it to that slot)."""

from __future__ import annotations

from datetime import datetime

from redis.asyncio import Redis

from core.db.bulk import GroupCommit
from core.domain.scope import instance_level

HOUR_MS = 3_600_000

# Reserve the earliest slot ≥ now (and ≥ the last reservation: first come, first served) that
# keeps at most ``limit`` reservations in any window; idempotent per member.
_RESERVE = """
local key = KEYS[1]
local now = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local window = tonumber(ARGV[3])
local member = ARGV[4]
local existing = redis.call('ZSCORE', key, member)
if existing then return tonumber(existing) end
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
local n = redis.call('ZCARD', key)
local slot = now
if n > 0 then
  local last = tonumber(redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')[2])
  if last > slot then slot = last end
end
if n >= limit then
  local kth = tonumber(redis.call('ZRANGE', key, n - limit, n - limit, 'WITHSCORES')[2]) + window
  if kth > slot then slot = kth end
end
redis.call('ZADD', key, slot, member)
redis.call('PEXPIRE', key, slot - now + window + 60000)
return slot
"""


class Pacer:
    """At most ``limit`` sends per rolling window per (account, bucket), shared by all workers."""

    def __init__(self, redis: Redis, *, window_ms: int = HOUR_MS) -> None:
        self._redis = redis
        self._window_ms = window_ms
        self._script = redis.register_script(_RESERVE)
        # Sends starting together reserve together: one pipeline, one round trip.
        self._reserves: GroupCommit[tuple[str, list[int | str]], int] = GroupCommit(
            self._reserve_many
        )

    @instance_level("paces one account's sends for the engines driven by webhooks")
    async def reserve(
        self, account_id: int, bucket: str, member: str, limit: int, now: datetime
    ) -> datetime:
        """The time ``member`` may be sent (now, or a later free slot it now holds)."""
        now_ms = int(now.timestamp() * 1000)
        key = f"reelay:pace:{account_id}:{bucket}"
        slot = await self._reserves.submit((key, [now_ms, max(1, limit), self._window_ms, member]))
        return datetime.fromtimestamp(slot / 1000, now.tzinfo)

    async def _reserve_many(self, calls: list[tuple[str, list[int | str]]]) -> list[int]:
        """The reservations in order, in one pipeline (each script runs on its own in Redis,
        as if called alone)."""
        async with self._redis.pipeline(transaction=False) as pipe:
            for key, args in calls:
                await self._script(keys=[key], args=args, client=pipe)
            return [int(slot) for slot in await pipe.execute()]
