"""Integration jobs: event-webhook deliveries and their sweep, forgetting idempotency keys."""

from __future__ import annotations

from typing import Any

from arq import cron, func
from arq.cron import CronJob
from arq.worker import Function

from core.services import event_webhooks, idempotency
from core.wiring import Services


async def deliver_event_webhook(ctx: dict[str, Any], delivery_id: int) -> None:
    """One attempt of one event-webhook delivery (a failure queues its own retry)."""
    services: Services = ctx["services"]
    await services.event_webhooks.deliver(delivery_id)


async def sweep_event_webhooks(ctx: dict[str, Any]) -> None:
    """Queue the deliveries whose jobs were lost."""
    services: Services = ctx["services"]
    await services.event_webhooks.sweep()


async def forget_idempotency_keys(ctx: dict[str, Any]) -> None:
    """Delete the API's idempotency keys older than 24 hours."""
    services: Services = ctx["services"]
    await idempotency.forget_old(services.container.clock.now())


FUNCTIONS: list[Function] = [
    func(deliver_event_webhook, name=event_webhooks.DELIVER_JOB, max_tries=3, timeout=60),
]
CRON_JOBS: list[CronJob] = [
    cron(sweep_event_webhooks, second={15, 45}, unique=True, timeout=60),
    cron(forget_idempotency_keys, minute={7, 37}, unique=True, timeout=120),
]
