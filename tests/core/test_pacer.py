"""The per-account pace in Redis: sends starting together get their slots together, each as
if it asked alone."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from redis.asyncio import Redis

from core.services.pacer import Pacer

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
WINDOW = timedelta(minutes=1)


async def test_sends_starting_together_get_the_slots_they_would_get_one_by_one(
    redis: Redis,
) -> None:
    pacer = Pacer(redis, window_ms=int(WINDOW.total_seconds() * 1000))
    together = await asyncio.gather(
        *(pacer.reserve(7, "dm", f"a{n}", 2, NOW) for n in range(5)),
        pacer.reserve(8, "dm", "b0", 2, NOW),  # another account's pace
    )
    # Two a minute: the first two now, the next two a minute later, the fifth after that.
    assert together == [
        NOW,
        NOW,
        NOW + WINDOW,
        NOW + WINDOW,
        NOW + 2 * WINDOW,
        NOW,
    ]
    # A member asking again (a retried job) keeps its slot instead of taking another.
    again = await asyncio.gather(
        pacer.reserve(7, "dm", "a3", 2, NOW), pacer.reserve(7, "dm", "a2", 2, NOW)
    )
    assert again == [NOW + WINDOW, NOW + WINDOW]
    assert await pacer.reserve(7, "dm", "a5", 2, NOW) == NOW + 2 * WINDOW


async def test_the_pace_script_is_loaded_again_after_redis_forgot_it(redis: Redis) -> None:
    pacer = Pacer(redis, window_ms=60_000)
    assert await pacer.reserve(7, "dm", "a0", 2, NOW) == NOW
    await redis.script_flush()
    assert await asyncio.gather(
        pacer.reserve(7, "dm", "a1", 2, NOW), pacer.reserve(7, "dm", "a2", 2, NOW)
    ) == [NOW, NOW + timedelta(minutes=1)]
