"""Who acts in a chat: each chat member as their own Reelay user, with their own role.

A chat (a group, a channel, a direct chat with the bot) is linked to a workspace for alerts
by an admin's chat code; that says nothing about who writes in it. Each person links their
own chat account once with a personal code from their account page (or Telegram's one-tap
deep link), and from then on acts as themselves in every chat linked to a workspace they
belong to. A member who has not linked themselves is told how to, and may only read where
the workspace allows it (``Workspace.chat_readers_unlinked``, off by default).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from core.db.models import (
    ChatIdentity,
    ChatLink,
    LinkCode,
    Membership,
    Platform,
    Role,
    User,
    Workspace,
)
from core.domain.chat import (
    LINK_CODES_PATH,
    PERSONAL_CODES_SECTION,
    Button,
    ButtonStyle,
    Reply,
)
from core.domain.scope import Actor, instance_level
from core.domain.zones import effective_zone
from core.errors import Forbidden, NotFound
from core.services import chat_links, users

ACCOUNT_PAGE = f"the panel: Your account (under your email, top right) → {PERSONAL_CODES_SECTION}"
HOW_TO_LINK = (
    "I don't know you yet. Link your chat account once: make a personal code on your account "
    f"page in {ACCOUNT_PAGE}, then send /link CODE to me in a private chat."
)
NOT_LINKED_HERE = (
    "This chat is not linked to a Reelay workspace, so I don't answer commands here. "
    f"An admin can make a chat code in the panel ({LINK_CODES_PATH}) and send /link CODE here."
)
LINK_PRIVATELY = "Link privately"


@dataclass(frozen=True)
class ChatUser:
    """Who wrote, where: platform ids as strings, names for replies and audit entries."""

    platform: Platform
    chat_id: str
    user_id: str
    name: str = ""
    chat_title: str = ""
    direct: bool = False  # a one-to-one chat with the bot, not a group or channel
    bot_username: str = ""  # Telegram: for the t.me deep link that links a person privately

    @property
    def label(self) -> str:
        return f"{self.platform.value}:{self.name or self.user_id}"


@dataclass(frozen=True)
class ChatMember:
    """A chat user acting in one workspace.

    A linked person (``user``) acts with their membership's role; an unlinked member of a
    linked chat (``user`` None, only where the workspace allows it) may only read.
    """

    workspace: Workspace
    role: Role
    platform: Platform
    user: User | None = None
    chat_name: str = ""

    @property
    def actor(self) -> Actor:
        """The member as the services' scope, named "email via platform" in audit entries."""
        if self.user is None:
            return Actor(
                workspace_id=self.workspace.id,
                role=Role.VIEWER,
                label=f"{self.platform.value}:{self.chat_name} (not linked)",
            )
        return Actor(
            workspace_id=self.workspace.id,
            role=self.role,
            label=f"{self.user.email} via {self.platform.value}",
            user_id=self.user.id,
        )

    @property
    def zone(self) -> str:
        """The zone this member reads and types times in: their own, else the team's."""
        return effective_zone(self.workspace.timezone, self.user.timezone if self.user else None)

    @property
    def linked(self) -> bool:
        return self.user is not None


@instance_level("a chat entry point: it finds the sender's membership first")
async def resolve(who: ChatUser) -> ChatMember | None:
    """The person behind ``who`` and their role in this chat's workspace.

    A group must be linked: whatever is said there is seen by everyone in it. A direct chat
    with the bot acts in the person's (first) workspace when it is not linked. An unlinked
    member of a linked group reads as a viewer only where the workspace allows it.
    """
    link = await ChatLink.get_or_none(
        platform=who.platform, chat_id=who.chat_id, active=True
    ).prefetch_related("workspace")
    identity = await ChatIdentity.get_or_none(
        platform=who.platform, platform_user_id=who.user_id
    ).prefetch_related("user")
    if identity is not None and identity.user.is_active and (link is not None or who.direct):
        query = Membership.filter(user_id=identity.user.id)
        if link is not None:
            query = query.filter(workspace_id=link.workspace_id)
        membership = await query.order_by("id").prefetch_related("workspace").first()
        if membership is not None:
            return ChatMember(
                workspace=membership.workspace,
                role=membership.role,
                platform=who.platform,
                user=identity.user,
                chat_name=who.name,
            )
    if link is not None and not who.direct and link.workspace.chat_readers_unlinked:
        return ChatMember(
            workspace=link.workspace, role=Role.VIEWER, platform=who.platform, chat_name=who.name
        )
    return None


