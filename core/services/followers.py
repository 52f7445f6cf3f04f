"""Followers with names: the Instagram profile of a person who messaged an account.

The engine never waits for it: after a batch's sends it queues ``refresh_follower_profile``
for the people whose profile is missing or older than a day, gathered with the next batches'
for up to a second (``DueProfiles``; one job for up to 50 of them),
and the job reads ``GET /{igsid}?fields=…`` inside the account's hourly Graph call budget (the
one the insights syncs share). Meta shows a profile only to an account the person messaged, so
commenters keep the username their comment carried. What the team reads is
``core.domain.followers.follower_label``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import datetime
from typing import Any

from core.db.bulk import update_many
from core.db.models import AccountStatus, Conversation, InstagramAccount, Lead, WebhookEvent
from core.domain.followers import Follower, follower_label, profile_due
from core.domain.graph_errors import GraphError
from core.domain.scope import Actor, instance_level
from core.ports.clock import Clock
from core.ports.queue import JobQueue
from core.services.inbox import BulkQueue
from core.services.insights_sync import SyncDeps

logger = logging.getLogger(__name__)

PROFILE_JOB = "refresh_follower_profile"
# People whose profiles one job reads.
PROFILES_PER_JOB = 50
# Reads asked for within this long of each other are queued together: a job for each
# batch's few people made most of a busy worker's jobs.
PROFILES_GATHER_S = 1.0

# Queues the profile reads of these conversations (:func:`queue_refreshes`, bound).
ProfileHook = Callable[[set[int]], Awaitable[Any]]


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


class DueProfiles:
    """The engine's people whose profile is due (``due``, filled as it handles them), queued
    for reading after the sends that answered them: at once with ``gather_s`` 0, else
    together with those of the next ``gather_s`` seconds."""

    def __init__(self, queue_reads: ProfileHook | None, gather_s: float = PROFILES_GATHER_S):
        self.due: set[int] = set()  # kept the same set: batches under way add to it
        self._queue_reads = queue_reads
        self._gather_s = gather_s
        self._timer: asyncio.TimerHandle | None = None
        self._queueing: set[asyncio.Task[None]] = set()

    @instance_level("the engine, for the people of accounts it holds")
    async def queue(self) -> None:
        """After a batch's sends: queue the reads due, or gather them a while first."""
        if self._gather_s <= 0:
            await self.queue_now()
        elif self.due and self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self._gather_s, self._gathered)

    def _gathered(self) -> None:
        self._timer = None
        task = asyncio.create_task(self._queue_due())
        self._queueing.add(task)
        task.add_done_callback(self._queueing.discard)

    @instance_level("the engine stopping: the people of accounts it holds")
    async def queue_now(self) -> None:
        """Queue what is still gathering (the engine stopping), and wait for the queueing."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        await self._queue_due()
        while self._queueing:
            await asyncio.wait(list(self._queueing))

    async def _queue_due(self) -> None:
        """Never raises: a failure is logged, and the profiles stay due for the person's
        next message."""
        due = set(self.due)
        self.due.clear()
        if due and self._queue_reads is not None:
            try:
                await self._queue_reads(due)
            except Exception:
                logger.exception("queueing %d follower profile reads failed", len(due))


@instance_level("called by the engine after its sends, with the conversations it touched")
async def queue_refreshes(queue: JobQueue, clock: Clock, conversation_ids: Iterable[int]) -> int:
    """Queue the profile reads of these conversations: jobs of up to ``PROFILES_PER_JOB``
    people, each named after its first person and the day (so a person alone again the same
    day is not queued twice; one queued twice in a group is read once, see ``profile_due``)."""
    day = f"{clock.now():%Y%m%d}"
    wanted = sorted(set(conversation_ids))
    groups = [
        tuple(wanted[start : start + PROFILES_PER_JOB])
        for start in range(0, len(wanted), PROFILES_PER_JOB)
    ]
    if isinstance(queue, BulkQueue):  # one pipeline for the lot, not a round trip each
        return await queue.enqueue_many(PROFILE_JOB, [(g, f"profile:{g[0]}:{day}") for g in groups])
    queued = 0
    for group in groups:
        if await queue.enqueue(PROFILE_JOB, *group, job_id=f"profile:{group[0]}:{day}"):
            queued += 1
    return queued


@instance_level("a job: one conversation, by id, from the queue")
async def refresh_profile(deps: SyncDeps, conversation_id: int) -> bool:
    """Read and store a person's profile when it is due; True when it was stored."""
    return await refresh_profiles(deps, [conversation_id]) == 1


@instance_level("a job: conversations, by id, from the queue")
async def refresh_profiles(deps: SyncDeps, conversation_ids: Sequence[int]) -> int:
    """Read and store the profiles that are due among these conversations: one query for
    them, the account's call budget taken once for its people, the reads side by side, the
    answers stored in one transaction. How many stored."""
    now = deps.clock.now()
    found = await Conversation.filter(id__in=list(conversation_ids)).select_related("account")
    due = [
        c
        for c in found
        # Only a person who messaged has a profile to read.
        if c.last_inbound_at is not None
        and profile_due(c.profile_fetched_at, c.profile_failed_at, now)
        and c.account.status is AccountStatus.ACTIVE
    ]
    due = await _within_budget(deps, due)
    answers = await asyncio.gather(*(_read_profile(deps, c, now) for c in due))
    # One statement for them all, each row with its own columns (read or refused).
    await update_many(
        Conversation,
        {c.id: columns for c, columns in zip(due, answers, strict=True) if columns},
    )
    return sum(1 for columns in answers if "profile_fetched_at" in columns)


async def _within_budget(deps: SyncDeps, due: list[Conversation]) -> list[Conversation]:
    """The people whose reads fit their accounts' hourly call budgets: one take per account
    for all its people; near a budget's end, as many as still fit. The others are read
    another time (their profiles stay due)."""
    by_account: dict[int, list[Conversation]] = {}
    for conversation in due:
        by_account.setdefault(conversation.account_id, []).append(conversation)
    allowed: list[Conversation] = []
    for account_id, people in by_account.items():
        if await deps.budget.take(account_id, len(people)) is None:
            allowed += people
            continue
        for fitting, person in enumerate(people):
            wait = await deps.budget.take(account_id)
            if wait is not None:
                logger.info(
                    "%d profiles from conversation %s put off: account %s's call budget is"
                    " spent (%.0fs)",
                    len(people) - fitting,
                    person.id,
                    account_id,
                    wait,
                )
                break
            allowed.append(person)
    return allowed


async def _read_profile(
    deps: SyncDeps, conversation: Conversation, now: datetime
) -> dict[str, Any]:
    """The columns to store for one person: their profile, or the refusal's time."""
    account = conversation.account
    try:
        body = await deps.client.user_profile(deps.account_ref(account), conversation.igsid)
    except GraphError as exc:
        logger.warning(
            "profile of conversation %s (account %s) not read: %s",
            conversation.id,
            account.id,
            exc,
        )
        return {"profile_failed_at": now}
    return profile_columns(body, now)


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
