"""The comments API against the sandbox Instagram: list a post's comments, hide, reply and
delete one; an Idempotency-Key makes a repeated POST answer the first result."""

from __future__ import annotations

from typing import Any

import pytest

from core.db.models import Role
from core.settings import Settings
from tests.panel.helpers import token_for
from tests.panel.sandbox_world import IG_ID, World, sandbox_world


@pytest.fixture
def settings(settings_factory: Any, sandbox: Any) -> Settings:
    made: Settings = settings_factory(sandbox_url=sandbox.url)
    return made


@pytest.fixture
async def world(client: Any, container: Any, sandbox: Any) -> World:
    return await sandbox_world(client, container, sandbox)


async def test_list_hide_reply_and_delete_through_the_api(
    client: Any, world: World, sandbox: Any
) -> None:
    _, secret = await token_for(world.owner, Role.EDITOR)
    auth = {"Authorization": f"Bearer {secret}"}
    media = sandbox.state.feed(IG_ID)[0]
    first = sandbox.state.add_comment(media.id, from_id="555", username="spam_bot", text="spam")
    second = sandbox.state.add_comment(media.id, from_id="556", username="fan", text="Love it")
    listed = await client.get(f"/api/v1/media/{media.id}/comments?limit=1", headers=auth)
    assert listed.status_code == 200
    body = await listed.get_json()
    assert [c["id"] for c in body["items"]] == [first.id] and body["next_cursor"]
    older = await client.get(
        f"/api/v1/media/{media.id}/comments?limit=1&cursor={body['next_cursor']}", headers=auth
    )
    assert [c["id"] for c in (await older.get_json())["items"]] == [second.id]

    keyed = {**auth, "Idempotency-Key": "hide-spam-1"}
    hidden = await client.post(f"/api/v1/comments/{first.id}/hide", json={}, headers=keyed)
    assert hidden.status_code == 200
    assert (await hidden.get_json())["status"] == "sent"
    assert sandbox.state.comments[first.id].hidden is True
    sandbox.state.hide_comment(IG_ID, first.id, False)  # someone shows it again in the app
    again = await client.post(f"/api/v1/comments/{first.id}/hide", json={}, headers=keyed)
    assert await again.get_json() == await hidden.get_json()
    assert sandbox.state.comments[first.id].hidden is False  # the retry did not hide it again

    replied = await client.post(
        f"/api/v1/comments/{second.id}/reply", json={"text": "Thank you!"}, headers=auth
    )
    assert (await replied.get_json())["action"] == "reply"
    assert [s.payload for s in sandbox.state.sent if s.kind == "comment_reply"] == [
        {"message": "Thank you!"}
    ]
    empty = await client.post(
        f"/api/v1/comments/{second.id}/reply", json={"text": ""}, headers=auth
    )
    assert empty.status_code == 422
    deleted = await client.delete(f"/api/v1/comments/{first.id}", headers=auth)
    assert (await deleted.get_json())["status"] == "sent"
    assert first.id not in sandbox.state.comments


async def test_viewers_read_and_other_comments_are_not_found(
    client: Any, world: World, sandbox: Any
) -> None:
    _, secret = await token_for(world.owner, Role.VIEWER)
    auth = {"Authorization": f"Bearer {secret}"}
    media = sandbox.state.feed(IG_ID)[0]
    comment = sandbox.state.add_comment(media.id, from_id="555", username="x", text="spam")
    assert (await client.get(f"/api/v1/media/{media.id}/comments", headers=auth)).status_code == 200
    refused = await client.post(f"/api/v1/comments/{comment.id}/hide", json={}, headers=auth)
    assert refused.status_code == 403
    sandbox.state.add_account("17841400000000999", "someone_else")
    theirs = sandbox.state.add_media("17841400000000999", caption="Not ours")
    other = await client.get(f"/api/v1/media/{theirs.id}/comments", headers=auth)
    assert other.status_code == 404


async def test_the_comment_endpoints_are_in_the_openapi_document(client: Any) -> None:
    document = await (await client.get("/api/v1/openapi.json")).get_json()
    paths = document["paths"]
    assert "get" in paths["/api/v1/media/{media_id}/comments"]
    for verb in ("hide", "unhide", "reply", "private-reply"):
        post = paths[f"/api/v1/comments/{{comment_id}}/{verb}"]["post"]
        assert any(p["name"] == "Idempotency-Key" for p in post["parameters"]), verb
    assert "delete" in paths["/api/v1/comments/{comment_id}"]
