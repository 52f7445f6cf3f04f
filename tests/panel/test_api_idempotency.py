"""The JSON API never duplicates: Idempotency-Key on POSTs, and cursor pagination on lists."""

from __future__ import annotations

import asyncio
import io
from datetime import UTC, datetime, timedelta
from typing import Any

from PIL import Image

from core.db.models import (
    AutomationRule,
    DraftStatus,
    IdempotentRequest,
    InstagramAccount,
    Lead,
    LoginKind,
    Membership,
    Post,
    ReplyDraft,
    Role,
    Trigger,
)
from core.domain.posts import Kind, Status
from core.services import idempotency
from tests.panel.helpers import team_of_four, token_for


def _bearer(secret: str, key: str | None = None) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {secret}"}
    if key is not None:
        headers["Idempotency-Key"] = key
    return headers


async def _account(owner: Membership, container: Any) -> InstagramAccount:
    return await InstagramAccount.create(
        workspace_id=owner.workspace_id,
        ig_id="17841400000000001",
        username="shop",
        login_kind=LoginKind.SANDBOX,
        token_encrypted=container.secrets.encrypt("token"),
    )


def _post_body(account: InstagramAccount, caption: str = "Hello") -> dict[str, Any]:
    when = (datetime.now(UTC) + timedelta(days=1)).replace(microsecond=0)
    return {
        "account_id": account.id,
        "kind": "image",
        "caption": caption,
        "scheduled_at": when.isoformat(),
    }


async def _media(client: Any, secret: str) -> int:
    out = io.BytesIO()
    Image.new("RGB", (1080, 1080), (10, 200, 40)).save(out, "JPEG")
    from quart.datastructures import FileStorage

    upload = await client.post(
        "/api/v1/media",
        files={"file": FileStorage(io.BytesIO(out.getvalue()), "p.jpg", content_type="image/jpeg")},
        headers=_bearer(secret),
    )
    media_id: int = (await upload.get_json())["id"]
    return media_id


async def test_a_post_repeated_with_its_key_creates_one_post(
    client: Any, sqlite_db: str, container: Any
) -> None:
    members = await team_of_four()
    account = await _account(members[Role.OWNER], container)
    _, editor = await token_for(members[Role.OWNER], Role.EDITOR)
    body = {**_post_body(account), "media_ids": [await _media(client, editor)]}

    first = await client.post("/api/v1/posts", json=body, headers=_bearer(editor, "k-1"))
    again = await client.post("/api/v1/posts", json=body, headers=_bearer(editor, "k-1"))
    assert first.status_code == again.status_code == 201
    assert await first.get_json() == await again.get_json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert await Post.filter(workspace_id=account.workspace_id).count() == 1  # type: ignore[attr-defined]

    # The same key with another body is refused and creates nothing.
    other = await client.post(
        "/api/v1/posts", json={**body, "caption": "Other"}, headers=_bearer(editor, "k-1")
    )
    assert other.status_code == 422
    assert "different request" in (await other.get_json())["error"]["message"]
    # A new key is a new request; no key at all is too.
    await client.post("/api/v1/posts", json=body, headers=_bearer(editor, "k-2"))
    await client.post("/api/v1/posts", json=body, headers=_bearer(editor))
    assert await Post.all().count() == 3


async def test_a_refused_request_is_answered_the_same_and_a_failed_one_runs_again(
    client: Any, sqlite_db: str, container: Any
) -> None:
    members = await team_of_four()
    account = await _account(members[Role.OWNER], container)
    _, editor = await token_for(members[Role.OWNER], Role.EDITOR)
    _, other_editor = await token_for(members[Role.OWNER], Role.EDITOR)

    # An invalid body raises before anything is stored: the key is free for a fixed retry.
    bad = {**_post_body(account), "kind": "poster"}
    refused = await client.post("/api/v1/posts", json=bad, headers=_bearer(editor, "fix-me"))
    assert refused.status_code == 422
    assert await IdempotentRequest.all().count() == 0

    # A rule created with a key, retried by another token of the workspace: one rule.
    rule = {
        "account_id": account.id,
        "name": "Price",
        "trigger": "dm",
        "keywords": ["price"],
        "dm_variations": ["Hi"],
    }
    made = await client.post("/api/v1/rules", json=rule, headers=_bearer(editor, "rule-1"))
    assert made.status_code == 201, await made.get_data(as_text=True)
    retried = await client.post("/api/v1/rules", json=rule, headers=_bearer(other_editor, "rule-1"))
    assert (await retried.get_json())["id"] == (await made.get_json())["id"]
    assert await AutomationRule.all().count() == 1

    too_long = await client.post("/api/v1/rules", json=rule, headers=_bearer(editor, "x" * 256))
    assert too_long.status_code == 422
    assert "Idempotency-Key" in (await too_long.get_json())["error"]["fields"]


