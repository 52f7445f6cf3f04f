"""A per-account hourly call budget kept in Redis, shared by every worker."""

from __future__ import annotations

from redis.asyncio import Redis

from core.ports.clock import Clock

WINDOW_S = 3600

# KEYS[1]: the account's counter for this hour; ARGV: calls, per hour, expiry (s).
# Spends the calls when they fit (the counter expires after the hour); else spends nothing.
_TAKE = """
local used = redis.call('INCRBY', KEYS[1], ARGV[1])
if used == tonumber(ARGV[1]) then redis.call('EXPIRE', KEYS[1], ARGV[3]) end
if used > tonumber(ARGV[2]) then
  redis.call('DECRBY', KEYS[1], ARGV[1])
  return 0
end
return 1
"""


class RedisCallBudget:
    """At most ``per_hour`` calls per account in each clock hour (key ``<prefix>:<id>:<hour>``)."""

    def __init__(self, redis: Redis, clock: Clock, *, per_hour: int, prefix: str) -> None:
        self._clock = clock
        self._per_hour = per_hour
        self._prefix = prefix
        self._take = redis.register_script(_TAKE)

    async def take(self, account_id: int, calls: int = 1) -> float | None:
        """Spend ``calls`` (one round trip): None when they fit, else the seconds until the
        next hour's budget (and nothing is spent)."""
        now = self._clock.now().timestamp()
        window = int(now // WINDOW_S)
        key = f"{self._prefix}:{account_id}:{window}"
        if await self._take(keys=[key], args=[calls, self._per_hour, 2 * WINDOW_S]):
            return None
        return (window + 1) * WINDOW_S - now
