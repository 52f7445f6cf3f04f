"""The team chat as an inbox: each conversation mirrored to its own topic (a Telegram forum
group) or thread (a Discord channel), answered from there.

- **Which chat**: one linked chat per workspace (``ChatMirror``), chosen by an admin in the
  panel or with ``/mirror here`` in that chat.
- **Out to the chat**: every message of the conversation is posted in its topic, opened
  once (``core.services.chat_topics``).
- **In from the chat**: a text or photo by a linked teammate in a conversation's topic is
  sent to the person as that teammate (``Conversations.reply``, source ``chat``), keyed by
  the chat message, so a redelivered update sends nothing twice; ``/takeover``,
  ``/release``, ``/done`` and ``/assign`` act on that topic's conversation. Each person acts
  with their own role: viewers read, editors answer.
"""

from __future__ import annotations

from collections.abc import Callable

from core.db.models import (
    ChatLink,
    ChatMirror,
    ChatThread,
    MediaAsset,
    Membership,
    Role,
)
from core.domain import chat_mirror as words
from core.domain.chat import Reply
from core.domain.scope import Actor, instance_level
from core.domain.zones import shown
from core.errors import Forbidden, NotFound, ReelayError, ValidationFailed
from core.ports.storage import MediaStorage
from core.services import audit, chat_members, media
from core.services.chat_members import ChatMember, ChatUser
from core.services.chat_state import CommandResults
from core.services.chat_topics import CHAT_SOURCE
from core.services.chatops import IncomingFile, problem_lines
from core.services.conversations import Conversations

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
    ) -> None:
        self.conversations = conversations
        self.storage = storage
        self.media_url = media_url
        self.results = results

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
