"""The Discord adapter: a commands.Bot subclass over core's command layer."""

from __future__ import annotations

import logging

import discord
from discord.ext import commands

from core.bootstrap import Container

logger = logging.getLogger(__name__)


class ReelayDiscordBot(commands.Bot):
    """Receives the container in ``__init__`` and registers its commands in ``setup_hook``."""

    def __init__(self, container: Container) -> None:
        super().__init__(command_prefix="!", intents=discord.Intents.default())
        self.container = container

    async def setup_hook(self) -> None:
        @self.tree.command(name="help", description="What Reelay can do from this chat")
        async def help_command(interaction: discord.Interaction) -> None:
            await interaction.response.send_message(
                "Reelay runs your Instagram from this chat. Use /link CODE to link this channel.",
                ephemeral=True,
            )

        await self.tree.sync()


async def run_discord(container: Container, token: str) -> None:
    """Connect to Discord until cancelled."""
    bot = ReelayDiscordBot(container)
    try:
        await bot.start(token)
    finally:
        await bot.close()
