"""Time zones in chat: the team's zone and each person's own, set and used by /timezone."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from core.bootstrap import Container
from core.db.models import AuditLog, Post, Role, User, Workspace
from core.services.chatops import ChatOps
from tests.chatops_world import FixedClock, World, make_world
from tests.core.test_chatops import _chatops, as_role, photo

NOW = datetime(2026, 3, 28, 12, 0, tzinfo=UTC)  # Saturday; Berlin's clocks go forward tonight


@pytest.fixture
async def world(container: Container) -> World:
    container.clock = FixedClock(NOW)
    return await make_world("UTC")


@pytest.fixture
def chatops(container: Container) -> ChatOps:
    return _chatops(container)


async def test_an_admin_sets_the_team_zone_and_times_are_read_in_it(
    world: World, chatops: ChatOps
) -> None:
    admin = await as_role(world, Role.ADMIN)
    reply = await chatops.handle_command(admin, "/timezone europe/berlin")
    assert reply.text.startswith("The team's time zone is Europe/Berlin.")
    await world.workspace.refresh_from_db()
    assert world.workspace.timezone == "Europe/Berlin"
    assert await AuditLog.exists(action="workspace.timezone_changed")
    scheduled = await chatops.handle_command(admin, "/schedule tomorrow 9am Spring", [photo()])
    post = await Post.get(workspace=world.workspace)
    # 09:00 in Berlin the morning the clocks went forward is 07:00 UTC (CEST, UTC+2).
    assert post.scheduled_at == datetime(2026, 3, 29, 7, 0, tzinfo=UTC)
    assert "Sun 29 Mar 2026, 09:00 Europe/Berlin (UTC+02:00)" in scheduled.text


async def test_an_editor_cannot_change_the_team_zone_but_can_set_their_own(
    world: World, chatops: ChatOps
) -> None:
    editor = await as_role(world, Role.EDITOR)
    refused = await chatops.handle_command(editor, "/timezone Europe/Berlin")
    assert refused.text == "Only owners and admins change the team's time zone."
    assert (await Workspace.get(id=world.workspace.id)).timezone == "UTC"
    own = await chatops.handle_command(editor, "/timezone me America/New_York")
    assert "Yours is America/New_York" in own.text
    assert (await User.get(id=world.editor.id)).timezone == "America/New_York"
    scheduled = await chatops.handle_command(editor, "/schedule tomorrow 9am Bagels", [photo()])
    post = await Post.get(workspace=world.workspace)
    assert post.scheduled_at == datetime(2026, 3, 29, 13, 0, tzinfo=UTC)  # EDT, UTC-4
    assert "09:00 America/New_York (UTC-04:00)" in scheduled.text
    # A teammate without a zone of their own still types in the team's.
    viewer = await as_role(world, Role.VIEWER, user_id="777")
    queue = await chatops.handle_command(viewer, "/queue")
    assert "times in UTC" in queue.text and "Sun 29 Mar 13:00" in queue.text
    back = await chatops.handle_command(editor, "/timezone me team")
    assert "You use the team's" in back.text
    assert (await User.get(id=world.editor.id)).timezone is None


async def test_an_unknown_zone_is_refused_with_an_example(world: World, chatops: ChatOps) -> None:
    owner = await as_role(world, Role.OWNER)
    reply = await chatops.handle_command(owner, "/timezone Berlin")
    assert reply.text.splitlines() == [
        "'Berlin' is not a time zone I know. Use an IANA name like Europe/Berlin, "
        "America/New_York or UTC.",
        "Usage: /timezone Europe/Berlin (the team's), /timezone me Europe/Berlin (yours), "
        "/timezone me team (back to the team's)",
    ]
    assert (await Workspace.get(id=world.workspace.id)).timezone == "UTC"


async def test_timezone_alone_says_which_zones_apply(world: World, chatops: ChatOps) -> None:
    viewer = await as_role(world, Role.VIEWER)
    reply = await chatops.handle_command(viewer, "/timezone")
    assert reply.text.splitlines()[0] == "The team's time zone is UTC."
    assert "/timezone me Europe/Berlin" in reply.text
