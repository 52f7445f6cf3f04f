"""A conversation's messages posted in its topic (Telegram) or thread (Discord) of the
workspace's mirror chat.

Every message of a conversation (the person's, an automation's, a teammate's from the inbox
or the Instagram app) records a domain event; its delivery (``core.services.notifications``)
posts it in the conversation's topic, once per event (a ``NotificationDelivery`` row, channel
``mirror``). A teammate's reply written in the chat is not posted back into it. The topic is
opened on first need, once: its ``ChatThread`` row is claimed (unique per conversation and
chat) before it is made, and a second delivery at the same moment waits for its id. A topic
opened before the person's profile was known is renamed with their next message.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from tortoise.exceptions import IntegrityError
from tortoise.expressions import Q, Subquery

from core.db.models import (
    ChatLink,
    ChatMirror,
    ChatThread,
    Conversation,
    DomainEvent,
    Message,
    Platform,
)
from core.domain import alerts, chat_mirror as words
from core.domain.followers import Follower
from core.domain.scope import instance_level
from core.ports.chat_threads import ChatThreads, ThreadGone
from core.ports.clock import Clock
from core.ports.notifier import ChatDeliveryError
from core.ports.queue import JobQueue

logger = logging.getLogger(__name__)

MIRROR = "mirror"  # the channel of a NotificationDelivery that posts in a topic
MIRRORED_KINDS = frozenset({alerts.CONVERSATION_MESSAGE_RECEIVED, alerts.CONVERSATION_MESSAGE_SENT})
CHAT_SOURCE = "chat"
DELIVER_JOB = "deliver_event"  # core.services.notifications.DELIVER_JOB
# A topic claimed this long ago by a worker that vanished is opened again.
CLAIM_STALE = timedelta(minutes=2)
# How long a delivery waits for the topic another one is opening, before retrying later.
OPENING_WAIT_S = 3.0
# Events the nudge still looks at (older ones are the sweep's).
NUDGE_WINDOW = timedelta(minutes=5)
NUDGE_BATCH = 50
# How long a process trusts that no workspace mirrors (a new mirror's first posts may wait
# for the notification sweep, which runs every few seconds).
MIRRORS_CHECK_S = 5.0


@instance_level("notifications: plans the deliveries of an event of its own workspace")
async def planned(event: DomainEvent) -> list[tuple[str, str, int]]:
    """The mirror delivery of ``event`` (channel, target, chat link), if it has one: a
    message of a conversation, in a workspace that mirrors, not written in the chat itself."""
    if event.kind not in MIRRORED_KINDS or event.payload.get("source") == CHAT_SOURCE:
        return []
    mirror = await ChatMirror.get_or_none(
        workspace_id=event.workspace_id, chat_link__active=True
    ).prefetch_related("chat_link")
    if mirror is None:
        return []
    return [(MIRROR, str(mirror.chat_link_id), mirror.chat_link_id)]


@instance_level("notifications: delivers an event to a chat of its own workspace")
async def deliver(
    threads: Mapping[Platform, ChatThreads], event: DomainEvent, link: ChatLink, now: datetime
) -> str | None:
    """Post the message behind ``event`` in its conversation's topic (opened on first need);
    the chat message's id, or None when the conversation is gone."""
    poster = threads.get(link.platform)
    if poster is None:
        raise ChatDeliveryError(f"no {link.platform.value} bot is configured in this process")
    facts = event.payload
    conversation = await Conversation.get_or_none(
        id=facts.get("conversation_id"), account__workspace_id=event.workspace_id
    )
    if conversation is None:
        return None
    message = await Message.get_or_none(
        id=facts.get("message_id"), conversation_id=conversation.id
    ).prefetch_related("author")
    author = ""
    if message is not None and message.author is not None:
        author = message.author.name or message.author.email
    text = words.post_text(
        str(facts.get("direction") or "in"),
        str(facts.get("source") or ""),
        message.text if message is not None else str(facts.get("text") or ""),
        person=words.topic_name(_follower(conversation)),
        author=author,
    )
    image = message.media_url if message is not None else ""
    thread_id = await _thread(poster, link, conversation, now)
    try:
        return await poster.post(link.chat_id, thread_id, text, image)
    except ThreadGone:
        logger.info("conversation %s: its topic was deleted, opening a new one", conversation.id)
        await ChatThread.filter(
            conversation_id=conversation.id, platform=link.platform.value, chat_id=link.chat_id
        ).delete()
        thread_id = await _thread(poster, link, conversation, now)
        return await poster.post(link.chat_id, thread_id, text, image)


