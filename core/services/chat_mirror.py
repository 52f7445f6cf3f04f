"""The team chat as an inbox: each conversation mirrored to its own topic (a Telegram forum
group) or thread (a Discord channel), answered from there.

- **Which chat**: one linked chat per workspace (``ChatMirror``), chosen by an admin in the
  panel or with ``/mirror here`` in that chat.
- **Out to the chat**: every message of a conversation (the person's, an automation's, a
  teammate's from the inbox or the Instagram app) records a domain event; its delivery
  (``core.services.notifications``) posts it in the conversation's topic, once per event
  (a ``NotificationDelivery`` row, channel ``mirror``). A teammate's reply written in the
  topic is not posted back into it. The topic is opened on first need, once: its
  ``ChatThread`` row is claimed (unique per conversation and chat) before it is made.
- **In from the chat**: a text or photo by a linked teammate in a conversation's topic is
  sent to the person as that teammate (``Conversations.reply``, source ``chat``), keyed by
  the chat message, so a redelivered update sends nothing twice; ``/takeover``,
  ``/release``, ``/done`` and ``/assign`` act on that topic's conversation. Each person acts
  with their own role: viewers read, editors answer.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
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
    MediaAsset,
    Membership,
    Message,
    Platform,
    Role,
)
from core.domain import alerts, chat_mirror as words
from core.domain.chat import Reply
from core.domain.followers import Follower
from core.domain.scope import Actor, instance_level
from core.domain.zones import shown
from core.errors import Forbidden, NotFound, ReelayError, ValidationFailed
from core.ports.chat_threads import ChatThreads, ThreadGone
from core.ports.clock import Clock
from core.ports.notifier import ChatDeliveryError
from core.ports.queue import JobQueue
from core.ports.storage import MediaStorage
from core.services import audit, chat_members, media
from core.services.chat_members import ChatMember, ChatUser
from core.services.chat_state import CommandResults
from core.services.chatops import IncomingFile, problem_lines
from core.services.conversations import Conversations

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


# ---------------------------------------------------------------- which chat


async def mirror_chat(actor: Actor) -> ChatLink | None:
    """The linked chat the workspace's conversations are mirrored to, if any."""
    mirror = await ChatMirror.get_or_none(
        workspace_id=actor.workspace_id, chat_link__active=True
    ).prefetch_related("chat_link")
    return mirror.chat_link if mirror is not None else None


async def set_mirror(actor: Actor, chat_link_id: int | None) -> ChatLink | None:
    """Mirror the conversations to the workspace's linked chat ``chat_link_id`` (None: stop)."""
    if not actor.allows(Role.ADMIN):
        raise Forbidden("Only owners and admins choose where conversations are mirrored.")
    link = None
    if chat_link_id is not None:
        link = await ChatLink.get_or_none(
            id=chat_link_id, workspace_id=actor.workspace_id, active=True
        )
        if link is None:
            raise NotFound("No such linked chat.")
        await ChatMirror.update_or_create(
            workspace_id=actor.workspace_id, defaults={"chat_link_id": link.id}
        )
    else:
        await ChatMirror.filter(workspace_id=actor.workspace_id).delete()
    await audit.record(
        "chat.mirror_changed",
        actor=actor.label,
        workspace_id=actor.workspace_id,
        target_type="chat",
        target_id=chat_link_id or "",
    )
    return link


# ---------------------------------------------------------------- out to the chat


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


# ---------------------------------------------------------------- in from the chat


