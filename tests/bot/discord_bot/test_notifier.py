"""The REST notifier: sends, edits, fits what Discord takes, and translates its errors."""

from __future__ import annotations

import socket

import discord
import pytest

from bot.discord_notifier import DiscordNotifier
from core.domain.chat import Action, ActionVerb, Button, Reply
from core.ports.notifier import ChatDeliveryError, ChatGone, ChatRateLimited
from tests.bot.discord_bot.fake_discord import FakeDiscord


async def test_notifier_sends_buttons_edits_and_translates_errors(
    fake_discord: tuple[FakeDiscord, str],
) -> None:
    fake, url = fake_discord
    notifier = DiscordNotifier("token", url)
    try:
        reply = Reply("Approve?", ((Button("Approve", Action(ActionVerb.APPROVE, 4)),),))
        message_id = await notifier.send("111", reply)
        await notifier.edit("111", message_id, Reply("✅ Approved"))
        fake.gone.add("222")
        with pytest.raises(ChatGone):
            await notifier.send("222", reply)
        fake.limited.add("333")
        with pytest.raises(ChatRateLimited) as limited:
            await notifier.send("333", reply)
        assert limited.value.retry_after_s == pytest.approx(45.0)
    finally:
        await notifier.close()
    (kind, channel, created), (edit_kind, _, edited) = fake.messages
    assert (kind, channel, created["content"]) == ("create", "111", "Approve?")
    button = created["components"][0]["components"][0]
    assert button["custom_id"] == "reelay:approve:4"
    assert edit_kind == "edit" and edited["content"] == "✅ Approved"
    assert edited["components"] == []


async def test_notifier_fits_long_alerts_and_links_discord_refuses(
    fake_discord: tuple[FakeDiscord, str],
) -> None:
    fake, url = fake_discord
    notifier = DiscordNotifier("token", url)
    panel = "http://127.0.0.1:8000/leads"  # the default panel address: no button for it
    try:
        await notifier.send("111", Reply("New lead " * 400, ((Button("Leads", url=panel),),)))
        await notifier.edit("111", "5000", Reply("x" * 2500))
    finally:
        await notifier.close()
    (_, _, sent), (_, _, edited) = fake.messages
    assert len(sent["content"]) <= 2000 and sent["content"].endswith(f"Leads: {panel}")
    assert sent.get("components", []) == []
    assert len(edited["content"]) == 2000 and edited["content"].endswith("…")
    assert fake.refused == ["components.0.components.0.url: Not a well formed URL."]


async def test_notifier_tells_a_dead_chat_from_a_deleted_message_a_block_and_an_outage(
    fake_discord: tuple[FakeDiscord, str],
) -> None:
    fake, url = fake_discord
    notifier = DiscordNotifier("token", url)
    fake.outage = 1
    try:
        with pytest.raises(ChatDeliveryError) as outage:  # Discord down at the first delivery
            await notifier.send("111", Reply("Post published"))
        assert not isinstance(outage.value, ChatGone)
        await notifier.send("111", Reply("Post published"))  # logged in this time
        fake.deleted.add("5000")
        with pytest.raises(ChatDeliveryError) as deleted:
            await notifier.edit("111", "5000", Reply("✅ Approved"))
        assert not isinstance(deleted.value, ChatGone)  # someone deleted the message only
        fake.forbidden.add("222")
        with pytest.raises(ChatGone):  # the bot may no longer write there
            await notifier.send("222", Reply("Post published"))
        fake.cloudflare.add("333")
        with pytest.raises(ChatRateLimited) as limited:
            await notifier.send("333", Reply("Post published"))
        assert limited.value.retry_after_s == pytest.approx(30.0)
    finally:
        await notifier.close()
    assert [(kind, channel) for kind, channel, _ in fake.messages] == [("create", "111")]


async def test_notifier_says_discord_could_not_be_reached() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens here
    original = discord.http.Route.BASE
    notifier = DiscordNotifier("token", f"http://127.0.0.1:{port}/api/v10")
    try:
        with pytest.raises(ChatDeliveryError, match="could not be reached"):
            await notifier.send("111", Reply("Post published"))
    finally:
        await notifier.close()
        discord.http.Route.BASE = original
