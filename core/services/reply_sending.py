"""Sending a smart reply: one text for the outbox, and the port that hands it over.

Every send, an AI answer in ``auto`` mode or an approved draft, goes through a
``ReplySender`` with an idempotency key and the time the messaging window closes, so a
retried send never goes out twice and a late one never goes out at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from core.db.models import InstagramAccount
from core.domain.ai_replies import DM_WINDOW, PRIVATE_REPLY_WINDOW, Channel
from core.domain.scope import instance_level
from core.ports.instagram import Recipient
from core.services.outbox import ActionKind, Outbox


@dataclass(frozen=True)
class OutgoingReply:
    """One text reply for the outbox: who gets it, how, and its idempotency key."""

    account_id: int
    channel: Channel
    recipient: Recipient
    text: str
    dedupe_key: str
    not_after: datetime  # the messaging window closes then: never send later
    rule_id: int | None = None
    conversation_id: int | None = None
    event_id: int | None = None

    @property
    def anchor_at(self) -> datetime:
        """When the person wrote (the comment's time for a private reply)."""
        return self.not_after - (
            PRIVATE_REPLY_WINDOW if self.channel is Channel.PRIVATE_REPLY else DM_WINDOW
        )

    def message(self) -> dict[str, Any]:
        """Meta's message object."""
        return {"text": self.text}


class ReplySender(Protocol):
    async def send_reply(self, reply: OutgoingReply) -> None:
        """Hand ``reply`` to the outbox (paced, idempotent per ``dedupe_key``)."""
        ...


class OutboxReplySender:
    """``ReplySender`` over the automations outbox: paced, windowed, idempotent per key."""

    def __init__(self, outbox: Outbox) -> None:
        self._outbox = outbox

    @instance_level("sends what the smart-reply engine or a scoped approval prepared")
    async def send_reply(self, reply: OutgoingReply) -> None:
        account = await InstagramAccount.get(id=reply.account_id)
        private = reply.channel is Channel.PRIVATE_REPLY
        await self._outbox.submit(
            account=account,
            kind=ActionKind.PRIVATE_REPLY if private else ActionKind.DM,
            target=(reply.recipient.comment_id if private else reply.recipient.igsid) or "",
            message=reply.message(),
            key=reply.dedupe_key,
            rule_id=reply.rule_id,
            conversation_id=reply.conversation_id,
            event_id=reply.event_id,
            anchor_at=reply.anchor_at if private else None,
        )
