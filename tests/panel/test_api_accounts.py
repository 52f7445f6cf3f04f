"""The JSON API's accounts, account health, analytics series and team: the same services as
the panel's pages, the token's role, its workspace only, and paging."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from core.db.models import (
    AccountInsight,
    AccountStatus,
    InstagramAccount,
    LoginKind,
    Role,
    Workspace,
)
from core.services import users
from tests.fake_meta_insights import FixedClock
from tests.panel.helpers import team_of_four, token_for

NOW = datetime(2025, 3, 20, 10, 0, tzinfo=UTC)
EXPIRES = datetime(2025, 5, 1, 8, 30, tzinfo=UTC)


def _bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


async def _account(workspace_id: int, ig_id: str, **values: Any) -> InstagramAccount:
    return await InstagramAccount.create(
        workspace_id=workspace_id,
        ig_id=ig_id,
        username=f"shop{ig_id[-2:]}",
        login_kind=LoginKind.INSTAGRAM,
        token_encrypted="x",
        **values,
    )


@pytest.fixture
async def team(sqlite_db: str, container: Any) -> dict[str, Any]:
    container.clock = FixedClock(NOW)
    members = await team_of_four()
    owner = members[Role.OWNER]
    ours = owner.workspace_id
    first = await _account(
        ours,
        "1784000001",
        token_expires_at=EXPIRES,
        webhook_subscribed=True,
        status=AccountStatus.NEEDS_RECONNECT,
        status_reason="Instagram refused the token.",
    )
    _, theirs = await users.create_owner("other@example.com", "long enough pw")
    return {
        "owner": owner,
        "first": first,
        "second": await _account(ours, "1784000002", status=AccountStatus.DISCONNECTED),
        "theirs": await _account(theirs.id, "1784000003"),
        "admin": (await token_for(owner, Role.ADMIN))[1],
        "editor": (await token_for(owner, Role.EDITOR))[1],
        "viewer": (await token_for(owner, Role.VIEWER))[1],
    }


async def test_accounts_are_listed_read_and_paged(client: Any, team: dict[str, Any]) -> None:
    viewer = _bearer(team["viewer"])
    listed = await (await client.get("/api/v1/accounts", headers=viewer)).get_json()
    ids = [item["id"] for item in listed["items"]]
    # Without a Meta app, the workspace also has its sandbox demo account, as on the panel.
    assert ids[:2] == [team["first"].id, team["second"].id]
    assert [item["login_kind"] for item in listed["items"][2:]] == ["sandbox"]
    assert team["theirs"].id not in ids
    first = listed["items"][0]
    assert first["ig_id"] == "1784000001"
    assert first["status"] == "needs_reconnect"
    assert first["login_kind"] == "instagram"
    assert first["webhook_subscribed"] is True
    assert datetime.fromisoformat(first["token_expires_at"]) == EXPIRES
    assert datetime.fromisoformat(first["token_expires_at"]).utcoffset() == timedelta(0)
    assert listed["next_cursor"] is None

    page = await (await client.get("/api/v1/accounts?limit=2", headers=viewer)).get_json()
    assert [item["id"] for item in page["items"]] == ids[:2]
    assert page["has_next"] is True
    rest = await client.get(
        f"/api/v1/accounts?limit=2&cursor={page['next_cursor']}", headers=viewer
    )
    body = await rest.get_json()
    assert [item["id"] for item in body["items"]] == ids[2:]
    assert body["next_cursor"] is None
    second = await (await client.get("/api/v1/accounts?limit=2&page=2", headers=viewer)).get_json()
    assert [item["id"] for item in second["items"]] == ids[2:]
    refused = await client.get("/api/v1/accounts?cursor=bm90LWEtY3Vyc29y", headers=viewer)
    assert refused.status_code == 422

    one = await client.get(f"/api/v1/accounts/{team['first'].id}", headers=viewer)
    assert (await one.get_json())["username"] == "shop01"
    other = await client.get(f"/api/v1/accounts/{team['theirs'].id}", headers=viewer)
    assert other.status_code == 404
    assert (await client.get("/api/v1/accounts")).status_code == 401


async def test_an_accounts_health_has_its_figures_and_verdict(
    client: Any, team: dict[str, Any]
) -> None:
    viewer = _bearer(team["viewer"])
    found = await client.get(f"/api/v1/accounts/{team['first'].id}/health", headers=viewer)
    assert found.status_code == 200
    body = await found.get_json()
    assert body["account_id"] == team["first"].id
    assert body["figures"]["active"] is False
    assert body["figures"]["status_reason"] == "Instagram refused the token."
    assert len(body["figures"]["events_per_hour"]) == 24
    assert body["verdict"]["level"] == "broken"
    assert body["verdict"]["text"]
    for account in (team["second"], team["theirs"]):  # disconnected; another workspace's
        gone = await client.get(f"/api/v1/accounts/{account.id}/health", headers=viewer)
        assert gone.status_code == 404


async def test_analytics_series_in_the_workspace_zone(client: Any, team: dict[str, Any]) -> None:
    await Workspace.filter(id=team["owner"].workspace_id).update(timezone="Europe/Berlin")
    for n, day in enumerate((date(2025, 3, 17), date(2025, 3, 18))):
        await AccountInsight.create(
            account=team["first"],
            date=day,
            metrics={"reach": 100 + n, "views": 300, "followers_count": 1000 + n},
        )
    viewer = _bearer(team["viewer"])
    answer = await client.get(
        f"/api/v1/analytics?from=2025-03-17&to=2025-03-19&account_id={team['first'].id}",
        headers=viewer,
    )
    assert answer.status_code == 200
    body = await answer.get_json()
    assert body["timezone"] == "Europe/Berlin"
    assert (body["account_id"], body["account_username"]) == (team["first"].id, "shop01")
    assert (body["first_day"], body["last_day"]) == ("2025-03-17", "2025-03-19")
    assert [(d["day"], d["reach"], d["followers"]) for d in body["days"]] == [
        ("2025-03-17", 100, 1000),
        ("2025-03-18", 101, 1001),
        ("2025-03-19", None, None),
    ]
    assert [d["day"] for d in body["automation"]] == ["2025-03-17", "2025-03-18", "2025-03-19"]

    default = await (await client.get("/api/v1/analytics", headers=viewer)).get_json()
    assert (default["first_day"], default["last_day"]) == ("2025-02-20", "2025-03-19")
    assert default["account_id"] == team["first"].id


@pytest.mark.parametrize(
    ("query", "field"),
    [("from=2025-13-01", "from"), ("to=yesterday", "to"), ("from=2025-03-10&to=2025-03-01", "to")],
)
async def test_bad_analytics_dates_are_refused_by_field(
    client: Any, team: dict[str, Any], query: str, field: str
) -> None:
    answer = await client.get(f"/api/v1/analytics?{query}", headers=_bearer(team["viewer"]))
    assert answer.status_code == 422
    assert field in (await answer.get_json())["error"]["fields"]


async def test_another_workspaces_analytics_are_not_found(
    client: Any, team: dict[str, Any]
) -> None:
    answer = await client.get(
        f"/api/v1/analytics?account_id={team['theirs'].id}", headers=_bearer(team["viewer"])
    )
    assert answer.status_code == 404


async def test_the_team_is_listed_to_admins_and_paged(client: Any, team: dict[str, Any]) -> None:
    for role in ("viewer", "editor"):
        refused = await client.get("/api/v1/team", headers=_bearer(team[role]))
        assert refused.status_code == 403
    admin = _bearer(team["admin"])
    listed = await (await client.get("/api/v1/team", headers=admin)).get_json()
    assert [(m["email"], m["role"]) for m in listed["items"]] == [
        ("owner@example.com", "owner"),
        ("admin@example.com", "admin"),
        ("editor@example.com", "editor"),
        ("viewer@example.com", "viewer"),
    ]
    assert "other@example.com" not in {m["email"] for m in listed["items"]}
    first = await (await client.get("/api/v1/team?limit=3", headers=admin)).get_json()
    assert first["has_next"] is True
    rest = await client.get(f"/api/v1/team?limit=3&cursor={first['next_cursor']}", headers=admin)
    assert [m["email"] for m in (await rest.get_json())["items"]] == ["viewer@example.com"]


async def test_the_new_endpoints_are_in_the_openapi_document(client: Any, sqlite_db: str) -> None:
    document = await (await client.get("/api/v1/openapi.json")).get_json()
    paths = document["paths"]
    for path in ("/api/v1/accounts", "/api/v1/accounts/{account_id}/health", "/api/v1/team"):
        assert "200" in paths[path]["get"]["responses"], path
    parameters = {p["name"] for p in paths["/api/v1/analytics"]["get"]["parameters"]}
    assert {"from", "to", "account_id"} <= parameters
