"""Smart replies: a rule's AI action, the drafts a teammate approves, and continued chats.

Entry points for the automations engine (``EngineHooks``, installed by ``core.wiring``):

- :meth:`SmartReplies.reply` runs a matched rule's AI action for one inbound comment or DM
  (instead of the rule's static DM; its public comment reply still goes out).
- :meth:`SmartReplies.continue_conversation` answers a DM that matched no keyword when the
  conversation was started by an AI rule and is still inside the 24 h window (else None).

Entry points for people (panel, chat, API): :meth:`~SmartReplies.approve`,
:meth:`~SmartReplies.edit`, :meth:`~SmartReplies.reject`; and for the worker's cron:
:meth:`~SmartReplies.expire_due`.

In ``auto`` mode the answer goes straight to the outbox; in ``approve`` mode it is stored
as a ``ReplyDraft`` and a ``draft.approval_needed`` domain event asks the team, who decide on
it through ``reply_drafts``. Every send is handed to the ``ReplySender`` (``reply_sending``)
with an idempotency key; the outbox records what went out in the conversation, which is the
history the next answer sees. When the AI fails the person gets nothing: the failure is
logged, audited and announced (``ai.reply_failed``) so a teammate can answer.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from core.db.models import AutomationRule, Conversation, InstagramAccount, Message, ReplyDraft
from core.domain.ai import AiError, AiErrorKind
from core.domain.ai_replies import (
    DM_WINDOW,
    ApprovalMode,
    Channel,
    HistoryEntry,
    build_reply_prompt,
    finalize_reply,
    window_closes_at,
)
from core.domain.rule_definition import RuleDefinition
from core.domain.scope import Actor, instance_level
from core.domain.webhooks import EventKind, InboundEvent
from core.ports.ai import AiClient
from core.ports.clock import Clock
from core.ports.instagram import Recipient
from core.services import audit
from core.services.ai_usage import complete_for_workspace
from core.services.reply_drafts import Announcer, DraftDecisions, store_event
from core.services.reply_sending import OutgoingReply, ReplySender

logger = logging.getLogger(__name__)

APPROVAL_NEEDED = "draft.approval_needed"
REPLY_FAILED = "ai.reply_failed"


@dataclass(frozen=True)
class Inbound:
    """A comment or DM the AI answers, as the automations engine hands it over."""

    account_id: int
    channel: Channel
    igsid: str  # the person
    text: str
    received_at: datetime  # when the person wrote: the messaging window starts here
    event_key: str  # the webhook event's dedupe key
    comment_id: str | None = None  # set for a private reply to a comment
    conversation_id: int | None = None
    mid: str | None = None  # the inbound message's id, left out of the history
    event_id: int | None = None  # the recorded webhook event
    username: str = ""
    first_name: str = ""
    link: str = ""

    @property
    def recipient(self) -> Recipient:
        if self.channel is Channel.PRIVATE_REPLY:
            return Recipient(comment_id=self.comment_id)
        return Recipient(igsid=self.igsid)

    def placeholder_values(self) -> dict[str, str]:
        return {"username": self.username, "first_name": self.first_name, "link": self.link}


class Outcome(StrEnum):
    SENT = "sent"  # handed to the outbox
    HELD = "held"  # a draft waits for a teammate
    SKIPPED = "skipped"  # nothing to do (no AI action, window closed, AI off or over quota)
    FAILED = "failed"  # the AI gave no usable answer: nothing was sent


@dataclass(frozen=True)
class ReplyResult:
    outcome: Outcome
    text: str = ""
    draft_id: int | None = None
    reason: str = ""
    error_kind: AiErrorKind | None = field(default=None)


# An event whose rule's AI action sent nothing records why: "AI reply skipped: <reason>".
AI_NOTE_PREFIX = "AI reply "


def unanswered_note(result: ReplyResult) -> str:
    """The note an event keeps when its AI action sent nothing ("" when it answered)."""
    if result.outcome in (Outcome.SKIPPED, Outcome.FAILED):
        return f"{AI_NOTE_PREFIX}{result.outcome.value}: {result.reason}"
    return ""


def read_unanswered_note(note: str) -> tuple[str, str] | None:
    """(outcome, reason) from a note written by :func:`unanswered_note`, None otherwise."""
    if not note.startswith(AI_NOTE_PREFIX):
        return None
    outcome, colon, reason = note.removeprefix(AI_NOTE_PREFIX).partition(": ")
    if not colon or outcome not in (Outcome.SKIPPED, Outcome.FAILED):
        return None
    return outcome, reason


class SmartReplies:
    """The AI action and its drafts. ``ai`` is None when no AI server is configured."""

    def __init__(
        self,
        *,
        ai: AiClient | None,
        sender: ReplySender,
        clock: Clock,
        max_tokens: int = 300,
        announce: Announcer = store_event,
    ) -> None:
        self._ai = ai
        self._sender = sender
        self._clock = clock
        self._max_tokens = max_tokens
        self._announce = announce
        self._decisions = DraftDecisions(sender=sender, clock=clock, announce=announce)

    # ------------------------------------------------------------ answering

    @instance_level("driven by a webhook event of the rule's account")
    async def reply(self, rule_id: int, inbound: Inbound) -> ReplyResult:
        """Run rule ``rule_id``'s AI action for ``inbound``: send, hold a draft, or skip."""
        rule = await AutomationRule.get_or_none(id=rule_id).prefetch_related("workspace", "account")
        if rule is None or not rule.active:
            return ReplyResult(Outcome.SKIPPED, reason="the rule is gone or inactive")
        config = RuleDefinition.from_stored(rule).ai_reply()
        if config is None:
            return ReplyResult(Outcome.SKIPPED, reason="the rule has no AI action")
        now = self._clock.now()
        closes = window_closes_at(inbound.channel, inbound.received_at)
        if now >= closes:
            logger.info(
                "AI reply skipped: window closed (rule %s, account %s, event %s)",
                rule.id,
                inbound.account_id,
                inbound.event_key,
            )
            return ReplyResult(Outcome.SKIPPED, reason="the messaging window has closed")
        history = await self._history(inbound, config.history_messages)
        messages = build_reply_prompt(
            config,
            history,
            inbound.text,
            channel=inbound.channel,
            account_name=rule.account.username,
        )
        try:
            completion = await complete_for_workspace(
                Actor.system(rule.workspace_id),
                self._ai,
                messages,
                now=now,
                max_tokens=self._max_tokens,
            )
            text = finalize_reply(
                completion.text,
                max_sentences=config.max_sentences,
                max_chars=config.max_chars,
                values=inbound.placeholder_values(),
            )
        except AiError as error:
            return await self._ai_failed(rule, inbound, error)
        await self._remember_ai_rule(inbound, rule)
        if config.approval is ApprovalMode.APPROVE:
            draft = await self._hold(rule, inbound, text, closes)
            return ReplyResult(Outcome.HELD, text=text, draft_id=draft.id)
        await self._send(
            OutgoingReply(
                account_id=inbound.account_id,
                channel=inbound.channel,
                recipient=inbound.recipient,
                text=text,
                dedupe_key=f"{rule.id}:{inbound.event_key}:ai",
                not_after=closes,
                rule_id=rule.id,
                conversation_id=inbound.conversation_id,
                event_id=inbound.event_id,
            )
        )
        return ReplyResult(Outcome.SENT, text=text)

    @instance_level("driven by a webhook event of the conversation's account")
    async def continue_conversation(self, inbound: Inbound) -> ReplyResult | None:
        """Answer a DM that matched no keyword in a conversation an AI rule started.

        None when the conversation is not an AI one, the rule no longer continues chats,
        or the last exchange is older than the 24 h window; the engine then does nothing.
        """
        if inbound.channel is not Channel.DM or inbound.conversation_id is None:
            return None
        conversation = await Conversation.get_or_none(id=inbound.conversation_id)
        if conversation is None or conversation.ai_rule_id is None:
            return None
        rule = await AutomationRule.get_or_none(id=conversation.ai_rule_id)
        if rule is None or not rule.active or rule.account_id != inbound.account_id:
            return None
        config = RuleDefinition.from_stored(rule).ai_reply()
        if config is None or not config.continue_conversation:
            return None
        previous = await self._previous_message(inbound)
        if previous is None or inbound.received_at - previous.created_at >= DM_WINDOW:
            return None
        return await self.reply(rule.id, inbound)

    # ------------------------------------------------------------ deciding

    async def approve(self, actor: Actor, draft_id: int) -> ReplyDraft:
        """Send the proposed text as is."""
        return await self._decisions.approve(actor, draft_id)

    async def edit(self, actor: Actor, draft_id: int, text: str) -> ReplyDraft:
        """Send ``text`` instead (checked against Instagram's limits, never cut)."""
        return await self._decisions.edit(actor, draft_id, text)

    async def reject(
        self,
        actor: Actor,
        draft_id: int,
        *,
        fallback_text: str | None = None,
        use_rule_fallback: bool = False,
    ) -> ReplyDraft:
        """Send nothing, or a static fallback reply (see ``DraftDecisions.reject``)."""
        return await self._decisions.reject(
            actor, draft_id, fallback_text=fallback_text, use_rule_fallback=use_rule_fallback
        )

    @instance_level("a cron over every workspace's drafts")
    async def expire_due(self) -> int:
        """Mark pending drafts whose window closed as expired (they are never sent)."""
        return await self._decisions.expire_due()

    # ------------------------------------------------------------ internals

    async def _hold(
        self, rule: AutomationRule, inbound: Inbound, text: str, closes: datetime
    ) -> ReplyDraft:
        draft = await ReplyDraft.create(
            workspace_id=rule.workspace_id,
            account_id=inbound.account_id,
            rule_id=rule.id,
            conversation_id=inbound.conversation_id,
            inbound_text=inbound.text,
            proposed_text=text,
            target={
                **inbound.recipient.as_json(),
                "igsid": inbound.igsid,
                "channel": inbound.channel.value,
                "event_key": inbound.event_key,
                **inbound.placeholder_values(),
            },
            expires_at=closes,
        )
        await self._announce(
            rule.workspace_id,
            APPROVAL_NEEDED,
            {
                "draft_id": draft.id,
                "rule_id": rule.id,
                "rule_name": rule.name,
                "account_id": inbound.account_id,
                "account_username": rule.account.username,
                "person_username": inbound.username,
                "igsid": inbound.igsid,
                "channel": inbound.channel.value,
                "inbound_text": inbound.text,
                "proposed_text": text,
                "expires_at": closes.isoformat(),
            },
        )
        logger.info(
            "AI reply held for approval: draft %s (rule %s, account %s)",
            draft.id,
            rule.id,
            inbound.account_id,
        )
        return draft

    async def _send(self, reply: OutgoingReply) -> None:
        # The outbox records the sent message in the conversation (and so in the history).
        await self._sender.send_reply(reply)

    async def _ai_failed(
        self, rule: AutomationRule, inbound: Inbound, error: AiError
    ) -> ReplyResult:
        """Nothing is sent; the team hears why (except when AI is simply switched off)."""
        if error.kind is AiErrorKind.DISABLED:
            logger.info("AI reply skipped for rule %s: %s", rule.id, error.message)
            return ReplyResult(Outcome.SKIPPED, reason=error.message, error_kind=error.kind)
        logger.warning(
            "AI reply failed for rule %s, account %s, event %s: %s (%s)",
            rule.id,
            inbound.account_id,
            inbound.event_key,
            error.message,
            error.kind.value,
        )
        await audit.record(
            REPLY_FAILED,
            actor="ai",
            workspace_id=rule.workspace_id,
            target_type="rule",
            target_id=rule.id,
            level="warning",
            kind=error.kind.value,
            status=error.status,
            error=error.message,
            event_key=inbound.event_key,
        )
        if error.kind is not AiErrorKind.QUOTA:  # the quota has its own event
            await self._announce(
                rule.workspace_id,
                REPLY_FAILED,
                {
                    "rule_id": rule.id,
                    "rule_name": rule.name,
                    "account_id": inbound.account_id,
                    "person_username": inbound.username,
                    "igsid": inbound.igsid,
                    "inbound_text": inbound.text,
                    "kind": error.kind.value,
                    "error": error.message,
                },
            )
        outcome = Outcome.SKIPPED if error.kind is AiErrorKind.QUOTA else Outcome.FAILED
        return ReplyResult(outcome, reason=error.message, error_kind=error.kind)

    async def _remember_ai_rule(self, inbound: Inbound, rule: AutomationRule) -> None:
        """Mark the conversation as an AI one, so un-keyworded DMs continue it."""
        if inbound.conversation_id is None:
            return
        await Conversation.filter(id=inbound.conversation_id).update(ai_rule_id=rule.id)

    async def _history(self, inbound: Inbound, limit: int) -> list[HistoryEntry]:
        if limit <= 0:
            return []
        rows = await self._recent_messages(inbound, limit)
        return [HistoryEntry(row.direction, row.text, row.created_at, row.id) for row in rows]

    async def _previous_message(self, inbound: Inbound) -> Message | None:
        rows = await self._recent_messages(inbound, 1)
        return rows[0] if rows else None

    async def _recent_messages(self, inbound: Inbound, limit: int) -> list[Message]:
        """The conversation's newest ``limit`` messages before ``inbound``, newest first."""
        if inbound.conversation_id is None:
            return []
        rows = (
            await Message.filter(conversation_id=inbound.conversation_id)
            .order_by("-created_at", "-id")
            .limit(limit + 1)
        )
        # The engine may have stored the inbound message before calling us: leave it out.
        if inbound.mid:
            rows = [row for row in rows if row.mid != inbound.mid]
        elif rows and rows[0].direction == "in" and rows[0].text == inbound.text:
            rows = rows[1:]
        return rows[:limit]


