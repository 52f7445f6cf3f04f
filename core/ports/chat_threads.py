"""The chat-thread port: how core opens a conversation's topic (Telegram) or thread
(Discord) in a mirror chat and posts into it.

Adapters live in ``bot/`` and raise the notifier port's errors (``ChatGone``,
``ChatRateLimited``, ``ChatDeliveryError``), plus :class:`ThreadGone` when the topic itself
was deleted, so a new one is opened.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from core.db.models import Platform
from core.ports.notifier import ChatDeliveryError


class ThreadGone(ChatDeliveryError):
    """The topic or thread was deleted (the chat is still there): open a new one."""


class NotAForum(ChatDeliveryError):
    """The chat cannot hold topics (a Telegram group with topics off, no right to make them)."""


@runtime_checkable
class ChatThreads(Protocol):
    @property
    def platform(self) -> Platform: ...

    async def open_thread(self, chat_id: str, name: str) -> str:
        """A new topic or thread named ``name`` in ``chat_id``; returns its id."""
        ...

    async def rename_thread(self, chat_id: str, thread_id: str, name: str) -> None:
        """Give the topic or thread a new name."""
        ...

    async def post(self, chat_id: str, thread_id: str, text: str, image_url: str = "") -> str:
        """Post ``text`` (with the image at ``image_url`` when given) in the thread; returns
        the new message's id."""
        ...
