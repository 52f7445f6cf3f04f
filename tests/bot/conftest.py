"""The Telegram tests' fixtures (a fake Bot API, a bot against it, the real dispatcher)."""

from tests.bot.telegram_updates import bot, dispatcher, fake, sender

__all__ = ["bot", "dispatcher", "fake", "sender"]
