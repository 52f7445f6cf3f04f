"""The worker's log: routine cron runs stay out of it, job lines and failures stay in."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from arq import cron
from arq.connections import create_pool
from arq.worker import Worker
from redis.asyncio import Redis

from core.adapters.redis_server import RedisLocation
from reelay.cli import quiet_routine_crons
from reelay.queue import arq_settings

TICKS: list[int] = []


async def tick(ctx: dict[str, Any]) -> None:
    TICKS.append(1)


async def boom(ctx: dict[str, Any]) -> None:
    raise RuntimeError("the job failed")


async def test_cron_start_and_done_lines_are_dropped_but_failures_and_jobs_kept(
    redis: Redis, redis_location: RedisLocation, caplog: pytest.LogCaptureFixture
) -> None:
    TICKS.clear()
    pool = await create_pool(arq_settings(redis_location))
    await pool.enqueue_job("boom", _job_id="boom-1")
    worker = Worker(
        functions=[boom],
        cron_jobs=[cron(tick, run_at_startup=True)],
        redis_pool=pool,
        burst=True,
        poll_delay=0.01,
        max_tries=1,
        handle_signals=False,
    )
    arq_logger = logging.getLogger("arq.worker")
    arq_logger.addFilter(quiet_routine_crons)
    try:
        with caplog.at_level(logging.INFO, logger="arq.worker"):
            await worker.main()
    finally:
        arq_logger.removeFilter(quiet_routine_crons)
        await pool.aclose()
    lines = [record.getMessage() for record in caplog.records if record.name == "arq.worker"]
    # The cron ran (at start, and again if a minute began meanwhile), silently.
    assert TICKS and worker.jobs_failed == 1
    assert not [line for line in lines if "cron:tick(" in line or "cron:tick ●" in line]
    assert any("boom-1:boom()" in line and "→" in line for line in lines)
    assert any("boom-1:boom failed" in line and "the job failed" in line for line in lines)
