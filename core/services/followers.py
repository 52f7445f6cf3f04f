"""Followers with names: the Instagram profile of a person who messaged an account.

The engine never waits for it: after an event's sends it queues ``refresh_follower_profile``
for each person whose profile is missing or older than a day (one job per person per day),
and the job reads ``GET /{igsid}?fields=…`` inside the account's hourly Graph call budget (the
one the insights syncs share). Meta shows a profile only to an account the person messaged, so
commenters keep the username their comment carried. What the team reads is
``core.domain.followers.follower_label``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from core.db.models import AccountStatus, Conversation, InstagramAccount, Lead, WebhookEvent
from core.domain.followers import Follower, follower_label, profile_due
from core.domain.graph_errors import GraphError
from core.domain.scope import Actor, instance_level
from core.ports.clock import Clock
from core.ports.queue import JobQueue
from core.services.insights_sync import SyncDeps

logger = logging.getLogger(__name__)

PROFILE_JOB = "refresh_follower_profile"


def follower_of(conversation: Conversation | None, username: str = "", igsid: str = "") -> Follower:
    """What is known of a person: their cached profile, else what the event said."""
    if conversation is None:
        return Follower(igsid=igsid, username=username)
    return Follower(
        igsid=conversation.igsid,
        username=conversation.username or username,
        name=conversation.profile_name,
        follower_count=conversation.follower_count,
        verified=conversation.is_verified_user,
    )


def lead_label(lead: Lead) -> str:
    """The person of a lead whose ``conversation`` was read along (else what the lead says)."""
    conversation = lead.conversation if isinstance(lead.conversation, Conversation) else None
    return follower_label(follower_of(conversation, lead.username, lead.igsid))


async def label(actor: Actor, account_id: int | None, igsid: str, username: str = "") -> str:
    """ "@username · Name · 12.3k followers" for a person of one of the workspace's accounts."""
    conversation = None
    if account_id is not None and igsid:
        conversation = await Conversation.get_or_none(
            account_id=account_id, account__workspace_id=actor.workspace_id, igsid=igsid
        )
    return follower_label(follower_of(conversation, username, igsid))


async def event_people(actor: Actor, events: Iterable[WebhookEvent]) -> dict[int, str]:
    """Who sent each of the workspace's webhook events, by event id (the event log's column)."""
    accounts = {
        a.ig_id: a.id for a in await InstagramAccount.filter(workspace_id=actor.workspace_id)
    }
    wanted: dict[int, tuple[int, str, str]] = {}
    for event in events:
        fields = event.event if isinstance(event.event, dict) else {}
        sender = str(fields.get("sender_id") or "")
        account_id = accounts.get(event.account_ig_id)
        if sender and account_id is not None and sender != event.account_ig_id:
            wanted[event.id] = (account_id, sender, str(fields.get("sender_username") or ""))
    if not wanted:
        return {}
    found = {
        (c.account_id, c.igsid): c
        for c in await Conversation.filter(
            account_id__in={a for a, _, _ in wanted.values()},
            igsid__in={s for _, s, _ in wanted.values()},
        )
    }
    return {
        event_id: follower_label(follower_of(found.get((account_id, sender)), username, sender))
        for event_id, (account_id, sender, username) in wanted.items()
    }


@instance_level("called by the engine after its sends, with the conversations it touched")
async def queue_refreshes(queue: JobQueue, clock: Clock, conversation_ids: Iterable[int]) -> int:
    """Queue a profile read for each conversation (one job per person per day)."""
    day = f"{clock.now():%Y%m%d}"
    queued = 0
    for conversation_id in sorted(set(conversation_ids)):
        if await queue.enqueue(
            PROFILE_JOB, conversation_id, job_id=f"profile:{conversation_id}:{day}"
        ):
            queued += 1
    return queued


@instance_level("a job: one conversation, by id, from the queue")
async def refresh_profile(deps: SyncDeps, conversation_id: int) -> bool:
    """Read and store a person's profile when it is due; True when it was stored."""
    conversation = await Conversation.get_or_none(id=conversation_id).prefetch_related("account")
    now = deps.clock.now()
    if conversation is None or conversation.last_inbound_at is None:
        return False  # only a person who messaged has a profile to read
    if not profile_due(conversation.profile_fetched_at, conversation.profile_failed_at, now):
        return False
    account = conversation.account
    if account.status is not AccountStatus.ACTIVE:
        return False
    wait = await deps.budget.take(account.id)
    if wait is not None:
        logger.info(
            "profile of conversation %s put off: account %s's call budget is spent (%.0fs)",
            conversation.id,
            account.id,
            wait,
        )
        return False
    try:
        body = await deps.client.user_profile(deps.account_ref(account), conversation.igsid)
    except GraphError as exc:
        logger.warning(
            "profile of conversation %s (account %s) not read: %s",
            conversation.id,
            account.id,
            exc,
        )
        await Conversation.filter(id=conversation.id).update(profile_failed_at=now)
        return False
    await Conversation.filter(id=conversation.id).update(**profile_columns(body, now))
    return True


def profile_columns(body: dict[str, Any], now: Any) -> dict[str, Any]:
    """A user-profile answer as the conversation's columns (the follow gate stores them too)."""
    count = body.get("follower_count")
    follows = body.get("is_user_follow_business")
    columns: dict[str, Any] = {
        "profile_name": str(body.get("name") or "")[:255],
        "profile_pic": str(body.get("profile_pic") or ""),
        "follower_count": count if isinstance(count, int) and count >= 0 else None,
        "is_verified_user": body.get("is_verified_user") is True,
        "is_user_follow_business": follows if isinstance(follows, bool) else None,
        "profile_fetched_at": now,
        "profile_failed_at": None,
    }
    username = str(body.get("username") or "")[:64]
    if username:
        columns["username"] = username
    return columns
