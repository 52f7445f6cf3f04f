"""Hand-made bad input to the JSON API: each gets a 4xx with a JSON error, none a 500."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from typing import Any

import pytest
from PIL import Image
from quart.datastructures import FileStorage

from core.db.models import AutomationRule, InstagramAccount, LoginKind, Post, Role
from tests.panel.helpers import sign_in_as, team_of_four, token_for

TOO_BIG = 99_999_999_999_999_999_999  # beyond any integer key the database holds


def _bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


@dataclass
class Workspace:
    """An owner's token, a connected account and one image in the library."""

    secret: str
    account_id: int
    media_id: int

    def post(self, **changes: Any) -> dict[str, Any]:
        return {"kind": "image", "account_id": self.account_id, "media_ids": [self.media_id]} | (
            changes
        )


@pytest.fixture
async def workspace(client: Any, sqlite_db: str, container: Any) -> Workspace:
    members = await team_of_four()
    owner = members[Role.OWNER]
    account = await InstagramAccount.create(
        workspace_id=owner.workspace_id,
        ig_id="17841400000000001",
        username="shop",
        login_kind=LoginKind.SANDBOX,
        token_encrypted=container.secrets.encrypt("token"),
    )
    _, secret = await token_for(owner, Role.OWNER)
    jpeg = io.BytesIO()
    Image.new("RGB", (1080, 1080), (200, 40, 120)).save(jpeg, "JPEG")
    jpeg.seek(0)
    upload = await client.post(
        "/api/v1/media",
        files={"file": FileStorage(jpeg, filename="p.jpg", content_type="image/jpeg")},
        headers=_bearer(secret),
    )
    assert upload.status_code == 201
    return Workspace(secret, account.id, (await upload.get_json())["id"])


async def _error(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, await response.get_data(as_text=True)
    body: dict[str, Any] = (await response.get_json())["error"]
    assert body["status"] == status and body["message"]
    return body


async def test_a_write_to_no_route_is_not_found_rather_than_a_csrf_error(
    client: Any, sqlite_db: str
) -> None:
    members = await team_of_four()
    _, secret = await token_for(members[Role.OWNER], Role.OWNER)
    for method, path in [
        ("PUT", "/api/v1/rules/null,null"),
        ("POST", "/api/v1/posts/abc/cancel"),
        ("DELETE", "/api/v1/nothing-here"),
    ]:
        response = await client.open(path, method=method, json={}, headers=_bearer(secret))
        error = await _error(response, 404)
        assert "CSRF" not in error["message"]
    # A panel form posted to no page is a 404 too, signed in or not.
    owner = members[Role.OWNER]
    await sign_in_as(client, await owner.user, owner.workspace_id)
    assert (await client.post("/posts/abc/cancel")).status_code == 404
    # Whatever takes a route still needs its CSRF token.
    assert (await client.post("/logout")).status_code == 400


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/api/v1/posts/{id}", None),
        ("PUT", "/api/v1/posts/{id}", {"kind": "image"}),
        ("POST", "/api/v1/posts/{id}/schedule", {"scheduled_at": "2030-01-01T09:00:00Z"}),
        ("POST", "/api/v1/posts/{id}/cancel", None),
        ("DELETE", "/api/v1/posts/{id}", None),
        ("POST", "/api/v1/drafts/{id}/approve", None),
        ("POST", "/api/v1/drafts/{id}/reject", {}),
        ("GET", "/api/v1/rules/{id}", None),
    ],
)
async def test_an_id_too_big_for_the_database_is_not_found(
    client: Any, sqlite_db: str, method: str, path: str, body: Any
) -> None:
    members = await team_of_four()
    _, secret = await token_for(members[Role.OWNER], Role.OWNER)
    response = await client.open(
        path.format(id=TOO_BIG), method=method, json=body, headers=_bearer(secret)
    )
    await _error(response, 404)


