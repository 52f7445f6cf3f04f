"""core's JobQueue port on arq."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from arq.connections import ArqRedis, RedisSettings, create_pool
from arq.constants import in_progress_key_prefix, job_key_prefix, result_key_prefix

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
        job = await self.pool.enqueue_job(
            function, *args, _job_id=job_id, _defer_until=defer_until, _defer_by=defer_by_s
        )
        return job is not None

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
