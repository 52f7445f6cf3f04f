"""The leads page's lead detail (with the conversation) and the webhook re-send."""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass

from core.db.models import AutomationRule, Lead, Message
from core.domain.rule_definition import RuleDefinition
from core.domain.scope import Actor
from core.errors import Conflict, NotFound
from core.ports.queue import JobQueue
from core.services import audit
from core.services.leads import DELIVER_LEAD_WEBHOOK

logger = logging.getLogger(__name__)

HISTORY = 50


@dataclass(frozen=True)
class LeadDetail:
    lead: Lead
    rule: AutomationRule | None
    messages: list[Message]
    webhook_url: str


async def lead_detail(actor: Actor, lead_id: int) -> LeadDetail:
    lead = await Lead.get_or_none(id=lead_id, workspace_id=actor.workspace_id).prefetch_related(
        "account", "rule", "conversation"
    )
    if lead is None:
        raise NotFound(f"lead {lead_id} does not exist")
    messages: list[Message] = []
    if lead.conversation_id is not None:
        messages = list(
            reversed(
                await Message.filter(conversation_id=lead.conversation_id)
                .order_by("-created_at", "-id")
                .limit(HISTORY)
            )
        )
    rule: AutomationRule | None = lead.rule
    webhook_url = RuleDefinition.from_stored(rule).webhook_url if rule else ""
    return LeadDetail(lead, rule, messages, webhook_url)


async def resend_webhook(actor: Actor, queue: JobQueue, lead_id: int) -> None:
    """Deliver the lead to its rule's webhook again (a fresh round of attempts)."""
    detail = await lead_detail(actor, lead_id)
    if not detail.webhook_url:
        raise Conflict("The lead's rule has no webhook URL: add one in the rule first.")
    lead = detail.lead
    changed = await Lead.filter(id=lead.id, webhook_status__not="pending").update(
        webhook_status="pending", webhook_attempts=0, webhook_error=""
    )
    if not changed:
        raise Conflict("The lead is already waiting to be delivered.")
    job_id = f"lead:{lead.id}:resend:{secrets.token_hex(6)}"
    await queue.enqueue(DELIVER_LEAD_WEBHOOK, lead.id, job_id=job_id)
    await audit.record(
        "lead.webhook_resent",
        actor=actor.label,
        workspace_id=actor.workspace_id,
        account_id=lead.account_id,
        target_type="lead",
        target_id=lead.id,
    )
    logger.info("lead %s webhook queued again", lead.id)
