"""Rule changes reach every worker at once: a version number in Redis, bumped after each
change is committed and read by the engine once per batch of events, with the accounts'
version (``core.services.account_changes``, one MGET)."""

from __future__ import annotations

from redis.asyncio import Redis

from core.domain.scope import instance_level

RULES_VERSION_KEY = "reelay:rules:version"


@instance_level("one version number for every worker's rule cache")
async def announce(redis: Redis) -> None:
    """Tell every worker that some rule changed (call after the change is committed)."""
    await redis.incr(RULES_VERSION_KEY)