class ChatDesk:
    """What the team writes in a conversation's topic (``services.chat_desk``)."""

    def __init__(
        self,
        *,
        conversations: Conversations,
        storage: MediaStorage,
        media_url: Callable[[MediaAsset], str],
        results: CommandResults,
        clock: Clock,
    ) -> None:
        self.conversations = conversations
        self.storage = storage
        self.media_url = media_url
        self.results = results
        self.clock = clock

    @instance_level("a chat entry point: it finds the sender's membership first")
    async def mirrored(self, who: ChatUser, thread_id: str) -> bool:
        """Whether ``thread_id`` of ``who``'s chat is a conversation's topic."""
        return await self._thread(who, thread_id) is not None

    async def _thread(self, who: ChatUser, thread_id: str) -> ChatThread | None:
        if not thread_id:
            return None
        return await ChatThread.get_or_none(
            platform=who.platform.value, chat_id=who.chat_id, thread_id=thread_id
        )

    @instance_level("a chat entry point: it finds the sender's membership first")
    async def handle(
        self,
        who: ChatUser,
        thread_id: str,
        message_id: str,
        text: str,
        image: IncomingFile | None = None,
    ) -> Reply | None:
        """A message in a conversation's topic: a reply to send, or a command. A repeated
        delivery of the same chat message gets the first answer and sends nothing; None
        while the first is still at work, or when the topic is no conversation's."""
        thread = await self._thread(who, thread_id)
        if thread is None:
            return None
        return await self.results.once(
            who, message_id, lambda: self._run(who, thread, message_id, text, image)
        )

    async def _run(
        self,
        who: ChatUser,
        thread: ChatThread,
        message_id: str,
        text: str,
        image: IncomingFile | None,
    ) -> Reply:
        member = await chat_members.resolve(who)
        if member is None or member.workspace.id != thread.workspace_id:
            return await chat_members.refusal(who)
        command = words.thread_command(text)
        try:
            if isinstance(command, words.ThreadHelp):
                return Reply(words.THREAD_HELP)
            if isinstance(command, words.Unknown):
                return Reply(command.problem)
            chat_members.authorise(member, Role.EDITOR, who)
            if command is None:
                return await self._reply(member, who, thread, message_id, text, image)
            return await self._command(member, thread, command)
        except ValidationFailed as exc:
            return Reply(problem_lines(exc))
        except ReelayError as exc:
            return Reply(str(exc))

    async def _reply(
        self,
        member: ChatMember,
        who: ChatUser,
        thread: ChatThread,
        message_id: str,
        text: str,
        image: IncomingFile | None,
    ) -> Reply:
        image_url = None
        if image is not None:
            asset = await media.upload_bytes(
                member.actor, self.storage, await image.fetch(), image.filename
            )
            image_url = self.media_url(asset)
        sent = await self.conversations.reply(
            member.actor,
            thread.conversation_id,
            text=text.strip(),
            image_url=image_url,
            source=CHAT_SOURCE,
            key=f"chat:{who.platform.value}:{who.chat_id}:{message_id}",
        )
        if sent.status == "sent":
            return Reply("✓ Sent. Automations stay silent for them for 24 h (/release ends it).")
        if sent.status == "duplicate":
            return Reply("✓ Already sent.")
        return Reply(f"⏳ Queued ({sent.status}): Instagram gets it as soon as it can.")

    async def _command(
        self, member: ChatMember, thread: ChatThread, command: words.ThreadCommand
    ) -> Reply:
        actor, conversation_id = member.actor, thread.conversation_id
        match command:
            case words.TakeOver(hours=hours):
                until = await self.conversations.take_over(actor, conversation_id, hours=hours)
                return Reply(
                    f"✋ {_name(member)} has this conversation until {shown(until, member.zone)}: "
                    "automations stay silent for the person. /release hands it back."
                )
            case words.Release():
                await self.conversations.hand_back(actor, conversation_id)
                return Reply("🤖 Handed back: automations answer the person again.")
            case words.Done():
                await self.conversations.set_status(actor, conversation_id, "done")
                return Reply("✅ Marked done.")
            case words.Assign(name=name):
                user_id, label = await _teammate(member, name)
                await self.conversations.assign(actor, conversation_id, user_id)
                return Reply(f"👤 Assigned to {label}." if user_id else "👤 Assigned to nobody.")
        return Reply(words.THREAD_HELP)

    @instance_level("a chat entry point: it finds the sender's membership first")
    async def switch(self, who: ChatUser, message_id: str, text: str) -> Reply | None:
        """``/mirror here`` or ``/mirror off`` by an admin in a linked chat."""
        return await self.results.once(who, message_id, lambda: self._switch(who, text))

    async def _switch(self, who: ChatUser, text: str) -> Reply:
        on = words.mirror_switch(text)
        if on is None:
            return Reply(words.MIRROR_USAGE)
        member = await chat_members.resolve(who)
        if member is None:
            return await chat_members.refusal(who)
        if who.direct:
            return Reply("Conversations are mirrored to a group or channel: send /mirror there.")
        try:
            chat_members.authorise(member, Role.ADMIN, who)
        except Forbidden as exc:
            return Reply(str(exc))
        if not on:
            await set_mirror(member.actor, None)
            return Reply("Conversations are no longer mirrored to a chat.")
        link = await ChatLink.get(
            platform=who.platform, chat_id=who.chat_id, workspace_id=member.workspace.id
        )
        await set_mirror(member.actor, link.id)
        return Reply(
            "🪞 Conversations are now mirrored here: one topic per person, opened with their "
            "next message. Write in a topic to answer them; /help there says more."
        )


def _name(member: ChatMember) -> str:
    user = member.user
    return (user.name or user.email) if user is not None else "A teammate"


async def _teammate(member: ChatMember, name: str) -> tuple[int | None, str]:
    """The member of ``member``'s workspace called ``name`` ("me", a name, an email or its
    part before the "@"); (None, "") for nobody."""
    if not name:
        return None, ""
    if name.lower() == "me" and member.user is not None:
        return member.user.id, _name(member)
    wanted = name.lower().replace(" ", "")
    found = []
    for membership in await Membership.filter(workspace_id=member.workspace.id).prefetch_related(
        "user"
    ):
        user = membership.user
        names = {user.email.lower(), user.email.lower().split("@", 1)[0]}
        if user.name:
            names |= {user.name.lower().replace(" ", ""), user.name.lower().split()[0]}
        if wanted in names:
            found.append(user)
    if len(found) != 1:
        problem = "No teammate is" if not found else f"{len(found)} teammates are"
        raise ValidationFailed(
            f"{problem} called {name}: use their name or email as in the panel's Team page."
        )
    return found[0].id, found[0].name or found[0].email
