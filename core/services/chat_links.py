"""Linking Telegram and Discord chats to a workspace with one-time codes.

The panel makes a code (shown once; only its hash is stored); someone sends
``/link CODE`` in the chat and the bot calls :func:`redeem_code`.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from tortoise.transactions import in_transaction

from core.db.models import ChatLink, LinkCode, Platform, Role
from core.domain.chat import LINK_CODES_PATH
from core.domain.scope import Actor, instance_level
from core.errors import Conflict, Forbidden, NotFound
from core.services import audit

logger = logging.getLogger(__name__)

CODE_TTL = timedelta(minutes=15)
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
        code_hash=code_digest(code), used_at__isnull=True, expires_at__gt=now
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