async def _renamed(poster: ChatThreads, link: ChatLink, row: ChatThread, name: str) -> None:
    """The topic opened before the person's profile was known takes their name now; a refusal
    only costs the name (tried again with the next message), never the post."""
    try:
        await poster.rename_thread(link.chat_id, row.thread_id, name)
    except ChatDeliveryError as exc:
        logger.warning("topic %s of chat %s keeps its name: %s", row.thread_id, link.id, exc)
        return
    await ChatThread.filter(id=row.id).update(name=name)


def _follower(conversation: Conversation) -> Follower:
    return Follower(
        igsid=conversation.igsid,
        username=conversation.username,
        name=conversation.profile_name or conversation.first_name,
        verified=conversation.is_verified_user,
    )


async def _thread(
    poster: ChatThreads, link: ChatLink, conversation: Conversation, now: datetime
) -> str:
    """The conversation's topic in ``link``'s chat, opened once: the row is claimed first,
    so a second delivery at the same moment waits for the first one's topic."""
    where: dict[str, Any] = {
        "conversation_id": conversation.id,
        "platform": link.platform.value,
        "chat_id": link.chat_id,
    }
    name = words.topic_name(_follower(conversation))
    row = await ChatThread.get_or_none(**where)
    if row is not None and row.thread_id:
        if row.name != name:
            await _renamed(poster, link, row, name)
        return row.thread_id
    claimed = False
    if row is None:
        try:
            row = await ChatThread.create(workspace_id=link.workspace_id, claimed_at=now, **where)
            claimed = True
        except IntegrityError:
            row = None
    elif row.claimed_at is None or row.claimed_at < now - CLAIM_STALE:
        claimed = bool(
            await ChatThread.filter(id=row.id, thread_id="", claimed_at=row.claimed_at).update(
                claimed_at=now
            )
        )
    if not claimed:
        return await _opened_by_another(where)
    assert row is not None  # claimed means the row exists
    try:
        thread_id = await poster.open_thread(link.chat_id, name)
    except BaseException:
        await ChatThread.filter(id=row.id, thread_id="").delete()
        raise
    await ChatThread.filter(id=row.id).update(thread_id=thread_id, name=name, claimed_at=None)
    logger.info("conversation %s: topic %s opened in chat %s", conversation.id, thread_id, link.id)
    return thread_id


async def _opened_by_another(where: dict[str, Any]) -> str:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + OPENING_WAIT_S
    while loop.time() < deadline:
        await asyncio.sleep(0.05)
        row = await ChatThread.get_or_none(**where)
        if row is not None and row.thread_id:
            return row.thread_id
    raise ChatDeliveryError("the conversation's topic is still being opened")


@instance_level("a job: queues the deliveries of every mirroring workspace's new messages")
async def nudge(queue: JobQueue, now: datetime) -> int:
    """Queue the delivery of new conversation messages of mirroring workspaces right away
    (the notification sweep would find them within seconds); how many were queued."""
    ids = (
        await DomainEvent.filter(
            Q(kind__in=MIRRORED_KINDS),
            Q(delivered_at__isnull=True),
            Q(created_at__gte=now - NUDGE_WINDOW),
            Q(workspace_id__in=Subquery(ChatMirror.all().values("workspace_id"))),
        )
        .order_by("id")
        .limit(NUDGE_BATCH)
        .values_list("id", flat=True)
    )
    queued = 0
    for event_id in ids:
        # The id record_event uses: an event queued (or delivered) before is not queued again.
        if await queue.enqueue(DELIVER_JOB, event_id, job_id=f"notify:{event_id}"):
            queued += 1
    return queued


class MirrorNudge:
    """:func:`nudge` for a process whose jobs each end with one (a worker): nudges asked for
    while one runs are one more run after it, not one each; and none is run while no
    workspace mirrors (asked again every ``MIRRORS_CHECK_S``)."""

    def __init__(self, queue: JobQueue, clock: Clock) -> None:
        self._queue = queue
        self._clock = clock
        self._running: asyncio.Task[None] | None = None
        self._again = False
        self._mirrors = False
        self._checked_at = -MIRRORS_CHECK_S

    @instance_level("a job: every mirroring workspace's new messages, as nudge() does")
    async def __call__(self) -> None:
        """Return once the messages recorded before the call are queued for the mirror."""
        if not await self._any_mirror():
            return
        if self._running is None or self._running.done():
            self._running = asyncio.create_task(self._runs())
        else:
            self._again = True  # the run under way may have read before this call's messages
        await asyncio.shield(self._running)

    async def _runs(self) -> None:
        while True:
            self._again = False
            await nudge(self._queue, self._clock.now())
            if not self._again:
                return

    async def _any_mirror(self) -> bool:
        now = time.monotonic()
        if now - self._checked_at >= MIRRORS_CHECK_S:
            self._mirrors = await ChatMirror.exists()
            self._checked_at = now
        return self._mirrors
