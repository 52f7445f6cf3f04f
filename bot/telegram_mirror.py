"""Conversations' topics over the Bot API: a forum topic per conversation in the mirror group
(``createForumTopic``), its messages posted with ``message_thread_id``. Telegram's refusals
become the ports' errors: a deleted topic is ``ThreadGone`` (a new one is opened), a group
without topics ``NotAForum``, and the rest as for any alert (``delivery_error``)."""

from __future__ import annotations

from aiogram import Bot
from aiogram.exceptions import (
    TelegramAPIError,
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramMigrateToChat,
    TelegramNotFound,
    TelegramRetryAfter,
)
from aiogram.types import Message

from bot.telegram_replies import fit_text
from core.db.models import Platform
from core.ports.chat_threads import NotAForum, ThreadGone
from core.ports.notifier import ChatDeliveryError, ChatGone, ChatRateLimited

MAX_CAPTION = 1024
_GONE_HINTS = ("chat not found", "bot was kicked", "bot is not a member", "have no rights")
_NO_TOPICS = ("the chat is not a forum", "not enough rights to create a topic")
_THREAD_GONE = ("message thread not found", "topic_deleted", "topic_closed")
# sendPhoto by URL: Telegram could not fetch or use the image; the text goes with its link.
_PHOTO_REFUSED = (
    "wrong file identifier",
    "failed to get http url content",
    "wrong type of the web",
)


def delivery_error(exc: TelegramAPIError) -> ChatDeliveryError:
    """A Bot API refusal as the notifier port's error: a dead chat, a wait, or a passing one."""
    if isinstance(exc, TelegramRetryAfter):
        return ChatRateLimited(exc.message, float(exc.retry_after))
    if isinstance(exc, TelegramForbiddenError | TelegramMigrateToChat | TelegramNotFound):
        return ChatGone(exc.message)
    message = exc.message.lower()
    if isinstance(exc, TelegramBadRequest) and any(h in message for h in _GONE_HINTS):
        return ChatGone(exc.message)
    if isinstance(exc, TelegramBadRequest) and any(h in message for h in _NO_TOPICS):
        return NotAForum(
            f"{exc.message}: turn on Topics in the group's settings and make the bot an admin "
            "allowed to manage topics"
        )
    if isinstance(exc, TelegramBadRequest) and any(h in message for h in _THREAD_GONE):
        return ThreadGone(exc.message)
    return ChatDeliveryError(exc.message)


class TelegramThreads:
    """The chat-thread port over the Bot API: forum topics in a supergroup."""

    platform = Platform.TELEGRAM

    def __init__(self, bot: Bot) -> None:
        self.bot = bot

    async def open_thread(self, chat_id: str, name: str) -> str:
        try:
            topic = await self.bot.create_forum_topic(chat_id=int(chat_id), name=name[:128])
        except TelegramAPIError as exc:
            raise delivery_error(exc) from exc
        return str(topic.message_thread_id)

    async def rename_thread(self, chat_id: str, thread_id: str, name: str) -> None:
        try:
            await self.bot.edit_forum_topic(
                chat_id=int(chat_id), message_thread_id=int(thread_id), name=name[:128]
            )
        except TelegramAPIError as exc:
            raise delivery_error(exc) from exc

    async def post(self, chat_id: str, thread_id: str, text: str, image_url: str = "") -> str:
        try:
            sent = await self._post(int(chat_id), int(thread_id), text, image_url)
        except TelegramAPIError as exc:
            raise delivery_error(exc) from exc
        return str(sent.message_id)

    async def _post(self, chat_id: int, thread_id: int, text: str, image_url: str) -> Message:
        if image_url:
            try:
                return await self.bot.send_photo(
                    chat_id=chat_id,
                    message_thread_id=thread_id,
                    photo=image_url,
                    caption=fit_text(text, MAX_CAPTION),
                )
            except TelegramBadRequest as exc:
                if not any(h in exc.message.lower() for h in _PHOTO_REFUSED):
                    raise
            text = f"{text}\n{image_url}"
        return await self.bot.send_message(
            chat_id=chat_id, message_thread_id=thread_id, text=fit_text(text)
        )
