"""Installs the chat notifiers (and the alert mailer) a process delivers alerts with.

Called by the wiring for every process, so the worker can deliver alerts over the Bot API
and Discord's REST API even when ``reelay bot`` does not run.
"""

from __future__ import annotations

import logging

from core.adapters.smtp import mailer_from_settings
from core.bootstrap import Container
from core.services.notifications import install_mailer, install_notifier

logger = logging.getLogger(__name__)


def install_notifiers(container: Container) -> None:
    """Telegram and Discord notifiers for the tokens set; SMTP when SMTP_HOST is set."""
    settings = container.settings
    if settings.telegram_token is not None:
        # aiogram takes seconds to import: only processes that use it pay for it.
        from bot.telegram import TelegramNotifier, create_bot

        bot = create_bot(
            settings.telegram_token.get_secret_value(), str(settings.telegram_api_server)
        )
        install_notifier(container, TelegramNotifier(bot))
        container.on_close(bot.session.close)
    if settings.discord_token is not None:
        from bot.discord_bot import DiscordNotifier  # discord.py is heavy: only when used

        discord = DiscordNotifier(
            settings.discord_token.get_secret_value(), str(settings.discord_api_url)
        )
        install_notifier(container, discord)
        container.on_close(discord.close)
    mailer = mailer_from_settings(settings)
    if mailer is not None:
        install_mailer(container, mailer)
