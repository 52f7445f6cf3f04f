"""Linking chats to a workspace, and chat users to people, with one-time codes.

Two kinds of code, both shown once (only their hash is stored):

- a *chat* code, made by an admin on the setup page: ``/link CODE`` in a group links that
  group to the workspace for alerts (:func:`redeem_code`). It says nothing about who sent it;
- a *personal* code, made by anyone on their account page: ``/link CODE`` (or the Telegram
  deep link ``t.me/<bot>?start=CODE``) makes the sender's chat account act as that person,
  with their own role in whichever linked chat they write (:func:`redeem_personal_code`).
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from tortoise.transactions import in_transaction

from core.db.models import (
    ChatIdentity,
    ChatLink,
    KeyValue,
    LinkCode,
    LinkCodeKind,
    Platform,
    Role,
    User,
    Workspace,
)
from core.domain.chat import LINK_CODES_PATH, PERSONAL_CODES_PATH
from core.domain.scope import Actor, instance_level
from core.errors import Conflict, Forbidden, NotFound
from core.services import audit

logger = logging.getLogger(__name__)

CODE_TTL = timedelta(minutes=15)
PERSONAL_CODE_TTL = timedelta(hours=1)
# The bot records its username here when it starts, so the panel can offer a deep link.
BOT_USERNAME_KEY = "telegram.bot_username"
# No 0/O, 1/I/L: codes are typed by hand.
ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
CODE_LENGTH = 10


def normalise_code(raw: str) -> str:
    return "".join(ch for ch in raw.upper() if ch in ALPHABET)


def code_digest(code: str) -> str:
    return hashlib.sha256(normalise_code(code).encode()).hexdigest()


def format_code(code: str) -> str:
    """``ABCDEFGHJK`` → ``ABCDE-FGHJK`` for reading aloud."""
    half = len(code) // 2
    return f"{code[:half]}-{code[half:]}"


@dataclass(frozen=True)
class NewCode:
    link_code: LinkCode
    code: str  # formatted, shown once

    @property
    def expires_at(self) -> datetime:
        return self.link_code.expires_at


async def create_code(actor: Actor, now: datetime) -> NewCode:
    """A one-time code that links a chat to the actor's workspace within 15 minutes."""
    if not actor.allows(Role.ADMIN):
        raise Forbidden("Only owners and admins link chats.")
    raw = "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))
    link_code = await LinkCode.create(
        workspace_id=actor.workspace_id,
        code_hash=code_digest(raw),
        created_by_id=actor.user_id,
        expires_at=now + CODE_TTL,
    )
    await audit.record(
        "chat.link_code_created",
        actor=actor.label,
        workspace_id=actor.workspace_id,
        target_type="link_code",
        target_id=link_code.id,
    )
    return NewCode(link_code=link_code, code=format_code(raw))


async def pending_codes(actor: Actor, now: datetime) -> list[LinkCode]:
    return await LinkCode.filter(
        workspace_id=actor.workspace_id, used_at__isnull=True, expires_at__gt=now
    ).order_by("-id")


@instance_level("a one-time link code names its own workspace")
async def redeem_code(
    code: str, platform: Platform, chat_id: str, title: str, now: datetime
) -> ChatLink:
    """Link ``chat_id`` with the code's workspace; the code is used up.

    Raises NotFound when the code is unknown, used or expired, and Conflict (the code
    stays usable) when the chat is linked to another workspace.
    """
    link_code = await LinkCode.get_or_none(
        code_hash=code_digest(code),
        used_at__isnull=True,
        expires_at__gt=now,
        kind=LinkCodeKind.CHAT,
    )
    if link_code is None:
        raise NotFound("This link code is unknown, used or expired; make a new one in the panel.")
    async with in_transaction():
        claimed = await LinkCode.filter(id=link_code.id, used_at__isnull=True).update(used_at=now)
        if not claimed:
            raise NotFound("This link code was just used.")
        link = await ChatLink.get_or_none(platform=platform, chat_id=chat_id)
        if link is None:
            link = await ChatLink.create(
                workspace_id=link_code.workspace_id,
                platform=platform,
                chat_id=chat_id,
                title=title[:255],
            )
        elif link.active and link.workspace_id != link_code.workspace_id:
            # Whoever holds a code may be in a chat another workspace relies on.
            raise Conflict(
                "This chat is linked to another workspace: an admin there has to unlink "
                f"it first ({LINK_CODES_PATH})."
            )
        else:
            link.workspace_id = link_code.workspace_id
            link.title = title[:255]
            link.active = True
            await link.save(update_fields=["workspace_id", "title", "active"])
    await audit.record(
        "chat.linked",
        actor=f"{platform.value}:{chat_id}",
        workspace_id=link_code.workspace_id,
        target_type="chat",
        target_id=link.id,
        title=link.title,
    )
    return link


async def linked_chats(actor: Actor) -> list[ChatLink]:
    return await ChatLink.filter(workspace_id=actor.workspace_id, active=True).order_by("id")


