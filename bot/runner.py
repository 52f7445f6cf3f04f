"""Starts the chat adapters whose tokens are set."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

from core.wiring import Services

logger = logging.getLogger(__name__)


def enabled_bots(services: Services) -> dict[str, Coroutine[Any, Any, None]]:
    """The adapters to run, by name, for the tokens present in settings."""
    settings = services.container.settings
    bots: dict[str, Coroutine[Any, Any, None]] = {}
    if settings.telegram_token is not None:
        from bot.telegram import run_telegram

        bots["telegram"] = run_telegram(services, settings.telegram_token.get_secret_value())
    if settings.discord_token is not None:
        from bot.discord_bot import run_discord

        bots["discord"] = run_discord(services, settings.discord_token.get_secret_value())
    return bots


async def run_bots(services: Services) -> None:
    """Run every enabled adapter until cancelled; say which ones run."""
    bots = enabled_bots(services)
    if not bots:
        logger.info("no chat bot enabled: set TELEGRAM_TOKEN and/or DISCORD_TOKEN")
        await asyncio.Event().wait()
        return
    logger.info("chat bots enabled: %s", ", ".join(sorted(bots)))
    await asyncio.gather(*bots.values())
