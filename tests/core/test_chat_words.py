"""Words that are true: promises only where kept, nothing stored for a refused /schedule,
each problem said once, the panel's real paths, and cancelled posts stay cancelled."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from core.bootstrap import Container
from core.db.models import MediaAsset, Platform, Post, Role
from core.domain.chat import LINK_CODES_MENU, LINK_CODES_PATH
from core.domain.posts import Status
from core.services.chatops import HELP_TEXT, HOW_TO_LINK, ChatOps, ChatUser, IncomingFile
from tests.chatops_world import FixedClock, World, make_world
from tests.core.test_chatops import _chatops, as_role, photo

NOW = datetime(2025, 3, 5, 9, 0, tzinfo=UTC)


@pytest.fixture
async def world(container: Container) -> World:
    container.clock = FixedClock(NOW)
    return await make_world()


@pytest.fixture
def chatops(container: Container) -> ChatOps:
    return _chatops(container)


async def test_post_now_promises_news_only_in_a_chat_that_gets_alerts(
    world: World, chatops: ChatOps
) -> None:
    editor = await as_role(world, Role.EDITOR)
    await chatops.handle_command(editor, "/schedule tomorrow 9am Hello", [photo()])
    post = await Post.get(workspace=world.workspace)
    in_group = await chatops.handle_command(editor, f"/post {post.id} now")
    assert in_group.text == f"Publishing post #{post.id} now. I'll say here when it is live."
    # The same person in a one-to-one chat with the bot, which nobody linked for alerts.
    direct = ChatUser(Platform.TELEGRAM, editor.user_id, editor.user_id, name="tg", direct=True)
    await chatops.handle_command(editor, "/schedule tomorrow 10am Again", [photo("b.jpg")])
    second = await Post.filter(workspace=world.workspace).order_by("-id").first()
    assert second is not None
    reply = await chatops.handle_command(direct, f"/post {second.id} now")
    assert "say here" not in reply.text
    assert "This chat gets no alerts" in reply.text and "/queue" in reply.text


def counted(name: str = "photo.jpg") -> tuple[IncomingFile, list[str]]:
    source = photo(name)
    fetched: list[str] = []

    async def fetch() -> bytes:
        fetched.append(name)
        return await source.fetch()

    return IncomingFile(name, "image/jpeg", fetch, source.size), fetched


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("/schedule tomorrow 9am " + "#tag " * 31, "hashtags"),
        ("/schedule tomorrow 9am " + "x" * 2201, "2200"),
        ("/schedule 2025-03-01 09:00 Too late", "in the past"),
    ],
)
async def test_a_refused_schedule_downloads_and_stores_nothing(
    world: World, chatops: ChatOps, text: str, says: str
) -> None:
    editor = await as_role(world, Role.EDITOR)
    incoming, fetched = counted()
    reply = await chatops.handle_command(editor, text, [incoming])
    assert says in reply.text
    assert fetched == [] and not await MediaAsset.exists() and not await Post.exists()


async def test_media_instagram_refuses_is_removed_again(world: World, chatops: ChatOps) -> None:
    editor = await as_role(world, Role.EDITOR)
    reply = await chatops.handle_command(
        editor, "/schedule tomorrow 9am Panorama", [photo("wide.jpg", 1080, 200)]
    )
    assert "too wide" in reply.text and not await Post.exists()
    assert not await MediaAsset.exists()


async def test_each_problem_is_said_once(world: World, chatops: ChatOps) -> None:
    editor = await as_role(world, Role.EDITOR)
    reply = await chatops.handle_command(editor, "/schedule 2025-03-01 09:00 Late", [photo()])
    lines = reply.text.splitlines()
    assert len(lines) == len(set(lines)) == 1
    assert "in the past" in lines[0]


async def test_reschedule_refuses_a_cancelled_post(world: World, chatops: ChatOps) -> None:
    editor = await as_role(world, Role.EDITOR)
    await chatops.handle_command(editor, "/schedule tomorrow 9am Hello", [photo()])
    post = await Post.get(workspace=world.workspace)
    await chatops.handle_command(editor, f"/cancel {post.id}")
    reply = await chatops.handle_command(editor, f"/reschedule {post.id} fri 18:00")
    assert reply.text.startswith(f"Post #{post.id} was cancelled, so I won't bring it back.")
    await post.refresh_from_db()
    assert post.status is Status.CANCELLED


def test_the_help_names_the_panels_real_place_for_link_codes() -> None:
    assert LINK_CODES_PATH in HELP_TEXT and LINK_CODES_PATH in HOW_TO_LINK
    assert "Settings" not in HELP_TEXT + HOW_TO_LINK
    assert LINK_CODES_PATH.startswith(f"{LINK_CODES_MENU} → ")
