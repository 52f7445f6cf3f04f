"""Slash commands: what they do, who may run them, and how they answer within Discord's wait."""

from __future__ import annotations

import asyncio
import hashlib
from datetime import UTC, datetime
from typing import Any

import discord
import pytest
from discord import app_commands

from bot.discord_bot import ChatCommands, ReelayDiscordBot, press
from core.bootstrap import Container
from core.db.models import DraftStatus, Platform, Post, PostMedia
from core.domain.chat import Reply
from core.domain.posts import Kind
from core.services.chatops import HOW_TO_LINK, NOT_LINKED_HERE, ChatOps
from core.wiring import assemble_services
from tests.bot.discord_bot.interactions import (
    CHANNEL,
    DISCORD_WAITS_S,
    NOW,
    Interaction,
    RecordingSender,
    Upload,
)
from tests.chatops_world import World, link, make_draft
from tests.media_samples import image_bytes


async def test_schedule_slash_command_with_attachments_makes_a_carousel(
    world: World, cog: ChatCommands
) -> None:
    interaction = Interaction()
    first, second = image_bytes(1080, 1080), image_bytes(1080, 1081)
    await cog.schedule.callback(  # type: ignore[call-arg]
        cog, interaction, "tomorrow 9am Two cakes", Upload(first), Upload(second, "b.jpg")
    )
    post = await Post.get(workspace=world.workspace)
    assert post.kind is Kind.CAROUSEL and post.caption == "Two cakes"
    items = await PostMedia.filter(post=post).order_by("position").prefetch_related("asset")
    assert [i.asset.checksum for i in items] == [
        hashlib.sha256(first).hexdigest(),
        hashlib.sha256(second).hexdigest(),
    ]
    # answered at once, or deferred and followed up when storing the media took a while
    assert [s.kind for s in interaction.log] in (["send"], ["defer", "followup"])
    answer = interaction.log[-1]
    assert "Thu 6 Mar 2025, 09:00 Europe/Berlin (UTC+01:00)" in (answer.content or "")
    view: discord.ui.View = answer.kwargs["view"]
    assert view.is_persistent()
    assert [c.custom_id for c in view.children] == [  # type: ignore[attr-defined]
        f"reelay:postnow:{post.id}",
        f"reelay:cancel:{post.id}",
    ]


async def test_unlinked_user_is_refused(world: World, cog: ChatCommands) -> None:
    interaction = Interaction(user_id=123)
    await cog.queue.callback(cog, interaction, 1)  # type: ignore[call-arg]
    [answer] = interaction.log
    assert answer.kind == "send" and answer.content == HOW_TO_LINK


async def test_only_a_dm_with_the_bot_acts_without_a_linked_channel(
    world: World, cog: ChatCommands
) -> None:
    await Post.create(
        workspace=world.workspace,
        account=world.account,
        kind=Kind.IMAGE,
        caption="Secret launch menu",
        status="scheduled",
        scheduled_at=datetime(2025, 3, 6, 9, 0, tzinfo=UTC),
    )
    elsewhere = CHANNEL + 1  # a channel nobody linked
    for where in ("server", "private"):
        interaction = Interaction(where=where, channel_id=elsewhere)
        await cog.queue.callback(cog, interaction, 1)  # type: ignore[call-arg]
        [refused] = interaction.log
        assert refused.content == NOT_LINKED_HERE, where
    dm = Interaction(where="bot-dm", channel_id=elsewhere)
    await cog.queue.callback(cog, dm, 1)  # type: ignore[call-arg]
    assert "Secret launch menu" in (dm.log[0].content or "")


async def test_a_viewer_cannot_approve(world: World, chatops: ChatOps) -> None:
    await link(world, world.viewer, platform=Platform.DISCORD, chat_id=str(CHANNEL), user_id="7")
    draft = await make_draft(world, now=NOW)
    interaction = Interaction(7, on_message=True)
    await press(chatops, interaction, f"approve:{draft.id}")  # type: ignore[arg-type]
    [refused] = interaction.log
    assert refused.kind == "send" and refused.kwargs["ephemeral"] is True
    assert "viewer" in (refused.content or "")
    await draft.refresh_from_db()
    assert draft.status is DraftStatus.PENDING


