"""The chat notifiers a process delivers alerts with.

Given to the bootstrap by every process, so the worker can deliver alerts over the Bot API
and Discord's REST API even when ``reelay bot`` does not run.
"""

from __future__ import annotations

from core.bootstrap import Container
from core.ports.notifier import Notifier


def chat_notifiers(container: Container) -> list[Notifier]:
    """Telegram and Discord notifiers for the tokens set, closed with the container."""
    settings = container.settings
    notifiers: list[Notifier] = []
    if settings.telegram_token is not None:
        # aiogram takes seconds to import: only processes that use it pay for it.
        from bot.telegram import TelegramNotifier, create_bot

        bot = create_bot(
            settings.telegram_token.get_secret_value(), str(settings.telegram_api_server)
        )
        notifiers.append(TelegramNotifier(bot))
        container.on_close(bot.session.close)
    if settings.discord_token is not None:
        from bot.discord_notifier import DiscordNotifier  # discord.py is heavy: only when used

        discord = DiscordNotifier(
            settings.discord_token.get_secret_value(), str(settings.discord_api_url)
        )
        notifiers.append(discord)
        container.on_close(discord.close)
    return notifiers
