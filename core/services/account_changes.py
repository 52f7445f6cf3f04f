"""An account's change of state reaches every worker at once: a version number in Redis,
bumped after the change is committed (a dead token, a reconnect, a disconnect) and read by
the automations engine once per batch of events along with the rules' version (one MGET),
so no worker goes on acting for an account from a stale cache."""

from __future__ import annotations

from redis.asyncio import Redis

from core.domain.scope import instance_level

ACCOUNTS_VERSION_KEY = "reelay:accounts:version"


@instance_level("one version number for every worker's account cache")
async def announce(redis: Redis | None) -> None:
    """Tell every worker that some account changed state (call after the change is
    committed). ``None``: a caller without Redis (a test); workers then see the change
    when their cache entry runs out (``ACCOUNT_CACHE_S``)."""
    if redis is not None:
        await redis.incr(ACCOUNTS_VERSION_KEY)