async def test_drafts_past_the_buttons_are_decided_by_slash_command(
    world: World, cog: ChatCommands, sender: RecordingSender
) -> None:
    drafts = [await make_draft(world, now=NOW, proposed_text=f"Reply {n}") for n in range(7)]
    listing = Interaction()
    await cog.approvals.callback(cog, listing)  # type: ignore[call-arg]
    assert "use the slash commands" in (listing.log[-1].content or "")
    approving, editing = Interaction(), Interaction()
    await cog.approve.callback(cog, approving, drafts[5].id)  # type: ignore[call-arg]
    await cog.edit.callback(cog, editing, drafts[6].id, "Our own words")  # type: ignore[call-arg]
    assert [s.text for s in sender.sent] == ["Reply 5", "Our own words"]
    assert "Approved" in (approving.log[-1].content or "")


async def test_read_commands_answer_in_the_channel(world: World, cog: ChatCommands) -> None:
    interaction = Interaction()
    await cog.approvals.callback(cog, interaction)  # type: ignore[call-arg]
    assert interaction.log[0].content == "No AI replies are waiting for approval."
    assert interaction.log[0].kwargs["ephemeral"] is False


async def test_a_slow_schedule_refused_privately_replaces_the_thinking_note(
    world: World, cog: ChatCommands
) -> None:
    interaction = Interaction()
    slow = Upload(b"not a picture", "notes.jpg", delay_s=DISCORD_WAITS_S * 1.5)
    await cog.schedule.callback(cog, interaction, "tomorrow 9am Cake", slow)  # type: ignore[call-arg]
    defer, delete, refused = interaction.log
    assert (defer.kind, delete.kind, refused.kind) == ("defer", "delete-original", "followup")
    assert refused.kwargs["ephemeral"] is True and refused.content
    assert not await Post.exists(workspace=world.workspace)


async def test_a_failing_slash_command_tells_the_user_privately(
    world: World, container: Container, cog: ChatCommands, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*args: Any) -> Reply:
        await asyncio.sleep(DISCORD_WAITS_S)
        raise RuntimeError("database went away")

    monkeypatch.setattr(cog.chatops, "handle_command", broken)
    bot = ReelayDiscordBot(assemble_services(container), cog.chatops)
    interaction = Interaction()
    try:
        with pytest.raises(RuntimeError) as failed:
            await cog.queue.callback(cog, interaction, 1)  # type: ignore[call-arg]
        # discord.py hands what a command raised to the tree's error handler
        error = app_commands.CommandInvokeError(cog.queue, failed.value)
        await bot.tree.on_error(interaction, error)  # type: ignore[arg-type]
    finally:
        await bot.close()
    assert [sent.kind for sent in interaction.log] == ["defer", "delete-original", "followup"]
    sorry = interaction.log[-1]
    assert sorry.kwargs["ephemeral"] is True and "went wrong" in (sorry.content or "")


async def test_timezone_sets_the_members_own_zone_and_refuses_the_teams_to_an_editor(
    world: World, cog: ChatCommands
) -> None:
    team = Interaction()
    await cog.timezone.callback(cog, team, "Asia/Tokyo", False)  # type: ignore[call-arg]
    assert team.log[0].content == "Only owners and admins change the team's time zone."
    own = Interaction()
    await cog.timezone.callback(cog, own, "Asia/Tokyo", True)  # type: ignore[call-arg]
    assert "Yours is Asia/Tokyo" in (own.log[0].content or "")
    await world.editor.refresh_from_db()
    assert world.editor.timezone == "Asia/Tokyo"
    await world.workspace.refresh_from_db()
    assert world.workspace.timezone == "Europe/Berlin"
