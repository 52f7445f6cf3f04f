"""The workers' heartbeat: a worker records every ``BEAT_S`` that one is alive, and the
panel's ``/healthz`` and ``/metrics`` say whether one was seen lately (webhook events, sends
and scheduled posts wait while none runs)."""

from __future__ import annotations

from datetime import datetime, timedelta

from redis.asyncio import Redis

from core.domain.scope import instance_level

HEARTBEAT_KEY = "reelay:worker:heartbeat"
# How often a worker beats (the heartbeat cron in jobs/worker.py runs every BEAT_S seconds),
# and how long a beat counts: three beats missed and no worker is said to run.
BEAT_S = 30
ALIVE_S = 3 * BEAT_S


@instance_level("the workers of the instance, not of one workspace")
async def beat(redis: Redis, now: datetime) -> None:
    """Record that a worker is alive, with the time in UTC."""
    await redis.set(HEARTBEAT_KEY, now.isoformat(), ex=10 * BEAT_S)


@instance_level("the workers of the instance, not of one workspace")
async def worker_alive(redis: Redis, now: datetime) -> bool:
    """Whether a worker beat within the last ``ALIVE_S`` seconds."""
    raw = await redis.get(HEARTBEAT_KEY)
    if raw is None:
        return False
    try:
        seen = datetime.fromisoformat(raw.decode() if isinstance(raw, bytes) else str(raw))
    except ValueError:
        return False
    return now - seen <= timedelta(seconds=ALIVE_S)