@instance_level("a chat entry point: it finds the sender's membership first")
async def refusal(who: ChatUser) -> Reply:
    """Why a command from ``who`` is not run, and how to change that."""
    known = await ChatIdentity.exists(platform=who.platform, platform_user_id=who.user_id)
    linked = await ChatLink.exists(platform=who.platform, chat_id=who.chat_id, active=True)
    if known and not linked and not who.direct:
        return Reply(NOT_LINKED_HERE, private=True)
    if linked and not who.direct:
        return link_yourself(who)
    return Reply(HOW_TO_LINK, private=True)


def link_yourself(who: ChatUser) -> Reply:
    """In a group: how to link privately, with Telegram's one-tap button where it can."""
    name = f"{who.name}, " if who.name else ""
    if who.bot_username:
        return Reply(
            f"{name}I don't know you yet, so I don't act for you here. Link yourself once: "
            f"tap “{LINK_PRIVATELY}” and send me the personal code from your account page "
            f"({ACCOUNT_PAGE}), or tap the link shown there.",
            ((Button(LINK_PRIVATELY, url=chat_links.deep_link(who.bot_username)),),),
            private=True,
        )
    return Reply(
        f"{name}I don't know you yet, so I don't act for you here. Link yourself once: make "
        f"a personal code on your account page ({ACCOUNT_PAGE}) and send /link CODE to me "
        "privately (on Discord, /link here answers only you).",
        private=True,
    )


def authorise(member: ChatMember, needed: Role, who: ChatUser) -> None:
    """Raise Forbidden unless ``member`` may do what needs ``needed``."""
    if not member.linked and needed is not Role.VIEWER:
        raise Forbidden(link_yourself(who).text)
    if not users.role_allows(member.role, needed):
        raise Forbidden(
            f"Your role ({member.role.value}) can't do that here; "
            f"it needs {needed.value} or above. An admin can change roles in the panel."
        )


@instance_level("a one-time code names its own workspace or person")
async def link(who: ChatUser, code: str, now: datetime) -> Reply:
    """``/link`` (and Telegram's ``/start CODE``): a person links themselves, or an admin's
    chat code links this chat; ``/link`` alone says how."""
    if code.strip().lower() in {"", "link"}:
        if who.direct:
            return Reply(
                "Send /link CODE here with the personal code from your account page "
                f"({ACCOUNT_PAGE}). You then act as yourself, with your own role, in every "
                "chat linked to your workspace."
            )
        return link_yourself(who)
    person = await chat_links.redeem_personal_code(code, who.platform, who.user_id, who.label, now)
    if person is not None:
        return await _linked_person(who, person)
    return await _link_chat(who, code, now)


async def _linked_person(who: ChatUser, person: User) -> Reply:
    memberships = await Membership.filter(user_id=person.id).prefetch_related("workspace")
    roles = ", ".join(f"{m.role.value} in {m.workspace.name}" for m in memberships)
    warning = "" if who.direct else "\n(The code was used up; next time send it to me privately.)"
    return Reply(
        f"Hello {person.name or person.email}: you are linked and act as yourself "
        f"({roles or 'no workspace yet'}) in every chat linked to your workspace.{warning}",
        private=not who.direct,
    )


async def _link_chat(who: ChatUser, code: str, now: datetime) -> Reply:
    link_code = await LinkCode.get_or_none(
        code_hash=chat_links.code_digest(code), used_at__isnull=True, expires_at__gt=now
    ).prefetch_related("created_by", "workspace")
    if link_code is None:
        raise NotFound(
            "This code is unknown, used or expired. A personal code comes from your account "
            f"page ({ACCOUNT_PAGE}); a code that links a chat from {LINK_CODES_PATH}."
        )
    creator = await Membership.get_or_none(
        workspace_id=link_code.workspace.id, user_id=link_code.created_by.id
    )
    if creator is None or not users.role_allows(creator.role, Role.ADMIN):
        raise Forbidden("Only owners and admins can link chats; ask one for a new code.")
    title = who.chat_title or who.name or who.chat_id
    await chat_links.redeem_code(code, who.platform, who.chat_id, title, now)
    text = (
        f"Linked to {link_code.workspace.name}: this chat now gets Reelay alerts. Each of you "
        "acts here as yourself, with your own role: link yourself once with a personal code "
        f"from your account page ({ACCOUNT_PAGE})."
    )
    if who.bot_username:
        button = Button(
            LINK_PRIVATELY, url=chat_links.deep_link(who.bot_username), style=ButtonStyle.PRIMARY
        )
        return Reply(text + f" Tap “{LINK_PRIVATELY}” to do it now.", ((button,),))
    return Reply(text + " Send it to me with /link CODE (privately).")
