"""A dead token, wherever it shows: one path in, one path out.

In: :func:`mark_needs_reconnect` is the only way an account becomes ``needs_reconnect``
(publishing, messaging, public replies, insights, token refresh, webhook subscription). Only
the transition from ``active`` records the audit entry and the one ``account.needs_reconnect``
event that alerts the team (chat and email): a hundred failing calls alert once.

Meanwhile the automations engine keeps the account's webhook events as ``waiting``.

Out: after the reconnect, :func:`resume_waiting` hands the events still inside Meta's reply
windows back to the engine (7 days for a private reply to a comment, 24 h for a direct
message) and marks the rest ``expired`` with the reason.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from redis.asyncio import Redis

from core.db.models import (
    AccountStatus,
    DomainEvent,
    EventStatus,
    InstagramAccount,
    WebhookEvent,
)
from core.domain.scope import instance_level
from core.domain.webhooks import EventKind
from core.ports.queue import JobQueue
from core.services import account_changes, audit
from core.services.inbox import HANDLE_EVENT, event_job_id

logger = logging.getLogger(__name__)

NEEDS_RECONNECT = "account.needs_reconnect"
# Meta's windows: one private reply within 7 days of the comment; other messages within
# 24 h of the person's last message.
PRIVATE_REPLY_WINDOW = timedelta(days=7)
MESSAGE_WINDOW = timedelta(hours=24)


@instance_level("flags an account any job's Graph call found dead")
async def mark_needs_reconnect(
    account: InstagramAccount, reason: str, *, redis: Redis | None, actor: str = "reelay"
) -> bool:
    """Flag the account for reconnection; audit and alert on the transition only.

    Call it wherever Meta refuses the token (a TOKEN_INVALID GraphError, error 190) or it
    expired. Returns False when the account was not active (already flagged: no new alert).
    ``redis``: where every worker's account cache learns of it at once.
    """
    updated = await InstagramAccount.filter(id=account.id, status=AccountStatus.ACTIVE).update(
        status=AccountStatus.NEEDS_RECONNECT, status_reason=reason[:255]
    )
    account.status = AccountStatus.NEEDS_RECONNECT
    account.status_reason = reason[:255]
    if not updated:
        return False
    await DomainEvent.create(
        workspace_id=account.workspace_id,
        kind=NEEDS_RECONNECT,
        payload={"account_id": account.id, "username": account.username, "reason": reason},
    )
    await audit.record(
        NEEDS_RECONNECT,
        actor=actor,
        workspace_id=account.workspace_id,
        target_type="instagram_account",
        target_id=account.id,
        account_id=account.id,
        level="warning",
        reason=reason,
    )
    await account_changes.announce(redis)
    logger.warning("account %s needs reconnecting: %s", account.id, reason)
    return True


def reply_window(kind: str) -> timedelta:
    """How long after an event Meta still lets the account answer it."""
    return PRIVATE_REPLY_WINDOW if kind == EventKind.COMMENT else MESSAGE_WINDOW


@dataclass(frozen=True)
class Resumed:
    requeued: int
    expired: int


@instance_level("re-queues the waiting events of the account just reconnected")
async def resume_waiting(account: InstagramAccount, queue: JobQueue, now: datetime) -> Resumed:
    """Hand the account's waiting events back to the engine, or expire those Meta no longer
    lets it answer. Call it once the account is active again (OAuth completed)."""
    waiting = await WebhookEvent.filter(
        account_ig_id__in=[i for i in (account.ig_id, account.page_id) if i],
        status=EventStatus.WAITING,
    ).only("id", "kind", "received_at")
    live: list[int] = []
    expired: dict[str, list[int]] = {}
    for event in waiting:
        window = reply_window(event.kind)
        if now - event.received_at <= window:
            live.append(event.id)
            continue
        span = "7-day" if window == PRIVATE_REPLY_WINDOW else "24-hour"
        reason = (
            f"the account was reconnected after Meta's {span} window to answer "
            f"this {event.kind} had closed"
        )
        expired.setdefault(reason, []).append(event.id)
    for reason, ids in expired.items():
        await WebhookEvent.filter(id__in=ids, status=EventStatus.WAITING).update(
            status=EventStatus.EXPIRED, error=reason, processed_at=now
        )
    if live:
        await WebhookEvent.filter(id__in=live, status=EventStatus.WAITING).update(
            status=EventStatus.PENDING, error="", processed_at=None
        )
        for event_id in live:
            await queue.enqueue(HANDLE_EVENT, event_id, job_id=event_job_id(event_id))
    resumed = Resumed(requeued=len(live), expired=sum(len(ids) for ids in expired.values()))
    if waiting:
        logger.info(
            "account %s reconnected: %d waiting events resumed, %d expired",
            account.id,
            resumed.requeued,
            resumed.expired,
        )
    return resumed
