"""Tracked links: rewriting what a rule sends, counting clicks, and the rule's funnel.

- **One code per (rule, step, variant, person, target)**: the row is found again by the hash
  of those (``TrackedLink.key``, unique), so an event handled twice, or a person sent the same
  link again, keeps one code; the code itself is random (96 bits), never derived.
- **Rewritten when the message is decided**, inside the engine's transaction: the outbox
  stores and sends the rewritten message, so a retried send carries the same links.
- **A click** is counted with one conditional update; link-preview bots are sent on without
  being counted. Nothing is stored on the visitor's side (no cookies).
- **The funnel**: triggered and replied from the rule's counters, DM opened from Meta's read
  receipts, clicked as the people who opened at least one of the rule's links, leads.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tortoise.expressions import F
from tortoise.functions import Count, Sum

from core.db.bulk import insert_returning
from core.db.models import AutomationRule, Conversation, Message, RuleStats, TrackedLink
from core.domain import tracked_links as links
from core.domain.messages import Person, message_text, render
from core.domain.rule_definition import RuleDefinition
from core.domain.scope import Actor, instance_level
from core.errors import NotFound
from core.services.send_records import bump_stats

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Sending:
    """Who a rule's message goes to, and from which part of the rule."""

    workspace_id: int
    account_id: int
    rule_id: int
    rule_name: str
    conversation_id: int | None
    igsid: str
    step: str  # "reply", "dm", "flow"
    at: datetime
    variant: str = "v1"
    medium: str = links.MEDIUM_DM


class LinkTracker:
    def __init__(self, *, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")

    def address(self, code: str) -> str:
        return f"{self.base_url}/l/{code}"

    @instance_level("the engine's send path, for a rule it already holds")
    async def track(
        self, sending: Sending, message: Mapping[str, Any], *, utm: bool
    ) -> dict[str, Any]:
        """``message`` with each link rewritten to its tracked address (stored on first use)."""
        codes: dict[str, str] = {}
        for url in links.urls_in(message):
            if len(url) > links.URL_MAX_CHARS:
                continue  # left as it is: too long to be a link Instagram shows
            target = url
            if utm:
                campaign = links.rule_slug(sending.rule_name, sending.rule_id)
                target = links.with_utm(url, campaign=campaign, medium=sending.medium)
            codes[url] = await self._code(sending, target)
        if not codes:
            return dict(message)
        return links.rewrite_message(message, lambda url: self.address(codes[url]))

    async def _code(self, sending: Sending, target: str) -> str:
        person = sending.igsid or f"c{sending.conversation_id}"
        key = links.link_key(sending.rule_id, sending.step, sending.variant, person, target)
        row = await insert_returning(
            TrackedLink,
            {
                "workspace_id": sending.workspace_id,
                "account_id": sending.account_id,
                "rule_id": sending.rule_id,
                "conversation_id": sending.conversation_id,
                "code": links.new_code(),
                "key": key,
                "step": sending.step[:64],
                "variant": sending.variant[:16],
                "igsid": sending.igsid[:64],
                "target": target,
                "clicks": 0,
                "created_at": sending.at,
            },
            conflict=("key",),
            keep=True,
        )
        if row is None:  # pragma: no cover - keep=True always returns the row
            raise NotFound("tracked link not stored")
        return row.code

    @instance_level("the engine's send path, for a rule it already holds")
    async def rule_message(
        self,
        actions: RuleDefinition,
        rule: AutomationRule,
        conversation: Conversation,
        message: dict[str, Any],
        step: str,
        *,
        person: Person,
        at: datetime,
        variant: str = "",
    ) -> dict[str, Any]:
        """A rule's ``message`` to ``conversation``, its links tracked when the rule tracks
        them (else unchanged); ``step`` is ``reply`` (public reply), ``dm``, ``flow`` or
        ``follow_up``; ``variant`` the variation sent (``v2``; found from the text if empty)."""
        if not actions.track_links:
            return message
        variations = {"reply": actions.comment_replies, "dm": actions.dm_variations}
        variant = variant or links.variant_of(
            variations.get(step, []), message_text(message), lambda t: render(t, person)
        )
        sending = Sending(
            workspace_id=rule.workspace_id,
            account_id=rule.account_id,
            rule_id=rule.id,
            rule_name=rule.name,
            conversation_id=conversation.id,
            igsid=conversation.igsid,
            step=step,
            at=at,
            variant=variant,
            medium=links.MEDIUM_COMMENT if step == "reply" else links.MEDIUM_DM,
        )
        return await self.track(sending, message, utm=actions.utm_tags)

    @instance_level("a public link: the visitor is no member of any workspace")
    async def click(self, code: str, *, user_agent: str, now: datetime) -> str | None:
        """The target of ``code`` (None when there is no such link); counts a person's click."""
        if not links.is_code(code):
            return None
        link = await TrackedLink.get_or_none(code=code)
        if link is None:
            return None
        if links.is_preview_bot(user_agent):
            logger.debug("tracked link %s fetched by a preview bot: not counted", link.id)
            return link.target
        changes: dict[str, Any] = {"clicks": F("clicks") + 1, "last_clicked_at": now}
        await TrackedLink.filter(id=link.id).update(**changes)
        await TrackedLink.filter(id=link.id, first_clicked_at=None).update(first_clicked_at=now)
        return link.target

    @instance_level("a read receipt from Meta's webhook, for an account the engine holds")
    async def record_read(self, conversation_id: int, mid: str, now: datetime) -> bool:
        """Mark the rule's message ``mid`` read once; True when this read was the first."""
        if not mid:
            return False
        message = await Message.filter(
            conversation_id=conversation_id, direction="out", mid=mid, read_at=None
        ).first()
        if message is None or message.rule_id is None:
            return False
        if not await Message.filter(id=message.id, read_at=None).update(read_at=now):
            return False
        await bump_stats(message.rule_id, total_dms_opened=1)
        return True

    async def funnel(self, actor: Actor, rule_id: int) -> links.Funnel:
        """The rule's funnel: triggered → replied → DM opened → clicked → lead."""
        rule = await AutomationRule.get_or_none(id=rule_id, workspace_id=actor.workspace_id)
        if rule is None:
            raise NotFound("rule not found")
        stats = await RuleStats.get_or_none(rule_id=rule.id)
        rows = (
            await TrackedLink.filter(rule_id=rule.id, workspace_id=actor.workspace_id, clicks__gt=0)
            .annotate(people=Count("igsid", distinct=True), total=Sum("clicks"))
            .values("people", "total")
        )
        first = rows[0] if rows else {}
        opened = stats.total_dms_opened if stats else 0
        return links.Funnel(
            triggered=stats.total_triggers if stats else 0,
            # Lead flows send more than one message per trigger: a trigger is answered once.
            replied=min(
                stats.total_triggers, max(stats.total_dms_sent, stats.total_comments_replied)
            )
            if stats
            else 0,
            opened=opened or None,
            clicked=int(first.get("people") or 0),
            clicks=int(first.get("total") or 0),
            leads=stats.total_leads_captured if stats else 0,
        )
