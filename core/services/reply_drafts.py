"""Reply drafts: a teammate approves, edits or rejects a held AI answer, or it expires.

A decision is a conditional update of a pending, unexpired draft, so of two teammates
deciding at once the first wins and the second gets ``DraftAlreadyDecided``. A draft expires
when the messaging window would close (24 h after a DM, 7 days after a comment) and is then
never sent. What a decision sends goes to the ``ReplySender`` with a key per draft, and every
decision (an expiry too) is announced as ``draft.decided`` so the chats asking for approval
show the outcome.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from core.db.models import AutomationRule, DomainEvent, DraftStatus, ReplyDraft, Role, User
from core.domain.ai_replies import Channel, check_edited_text
from core.domain.rule_definition import RuleDefinition
from core.domain.scope import Actor, instance_level
from core.errors import Conflict, Forbidden, NotFound
from core.ports.clock import Clock
from core.ports.instagram import Recipient
from core.services import audit
from core.services.reply_sending import OutgoingReply, ReplySender

logger = logging.getLogger(__name__)

DRAFT_DECIDED = "draft.decided"
EXPIRE_BATCH = 500
DECIDER_ROLE = Role.EDITOR


# Records a domain event for the team: (workspace id, kind, payload). The wiring passes the
# notifications service's ``record_event`` (delivered at once); the default only stores it
# (the notifications sweep delivers it within seconds).
Announcer = Callable[[int, str, dict[str, Any]], Awaitable[object]]


@instance_level("records the event of a draft its caller already found")
async def store_event(workspace_id: int, kind: str, payload: dict[str, Any]) -> DomainEvent:
    return await DomainEvent.create(workspace_id=workspace_id, kind=kind, payload=payload)


class DraftAlreadyDecided(Conflict):
    """Someone decided (or the draft expired) first."""

    def __init__(
        self, draft_id: int, status: DraftStatus, decided_by: str, decided_at: datetime | None
    ) -> None:
        if status is DraftStatus.EXPIRED:
            message = "This draft expired: the messaging window closed"
        else:
            when = f" at {decided_at:%Y-%m-%d %H:%M} UTC" if decided_at else ""
            by = decided_by or "someone"
            message = f"Already {status.value} by {by}{when}"
        super().__init__(message)
        self.draft_id = draft_id
        self.status = status
        self.decided_by = decided_by
        self.decided_at = decided_at


class DraftDecisions:
    """A teammate's decision on a held draft, and the expiry of those nobody decided."""

    def __init__(self, *, sender: ReplySender, clock: Clock, announce: Announcer) -> None:
        self._sender = sender
        self._clock = clock
        self._announce = announce

    async def approve(self, actor: Actor, draft_id: int) -> ReplyDraft:
        """Send the proposed text as is."""
        return await self._decide(actor, draft_id, DraftStatus.APPROVED)

    async def edit(self, actor: Actor, draft_id: int, text: str) -> ReplyDraft:
        """Send ``text`` instead (checked against Instagram's limits, never cut)."""
        return await self._decide(actor, draft_id, DraftStatus.EDITED, text=text)

    async def reject(
        self,
        actor: Actor,
        draft_id: int,
        *,
        fallback_text: str | None = None,
        use_rule_fallback: bool = False,
    ) -> ReplyDraft:
        """Send nothing; or, with ``fallback_text`` (or the rule's ``fallback_reply`` when
        ``use_rule_fallback``), send that static reply instead."""
        return await self._decide(
            actor,
            draft_id,
            DraftStatus.REJECTED,
            text=fallback_text,
            use_rule_fallback=use_rule_fallback,
        )

    @instance_level("a cron over every workspace's drafts")
    async def expire_due(self) -> int:
        """Mark pending drafts whose window closed as expired (they are never sent)."""
        return await expire_due_drafts(self._clock, self._announce)

    async def _decide(
        self,
        actor: Actor,
        draft_id: int,
        status: DraftStatus,
        *,
        text: str | None = None,
        use_rule_fallback: bool = False,
    ) -> ReplyDraft:
        if not actor.allows(DECIDER_ROLE):
            raise Forbidden("Viewers cannot approve, edit or reject replies")
        draft = await ReplyDraft.get_or_none(id=draft_id, workspace_id=actor.workspace_id)
        if draft is None:
            raise NotFound(f"No reply draft {draft_id} in this workspace")
        user = await User.get_or_none(id=actor.user_id) if actor.user_id is not None else None
        now = self._clock.now()
        values = _placeholder_values(draft.target)
        outgoing: str | None
        if status is DraftStatus.APPROVED:
            outgoing = draft.proposed_text
        elif status is DraftStatus.EDITED:
            outgoing = check_edited_text(text or "", values)
        elif text and text.strip():
            outgoing = check_edited_text(text, values)
        elif use_rule_fallback:
            outgoing = await self._rule_fallback(draft, values)
        else:
            outgoing = None
        if draft.status is DraftStatus.PENDING and now >= draft.expires_at:
            await _expire_draft(draft, now, self._announce)
        won = await ReplyDraft.filter(
            id=draft.id, status=DraftStatus.PENDING, expires_at__gt=now
        ).update(status=status, decided_by_id=actor.user_id, decided_at=now, final_text=outgoing)
        if not won:
            await draft.refresh_from_db()
            decider = (
                await User.get_or_none(id=draft.decided_by_id) if draft.decided_by_id else None
            )
            raise DraftAlreadyDecided(
                draft.id, DraftStatus(draft.status), _person(decider), draft.decided_at
            )
        await draft.refresh_from_db()
        if outgoing is not None:
            suffix = ":fallback" if status is DraftStatus.REJECTED else ""
            # The outbox records the sent message in the conversation (and so in the history).
            await self._sender.send_reply(
                OutgoingReply(
                    account_id=draft.account_id,
                    channel=Channel(draft.target.get("channel", Channel.DM.value)),
                    recipient=_recipient(draft.target),
                    text=outgoing,
                    dedupe_key=f"draft:{draft.id}{suffix}",
                    not_after=draft.expires_at,
                    rule_id=draft.rule_id,
                    conversation_id=draft.conversation_id,
                )
            )
        await audit.record(
            f"draft.{status.value}",
            actor=actor.label,
            workspace_id=actor.workspace_id,
            target_type="draft",
            target_id=draft.id,
            sent=outgoing is not None,
        )
        await self._announce(
            actor.workspace_id,
            DRAFT_DECIDED,
            {
                "draft_id": draft.id,
                "status": status.value,
                "decided_by": _person(user) or actor.label,
                "decided_at": now.isoformat(),
                "sent_text": outgoing,
            },
        )
        return draft

    async def _rule_fallback(self, draft: ReplyDraft, values: dict[str, str]) -> str | None:
        rule = await AutomationRule.get_or_none(id=draft.rule_id) if draft.rule_id else None
        config = RuleDefinition.from_stored(rule).ai_reply() if rule else None
        if config is None or not config.fallback_reply:
            return None
        return check_edited_text(config.fallback_reply, values)