async def test_a_panel_page_with_an_id_too_big_is_not_found(client: Any, sqlite_db: str) -> None:
    members = await team_of_four()
    owner = members[Role.OWNER]
    await sign_in_as(client, await owner.user, owner.workspace_id)
    response = await client.get(f"/posts/{TOO_BIG}")
    assert response.status_code == 404
    assert await Post.all().count() == 0


async def test_openapi_bounds_ids_in_paths(client: Any) -> None:
    spec = await (await client.get("/api/v1/openapi.json")).get_json()
    (post_id,) = spec["paths"]["/api/v1/posts/{post_id}"]["get"]["parameters"]
    assert post_id["schema"] == {"type": "integer", "minimum": 0, "maximum": 2**31 - 1}


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b"\xff\xfe{}", "not valid UTF-8"),
        (b'{"kind": "image", "caption": "caf\xe9"}', "not valid UTF-8"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
        (b'{"a": ' * 5_000 + b"1" + b"}" * 5_000, "nested too deeply"),
        (b'{"kind": ', "not valid JSON: Expecting value: line 1 column 10"),
    ],
)
async def test_a_json_body_that_cannot_be_read_is_refused_with_the_reason(
    client: Any, workspace: Workspace, body: bytes, says: str
) -> None:
    response = await client.post(
        "/api/v1/posts",
        data=body,
        headers={**_bearer(workspace.secret), "Content-Type": "application/json"},
    )
    assert says in (await _error(response, 400))["message"]
    assert await Post.all().count() == 0


async def test_nul_is_refused_whatever_the_json_media_type(
    client: Any, workspace: Workspace
) -> None:
    response = await client.post(
        "/api/v1/posts",
        data=json.dumps(workspace.post(caption="a\x00b")),
        headers={**_bearer(workspace.secret), "Content-Type": "application/merge-patch+json"},
    )
    assert "NUL" in (await _error(response, 400))["message"]
    assert await Post.all().count() == 0


async def test_text_that_spells_an_escaped_nul_is_saved(client: Any, workspace: Workspace) -> None:
    caption = r"Windows paths like C:\u0000 are fine"
    response = await client.post(
        "/api/v1/posts", json=workspace.post(caption=caption), headers=_bearer(workspace.secret)
    )
    assert response.status_code == 201, await response.get_data(as_text=True)
    assert (await Post.get()).caption == caption


@pytest.mark.parametrize(
    "when",
    [
        "9999-12-31T23:59:59-23:59",  # past the last day datetime holds, once in UTC
        "0001-01-01T00:00:00+01:00",  # before the first one
        "9999-12-31T12:00:00Z",  # would not show in a time zone ahead of UTC
    ],
)
async def test_a_time_at_the_ends_of_the_calendar_is_refused(
    client: Any, workspace: Workspace, when: str
) -> None:
    created = await client.post(
        "/api/v1/posts", json=workspace.post(scheduled_at=when), headers=_bearer(workspace.secret)
    )
    assert "out of range" in (await _error(created, 422))["fields"]["scheduled_at"]
    assert await Post.all().count() == 0
    draft = await client.post(
        "/api/v1/posts", json=workspace.post(), headers=_bearer(workspace.secret)
    )
    post_id = (await draft.get_json())["id"]
    moved = await client.post(
        f"/api/v1/posts/{post_id}/schedule",
        json={"scheduled_at": when},
        headers=_bearer(workspace.secret),
    )
    await _error(moved, 422)
    assert (await Post.get(id=post_id)).scheduled_at is None


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "application/xml", None]
)
async def test_a_json_endpoint_says_it_wants_json(
    client: Any, workspace: Workspace, content_type: str | None
) -> None:
    headers = _bearer(workspace.secret)
    if content_type is not None:
        headers["Content-Type"] = content_type
    response = await client.post(
        "/api/v1/posts", data=json.dumps(workspace.post()), headers=headers
    )
    assert "application/json" in (await _error(response, 415))["message"]
    assert await Post.all().count() == 0


