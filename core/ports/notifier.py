"""The notifier port: how core sends and updates messages in a linked chat.

Adapters live in ``bot/`` (Telegram over the Bot API, Discord over its REST API). They raise
the errors below so delivery can tell a dead chat from a busy one from a passing failure.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from core.db.models import Platform
from core.domain.chat import Reply
from core.errors import ReelayError


class ChatDeliveryError(ReelayError):
    """Sending failed for a reason that may pass (network, server error): retry later."""


class ChatGone(ChatDeliveryError):
    """The chat no longer takes messages from the bot (bot removed, chat deleted, blocked)."""


class ChatRateLimited(ChatDeliveryError):
    """The platform asked to wait ``retry_after_s`` seconds before the next message."""

    def __init__(self, message: str, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class Notifier(Protocol):
    @property
    def platform(self) -> Platform: ...

    async def send(self, chat_id: str, reply: Reply) -> str:
        """Post ``reply`` in ``chat_id``; returns the new message's id."""
        ...

    async def edit(self, chat_id: str, message_id: str, reply: Reply) -> None:
        """Replace the text and buttons of a message the bot sent earlier."""
        ...


@runtime_checkable
class PersonalNotifier(Protocol):
    """A notifier that writes to one person privately where that takes more than their id as
    a chat (Discord opens a direct-message channel); others send to the id itself (a Telegram
    user's private chat has the user's id)."""

    async def send_to_person(self, platform_user_id: str, reply: Reply) -> str:
        """Post ``reply`` to the person privately; returns the new message's id."""
        ...
