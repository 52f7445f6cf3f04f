"""/mirror in a Telegram group, through the real dispatcher and the fake Bot API: only a forum
group (Topics on) mirrors, only an admin chooses it, and /mirror off stops it."""

from __future__ import annotations

from typing import Any

from aiogram import Bot, Dispatcher

from core.bootstrap import Container
from core.db.models import ChatMirror, Platform
from tests.bot.fake_telegram import FakeTelegram
from tests.bot.telegram_updates import GROUP, NOW, message
from tests.chatops_world import FixedClock, link, make_world

OWNER_TG, EDITOR_TG = 5001, 5002


def mirror(text: str, *, user: int, forum: bool) -> dict[str, Any]:
    update = message(text, user=user)
    update["message"]["chat"]["is_forum"] = forum
    return update


async def test_only_an_admin_mirrors_conversations_to_a_forum_group(
    container: Container, dispatcher: Dispatcher, bot: Bot, fake: FakeTelegram
) -> None:
    container.clock = FixedClock(NOW)
    world = await make_world()
    await link(
        world, world.owner, platform=Platform.TELEGRAM, chat_id=str(GROUP), user_id=str(OWNER_TG)
    )
    await link(
        world, world.editor, platform=Platform.TELEGRAM, chat_id=str(GROUP), user_id=str(EDITOR_TG)
    )

    async def said(text: str, *, user: int, forum: bool = True) -> str:
        await dispatcher.feed_raw_update(bot, mirror(text, user=user, forum=forum))
        return str(fake.sent("sendMessage")[-1]["text"])

    assert "turn on Topics" in await said("/mirror here", user=OWNER_TG, forum=False)
    assert "it needs admin" in await said("/mirror here", user=EDITOR_TG)
    assert not await ChatMirror.exists(workspace_id=world.workspace.id)
    assert "mirrored here" in await said("/mirror here", user=OWNER_TG)
    assert await ChatMirror.exists(workspace_id=world.workspace.id)
    assert "no longer mirrored" in await said("/mirror off", user=OWNER_TG)
    assert not await ChatMirror.exists(workspace_id=world.workspace.id)
    assert fake.refused == []
