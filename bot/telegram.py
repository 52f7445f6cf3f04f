"""The Telegram adapter: an aiogram dispatcher over core's command layer."""

from __future__ import annotations

import logging

from aiogram import Bot, Dispatcher, Router
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.filters import Command, CommandStart
from aiogram.types import Message

from core.bootstrap import Container

logger = logging.getLogger(__name__)

HELP_TEXT = (
    "Reelay runs your Instagram from this chat.\n"
    "/link CODE links this chat to your workspace (get a code in the panel)."
)


def create_bot(token: str, api_server: str) -> Bot:
    """A Bot talking to ``api_server`` (Telegram's or a local Bot API server)."""
    session = AiohttpSession(api=TelegramAPIServer.from_base(api_server.rstrip("/")))
    return Bot(token=token, session=session)


def create_dispatcher(container: Container) -> Dispatcher:
    """The dispatcher with every feature router, in order; the container is injected by name."""
    dispatcher = Dispatcher(container=container)
    dispatcher.include_router(_help_router())
    return dispatcher


def _help_router() -> Router:
    router = Router(name="help")

    @router.message(CommandStart())
    @router.message(Command("help"))
    async def help_command(message: Message) -> None:
        await message.answer(HELP_TEXT)

    return router


async def run_telegram(container: Container, token: str) -> None:
    """Long-poll Telegram until cancelled."""
    bot = create_bot(token, str(container.settings.telegram_api_server))
    dispatcher = create_dispatcher(container)
    try:
        await dispatcher.start_polling(bot, handle_signals=False, close_bot_session=True)
    finally:
        await bot.session.close()
