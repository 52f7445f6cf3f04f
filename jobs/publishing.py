"""Publishing jobs: one post version at its second, and the minute-by-minute reconciler."""

from __future__ import annotations

from typing import Any

from arq import cron, func
from arq.cron import CronJob
from arq.worker import Function

from core.services.post_versions import JOB_NAME
from core.wiring import Services

# Shorter than the service's lease (180 s), so a post is never worked on twice at once.
PUBLISH_TIMEOUT_S = 120


async def publish_post(ctx: dict[str, Any], post_id: int, version: int) -> None:
    """Publish (or keep publishing) one post version; stale versions do nothing."""
    services: Services = ctx["services"]
    await services.publishing.run(post_id, version)


async def reconcile_publishing(ctx: dict[str, Any]) -> None:
    """Queue due posts that lost their job and resume posts whose worker went away."""
    services: Services = ctx["services"]
    await services.publishing.reconcile()


FUNCTIONS: list[Function] = [
    func(publish_post, name=JOB_NAME, timeout=PUBLISH_TIMEOUT_S, max_tries=3),
]
CRON_JOBS: list[CronJob] = [
    cron(reconcile_publishing, second=15, run_at_startup=True, unique=True, timeout=55),
]
