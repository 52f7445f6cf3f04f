"""Telegram replies: a core ``Reply`` as Telegram's text and inline keyboard, and sent so a
429 is waited out and a refused link button does not lose the message."""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar
from urllib.parse import urlsplit

from aiogram.exceptions import TelegramAPIError, TelegramBadRequest, TelegramRetryAfter
from aiogram.types import (
    ForceReply,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
    MessageEntity,
    User,
)

from core.domain.chat import Reply

logger = logging.getLogger(__name__)

T = TypeVar("T")

MAX_TEXT = 4096
# A reply refused with 429 is sent again after Telegram's retry_after, this many times in
# all, unless Telegram asks for a longer wait than this.
REPLY_TRIES = 3
MAX_REPLY_WAIT_S = 30.0


# ---------------------------------------------------------------- translation


def rendered(
    reply: Reply, *, links_as_text: bool = False
) -> tuple[str, InlineKeyboardMarkup | None]:
    """The reply's text and inline keyboard as Telegram takes them.

    Callback data is the encoded action. A link Telegram refuses as a button (a host without a
    dot, like ``localhost`` or a container name; every link with ``links_as_text``, used when
    Telegram refused one anyway) is written out under the text instead, so the message still
    goes out. The text is cut to fit Telegram's 4096-character limit.
    """
    rows = []
    links: list[str] = []
    for row in reply.buttons:
        buttons = []
        for button in row:
            if button.url and not links_as_text and telegram_takes_url(button.url):
                buttons.append(InlineKeyboardButton(text=button.label, url=button.url))
            elif button.url:
                links.append(f"{button.label}: {button.url}")
            elif button.action is not None:
                buttons.append(
                    InlineKeyboardButton(text=button.label, callback_data=button.action.encode())
                )
        if buttons:
            rows.append(buttons)
    tail = "".join(f"\n{link}" for link in links)
    text = fit_text(reply.text, MAX_TEXT - _utf16_length(tail)) + tail
    return text, InlineKeyboardMarkup(inline_keyboard=rows) if rows else None


def telegram_takes_url(url: str) -> bool:
    """Whether Telegram accepts ``url`` on a button (its check: http(s) or tg, a dotted host)."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme == "tg":
        return True
    host = parts.hostname or ""
    return scheme in {"http", "https"} and ("." in host or ":" in host)


def fit_text(text: str, limit: int = MAX_TEXT) -> str:
    """``text`` cut to ``limit`` UTF-16 code units, with an ellipsis when cut.

    Telegram words its limit in characters; counting UTF-16 code units (two per emoji, as its
    entity offsets do) is the stricter reading, so a cut text fits either way.
    """
    if _utf16_length(text) <= limit:
        return text
    encoded = text.encode("utf-16-le")[: (limit - 1) * 2]
    return encoded.decode("utf-16-le", errors="ignore") + "…"


def _utf16_length(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


class ReplyNotSent(Exception):
    """The command ran, but its answer could not be shown: never ask to try it again."""


async def answer(message: Message, reply: Reply) -> Message:
    """Send ``reply`` in the message's chat, as an answer to it.

    A 429 is waited out (``retry_after``) and the reply sent again. Whatever still fails is
    ``ReplyNotSent``: the command behind it has run, so nobody is told to try again (a
    repeated delivery of the message gets this reply back instead).
    """

    async def send(links_as_text: bool) -> Message:
        text, keyboard = rendered(reply, links_as_text=links_as_text)
        markup: InlineKeyboardMarkup | ForceReply | None = keyboard
        if reply.awaits_reply and markup is None:
            # selective: the box opens for the mentioned person only
            markup = ForceReply(selective=True)
        return await message.reply(text, reply_markup=markup, entities=mention_entities(reply))

    try:
        return await retrying_after(lambda: with_links_as_text_if_refused(send))
    except TelegramAPIError as exc:
        raise ReplyNotSent(exc.message) from exc


def mention_entities(reply: Reply) -> list[MessageEntity] | None:
    """A mention of ``reply.mention`` over the name the text starts with: it notifies that
    person and lets a selective reply box reach them, with or without a username."""
    if reply.mention is None:
        return None
    user_id, name = reply.mention
    if not reply.text.startswith(name) or not user_id.isdigit():
        return None
    return [
        MessageEntity(
            type="text_mention",
            offset=0,
            length=_utf16_length(name),
            user=User(id=int(user_id), is_bot=False, first_name=name),
        )
    ]


async def retrying_after(call: Callable[[], Awaitable[T]]) -> T:
    """``call()``, again after Telegram's ``retry_after`` when it answers 429."""
    for attempt in itertools.count(1):
        try:
            return await call()
        except TelegramRetryAfter as exc:
            if attempt >= REPLY_TRIES or exc.retry_after > MAX_REPLY_WAIT_S:
                raise
            logger.info("telegram: 429 on a reply; sending again in %s s", exc.retry_after)
            await asyncio.sleep(exc.retry_after)
    raise AssertionError("unreachable")


async def with_links_as_text_if_refused(send: Callable[[bool], Awaitable[T]]) -> T:
    """``send(False)``; if Telegram refuses a link button (e.g. a private address), the same
    message again with its links written in the text, rather than losing it."""
    try:
        return await send(False)
    except TelegramBadRequest as exc:
        if not refused_button_url(exc):
            raise
        logger.info("Telegram refused a link button (%s); links go in the text", exc.message)
        return await send(True)


def refused_button_url(exc: TelegramBadRequest) -> bool:
    message = exc.message.lower()
    return "button_url_invalid" in message or ("button url" in message and "invalid" in message)


def not_modified(exc: TelegramBadRequest) -> bool:
    """Telegram refused an edit that would change nothing (a double tap, a repeated alert)."""
    return "message is not modified" in exc.message
