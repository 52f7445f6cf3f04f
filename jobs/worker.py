"""arq worker settings built from Reelay's settings and container."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from arq import cron
from arq.worker import Worker

from core.bootstrap import Container
from core.settings import Settings
from jobs import accounts as account_jobs
from jobs import ai as ai_jobs
from jobs import events as event_jobs
from jobs import insights
from jobs import notifications as notification_jobs
from jobs import publishing as publishing_jobs
from jobs.heartbeat import heartbeat

logger = logging.getLogger(__name__)

ContainerFactory = Callable[[Settings], Awaitable[Container]]

FUNCTIONS: list[Any] = [
    *event_jobs.FUNCTIONS,
    *insights.FUNCTIONS,
    *notification_jobs.FUNCTIONS,
    *publishing_jobs.FUNCTIONS,
]
CRON_JOBS: list[Any] = [
    cron(heartbeat, second={0, 30}, run_at_startup=True, unique=True, timeout=10),
    *account_jobs.CRON_JOBS,
    *ai_jobs.CRON_JOBS,
    *event_jobs.CRON_JOBS,
    *insights.CRON_JOBS,
    *notification_jobs.CRON_JOBS,
    *publishing_jobs.CRON_JOBS,
]


def worker_settings(
    settings: Settings,
    *,
    container: Container | None = None,
    container_factory: ContainerFactory | None = None,
    redis_settings: Any = None,
) -> dict[str, Any]:
    """arq ``WorkerSettings`` as a dict: ``ctx['container']`` is filled on startup.

    Pass ``container`` to share one (``reelay run``), or ``container_factory`` to let the
    worker open its own and close it on shutdown.
    """
    if container is None and container_factory is None:
        raise ValueError("worker_settings needs a container or a container_factory")

    async def on_startup(ctx: dict[str, Any]) -> None:
        ctx["container"] = container or await container_factory(settings)  # type: ignore[misc]
        ctx["owns_container"] = container is None
        logger.info("worker started")

    async def on_shutdown(ctx: dict[str, Any]) -> None:
        opened: Container | None = ctx.pop("container", None)
        if opened is not None and ctx.pop("owns_container", False):
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


def create_worker(settings: Settings, **kwargs: Any) -> Worker:
    """An arq Worker for ``reelay worker`` and ``reelay run``."""
    return Worker(**worker_settings(settings, **kwargs))