async def test_a_concurrent_duplicate_is_refused_and_keys_expire(
    client: Any, sqlite_db: str, container: Any
) -> None:
    members = await team_of_four()
    account = await _account(members[Role.OWNER], container)
    _, editor = await token_for(members[Role.OWNER], Role.EDITOR)
    body = {**_post_body(account), "media_ids": [await _media(client, editor)]}
    # The first request holds its key (no answer yet) while a second one arrives.
    now = datetime.now(UTC)
    actor_workspace = account.workspace_id  # type: ignore[attr-defined]
    await IdempotentRequest.create(
        workspace_id=actor_workspace,
        key="busy",
        fingerprint=idempotency.fingerprint("POST", "/api/v1/posts", b"", b"{}"),
        created_at=now,
    )
    busy = await client.post("/api/v1/posts", json={}, headers=_bearer(editor, "busy"))
    assert busy.status_code == 409
    assert "still being processed" in (await busy.get_json())["error"]["message"]

    # Two at once: exactly one runs.
    answers = await asyncio.gather(
        *(
            client.post("/api/v1/posts", json=body, headers=_bearer(editor, "race"))
            for _ in range(3)
        )
    )
    statuses = sorted(a.status_code for a in answers)
    assert statuses[0] == 201 and set(statuses) <= {201, 409}, statuses
    assert await Post.all().count() == 1

    # A day later the key is forgotten and may be used again.
    await IdempotentRequest.all().update(created_at=now - timedelta(hours=25))
    assert await idempotency.forget_old(now) == 2
    again = await client.post("/api/v1/posts", json=body, headers=_bearer(editor, "race"))
    assert again.status_code == 201 and "Idempotent-Replayed" not in again.headers
    assert await Post.all().count() == 2


async def _walk(client: Any, path: str, secret: str, limit: int) -> list[int]:
    seen: list[int] = []
    url = f"{path}{'&' if '?' in path else '?'}limit={limit}"
    for _ in range(20):
        answer = await (await client.get(url, headers=_bearer(secret))).get_json()
        seen += [item["id"] for item in answer["items"]]
        if not answer["next_cursor"]:
            return seen
        url = f"{path}{'&' if '?' in path else '?'}limit={limit}&cursor={answer['next_cursor']}"
    raise AssertionError("the cursor never ended")


async def test_every_list_pages_by_cursor_and_pages_still_work(
    client: Any, sqlite_db: str, container: Any
) -> None:
    members = await team_of_four()
    owner = members[Role.OWNER]
    account = await _account(owner, container)
    _, viewer = await token_for(owner, Role.VIEWER)
    workspace_id = owner.workspace_id
    posts = [
        await Post.create(
            workspace_id=workspace_id, account=account, kind=Kind.IMAGE, status=Status.DRAFT
        )
        for _ in range(5)
    ]
    leads = [
        await Lead.create(
            workspace_id=workspace_id, account=account, igsid=f"9{n}", username=f"p{n}"
        )
        for n in range(5)
    ]
    rules = [
        await AutomationRule.create(
            workspace_id=workspace_id,
            account=account,
            name=f"r{n}",
            trigger=Trigger.DM,
            priority=n % 2,
        )
        for n in range(5)
    ]
    drafts = [
        await ReplyDraft.create(
            workspace_id=workspace_id,
            account=account,
            inbound_text="hi",
            proposed_text="hello",
            status=DraftStatus.PENDING,
            expires_at=datetime.now(UTC) + timedelta(hours=1),
        )
        for _ in range(5)
    ]
    newest_first = sorted((p.id for p in posts), reverse=True)
    assert await _walk(client, "/api/v1/posts", viewer, 2) == newest_first
    assert await _walk(client, "/api/v1/leads", viewer, 2) == sorted(
        (lead.id for lead in leads), reverse=True
    )
    assert await _walk(client, "/api/v1/drafts", viewer, 2) == sorted(
        (d.id for d in drafts), reverse=True
    )
    by_priority = [r.id for r in sorted(rules, key=lambda r: (-r.priority, r.id))]
    assert await _walk(client, "/api/v1/rules", viewer, 2) == by_priority

    # Old clients: page numbers and has_next as before.
    second = await (
        await client.get("/api/v1/posts?page=2&limit=2", headers=_bearer(viewer))
    ).get_json()
    assert [p["id"] for p in second["items"]] == newest_first[2:4] and second["has_next"]
    # A cursor of another list, or made up, is refused with a clear error.
    lead_page = await (
        await client.get("/api/v1/leads?limit=1", headers=_bearer(viewer))
    ).get_json()
    wrong = await client.get(
        f"/api/v1/posts?cursor={lead_page['next_cursor']}", headers=_bearer(viewer)
    )
    assert wrong.status_code == 422
    assert "cursor" in (await wrong.get_json())["error"]["fields"]
    junk = await client.get("/api/v1/drafts?cursor=%%%", headers=_bearer(viewer))
    assert junk.status_code == 422


async def test_openapi_documents_the_idempotency_key(client: Any, app: Any) -> None:
    spec = await (await client.get("/api/v1/openapi.json")).get_json()
    create = spec["paths"]["/api/v1/posts"]["post"]
    assert any(p["name"] == "Idempotency-Key" for p in create["parameters"])
    assert "409" in create["responses"]
    listing = spec["paths"]["/api/v1/posts"]["get"]
    assert {"cursor", "limit", "page"} <= {p["name"] for p in listing["parameters"]}
