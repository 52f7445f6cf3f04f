"""Starting the bot: waiting out an outage, refusing a bad token."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
from pydantic import AnyHttpUrl

from bot import discord_bot
from bot.discord_bot import run_discord
from core.bootstrap import Container
from core.errors import SettingsError
from core.wiring import assemble_services
from tests.bot.discord_bot.fake_discord import MESSAGE_CONTENT, FakeDiscord


def _against(container: Container, url: str) -> None:
    container.settings = container.settings.model_copy(update={"discord_api_url": AnyHttpUrl(url)})


async def test_the_bot_waits_out_a_discord_outage_at_startup(
    container: Container,
    fake_discord: tuple[FakeDiscord, str],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake, url = fake_discord
    _against(container, url)
    monkeypatch.setattr(discord_bot, "STARTUP_RETRY_S", (0.05,))
    fake.token = "MTIz.TEST-TOKEN"
    fake.outage = 2  # Discord answers 503 twice, then recovers
    fake.commands_down = True  # and cannot update the slash commands: not a reason to stop
    running = asyncio.create_task(run_discord(assemble_services(container), "MTIz.TEST-TOKEN"))
    try:
        for _ in range(200):
            if fake.gateway_connections or running.done():
                break
            await asyncio.sleep(0.05)
        assert not running.done(), running.exception()
        assert fake.gateway_connections == 1
        assert {command["name"] for command in fake.synced[0]} >= {"schedule", "queue", "leads"}
    finally:
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running
    assert caplog.text.count("trying again") == 2
    assert "could not register the slash commands" in caplog.text
    assert "TEST-TOKEN" not in caplog.text


async def test_a_token_discord_refuses_is_a_settings_error(
    container: Container, fake_discord: tuple[FakeDiscord, str]
) -> None:
    fake, url = fake_discord
    _against(container, url)
    fake.token = "MTIz.THE-REAL-ONE"
    with pytest.raises(SettingsError, match="DISCORD_TOKEN") as refused:
        await asyncio.wait_for(run_discord(assemble_services(container), "MTIz.A-TYPO"), 10)
    assert "A-TYPO" not in str(refused.value)
    assert fake.gateway_connections == 0


async def test_a_bot_without_the_message_content_intent_runs_without_reading_threads(
    container: Container,
    fake_discord: tuple[FakeDiscord, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Discord refuses the privileged intent (4014): the bot connects again without it, and
    says what the conversations' threads need, instead of not starting at all."""
    fake, url = fake_discord
    _against(container, url)
    fake.token = "MTIz.TEST-TOKEN"
    fake.message_content_off = True
    running = asyncio.create_task(run_discord(assemble_services(container), "MTIz.TEST-TOKEN"))
    try:
        for _ in range(200):
            if len(fake.identified_intents) >= 2 or running.done():
                break
            await asyncio.sleep(0.05)
        assert not running.done(), running.exception()
        first, second = fake.identified_intents[:2]
        assert first & MESSAGE_CONTENT and not second & MESSAGE_CONTENT
    finally:
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running
    assert "Message Content intent is off" in caplog.text
