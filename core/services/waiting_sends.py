"""Sends kept while an account's token was dead go out after the reconnect.

An action the outbox could not send because the account needs reconnecting (Meta refused
the token, or it was already flagged) is kept ``waiting``, never dropped or failed. Once the
account is connected again, :func:`resume_sends` queues those Meta still lets the account
send (a private reply within 7 days of the comment, a DM within 24 h of the person's last
message, a public reply at any time) and marks the rest ``expired`` with the reason. An
action whose answer was lost before the token died still checks Instagram before it is sent.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from core.db.models import Conversation, InstagramAccount, OutboundAction, OutboundStatus
from core.domain.scope import instance_level
from core.ports.queue import JobQueue
from core.services.outbox import SEND_OUTBOUND
from core.services.send_windows import window_closed

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ResumedSends:
    requeued: int
    expired: int


@instance_level("re-queues the waiting sends of the account just reconnected")
async def resume_sends(account: InstagramAccount, queue: JobQueue, now: datetime) -> ResumedSends:
    """Queue the account's waiting sends still inside Meta's windows; expire the rest.
    Call it once the account is active again (OAuth completed)."""
    waiting = await OutboundAction.filter(account_id=account.id, status=OutboundStatus.WAITING)
    wanted = {a.payload.get("conversation_id") for a in waiting if a.kind == "dm"}
    conversations = {c.id: c for c in await Conversation.filter(id__in=[i for i in wanted if i])}
    live: list[OutboundAction] = []
    expired = 0
    for action in waiting:
        known = conversations.get(action.payload.get("conversation_id") or 0)
        reason = await window_closed(action, now, known)
        if not reason:
            live.append(action)
            continue
        expired += await OutboundAction.filter(id=action.id, status=OutboundStatus.WAITING).update(
            status=OutboundStatus.EXPIRED,
            error=f"the account was reconnected too late: {reason}"[:2000],
        )
    for action in live:
        moved = await OutboundAction.filter(id=action.id, status=OutboundStatus.WAITING).update(
            status=OutboundStatus.PENDING, not_before=None, error=""
        )
        if moved:
            await queue.enqueue(
                SEND_OUTBOUND, action.id, job_id=f"send:{action.id}:w{action.attempts}"
            )
    resumed = ResumedSends(requeued=len(live), expired=expired)
    if waiting:
        logger.info(
            "account %s reconnected: %d waiting sends queued, %d expired",
            account.id,
            resumed.requeued,
            resumed.expired,
        )
    return resumed
