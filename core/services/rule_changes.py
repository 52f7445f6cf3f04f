"""Rule changes reach every worker at once: a version number in Redis, bumped after each
change is committed and read by the engine once per batch of events (one GET)."""

from __future__ import annotations

from redis.asyncio import Redis

from core.domain.scope import instance_level

RULES_VERSION_KEY = "reelay:rules:version"


@instance_level("one version number for every worker's rule cache")
async def announce(redis: Redis) -> None:
    """Tell every worker that some rule changed (call after the change is committed)."""
    await redis.incr(RULES_VERSION_KEY)


@instance_level("one version number for every worker's rule cache")
async def current(redis: Redis) -> int:
    """The rules' version as last announced (0 before any change)."""
    return int(await redis.get(RULES_VERSION_KEY) or 0)
