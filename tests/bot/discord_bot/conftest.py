"""Fixtures of the Discord adapter's tests: a linked world, the adapter, a fake Discord."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator

import discord
import pytest
import yarl
from aiohttp import web

from bot import discord_bot
from bot.discord_bot import ChatCommands
from core.bootstrap import Container
from core.db.models import Platform
from core.services.chatops import ChatOps
from core.services.smart_replies import SmartReplies
from core.wiring import assemble_services
from tests.bot.discord_bot.fake_discord import FakeDiscord
from tests.bot.discord_bot.interactions import (
    CHANNEL,
    DISCORD_WAITS_S,
    EDITOR,
    NOW,
    RecordingSender,
)
from tests.chatops_world import FixedClock, World, link, make_world


@pytest.fixture(autouse=True)
def quick_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    """Discord's 3 seconds and the adapter's 2, scaled down for the tests."""
    monkeypatch.setattr(discord_bot, "ANSWER_WITHIN_S", DISCORD_WAITS_S / 10)


@pytest.fixture
async def world(container: Container) -> World:
    container.clock = FixedClock(NOW)
    made = await make_world()
    await link(
        made, made.editor, platform=Platform.DISCORD, chat_id=str(CHANNEL), user_id=str(EDITOR)
    )
    return made


@pytest.fixture
def sender() -> RecordingSender:
    return RecordingSender()


@pytest.fixture
def chatops(container: Container, sender: RecordingSender) -> ChatOps:
    services = assemble_services(container)
    return ChatOps(
        container,
        publishing=services.publishing,
        storage=services.storage,
        smart_replies=SmartReplies(ai=None, sender=sender, clock=container.clock),
    )


@pytest.fixture
def cog(chatops: ChatOps) -> ChatCommands:
    return ChatCommands(chatops)


@pytest.fixture
async def fake_discord() -> AsyncIterator[tuple[FakeDiscord, str]]:
    fake = FakeDiscord()
    app = web.Application()
    app.router.add_get("/api/v10/users/@me", fake.me)
    app.router.add_get("/api/v10/oauth2/applications/@me", fake.application)
    app.router.add_put("/api/v10/applications/{app}/commands", fake.commands)
    app.router.add_get("/gateway", fake.gateway)
    app.router.add_post("/api/v10/channels/{channel}/messages", fake.create)
    app.router.add_post("/api/v10/channels/{channel}/threads", fake.thread)
    app.router.add_patch("/api/v10/channels/{channel}", fake.rename)
    app.router.add_patch("/api/v10/channels/{channel}/messages/{message}", fake.edit)
    runner = web.AppRunner(app)
    await runner.setup()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    original = discord.http.Route.BASE
    gateway = discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(f"ws://127.0.0.1:{port}/gateway")
    try:
        yield fake, f"http://127.0.0.1:{port}/api/v10"
    finally:
        discord.http.Route.BASE = original
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = gateway
        await runner.cleanup()