# ---------------------------------------------------------------- wiring


class EngineHooks:
    """What the automations engine calls: a matched rule's AI action, and continuations."""

    def __init__(self, replies: SmartReplies, clock: Clock) -> None:
        self.replies = replies
        self._clock = clock

    @instance_level("driven by a webhook event of the rule's account")
    async def run_rule(
        self,
        rule: AutomationRule,
        definition: RuleDefinition,
        conversation: Conversation,
        event: InboundEvent,
        event_id: int,
    ) -> ReplyResult | None:
        """Answer with the rule's AI action; None when the rule (``definition``: as the
        engine read it) has none (static replies)."""
        if definition.ai_reply() is None:
            return None
        link = definition.reply_link
        result = await self.replies.reply(
            rule.id, self._inbound(rule.account_id, conversation, event, event_id, link)
        )
        logger.info(
            "AI action of rule %s for event %s: %s %s",
            rule.id,
            event_id,
            result.outcome.value,
            result.reason,
        )
        return result

    @instance_level("driven by a webhook event of the conversation's account")
    async def continue_conversation(
        self, account: InstagramAccount, conversation: Conversation, event: InboundEvent
    ) -> bool:
        """The engine's ``continuation`` hook: True when an AI conversation took the DM."""
        if event.kind is not EventKind.MESSAGE:
            return False
        inbound = self._inbound(account.id, conversation, event, None, "")
        result = await self.replies.continue_conversation(inbound)
        return result is not None

    def _inbound(
        self,
        account_id: int,
        conversation: Conversation,
        event: InboundEvent,
        event_id: int | None,
        link: str,
    ) -> Inbound:
        now = self._clock.now()
        comment = event.kind is EventKind.COMMENT
        return Inbound(
            account_id=account_id,
            channel=Channel.PRIVATE_REPLY if comment else Channel.DM,
            igsid=event.sender_id,
            text=event.text,
            # Meta's retries carry the original time; never trust a time in the future.
            received_at=min(event.timestamp or now, now),
            event_key=event.dedupe_key,
            comment_id=event.comment_id or None,
            conversation_id=conversation.id,
            mid=event.mid or None,
            event_id=event_id,
            username=event.sender_username or conversation.username,
            first_name=conversation.first_name,
            link=link,
        )
