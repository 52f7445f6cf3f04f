"""Integration jobs: forgetting API idempotency keys after a day."""

from __future__ import annotations

from typing import Any

from arq import cron
from arq.cron import CronJob
from arq.worker import Function

from core.services import idempotency
from core.wiring import Services


async def forget_idempotency_keys(ctx: dict[str, Any]) -> None:
    """Delete the API's idempotency keys older than 24 hours."""
    services: Services = ctx["services"]
    await idempotency.forget_old(services.container.clock.now())


FUNCTIONS: list[Function] = []
CRON_JOBS: list[CronJob] = [
    cron(forget_idempotency_keys, minute={7, 37}, unique=True, timeout=120),
]
