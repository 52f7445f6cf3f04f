"""Automation jobs: handle a webhook event, send an outbound action, deliver a lead webhook."""

from __future__ import annotations

from typing import Any

from arq import cron, func

from core.services.automations import automations_for


async def handle_event(ctx: dict[str, Any], event_id: int, *more_ids: int) -> None:
    """Act on recorded webhook events (one, or a group recorded together)."""
    await automations_for(ctx["container"]).handle_events([event_id, *more_ids])


async def send_outbound(ctx: dict[str, Any], action_id: int) -> None:
    """Send one outbox action (or defer it to its slot)."""
    await automations_for(ctx["container"]).outbox.send(action_id)


async def deliver_lead_webhook(ctx: dict[str, Any], lead_id: int) -> None:
    """One delivery attempt of a lead's webhook (retries re-queue themselves)."""
    await automations_for(ctx["container"]).leads.deliver(lead_id)


async def recover_automations(ctx: dict[str, Any]) -> None:
    """Re-queue events and sends whose jobs were lost (Redis flush, dead worker)."""
    container = ctx["container"]
    engine = automations_for(container)
    await engine.requeue_stuck(container.queue.enqueue)
    await engine.outbox.requeue_stuck()


FUNCTIONS: list[Any] = [
    func(handle_event, timeout=60, max_tries=3),
    func(send_outbound, timeout=60, max_tries=3),
    func(deliver_lead_webhook, timeout=30, max_tries=3),
]
CRON_JOBS: list[Any] = [
    cron(recover_automations, second={15}, unique=True, timeout=120),
]
