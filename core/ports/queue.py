"""The job queue port: how core asks for background work without knowing arq."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol


class JobQueue(Protocol):
    async def enqueue(
        self,
        function: str,
        *args: Any,
        job_id: str | None = None,
        defer_until: datetime | None = None,
        defer_by_s: float | None = None,
    ) -> bool:
        """Queue ``function(*args)``; False when a job with ``job_id`` is already live."""

    async def job_exists(self, job_id: str) -> bool:
        """True when a job with this id is queued, running or its result is still kept."""
