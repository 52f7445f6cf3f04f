"""Captured leads: stored, counted, announced (domain event), POSTed to the rule's webhook.

The webhook body is JSON; ``X-Reelay-Signature-256: sha256=<hex HMAC-SHA256 of the body>``
is keyed with the rule's ``lead_capture_settings.webhook_secret`` (stored sealed with the
install's SecretBox, see :func:`seal_webhook_secret`) or, when it has none, with
:func:`lead_webhook_secret` (derived from the install's secret key and the workspace, shown
in the panel). Delivery is retried with exponential back-off until a 2xx answer or
``MAX_ATTEMPTS``, then given up with the reason logged and stored on the lead.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import random
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from core.db.models import AutomationRule, Conversation, DomainEvent, InstagramAccount, Lead
from core.domain.backoff import backoff_s
from core.domain.lead_flow import lead_fields
from core.domain.rule_definition import RuleDefinition
from core.domain.scope import instance_level
from core.ports.clock import Clock
from core.ports.outgoing_webhooks import WebhookDeliveryError, WebhookPoster
from core.ports.queue import JobQueue
from core.ports.secrets import SecretStore
from core.services.send_records import bump_stats

logger = logging.getLogger(__name__)

DELIVER_LEAD_WEBHOOK = "deliver_lead_webhook"
LEAD_CAPTURED = "lead.captured"
SIGNATURE_HEADER = "X-Reelay-Signature-256"
MAX_ATTEMPTS = 8
MAX_BACKOFF_S = 3600.0


SEALED = "sealed:"


def seal_webhook_secret(box: SecretStore, secret: str) -> str:
    """How a rule's webhook secret is stored: encrypted, marked as such."""
    return SEALED + box.encrypt(secret)


def open_webhook_secret(box: SecretStore, stored: str) -> str:
    """The secret behind a stored value; a plain value (stored by an older release) as is."""
    return box.decrypt(stored.removeprefix(SEALED)) if stored.startswith(SEALED) else stored


def lead_webhook_secret(secret_key: str, workspace_id: int) -> str:
    """The default signing secret of a workspace's lead webhooks."""
    digest = hmac.new(secret_key.encode(), f"lead-webhook:{workspace_id}".encode(), "sha256")
    return digest.hexdigest()


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def lead_document(
    lead: Lead, rule: AutomationRule | None, account: InstagramAccount
) -> dict[str, Any]:
    """What the webhook receives (and what chats are told)."""
    return {
        "event": LEAD_CAPTURED,
        "lead_id": lead.id,
        "captured_at": lead.created_at.isoformat() if lead.created_at else None,
        "account": {"id": account.id, "ig_id": account.ig_id, "username": account.username},
        "rule": {"id": rule.id, "name": rule.name} if rule else None,
        "person": {"igsid": lead.igsid, "username": lead.username},
        "email": lead.email,
        "phone": lead.phone,
        "name": lead.name,
        "custom_fields": lead.custom_fields,
    }


