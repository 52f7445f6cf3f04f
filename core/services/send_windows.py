"""Meta's windows at send time: whether an action the outbox holds may still be sent, and
whether a teammate has taken the person's conversation over since a rule queued it."""

from __future__ import annotations

from datetime import datetime

from core.db.models import Conversation, OutboundAction
from core.domain.outbound import (
    DM_WINDOW,
    HUMAN_AGENT,
    HUMAN_AGENT_WINDOW,
    PRIVATE_REPLY_WINDOW,
    ActionKind,
)
from core.domain.scope import instance_level
from core.services import conversation_log


@instance_level("Meta's windows for an action the outbox already holds")
async def window_closed(
    action: OutboundAction, now: datetime, known: Conversation | None = None
) -> str:
    """Why Meta no longer lets ``action`` be sent at ``now`` ('' when it still does).

    ``known``: the person's conversation as just read (saves a query)."""
    payload = action.payload
    if action.kind == ActionKind.PRIVATE_REPLY:
        anchor = payload.get("anchor_at")
        if anchor and now - datetime.fromisoformat(anchor) > PRIVATE_REPLY_WINDOW:
            return f"private reply window closed: comment made {anchor}, over 7 days ago"
        return ""
    if action.kind == ActionKind.DM:
        conversation = None
        wanted = payload.get("conversation_id")
        if known is not None and known.id == wanted:
            conversation = known
        elif wanted:
            conversation = await Conversation.get_or_none(id=wanted)
        last = conversation.last_inbound_at if conversation else None
        if last is None:
            return "DM not allowed: the person never wrote to the account"
        if payload.get("tag") == HUMAN_AGENT and now - last > HUMAN_AGENT_WINDOW:
            return f"7-day human agent window closed: last message from the person at {last}"
        if payload.get("tag") != HUMAN_AGENT and now - last > DM_WINDOW:
            return (
                f"24 h messaging window closed: last message from the person at {last.isoformat()}"
            )
    return ""


@instance_level("an action the outbox already holds")
async def teammate_has(action: OutboundAction, known: Conversation | None, now: datetime) -> bool:
    """Whether a teammate took the person's conversation over since a rule queued ``action``."""
    wanted = action.payload.get("conversation_id")
    if known is not None and known.id == wanted:
        return conversation_log.paused(known, now)
    return bool(wanted) and await Conversation.exists(id=wanted, paused_until__gt=now)
