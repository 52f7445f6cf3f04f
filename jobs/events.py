"""Automation jobs: handle a webhook event, send an outbound action or a follow-up, deliver a
lead webhook, check a lead flow's follow step, sweep recent comments for those whose webhook
never came."""

from __future__ import annotations

import logging
from typing import Any

from arq import cron, func
from arq.cron import CronJob
from arq.worker import Function

from core.domain.scope import Actor
from core.wiring import Services

logger = logging.getLogger(__name__)


async def handle_event(ctx: dict[str, Any], event_id: int, *more_ids: int) -> None:
    """Act on recorded webhook events (one, or a group recorded together)."""
    services: Services = ctx["services"]
    await services.automations.handle_events([event_id, *more_ids])
    await _mirror_now(services)


async def send_outbound(ctx: dict[str, Any], action_id: int) -> None:
    """Send one outbox action (or defer it to its slot)."""
    services: Services = ctx["services"]
    await services.outbox.send(action_id)
    await _mirror_now(services)


async def _mirror_now(services: Services) -> None:
    """Queue the new messages' posts in the team chat's topics at once (the notification
    sweep would find them within seconds, and still does when this fails)."""
    try:
        await services.mirror_nudge()
    except Exception:
        logger.exception("queueing the chat mirror's posts failed; the sweep posts them")


async def send_follow_up(ctx: dict[str, Any], follow_up_id: int) -> None:
    """Send a rule's follow-up that is due, unless the person answered or the window closed."""
    services: Services = ctx["services"]
    status = await services.automations.follow_ups.send(follow_up_id)
    logger.info("follow-up %s: %s", follow_up_id, status)


async def deliver_lead_webhook(ctx: dict[str, Any], lead_id: int) -> None:
    """One delivery attempt of a lead's webhook (retries re-queue themselves)."""
    services: Services = ctx["services"]
    await services.automations.leads.deliver(lead_id)


async def check_follow(ctx: dict[str, Any], conversation_id: int, at: str) -> None:
    """Ask Meta whether a person follows the account, and move their lead flow on."""
    services: Services = ctx["services"]
    done = await services.follow_gate.check(conversation_id, at)
    logger.info("follow check of conversation %s: %s", conversation_id, done)


async def recover_automations(ctx: dict[str, Any]) -> None:
    """Re-queue events, sends and follow-ups whose jobs were lost (Redis flush, dead worker)."""
    services: Services = ctx["services"]
    await services.automations.requeue_stuck(services.container.queue.enqueue)
    await services.outbox.requeue_stuck()
    await services.automations.follow_ups.requeue_lost()


async def sweep_comments(ctx: dict[str, Any]) -> None:
    """Queue the comment sweep of every active account when one is due (COMMENT_SWEEP_MINUTES)."""
    services: Services = ctx["services"]
    await services.comment_sweep.queue_due()


async def sweep_account_comments(ctx: dict[str, Any], workspace_id: int, account_id: int) -> None:
    """Read one account's recent comments and record those whose webhook never came."""
    services: Services = ctx["services"]
    await services.comment_sweep.sweep_account(Actor.system(workspace_id), account_id)


FUNCTIONS: list[Function] = [
    func(handle_event, timeout=60, max_tries=3),
    func(send_outbound, timeout=60, max_tries=3),
    func(send_follow_up, timeout=60, max_tries=3),
    func(deliver_lead_webhook, timeout=30, max_tries=3),
    func(check_follow, timeout=60, max_tries=3),
    func(sweep_account_comments, timeout=300, max_tries=1),
]
CRON_JOBS: list[CronJob] = [
    cron(recover_automations, second={15}, unique=True, timeout=120),
    cron(sweep_comments, second={40}, unique=True, timeout=60),
]
