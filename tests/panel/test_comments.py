"""The comments pages against the sandbox Instagram: the posts with recent comments, a post's
comments, and hiding, replying and deleting from the page (htmx or a plain form)."""

from __future__ import annotations

from typing import Any

import pytest

from core.db.models import AuditLog, Membership, Role, User, WebhookEvent, Workspace
from core.domain.zones import shown as shown_time
from core.services import users
from core.settings import Settings
from tests.panel.helpers import CSRF, sign_in_as
from tests.panel.sandbox_world import IG_ID, World, sandbox_world


@pytest.fixture
def settings(settings_factory: Any, sandbox: Any) -> Settings:
    made: Settings = settings_factory(sandbox_url=sandbox.url)
    return made


@pytest.fixture
async def world(client: Any, container: Any, sandbox: Any) -> World:
    made = await sandbox_world(client, container, sandbox)
    await Workspace.filter(id=made.owner.workspace_id).update(timezone="Europe/Berlin")
    return made


async def a_comment(sandbox: Any, text: str) -> Any:
    media = sandbox.state.feed(IG_ID)[0]
    comment = sandbox.state.add_comment(media.id, from_id="555", username="spam_bot", text=text)
    await WebhookEvent.create(
        dedupe_key=f"{IG_ID}:comment:{comment.id}",
        account_ig_id=IG_ID,
        kind="comment",
        payload={},
        rule_name="Spam guard",
        event={
            "kind": "comment",
            "comment_id": comment.id,
            "media_id": media.id,
            "text": text,
            "sender_id": "555",
            "sender_username": "spam_bot",
            "timestamp": "2026-12-04T09:30:00+00:00",
        },
    )
    return comment


async def test_the_posts_list_and_a_posts_comments_in_the_viewers_zone(
    client: Any, world: World, sandbox: Any
) -> None:
    comment = await a_comment(sandbox, "cheap followers at spam.example")
    page = await (await client.get("/inbox/comments")).get_data(as_text=True)
    assert f"/inbox/comments/{comment.media_id}" in page and "1 comment" in page
    assert "cheap followers at spam.example" in page
    assert 'href="/inbox/comments"' in page  # in the menu
    shown = await (await client.get(f"/inbox/comments/{comment.media_id}")).get_data(as_text=True)
    assert "@spam_bot" in shown and "rule “Spam guard”" in shown
    # Meta's time of the comment, told in the team's zone (and named).
    assert shown_time(comment.created_at, "Europe/Berlin") in shown
    assert f"/inbox/comments/{comment.media_id}/{comment.id}/hide" in shown


async def test_hide_reply_and_delete_from_the_page(client: Any, world: World, sandbox: Any) -> None:
    comment = await a_comment(sandbox, "visit rival-shop.example")
    base = f"/inbox/comments/{comment.media_id}/{comment.id}"
    hidden = await client.post(
        f"{base}/hide", form={"csrf_token": CSRF}, headers={"HX-Request": "true"}
    )
    assert hidden.status_code == 200
    assert "Hidden on Instagram" in await hidden.get_data(as_text=True)
    assert sandbox.state.comments[comment.id].hidden is True
    shown = await (await client.get(f"/inbox/comments/{comment.media_id}")).get_data(as_text=True)
    assert "hidden</span>" in shown and "Show again" in shown
    empty = await client.post(
        f"{base}/reply", form={"csrf_token": CSRF, "text": " "}, headers={"HX-Request": "true"}
    )
    assert empty.status_code == 422 and "Write the reply." in await empty.get_data(as_text=True)
    replied = await client.post(f"{base}/reply", form={"csrf_token": CSRF, "text": "Please stop"})
    assert replied.status_code == 302
    assert [s.payload for s in sandbox.state.sent if s.kind == "comment_reply"] == [
        {"message": "Please stop"}
    ]
    deleted = await client.post(f"{base}/delete", form={"csrf_token": CSRF})
    assert deleted.status_code == 302 and comment.id not in sandbox.state.comments
    actions = await AuditLog.filter(target_id=comment.id).values_list("action", flat=True)
    assert sorted(actions) == ["comment.delete", "comment.hide", "comment.reply"]


async def test_a_viewer_reads_but_cannot_act(client: Any, world: World, sandbox: Any) -> None:
    comment = await a_comment(sandbox, "spam")
    viewer = await users.create_user("viewer@example.com", "long enough pw")
    await Membership.create(workspace_id=world.owner.workspace_id, user=viewer, role=Role.VIEWER)
    await sign_in_as(client, await User.get(id=viewer.id), world.owner.workspace_id)
    shown = await (await client.get(f"/inbox/comments/{comment.media_id}")).get_data(as_text=True)
    assert "@spam_bot" in shown and "/hide" not in shown
    refused = await client.post(
        f"/inbox/comments/{comment.media_id}/{comment.id}/hide", form={"csrf_token": CSRF}
    )
    assert refused.status_code == 403
    assert sandbox.state.comments[comment.id].hidden is False


async def test_comment_alerts_are_switched_per_account(client: Any, world: World) -> None:
    url = f"/accounts/{world.account.id}/comment-alerts"
    on = await client.post(url, form={"csrf_token": CSRF, "comment_alerts": "on"})
    assert on.status_code == 302
    await world.account.refresh_from_db()
    assert world.account.comment_alerts is True
    await client.post(url, form={"csrf_token": CSRF})
    await world.account.refresh_from_db()
    assert world.account.comment_alerts is False
