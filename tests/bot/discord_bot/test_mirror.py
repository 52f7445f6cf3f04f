"""Conversations' threads on Discord: the notifier opens a thread and posts in it over the
REST API; what the team writes in a conversation's thread is routed to that conversation."""

from __future__ import annotations

import re
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

from aioresponses import aioresponses

from bot.discord_mirror import route_thread_message
from bot.discord_notifier import DiscordNotifier
from core.bootstrap import Container
from core.db.models import ChatThread, Conversation, OutboundAction
from core.wiring import assemble_services
from tests.bot.discord_bot.fake_discord import FakeDiscord
from tests.bot.discord_bot.interactions import CHANNEL, EDITOR, NOW
from tests.chatops_world import World

THREAD = 880000000000000099
VIEWER = 990000000000000002


def thread_message(text: str, *, author: int = EDITOR, thread: int = THREAD, mid: int = 1) -> Any:
    """A message as discord.py hands it to ``on_message``, written in a thread."""
    return SimpleNamespace(
        id=mid,
        content=text,
        attachments=[],
        author=SimpleNamespace(id=author, bot=False, display_name="Eda"),
        channel=SimpleNamespace(id=thread, parent_id=CHANNEL, name="@ana · Ana"),
    )


async def test_notifier_opens_a_thread_and_posts_in_it(
    fake_discord: tuple[FakeDiscord, str],
) -> None:
    fake, url = fake_discord
    notifier = DiscordNotifier("token", url)
    try:
        thread_id = await notifier.open_thread("111", "a follower (id 9001)")
        await notifier.rename_thread("111", thread_id, "@ana · Ana")
        await notifier.post("111", thread_id, "💬 @ana · Ana: hello")
    finally:
        await notifier.close()
    (kind, channel, opened), renamed, (_, posted_in, message) = fake.messages
    assert (kind, channel, opened["name"], opened["type"]) == (
        "thread",
        "111",
        "a follower (id 9001)",
        11,
    )
    assert renamed == ("rename", thread_id, {"name": "@ana · Ana"})
    assert posted_in == thread_id and message["content"] == "💬 @ana · Ana: hello"


async def test_a_message_in_a_conversation_thread_answers_that_person_once(
    container: Container, world: World
) -> None:
    desk = assemble_services(container).chat_desk
    conversation = await Conversation.create(
        account=world.account,
        igsid="9001",
        username="ana",
        last_inbound_at=NOW - timedelta(hours=1),
    )
    await ChatThread.create(
        workspace=world.workspace,
        conversation=conversation,
        platform="discord",
        chat_id=str(CHANNEL),
        thread_id=str(THREAD),
    )
    assert await route_thread_message(desk, thread_message("hi", thread=THREAD + 1)) is None

    with aioresponses() as graph:
        graph.post(
            re.compile(r".*/messages.*"),
            payload={"recipient_id": "9001", "message_id": "m-1"},
            repeat=True,
        )
        first = await route_thread_message(desk, thread_message("We open at 9.", mid=5))
        again = await route_thread_message(desk, thread_message("We open at 9.", mid=5))
    assert first is not None and again == first
    (action,) = await OutboundAction.filter(target="9001")
    assert action.payload["message"] == {"text": "We open at 9."}
    assert action.payload["source"] == "chat"

    done = await route_thread_message(desk, thread_message("/done", mid=6))
    assert done is not None and done.text.startswith("✅")
    assert (await Conversation.get(id=conversation.id)).status == "done"