class Leads:
    def __init__(
        self,
        *,
        queue: JobQueue,
        clock: Clock,
        poster: WebhookPoster,
        secret_key: str,
        secrets: SecretStore,
        backoff_base_s: float = 30.0,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self.queue = queue
        self.clock = clock
        self.poster = poster
        self._secrets = secrets
        self._secret_key = secret_key
        self._backoff_base_s = backoff_base_s
        self._jitter = jitter

    @instance_level("the lead flow, driven by webhook events of any account")
    async def capture(
        self,
        *,
        account: InstagramAccount,
        rule: AutomationRule | None,
        conversation: Conversation,
        answers: Mapping[str, Any],
    ) -> Lead:
        """Store a finished lead, count it, record ``lead.captured``, queue its webhook."""
        standard, custom = lead_fields(answers)
        now = self.clock.now()
        webhook_url = RuleDefinition.from_stored(rule).webhook_url if rule else ""
        lead = await Lead.create(
            workspace_id=account.workspace_id,
            account_id=account.id,
            rule_id=rule.id if rule else None,
            conversation_id=conversation.id,
            igsid=conversation.igsid,
            username=conversation.username,
            email=standard.get("email"),
            phone=standard.get("phone"),
            name=standard.get("name"),
            custom_fields=custom,
            webhook_status="pending" if webhook_url else "none",
        )
        if rule is not None:
            await bump_stats(rule.id, total_leads_captured=1, last_lead_captured_at=now)
        await DomainEvent.create(
            workspace_id=account.workspace_id,
            kind=LEAD_CAPTURED,
            payload=lead_document(lead, rule, account),
        )
        logger.info(
            "lead %s captured (account %s, rule %s)", lead.id, account.id, rule.id if rule else None
        )
        if webhook_url:
            await self.queue.enqueue(DELIVER_LEAD_WEBHOOK, lead.id, job_id=f"lead:{lead.id}")
        return lead

    @instance_level("a job: delivers one lead, by id, from the queue")
    async def deliver(self, lead_id: int) -> str:
        """One delivery attempt of a lead's webhook; returns the lead's webhook status."""
        lead = await Lead.get_or_none(id=lead_id).prefetch_related("rule", "account")
        if lead is None:
            return "missing"
        if lead.webhook_status != "pending":
            return lead.webhook_status
        rule: AutomationRule | None = lead.rule
        settings = RuleDefinition.from_stored(rule).lead_settings if rule else None
        if settings is None or not settings.webhook_url:
            return await self._give_up(lead, "the rule no longer has a webhook URL")
        attempt = lead.webhook_attempts + 1
        claimed = await Lead.filter(
            id=lead.id, webhook_status="pending", webhook_attempts=lead.webhook_attempts
        ).update(webhook_attempts=attempt)
        if not claimed:
            return "busy"
        body = json.dumps(
            lead_document(lead, rule, lead.account), separators=(",", ":"), sort_keys=True
        ).encode()
        secret = open_webhook_secret(
            self._secrets, settings.webhook_secret or ""
        ) or lead_webhook_secret(
            self._secret_key,
            lead.workspace_id,
        )
        headers = {
            SIGNATURE_HEADER: sign(secret, body),
            "X-Reelay-Event": LEAD_CAPTURED,
            "X-Reelay-Delivery": f"lead-{lead.id}",
        }
        try:
            await self.poster.post(settings.webhook_url, body, headers)
        except WebhookDeliveryError as exc:
            return await self._retry_or_give_up(lead, attempt, exc.message)
        await Lead.filter(id=lead.id).update(
            webhook_status="delivered", delivered_at=self.clock.now(), webhook_error=""
        )
        logger.info("lead %s delivered to its webhook (attempt %d)", lead.id, attempt)
        return "delivered"

    async def _retry_or_give_up(self, lead: Lead, attempt: int, reason: str) -> str:
        if attempt >= MAX_ATTEMPTS:
            return await self._give_up(lead, f"{attempt} attempts failed, last: {reason}")
        delay = backoff_s(
            attempt,
            base_s=self._backoff_base_s,
            cap_s=MAX_BACKOFF_S,
            spread=(0.75, 1.25),
            rng=self._jitter,
        )
        when: datetime = self.clock.now() + timedelta(seconds=delay)
        await Lead.filter(id=lead.id).update(webhook_error=reason[:2000])
        logger.info(
            "lead %s webhook failed (%s), attempt %d, retry in %.0fs",
            lead.id,
            reason,
            attempt,
            delay,
        )
        await self.queue.enqueue(
            DELIVER_LEAD_WEBHOOK, lead.id, job_id=f"lead:{lead.id}:{attempt}", defer_until=when
        )
        return "pending"

    async def _give_up(self, lead: Lead, reason: str) -> str:
        await Lead.filter(id=lead.id).update(webhook_status="failed", webhook_error=reason[:2000])
        logger.warning("lead %s webhook given up: %s", lead.id, reason)
        return "failed"