async def unlink_chat(actor: Actor, chat_link_id: int) -> None:
    if not actor.allows(Role.ADMIN):
        raise Forbidden("Only owners and admins unlink chats.")
    updated = await ChatLink.filter(
        id=chat_link_id, workspace_id=actor.workspace_id, active=True
    ).update(active=False)
    if not updated:
        raise NotFound("No such linked chat.")
    await audit.record(
        "chat.unlinked",
        actor=actor.label,
        workspace_id=actor.workspace_id,
        target_type="chat",
        target_id=chat_link_id,
    )


# ---------------------------------------------------------------- people


async def create_personal_code(actor: Actor, now: datetime) -> NewCode:
    """A one-time code that makes a chat account act as the actor, within an hour."""
    if actor.user_id is None:
        raise Forbidden("Only a signed-in person links their own chat account.")
    raw = "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))
    link_code = await LinkCode.create(
        workspace_id=actor.workspace_id,
        code_hash=code_digest(raw),
        created_by_id=actor.user_id,
        expires_at=now + PERSONAL_CODE_TTL,
        kind=LinkCodeKind.PERSON,
    )
    await audit.record(
        "chat.personal_code_created",
        actor=actor.label,
        workspace_id=actor.workspace_id,
        target_type="user",
        target_id=actor.user_id,
    )
    return NewCode(link_code=link_code, code=format_code(raw))


@instance_level("a personal code names its own person")
async def redeem_personal_code(
    code: str, platform: Platform, platform_user_id: str, label: str, now: datetime
) -> User | None:
    """Make ``platform_user_id`` act as the code's person; the code is used up.

    None when ``code`` is not a personal code (it may be a chat code); NotFound when it was
    one but is used or expired.
    """
    link_code = await LinkCode.get_or_none(
        code_hash=code_digest(code), kind=LinkCodeKind.PERSON
    ).prefetch_related("created_by")
    if link_code is None:
        return None
    if link_code.used_at is not None or link_code.expires_at <= now:
        raise NotFound(
            "This personal code is used or expired; make a new one on your account page "
            f"in the panel ({PERSONAL_CODES_PATH})."
        )
    person = link_code.created_by
    if not person.is_active:
        raise Forbidden("This person's account is switched off in the panel.")
    async with in_transaction():
        claimed = await LinkCode.filter(id=link_code.id, used_at__isnull=True).update(used_at=now)
        if not claimed:
            raise NotFound("This personal code was just used.")
        identity = await ChatIdentity.get_or_none(
            platform=platform, platform_user_id=platform_user_id
        )
        if identity is None:
            await ChatIdentity.create(
                platform=platform, platform_user_id=platform_user_id, user=person
            )
        elif identity.user_id != person.id:
            identity.user = person
            await identity.save(update_fields=["user_id"])
    await audit.record(
        "chat.identity_linked",
        actor=label,
        workspace_id=link_code.workspace_id,
        target_type="user",
        target_id=person.id,
    )
    return person


async def linked_identities(actor: Actor) -> list[ChatIdentity]:
    """The chat accounts that act as the actor (their own, whatever the workspace)."""
    if actor.user_id is None:
        return []
    return await ChatIdentity.filter(user_id=actor.user_id).order_by("id")


async def unlink_identity(actor: Actor, identity_id: int) -> None:
    """Forget one of the actor's own chat accounts: it no longer acts as them."""
    deleted = await ChatIdentity.filter(id=identity_id, user_id=actor.user_id).delete()
    if not deleted:
        raise NotFound("No such chat account of yours.")
    await audit.record(
        "chat.identity_unlinked",
        actor=actor.label,
        workspace_id=actor.workspace_id,
        target_type="user",
        target_id=actor.user_id,
    )


async def set_chat_readers_unlinked(actor: Actor, allowed: bool) -> None:
    """Whether members of a linked chat who have not linked themselves may read."""
    if not actor.allows(Role.ADMIN):
        raise Forbidden("Only owners and admins change who may read in linked chats.")
    await Workspace.filter(id=actor.workspace_id).update(chat_readers_unlinked=allowed)
    await audit.record(
        "chat.readers_unlinked_changed",
        actor=actor.label,
        workspace_id=actor.workspace_id,
        target_type="workspace",
        target_id=actor.workspace_id,
        allowed=allowed,
    )


# ---------------------------------------------------------------- the Telegram deep link


@instance_level("the bot's username is the instance's")
async def remember_bot_username(username: str) -> None:
    """Recorded by the bot at startup so the panel can offer ``t.me/<bot>?start=CODE``."""
    await KeyValue.update_or_create(key=BOT_USERNAME_KEY, defaults={"value": username})


@instance_level("the bot's username is the instance's")
async def bot_username() -> str:
    stored = await KeyValue.get_or_none(key=BOT_USERNAME_KEY)
    return stored.value if stored else ""


def deep_link(username: str, code: str = "") -> str:
    """The link that opens a private chat with the bot and sends ``/start CODE`` in one tap."""
    start = normalise_code(code) or "link"
    return f"https://t.me/{username}?start={start}"
