"""Time zones in the panel and the API: proposed at first run, set by admins for the team and
by anyone for themselves, and used for every time the viewer reads or types."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from core.db.models import (
    AuditLog,
    InstagramAccount,
    LoginKind,
    Membership,
    Post,
    Role,
    User,
    Workspace,
)
from core.domain.posts import Kind, Status
from core.services import audit
from tests.panel.helpers import CSRF, csrf_of, sign_in_as, team_of_four, token_for

FAR = datetime(2030, 3, 31, 7, 0, tzinfo=UTC)  # 09:00 in Berlin (CEST), 03:00 in New York


async def _signed_in(client: Any, role: Role) -> dict[Role, Membership]:
    members = await team_of_four()
    user = await User.get(id=members[role].user_id)
    await sign_in_as(client, user, members[role].workspace_id)
    return members


async def _post(members: dict[Role, Membership]) -> Post:
    account = await InstagramAccount.create(
        workspace_id=members[Role.OWNER].workspace_id,
        ig_id="17841400000000001",
        username="shop",
        login_kind=LoginKind.SANDBOX,
        token_encrypted="-",
    )
    return await Post.create(
        workspace_id=account.workspace_id,
        account=account,
        kind=Kind.IMAGE,
        status=Status.SCHEDULED,
        scheduled_at=FAR,
        caption="Spring",
    )


async def test_first_run_takes_the_zone_the_browser_proposes(client: Any) -> None:
    page = await (await client.get("/setup/first-run")).get_data(as_text=True)
    assert 'name="timezone"' in page and "data-browser-zone" in page
    form = {
        "csrf_token": csrf_of(page),
        "workspace": "Shop team",
        "email": "owner@example.com",
        "password": "long enough pw",
        "password_confirm": "long enough pw",
    }
    refused = await client.post("/setup/first-run", form={**form, "timezone": "Berlin"})
    assert refused.status_code == 422
    assert "not a time zone I know" in await refused.get_data(as_text=True)
    assert not await Workspace.exists()
    made = await client.post("/setup/first-run", form={**form, "timezone": "Europe/Berlin"})
    assert made.status_code == 302
    assert (await Workspace.get()).timezone == "Europe/Berlin"


async def test_an_admin_sets_the_team_zone_in_setup(client: Any, sqlite_db: str) -> None:
    members = await _signed_in(client, Role.ADMIN)
    page = await (await client.get("/setup")).get_data(as_text=True)
    assert "The team&#39;s time zone" in page or "The team's time zone" in page
    bad = await client.post("/setup/timezone", form={"csrf_token": CSRF, "timezone": "Mars/Base"})
    assert bad.status_code == 422
    assert "Europe/Berlin" in await bad.get_data(as_text=True)
    saved = await client.post(
        "/setup/timezone", form={"csrf_token": CSRF, "timezone": "europe/berlin"}
    )
    assert saved.status_code == 302
    workspace = await Workspace.get(id=members[Role.ADMIN].workspace_id)
    assert workspace.timezone == "Europe/Berlin"
    assert await AuditLog.exists(action="workspace.timezone_changed", workspace_id=workspace.id)


async def test_an_editor_cannot_set_the_team_zone(client: Any, sqlite_db: str) -> None:
    members = await _signed_in(client, Role.EDITOR)
    refused = await client.post(
        "/setup/timezone", form={"csrf_token": CSRF, "timezone": "Europe/Berlin"}
    )
    assert refused.status_code == 403
    assert (await Workspace.get(id=members[Role.EDITOR].workspace_id)).timezone == "UTC"


async def test_each_person_reads_times_in_their_own_zone(client: Any, sqlite_db: str) -> None:
    members = await _signed_in(client, Role.EDITOR)
    await Workspace.filter(id=members[Role.OWNER].workspace_id).update(timezone="Europe/Berlin")
    post = await _post(members)
    start, end = FAR - timedelta(days=2), FAR + timedelta(days=2)
    url = f"/posts/events?start={start.isoformat()}&end={end.isoformat()}"
    team_view = json.loads(await (await client.get(url)).get_data(as_text=True))
    assert [e["start"] for e in team_view] == ["2030-03-31T09:00:00"]
    calendar = await (await client.get("/posts")).get_data(as_text=True)
    assert "Times are in Europe/Berlin" in calendar

    own = await client.post(
        "/account/timezone", form={"csrf_token": CSRF, "timezone": "America/New_York"}
    )
    assert own.status_code == 302
    assert (await User.get(id=members[Role.EDITOR].user_id)).timezone == "America/New_York"
    mine = json.loads(await (await client.get(url)).get_data(as_text=True))
    assert [e["start"] for e in mine] == ["2030-03-31T03:00:00"]
    # The calendar asks for its days on the viewer's wall clock ("…Z" in FullCalendar's
    # UTC mode): 31 March in New York ends at 04:00 UTC on 1 April, and 03:00 is inside it.
    day = "/posts/events?start=2030-03-31T00:00:00Z&end=2030-04-01T00:00:00Z"
    inside = json.loads(await (await client.get(day)).get_data(as_text=True))
    assert [e["start"] for e in inside] == ["2030-03-31T03:00:00"]
    # From 05:00 New York time on, the post (03:00 there, 07:00 UTC) is no longer in range.
    later = "/posts/events?start=2030-03-31T05:00:00Z&end=2030-04-01T00:00:00Z"
    assert json.loads(await (await client.get(later)).get_data(as_text=True)) == []
    # A drag in the calendar sends the viewer's wall-clock time back.
    moved = await client.post(
        f"/posts/{post.id}/reschedule",
        json={"start": "2030-03-31T10:00:00"},
        headers={"X-CSRF-Token": CSRF},
    )
    assert moved.status_code == 200
    assert (await Post.get(id=post.id)).scheduled_at == datetime(2030, 3, 31, 14, 0, tzinfo=UTC)
    await audit.record(
        "test.seen", actor="x", workspace_id=members[Role.EDITOR].workspace_id, target_type="x"
    )
    logs = await (await client.get("/logs/audit")).get_data(as_text=True)
    assert "America/New_York</time>" in logs and "(UTC)" not in logs

    bad = await client.post("/account/timezone", form={"csrf_token": CSRF, "timezone": "NYC"})
    assert bad.status_code == 422 and "not a time zone I know" in await bad.get_data(as_text=True)
    back = await client.post("/account/timezone", form={"csrf_token": CSRF, "timezone": ""})
    assert back.status_code == 302
    assert (await User.get(id=members[Role.EDITOR].user_id)).timezone is None


async def test_the_api_sets_the_zone_and_speaks_iso_8601_with_offsets(
    client: Any, sqlite_db: str
) -> None:
    members = await team_of_four()
    _, admin = await token_for(members[Role.OWNER], Role.ADMIN)
    _, editor = await token_for(members[Role.OWNER], Role.EDITOR)
    read = await client.get("/api/v1/workspace", headers={"Authorization": f"Bearer {editor}"})
    assert (await read.get_json())["timezone"] == "UTC"
    refused = await client.put(
        "/api/v1/workspace/timezone",
        json={"timezone": "Europe/Berlin"},
        headers={"Authorization": f"Bearer {editor}"},
    )
    assert refused.status_code == 403
    bad = await client.put(
        "/api/v1/workspace/timezone",
        json={"timezone": "Berlin"},
        headers={"Authorization": f"Bearer {admin}"},
    )
    assert bad.status_code == 422
    assert "Europe/Berlin" in (await bad.get_json())["error"]["fields"]["timezone"]
    saved = await client.put(
        "/api/v1/workspace/timezone",
        json={"timezone": "Europe/Berlin"},
        headers={"Authorization": f"Bearer {admin}"},
    )
    assert saved.status_code == 200 and (await saved.get_json())["timezone"] == "Europe/Berlin"

    post = await _post(members)
    moved = await client.post(
        f"/api/v1/posts/{post.id}/schedule",
        json={"scheduled_at": "2030-10-27T09:00:00+01:00"},
        headers={"Authorization": f"Bearer {editor}"},
    )
    assert moved.status_code == 200
    returned = datetime.fromisoformat((await moved.get_json())["scheduled_at"])
    assert returned.utcoffset() is not None
    assert returned == datetime(2030, 10, 27, 8, 0, tzinfo=UTC)
    naive = await client.post(
        f"/api/v1/posts/{post.id}/schedule",
        json={"scheduled_at": "2030-10-27T09:00:00"},
        headers={"Authorization": f"Bearer {editor}"},
    )
    assert naive.status_code == 422