@instance_level("a cron over every workspace's drafts")
async def expire_due_drafts(clock: Clock, announce: Announcer = store_event) -> int:
    """Mark pending drafts whose messaging window closed as expired; returns how many.

    The worker's cron calls this every minute; a decision on an overdue draft expires it too.
    """
    now = clock.now()
    due = (
        await ReplyDraft.filter(status=DraftStatus.PENDING, expires_at__lte=now)
        .order_by("id")
        .limit(EXPIRE_BATCH)
    )
    expired = 0
    for draft in due:
        if await _expire_draft(draft, now, announce):
            expired += 1
    if expired:
        logger.info("expired %d reply drafts", expired)
    return expired


async def _expire_draft(draft: ReplyDraft, now: datetime, announce: Announcer) -> bool:
    changed = await ReplyDraft.filter(id=draft.id, status=DraftStatus.PENDING).update(
        status=DraftStatus.EXPIRED, decided_at=now
    )
    if not changed:
        return False
    # Shown like a decision: the chat messages asking for approval now say "expired".
    await announce(
        draft.workspace_id,
        DRAFT_DECIDED,
        {"draft_id": draft.id, "status": DraftStatus.EXPIRED.value, "decided_at": now.isoformat()},
    )
    logger.info("reply draft %s expired unsent (account %s)", draft.id, draft.account_id)
    return True


def _recipient(target: dict[str, Any]) -> Recipient:
    if target.get("channel") == Channel.PRIVATE_REPLY.value and target.get("comment_id"):
        return Recipient(comment_id=str(target["comment_id"]))
    return Recipient(igsid=str(target.get("igsid") or target.get("id") or ""))


def _placeholder_values(target: dict[str, Any]) -> dict[str, str]:
    return {name: str(target.get(name) or "") for name in ("username", "first_name", "link")}


def _person(user: User | None) -> str:
    if user is None:
        return ""
    return user.name or user.email