async def test_an_empty_json_body_is_named_as_such(client: Any, workspace: Workspace) -> None:
    headers = {**_bearer(workspace.secret), "Content-Type": "application/json"}
    response = await client.post("/api/v1/rules", data=b"", headers=headers)
    assert "empty" in (await _error(response, 400))["message"]
    # An endpoint without a body does not mind the header.
    draft = await client.post("/api/v1/posts", json=workspace.post(), headers=headers)
    post_id = (await draft.get_json())["id"]
    cancelled = await client.post(f"/api/v1/posts/{post_id}/cancel", data=b"", headers=headers)
    assert cancelled.status_code == 200


async def test_openapi_lists_the_errors_each_operation_answers(
    client: Any, workspace: Workspace
) -> None:
    spec = await (await client.get("/api/v1/openapi.json")).get_json()
    paths = spec["paths"]

    def codes(path: str, method: str) -> set[str]:
        return set(paths[path][method]["responses"])

    for item in paths.values():
        for operation in item.values():
            assert {"400", "401", "403", "404", "422"} <= set(operation["responses"])
            error = operation["responses"]["400"]["content"]["application/json"]["schema"]
            assert error["required"] == ["error"]
    assert {"409", "413", "415"} <= codes("/api/v1/posts/{post_id}", "put")
    assert "409" in codes("/api/v1/posts/{post_id}/cancel", "post")
    assert "409" in codes("/api/v1/posts/{post_id}", "delete")
    assert "409" in codes("/api/v1/drafts/{draft_id}/approve", "post")
    assert "409" not in codes("/api/v1/posts/{post_id}", "get")
    assert "415" not in codes("/api/v1/posts/{post_id}/cancel", "post")

    # What is documented is what a refused second cancel answers.
    headers = _bearer(workspace.secret)
    draft = await client.post("/api/v1/posts", json=workspace.post(), headers=headers)
    post_id = (await draft.get_json())["id"]
    assert (
        await client.post(f"/api/v1/posts/{post_id}/cancel", headers=headers)
    ).status_code == 200
    again = await client.post(f"/api/v1/posts/{post_id}/cancel", headers=headers)
    await _error(again, 409)


async def test_a_keyword_of_accent_marks_alone_is_refused(
    client: Any, workspace: Workspace
) -> None:
    rule = {
        "name": "Price",
        "account_id": workspace.account_id,
        "trigger": "dm",
        "keywords": ["price", "\u0301\u0308"],
        "dm_variations": ["It is 10 EUR"],
    }
    response = await client.post("/api/v1/rules", json=rule, headers=_bearer(workspace.secret))
    assert "matches nothing" in (await _error(response, 422))["fields"]["keywords"]
    assert await AutomationRule.all().count() == 0
    rule["keywords"] = ["café"]
    saved = await client.post("/api/v1/rules", json=rule, headers=_bearer(workspace.secret))
    assert saved.status_code == 201


@pytest.mark.parametrize("media_id", [2**31, 2**70, 0, -1])
async def test_a_media_id_no_row_can_have_is_a_field_error(
    client: Any, workspace: Workspace, media_id: int
) -> None:
    headers = _bearer(workspace.secret)
    created = await client.post(
        "/api/v1/posts", json=workspace.post(media_ids=[media_id]), headers=headers
    )
    assert "media_ids.0" in (await _error(created, 422))["fields"]
    draft = await client.post("/api/v1/posts", json=workspace.post(), headers=headers)
    post_id = (await draft.get_json())["id"]
    edited = await client.put(
        f"/api/v1/posts/{post_id}",
        json={"kind": "image", "media_ids": [workspace.media_id, media_id]},
        headers=headers,
    )
    await _error(edited, 422)
    assert (await Post.get(id=post_id)).version == 1
