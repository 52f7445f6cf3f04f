"""core's JobQueue port on arq."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from arq.connections import ArqRedis, RedisSettings, create_pool
from arq.constants import (
    default_queue_name,
    in_progress_key_prefix,
    job_key_prefix,
    result_key_prefix,
)
from arq.jobs import serialize_job
from arq.utils import timestamp_ms

from core.adapters.redis_server import RedisLocation


def arq_settings(location: RedisLocation) -> RedisSettings:
    """arq's RedisSettings for a Redis location."""
    if location.unix_socket_path:
        return RedisSettings(unix_socket_path=location.unix_socket_path)
    return RedisSettings.from_dsn(location.url)


class ArqQueue:
    """Enqueues jobs for ``reelay worker``."""

    def __init__(self, pool: ArqRedis) -> None:
        self.pool = pool

    async def enqueue(
        self,
        function: str,
        *args: Any,
        job_id: str | None = None,
        defer_until: datetime | None = None,
        defer_by_s: float | None = None,
    ) -> bool:
        if defer_until is not None and defer_until.timestamp() * 1000 <= timestamp_ms():
            # Already due (a time from a slow clock, or a post planned in the past): arq would
            # store the job with a lifetime below zero, which Redis refuses.
            defer_until = None
        job = await self.pool.enqueue_job(
            function, *args, _job_id=job_id, _defer_until=defer_until, _defer_by=defer_by_s
        )
        return job is not None

    async def enqueue_many(self, function: str, jobs: Sequence[tuple[tuple[Any, ...], str]]) -> int:
        """Queue many ``(args, job_id)`` jobs of ``function`` now, in two round trips.

        A job whose id is live (queued, running or kept result) is left alone, as in
        ``enqueue``. Returns how many were queued.
        """
        if not jobs:
            return 0
        now_ms = timestamp_ms()
        expires_ms = self.pool.expires_extra_ms
        async with self.pool.pipeline(transaction=False) as pipe:
            for args, job_id in jobs:
                pipe.exists(result_key_prefix + job_id)
                job = serialize_job(
                    function, args, {}, None, now_ms, serializer=self.pool.job_serializer
                )
                pipe.set(job_key_prefix + job_id, job, px=expires_ms, nx=True)
            replies = await pipe.execute()
        fresh = [
            job_id
            for (_, job_id), had_result, created in zip(
                jobs, replies[::2], replies[1::2], strict=True
            )
            if created and not had_result
        ]
        if fresh:
            await self.pool.zadd(default_queue_name, {job_id: now_ms for job_id in fresh})
        return len(fresh)

    async def job_exists(self, job_id: str) -> bool:
        keys = (
            job_key_prefix + job_id,
            in_progress_key_prefix + job_id,
            result_key_prefix + job_id,
        )
        return bool(await self.pool.exists(*keys))

    async def close(self) -> None:
        await self.pool.aclose()


async def open_arq_queue(location: RedisLocation) -> ArqQueue:
    pool = await create_pool(arq_settings(location))
    return ArqQueue(pool)
