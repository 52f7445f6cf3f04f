"""The JSON API: tokens and roles, validation errors, endpoints, OpenAPI, generated input."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from openapi_spec_validator import validate
from PIL import Image
from quart.datastructures import FileStorage

from core.db.models import (
    AuditLog,
    DraftStatus,
    InstagramAccount,
    Lead,
    LoginKind,
    MediaAsset,
    Membership,
    Post,
    PublishJob,
    ReplyDraft,
    Role,
)
from core.domain.posts import Kind, Status
from core.services import api_tokens, team
from tests.actors import acting
from tests.panel.helpers import sign_in_as, team_of_four, token_for


def _bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


async def _account(owner: Membership, container: Any) -> InstagramAccount:
    return await InstagramAccount.create(
        workspace_id=owner.workspace_id,
        ig_id="17841400000000001",
        username="shop",
        login_kind=LoginKind.SANDBOX,
        token_encrypted=container.secrets.encrypt("token"),
    )


def _jpeg() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (1080, 1080), (200, 40, 120)).save(out, "JPEG")
    return out.getvalue()


async def test_tokens_authenticate_scope_and_revoke(client: Any, sqlite_db: str) -> None:
    members = await team_of_four()
    owner = members[Role.OWNER]
    _, viewer = await token_for(owner, Role.VIEWER)
    editor_token, editor = await token_for(owner, Role.EDITOR)

    missing = await client.get("/api/v1/me")
    assert missing.status_code == 401
    assert "API token" in (await missing.get_json())["error"]["message"]
    assert missing.headers["WWW-Authenticate"].startswith("Bearer")
    assert (await client.get("/api/v1/me", headers=_bearer("rly_wrong"))).status_code == 401

    me = await client.get("/api/v1/me", headers=_bearer(viewer))
    assert me.status_code == 200 and (await me.get_json())["role"] == "viewer"

    # A viewer token reads but cannot write; an editor token can.
    refused = await client.post("/api/v1/posts", json={}, headers=_bearer(viewer))
    assert refused.status_code == 403
    assert "needs editor" in (await refused.get_json())["error"]["message"]
    invalid = await client.post("/api/v1/posts", json={}, headers=_bearer(editor))
    assert invalid.status_code == 422

    await api_tokens.revoke_token(await acting(owner), editor_token.id, datetime.now(UTC))
    assert (await client.get("/api/v1/me", headers=_bearer(editor))).status_code == 401


async def test_tokens_follow_their_makers_current_rights(client: Any, sqlite_db: str) -> None:
    members = await team_of_four()
    owner, admin = members[Role.OWNER], members[Role.ADMIN]
    made = await api_tokens.create_token(await acting(admin), "admin's", Role.ADMIN)
    as_owner = await acting(owner)
    await team.change_role(as_owner, admin.id, Role.VIEWER)
    me = await client.get("/api/v1/me", headers=_bearer(made.secret))
    assert (await me.get_json())["role"] == "viewer"
    refused = await client.post("/api/v1/rules", json={}, headers=_bearer(made.secret))
    assert refused.status_code == 403

    await team.change_role(as_owner, admin.id, Role.ADMIN)
    await sign_in_as(client, await owner.user)
    page = await (await client.get("/settings/api-tokens")).get_data(as_text=True)
    assert "admin@example.com" in page
    await team.remove_member(as_owner, admin.id, now=datetime.now(UTC))
    gone = await client.post("/api/v1/rules", json={}, headers=_bearer(made.secret))
    assert gone.status_code == 401


async def test_invalid_input_is_reported_per_field(client: Any, sqlite_db: str) -> None:
    members = await team_of_four()
    _, editor = await token_for(members[Role.OWNER], Role.EDITOR)
    response = await client.post(
        "/api/v1/posts", json={"kind": "poster", "caption": 3}, headers=_bearer(editor)
    )
    body = await response.get_json()
    assert response.status_code == 422
    assert body["error"]["message"] == "The request is not valid."
    assert {"kind", "account_id", "caption"} <= set(body["error"]["fields"])
    broken = await client.post(
        "/api/v1/posts",
        data="{not json",
        headers={**_bearer(editor), "Content-Type": "application/json"},
    )
    assert broken.status_code == 400
    assert "error" in await broken.get_json()


async def test_upload_create_schedule_and_cancel_a_post(
    client: Any, sqlite_db: str, container: Any
) -> None:
    members = await team_of_four()
    account = await _account(members[Role.OWNER], container)
    _, editor = await token_for(members[Role.OWNER], Role.EDITOR)
    _, viewer = await token_for(members[Role.OWNER], Role.VIEWER)

    upload = await client.post(
        "/api/v1/media",
        files={
            "file": FileStorage(io.BytesIO(_jpeg()), filename="p.jpg", content_type="image/jpeg")
        },
        headers=_bearer(editor),
    )
    assert upload.status_code == 201, await upload.get_data(as_text=True)
    asset = await upload.get_json()
    assert asset["mime"] == "image/jpeg" and asset["width"] == 1080

    when = (datetime.now(UTC) + timedelta(days=1)).replace(microsecond=0)
    created = await client.post(
        "/api/v1/posts",
        json={
            "account_id": account.id,
            "kind": "image",
            "media_ids": [asset["id"]],
            "caption": "Hello #reelay",
            "scheduled_at": when.isoformat(),
        },
        headers=_bearer(editor),
    )
    assert created.status_code == 201, await created.get_data(as_text=True)
    post = await created.get_json()
    assert post["status"] == Status.SCHEDULED and post["media_ids"] == [asset["id"]]

    later = when + timedelta(hours=2)
    moved = await client.post(
        f"/api/v1/posts/{post['id']}/schedule",
        json={"scheduled_at": later.isoformat()},
        headers=_bearer(editor),
    )
    assert moved.status_code == 200
    assert datetime.fromisoformat((await moved.get_json())["scheduled_at"]) == later

    listed = await client.get("/api/v1/posts?status=scheduled", headers=_bearer(viewer))
    assert [p["id"] for p in (await listed.get_json())["items"]] == [post["id"]]

    cancelled = await client.post(f"/api/v1/posts/{post['id']}/cancel", headers=_bearer(editor))
    assert (await cancelled.get_json())["status"] == "cancelled"
    assert (await client.get("/api/v1/posts/999999", headers=_bearer(viewer))).status_code == 404


async def test_delete_a_post_unless_it_is_being_published_or_live(
    client: Any, sqlite_db: str, container: Any
) -> None:
    members = await team_of_four()
    account = await _account(members[Role.OWNER], container)
    _, editor = await token_for(members[Role.OWNER], Role.EDITOR)
    _, viewer = await token_for(members[Role.OWNER], Role.VIEWER)
    when = (datetime.now(UTC) + timedelta(days=1)).replace(microsecond=0)

    async def make(status: Status, **fields: Any) -> Post:
        return await Post.create(
            workspace_id=account.workspace_id,  # type: ignore[attr-defined]
            account=account,
            kind=Kind.IMAGE,
            caption=f"a {status.value} post",
            status=status,
            **fields,
        )

    upload = await client.post(
        "/api/v1/media",
        files={
            "file": FileStorage(io.BytesIO(_jpeg()), filename="p.jpg", content_type="image/jpeg")
        },
        headers=_bearer(editor),
    )
    asset = await upload.get_json()
    created = await client.post(
        "/api/v1/posts",
        json={
            "account_id": account.id,
            "kind": "image",
            "media_ids": [asset["id"]],
            "scheduled_at": when.isoformat(),
        },
        headers=_bearer(editor),
    )
    scheduled = await created.get_json()
    assert scheduled["status"] == "scheduled", scheduled
    assert await PublishJob.filter(post_id=scheduled["id"]).exists()

    refused = await client.delete(f"/api/v1/posts/{scheduled['id']}", headers=_bearer(viewer))
    assert refused.status_code == 403
    deleted = await client.delete(f"/api/v1/posts/{scheduled['id']}", headers=_bearer(editor))
    assert deleted.status_code == 204
    assert not await Post.exists(id=scheduled["id"])
    assert not await PublishJob.filter(post_id=scheduled["id"]).exists()
    gone = await client.get(f"/api/v1/posts/{scheduled['id']}", headers=_bearer(viewer))
    assert gone.status_code == 404
    # Its queued job was cancelled first: when it runs it finds nothing to publish.
    cancelled_first = await AuditLog.get(action="post.cancelled", target_id=scheduled["id"])
    assert cancelled_first.details["reason"] == "cancelled to be deleted"
    entry = await AuditLog.get(action="post.deleted", target_id=scheduled["id"])
    assert entry.actor.startswith("api:") and entry.details["from_status"] == "scheduled"
    assert entry.account_id == account.id
    assert await MediaAsset.exists(id=asset["id"])  # the file stays in the library

    for status in (Status.DRAFT, Status.FAILED, Status.CANCELLED):
        post = await make(status)
        answer = await client.delete(f"/api/v1/posts/{post.id}", headers=_bearer(editor))
        assert answer.status_code == 204, status
        assert not await Post.exists(id=post.id)

    refusals = {
        Status.PUBLISHING: "being published right now",
        Status.RETRYING: "Cancel it first",
        Status.PUBLISHED: "live on Instagram",
    }
    for status, said in refusals.items():
        post = await make(status, media_id="1790001" if status is Status.PUBLISHED else None)
        answer = await client.delete(f"/api/v1/posts/{post.id}", headers=_bearer(editor))
        assert answer.status_code == 409, status
        assert said in (await answer.get_json())["error"]["message"]
        assert (await Post.get(id=post.id)).status is status
    assert await AuditLog.filter(action="post.deleted").count() == 4
    missing = await client.delete("/api/v1/posts/999999", headers=_bearer(editor))
    assert missing.status_code == 404


async def test_other_workspaces_posts_are_invisible(
    client: Any, sqlite_db: str, container: Any
) -> None:
    from core.services import users

    members = await team_of_four()
    account = await _account(members[Role.OWNER], container)
    stranger, workspace = await users.create_owner("other@example.com", "long enough pw")
    stranger_owner = await Membership.get(user=stranger, workspace=workspace)
    _, foreign = await token_for(stranger_owner, Role.OWNER)
    response = await client.post(
        "/api/v1/posts",
        json={"account_id": account.id, "kind": "image", "media_ids": []},
        headers=_bearer(foreign),
    )
    assert response.status_code == 404


async def test_leads_list_and_csv_export(client: Any, sqlite_db: str, container: Any) -> None:
    members = await team_of_four()
    account = await _account(members[Role.OWNER], container)
    _, viewer = await token_for(members[Role.OWNER], Role.VIEWER)
    for number in range(3):
        await Lead.create(
            workspace_id=account.workspace_id,  # type: ignore[attr-defined]
            account=account,
            igsid=f"ig{number}",
            username=f"fan{number}",
            email=f"fan{number}@example.com",
            custom_fields={"size": "=HYPERLINK(1)" if number == 0 else "M"},
        )
    listed = await (await client.get("/api/v1/leads", headers=_bearer(viewer))).get_json()
    assert [lead["username"] for lead in listed["items"]] == ["fan2", "fan1", "fan0"]
    export = await client.get("/api/v1/leads/export", headers=_bearer(viewer))
    assert export.headers["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(await export.get_data(as_text=True))))
    assert rows[0][-1] == "size" and len(rows) == 4
    assert rows[1][-1] == "'=HYPERLINK(1)"  # no formula injection into spreadsheets
    found = await client.get("/api/v1/leads?q=fan1%40example", headers=_bearer(viewer))
    assert [lead["username"] for lead in (await found.get_json())["items"]] == ["fan1"]
    by_id = await client.get("/api/v1/leads/export?q=ig2", headers=_bearer(viewer))
    rows = list(csv.reader(io.StringIO(await by_id.get_data(as_text=True))))
    assert len(rows) == 2 and "fan2" in rows[1]
    too_long = await client.get("/api/v1/leads?q=" + "x" * 101, headers=_bearer(viewer))
    assert too_long.status_code == 422


async def test_drafts_list_and_reject(client: Any, sqlite_db: str, container: Any) -> None:
    members = await team_of_four()
    account = await _account(members[Role.OWNER], container)
    _, editor = await token_for(members[Role.OWNER], Role.EDITOR)
    draft = await ReplyDraft.create(
        workspace_id=account.workspace_id,  # type: ignore[attr-defined]
        account=account,
        inbound_text="price?",
        proposed_text="It is 20 €.",
        target={"igsid": "123"},
        expires_at=datetime.now(UTC) + timedelta(hours=1),
    )
    listed = await (await client.get("/api/v1/drafts", headers=_bearer(editor))).get_json()
    assert [d["id"] for d in listed["items"]] == [draft.id]
    rejected = await client.post(
        f"/api/v1/drafts/{draft.id}/reject", json={}, headers=_bearer(editor)
    )
    assert rejected.status_code == 200, await rejected.get_data(as_text=True)
    assert (await ReplyDraft.get(id=draft.id)).status is DraftStatus.REJECTED
    again = await client.post(f"/api/v1/drafts/{draft.id}/reject", json={}, headers=_bearer(editor))
    assert again.status_code == 409


async def test_openapi_document_is_valid_and_complete(client: Any, app: Any) -> None:
    response = await client.get("/api/v1/openapi.json")
    spec = await response.get_json()
    validate(spec)
    documented = {path for path in spec["paths"]}
    routes = {
        re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)
        for rule in app.app.url_map.iter_rules()
        if rule.rule.startswith("/api/v1/") and rule.endpoint not in {"openapi", "api.docs"}
    }
    assert routes == documented
    assert spec["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    assert not any(path.startswith(("/team", "/setup", "/login")) for path in documented)
    docs = await client.get("/api/v1/docs")
    page = await docs.get_data(as_text=True)
    assert "POST /api/v1/posts" in page and "DELETE /api/v1/posts/{post_id}" in page
    assert "deleting it there is not supported through the API" in page


# ---------------------------------------------------------------- generated input

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)


@pytest.fixture
async def fuzz_target(client: Any, sqlite_db: str, container: Any) -> Any:
    members = await team_of_four()
    await _account(members[Role.OWNER], container)
    _, secret = await token_for(members[Role.OWNER], Role.OWNER)
    spec = await (await client.get("/api/v1/openapi.json")).get_json()
    operations = [
        (method.upper(), path, operation)
        for path, item in spec["paths"].items()
        for method, operation in item.items()
    ]
    return client, secret, operations


def _fields(operation: dict[str, Any], spec_components: dict[str, Any] | None = None) -> list[str]:
    names: list[str] = [p["name"] for p in operation.get("parameters", [])]
    body = operation.get("requestBody", {}).get("content", {})
    for media in body.values():
        names += list(media.get("schema", {}).get("properties", {}))
    return names or ["x"]


@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
async def test_generated_input_never_causes_a_server_error(fuzz_target: Any, data: Any) -> None:
    client, secret, operations = fuzz_target
    method, path, operation = data.draw(st.sampled_from(operations))
    url = path
    for parameter in operation.get("parameters", []):
        if parameter["in"] == "path":
            value = data.draw(st.integers(min_value=0, max_value=2**40) | st.just(1))
            url = url.replace("{" + parameter["name"] + "}", str(value))
    names = _fields(operation)
    document = data.draw(
        st.dictionaries(st.sampled_from(names) | st.text(max_size=8), JSON_VALUES, max_size=6)
        | JSON_VALUES
    )
    query = data.draw(st.dictionaries(st.sampled_from(names), st.text(max_size=20), max_size=3))
    kwargs: dict[str, Any] = {"query_string": query}
    if method != "GET":
        kwargs["json"] = document
    response = await client.open(url, method=method, headers=_bearer(secret), **kwargs)
    assert response.status_code < 500, (method, url, document, await response.get_data())
    if response.status_code >= 400:
        body = await response.get_json()
        assert body["error"]["message"]
