"""How workers pick due jobs: each once, none that another runs, no more than fits."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import pytest
from arq import func
from arq.connections import ArqRedis, create_pool
from arq.constants import in_progress_key_prefix
from redis.asyncio import Redis

from core.adapters.redis_server import RedisLocation
from jobs.worker import ReelayWorker
from reelay.queue import arq_settings


@pytest.fixture
async def pool(redis: Redis, redis_location: RedisLocation) -> AsyncIterator[ArqRedis]:
    made = await create_pool(arq_settings(redis_location))
    yield made
    await made.aclose()


def worker_for(pool: ArqRedis, job: Any, **options: Any) -> ReelayWorker:
    return ReelayWorker(
        functions=[func(job, name="job")],
        redis_pool=pool,
        handle_signals=False,
        poll_delay=0.01,
        keep_result=5,
        **options,
    )


async def test_two_workers_run_every_due_job_once(pool: ArqRedis) -> None:
    ran: Counter[int] = Counter()

    async def job(ctx: dict[str, Any], n: int) -> None:
        ran[n] += 1
        await asyncio.sleep(0.005)

    for n in range(300):
        await pool.enqueue_job("job", n, _job_id=f"job:{n}")
    workers = [worker_for(pool, job, max_jobs=20, burst=True) for _ in range(2)]
    await asyncio.wait_for(asyncio.gather(*(w.main() for w in workers)), 30)
    assert ran == Counter(range(300))
    assert sum(w.jobs_complete for w in workers) == 300
    assert all(w.jobs_complete > 0 for w in workers)


async def test_a_job_another_worker_runs_is_left_to_it(pool: ArqRedis) -> None:
    ran: list[int] = []

    async def job(ctx: dict[str, Any], n: int) -> None:
        ran.append(n)

    await pool.enqueue_job("job", 1, _job_id="busy")
    await pool.enqueue_job("job", 2, _job_id="free")
    await pool.psetex(in_progress_key_prefix + "busy", 60_000, b"1")
    worker = worker_for(pool, job, max_jobs=5)
    await worker.start_jobs([b"busy", b"free"])
    await asyncio.gather(*worker.tasks.values())
    assert ran == [2]
    assert list(worker.tasks) == ["free"]


async def test_a_full_worker_takes_only_what_it_has_room_for_and_moves_on(
    pool: ArqRedis,
) -> None:
    release = asyncio.Event()
    started: list[int] = []

    async def job(ctx: dict[str, Any], n: int) -> None:
        started.append(n)
        await release.wait()

    for n in range(5):
        await pool.enqueue_job("job", n, _job_id=f"job:{n}")
    worker = worker_for(pool, job, max_jobs=2)
    await asyncio.wait_for(worker.start_jobs([f"job:{n}".encode() for n in range(5)]), 5)
    assert len(worker.tasks) == 2
    await asyncio.wait_for(worker.start_jobs([f"job:{n}".encode() for n in range(5)]), 5)
    assert len(worker.tasks) == 2
    release.set()
    await asyncio.gather(*worker.tasks.values())
    assert len(started) == 2


async def test_a_job_due_in_the_past_runs_at_once(pool: ArqRedis) -> None:
    """A time behind the clock (a slow clock, a post planned in the past) is due now; arq
    alone would store the job with a lifetime below zero and Redis refuses that."""
    from datetime import UTC, datetime, timedelta

    from reelay.queue import ArqQueue

    ran: list[str] = []

    async def job(ctx: dict[str, Any], name: str) -> None:
        ran.append(name)

    queue = ArqQueue(pool)
    long_ago = datetime.now(UTC) - timedelta(days=600)
    assert await queue.enqueue("job", "late", job_id="late", defer_until=long_ago)
    await asyncio.wait_for(worker_for(pool, job, burst=True).main(), 30)
    assert ran == ["late"]
