"""Alert delivery jobs: one event to every linked chat, and a sweep for events and retries."""

from __future__ import annotations

from typing import Any

from arq import cron, func

from core.services import notifications
from core.wiring import Services


async def deliver_event(ctx: dict[str, Any], event_id: int) -> None:
    """Deliver one domain event to its chats and email addresses (retries are re-queued),
    after planning its event-webhook deliveries (once, however often the job runs)."""
    services: Services = ctx["services"]
    await services.event_webhooks.plan(event_id)
    await notifications.deliver(services.container, services.delivery, event_id)


async def sweep_events(ctx: dict[str, Any]) -> None:
    """Queue delivery of events recorded without a job, and of retries that are due."""
    services: Services = ctx["services"]
    await notifications.sweep(services.container)


FUNCTIONS = [func(deliver_event, name=notifications.DELIVER_JOB, max_tries=3, timeout=120)]
CRON_JOBS = [
    cron(sweep_events, second=set(range(0, 60, 5)), run_at_startup=True, unique=True, timeout=60),
]
