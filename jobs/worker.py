"""arq worker settings built from Reelay's settings and services."""

from __future__ import annotations

import logging
import random
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypedDict

from arq import cron
from arq.connections import RedisSettings
from arq.constants import in_progress_key_prefix
from arq.cron import CronJob
from arq.typing import StartupShutdown
from arq.worker import Function, Worker

from core.services.heartbeat import BEAT_S
from core.settings import Settings
from core.wiring import Services
from jobs import (
    accounts as account_jobs,
    ai as ai_jobs,
    events as event_jobs,
    followers as follower_jobs,
    insights,
    integrations as integration_jobs,
    notifications as notification_jobs,
    publishing as publishing_jobs,
)
from jobs.heartbeat import heartbeat

logger = logging.getLogger(__name__)

ServicesFactory = Callable[[Settings], Awaitable[Services]]

FUNCTIONS: list[Function] = [
    *event_jobs.FUNCTIONS,
    *follower_jobs.FUNCTIONS,
    *insights.FUNCTIONS,
    *integration_jobs.FUNCTIONS,
    *notification_jobs.FUNCTIONS,
    *publishing_jobs.FUNCTIONS,
]
CRON_JOBS: list[CronJob] = [
    # Every BEAT_S seconds: /healthz and the Health page count a beat for ALIVE_S.
    cron(heartbeat, second=set(range(0, 60, BEAT_S)), run_at_startup=True, unique=True, timeout=10),
    *account_jobs.CRON_JOBS,
    *ai_jobs.CRON_JOBS,
    *event_jobs.CRON_JOBS,
    *insights.CRON_JOBS,
    *integration_jobs.CRON_JOBS,
    *notification_jobs.CRON_JOBS,
    *publishing_jobs.CRON_JOBS,
]


class WorkerOptions(TypedDict):
    """The keyword arguments of arq's ``Worker`` that Reelay sets."""

    functions: Sequence[Function]
    cron_jobs: Sequence[CronJob]
    on_startup: StartupShutdown
    on_shutdown: StartupShutdown
    redis_settings: RedisSettings | None
    poll_delay: float
    max_jobs: int
    handle_signals: bool
    keep_result: int
    job_timeout: int


def worker_settings(
    settings: Settings,
    *,
    services: Services | None = None,
    services_factory: ServicesFactory | None = None,
    redis_settings: RedisSettings | None = None,
) -> WorkerOptions:
    """arq ``WorkerSettings`` as a dict: ``ctx['services']`` is filled on startup.

    Pass ``services`` to share them (``reelay run``), or ``services_factory`` to let the
    worker open its own and close them on shutdown.
    """
    if services is None and services_factory is None:
        raise ValueError("worker_settings needs services or a services_factory")

    async def on_startup(ctx: dict[str, Any]) -> None:
        if services is not None:
            ctx["services"] = services
        elif services_factory is not None:
            ctx["services"] = await services_factory(settings)
        ctx["owns_services"] = services is None
        stream = ctx["services"].inbox_stream
        if stream is not None:  # this worker writes the webhook deliveries the panel kept
            stream.start()
            inbox = "kept in the Redis stream by the panel, written to the database here"
        else:  # the panel writes them; what the stream kept before is still owed
            await ctx["services"].stream_writer.write_leftovers()
            inbox = "written to the database by the panel"
        logger.info("worker started; webhook deliveries are %s (WEBHOOK_INBOX)", inbox)

    async def on_shutdown(ctx: dict[str, Any]) -> None:
        running: Services | None = ctx.get("services")
        if running is not None and running.inbox_stream is not None:
            await running.inbox_stream.stop()
        opened: Services | None = ctx.pop("services", None)
        if opened is not None and ctx.pop("owns_services", False):
            await opened.close()
        logger.info("worker stopped")

    return {
        "functions": FUNCTIONS,
        "cron_jobs": CRON_JOBS,
        "on_startup": on_startup,
        "on_shutdown": on_shutdown,
        "redis_settings": redis_settings,
        "poll_delay": settings.worker_poll_delay,
        "max_jobs": settings.worker_max_jobs,
        "handle_signals": False,
        "keep_result": 60,
        "job_timeout": 300,
    }


class ReelayWorker(Worker):
    """arq's Worker that tries only jobs nobody runs yet, and no more than it has room for.

    A running job stays in arq's queue until it ends and every worker reads the same head
    of the queue, so with many jobs due at once plain arq spends most of its Redis calls
    (watch, exists, zscore, unwatch for each) on jobs another worker already runs, and two
    workers walking the same list keep reaching for the same next job. Here one ``MGET`` of
    the in-progress keys per poll drops the running ones, and each worker takes a random
    sample of the free ones (kept in queue order) as large as its free slots. arq's own
    check (``WATCH`` on the in-progress key) still decides who runs a job.
    """

    async def start_jobs(self, job_ids: list[bytes]) -> None:
        room = self.max_jobs - self.job_counter
        if room <= 0 or not job_ids:
            return
        mine = {job_id for job_id, task in self.tasks.items() if not task.done()}
        candidates = [job_id for job_id in job_ids if job_id.decode() not in mine]
        if not candidates:
            return
        running = await self.pool.mget(
            [in_progress_key_prefix + job_id.decode() for job_id in candidates]
        )
        free = [job_id for job_id, busy in zip(candidates, running, strict=True) if not busy]
        if len(free) > room:
            picked = sorted(random.sample(range(len(free)), room))
            free = [free[n] for n in picked]
        await super().start_jobs(free)


def create_worker(
    settings: Settings,
    *,
    services: Services | None = None,
    services_factory: ServicesFactory | None = None,
    redis_settings: RedisSettings | None = None,
) -> Worker:
    """An arq Worker for ``reelay worker`` and ``reelay run`` (arguments as ``worker_settings``)."""
    options = worker_settings(
        settings,
        services=services,
        services_factory=services_factory,
        redis_settings=redis_settings,
    )
    return ReelayWorker(**options)
