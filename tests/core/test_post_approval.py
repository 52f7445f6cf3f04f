"""Editors' posts that need approval: they wait, an owner or admin approves or rejects them
(in chat or the panel), and only approved posts are queued to publish."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from core.bootstrap import Container
from core.db.models import DomainEvent, Membership, Platform, Post, PublishJob, Role
from core.domain import alerts
from core.domain.chat import Action, ActionVerb
from core.domain.posts import Status
from core.errors import Forbidden
from core.services.chatops import ChatOps, ChatUser, IncomingFile
from core.services.publishing import set_posts_need_approval
from core.wiring import assemble_services
from tests.actors import acting
from tests.chatops_world import FixedClock, World, link, make_world
from tests.media_samples import image_bytes

NOW = datetime(2025, 3, 5, 9, 0, tzinfo=UTC)
CHAT = "-100200"
CTX = alerts.AlertContext(timezone="Europe/Berlin", panel_url="http://panel", workspace="Cafe")


@pytest.fixture
async def world(container: Container) -> World:
    container.clock = FixedClock(NOW)
    made = await make_world()
    for role, user_id in ((Role.OWNER, "1"), (Role.EDITOR, "2"), (Role.VIEWER, "3")):
        await link(made, made.user(role), platform=Platform.TELEGRAM, chat_id=CHAT, user_id=user_id)
    owner = await Membership.get(user=made.owner)
    await set_posts_need_approval(await acting(owner), True)
    return made


@pytest.fixture
def chatops(container: Container) -> ChatOps:
    services = assemble_services(container)
    return ChatOps(container, publishing=services.publishing, storage=services.storage)


def person(user_id: str) -> ChatUser:
    return ChatUser(Platform.TELEGRAM, CHAT, user_id, name=f"tg{user_id}", chat_title="Team")


def photo() -> IncomingFile:
    data = image_bytes(1080, 1080)

    async def fetch() -> bytes:
        return data

    return IncomingFile("p.jpg", "image/jpeg", fetch, len(data))


async def test_an_editors_post_waits_and_only_an_approved_one_is_queued(
    world: World, chatops: ChatOps
) -> None:
    waiting = await chatops.handle_command(person("2"), "/schedule tomorrow 9am Cake", [photo()])
    post = await Post.get(workspace=world.workspace)
    assert post.status is Status.PENDING_APPROVAL
    assert "waits for an owner's or admin's approval" in waiting.text
    assert not await PublishJob.filter(post_id=post.id).exists()
    event = await DomainEvent.get(kind=alerts.POST_APPROVAL_NEEDED)
    card = alerts.render_event(event.kind, {**event.payload, "username": "cafecrema"}, CTX)
    assert card.text.startswith(f"📝 Post #{post.id} by editor@example.com via telegram waits")
    assert Action(ActionVerb.POST_APPROVE, post.id) in [b.action for b in card.all_buttons()]
    # the editor and the viewer cannot approve; the owner can, with the card's button
    for user_id in ("2", "3"):
        refused = await chatops.press(person(user_id), f"postok:{post.id}")
        assert "can't do that here" in refused.text
    approved = await chatops.press(person("1"), f"postok:{post.id}")
    assert approved.text.startswith(f"Approved post #{post.id}: it goes out Thu 6 Mar 2025")
    await post.refresh_from_db()
    assert post.status is Status.SCHEDULED
    assert await PublishJob.filter(post_id=post.id, version=post.version).exists()
    decided = await DomainEvent.get(kind=alerts.POST_APPROVAL_DECIDED)
    assert alerts.render_event(decided.kind, decided.payload, CTX).text.startswith(
        f"👍 Post #{post.id} on an Instagram account was approved by owner@example.com"
    )


async def test_an_approval_after_the_planned_time_asks_for_a_new_time(
    world: World, chatops: ChatOps, container: Container
) -> None:
    await chatops.handle_command(person("2"), "/schedule in 2h Cake", [photo()])
    post = await Post.get(workspace=world.workspace)
    clock = container.clock
    assert isinstance(clock, FixedClock)
    clock.at = NOW + timedelta(hours=3)
    late = await chatops.handle_command(person("1"), f"/approvepost {post.id}")
    assert "has passed: approve it with a new time" in late.text
    await post.refresh_from_db()
    assert post.status is Status.PENDING_APPROVAL
    again = await chatops.handle_command(person("1"), f"/approvepost {post.id} tomorrow 9am")
    assert again.text.startswith(f"Approved post #{post.id}: it goes out Thu 6 Mar 2025, 09:00")


async def test_a_rejected_post_says_why_and_is_never_published(
    world: World, chatops: ChatOps
) -> None:
    await chatops.handle_command(person("2"), "/schedule tomorrow 9am Cake", [photo()])
    post = await Post.get(workspace=world.workspace)
    nothing = await chatops.handle_command(person("1"), f"/rejectpost {post.id}")
    assert "Say which post and why" in nothing.text
    reply = await chatops.handle_command(person("1"), f"/rejectpost {post.id} Wrong price")
    assert reply.text == f"Rejected post #{post.id}: Wrong price. It will not be published."
    await post.refresh_from_db()
    assert post.status is Status.CANCELLED and post.last_error == "Rejected: Wrong price"
    assert not await PublishJob.filter(post_id=post.id).exists()
    decided = await DomainEvent.get(kind=alerts.POST_APPROVAL_DECIDED)
    text = alerts.render_event(decided.kind, decided.payload, CTX).text
    assert "rejected by owner@example.com via telegram: Wrong price" in text


async def test_owners_posts_and_workspaces_without_the_rule_publish_as_before(
    world: World, chatops: ChatOps
) -> None:
    await chatops.handle_command(person("1"), "/schedule tomorrow 9am Owner", [photo()])
    owners = await Post.get(caption="Owner")
    assert owners.status is Status.SCHEDULED
    editor = await Membership.get(user=world.editor)
    with pytest.raises(Forbidden):
        await set_posts_need_approval(await acting(editor), False)
    owner = await Membership.get(user=world.owner)
    await set_posts_need_approval(await acting(owner), False)
    await chatops.handle_command(person("2"), "/schedule tomorrow 9am Editor", [photo()])
    assert (await Post.get(caption="Editor")).status is Status.SCHEDULED


async def test_an_editor_cannot_get_around_approval_by_rescheduling_or_posting_now(
    world: World, chatops: ChatOps
) -> None:
    await chatops.handle_command(person("2"), "/schedule tomorrow 9am Cake", [photo()])
    post = await Post.get(workspace=world.workspace)
    now = await chatops.handle_command(person("2"), f"/post {post.id} now")
    assert "need an owner's or admin's approval" in now.text
    moved = await chatops.handle_command(person("2"), f"/reschedule {post.id} fri 18:00")
    assert "waits for an owner's or admin's approval" in moved.text
    await post.refresh_from_db()
    assert post.status is Status.PENDING_APPROVAL
    assert not await PublishJob.filter(post_id=post.id).exists()
    # an owner's post moved by an editor waits too
    await chatops.handle_command(person("1"), "/schedule tomorrow 10am Owner", [photo()])
    owners = await Post.get(caption="Owner")
    await chatops.handle_command(person("2"), f"/reschedule {owners.id} fri 18:00")
    await owners.refresh_from_db()
    assert owners.status is Status.PENDING_APPROVAL
    assert await DomainEvent.filter(kind=alerts.POST_APPROVAL_NEEDED).count() == 3


async def test_the_composer_refuses_publish_now_to_an_editor_who_needs_approval(
    world: World, container: Container
) -> None:
    from core.errors import ValidationFailed
    from core.services.composer import Composition, compose
    from core.services.publishing import PostInput

    services = assemble_services(container)
    editor = await Membership.get(user=world.editor)
    composition = Composition(
        account_ids=[world.account.id],
        content=PostInput(kind="image", media_ids=(), caption="Now!"),
        action="now",
    )
    with pytest.raises(ValidationFailed) as refused:
        await compose(await acting(editor), services.publishing, composition)
    assert "approval" in refused.value.fields["action"]
    assert not await Post.exists()
