"""The Health page: a viewer sees each account's verdict, its last webhook, what the comment
sweep caught (with the likely cause), sends by outcome, the token and the publishing quota
read from the sandbox Instagram, times in the viewer's zone (their own, else the team's)."""

from __future__ import annotations

import html
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from core.db.models import (
    InstagramAccount,
    Membership,
    OutboundAction,
    OutboundStatus,
    Role,
    User,
    WebhookEvent,
    Workspace,
)
from core.domain.health import NO_WORKER
from core.services.heartbeat import ALIVE_S, beat
from core.settings import Settings
from tests.panel.helpers import sign_in_as
from tests.panel.sandbox_world import IG_ID, World, sandbox_world


@pytest.fixture
def settings(settings_factory: Any, sandbox: Any) -> Settings:
    made: Settings = settings_factory(sandbox_url=sandbox.url)
    return made


@pytest.fixture
async def world(client: Any, container: Any, sandbox: Any) -> World:
    made = await sandbox_world(client, container, sandbox)
    await Workspace.filter(id=made.account.workspace_id).update(  # type: ignore[attr-defined]
        timezone="America/New_York"
    )
    return made


async def _event(key: str, kind: str, source: str, at: datetime) -> None:
    event = await WebhookEvent.create(
        dedupe_key=key, account_ig_id=IG_ID, kind=kind, payload={}, source=source
    )
    await WebhookEvent.filter(id=event.id).update(received_at=at)


async def _send(world: World, key: str, status: OutboundStatus, error: str = "") -> None:
    action = await OutboundAction.create(
        account=world.account, kind="private_reply", dedupe_key=key, target="c", payload={}
    )
    await OutboundAction.filter(id=action.id).update(status=status, error=error)


async def _as_viewer(client: Any, world: World) -> None:
    viewer = await User.create(email="viewer@example.com", password_hash="-")
    workspace_id = world.account.workspace_id  # type: ignore[attr-defined]
    await Membership.create(workspace_id=workspace_id, user=viewer, role=Role.VIEWER)
    await sign_in_as(client, viewer, workspace_id)


async def test_a_viewer_sees_webhooks_missing_with_the_figures_behind_it(
    client: Any, world: World
) -> None:
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    last = now - timedelta(minutes=20)
    await _event("m1", "message", "webhook", now - timedelta(hours=5))
    await _event("c1", "comment", "webhook", last)
    for n in range(3):
        await _event(f"s{n}", "comment", "sweep", now - timedelta(hours=1))
    await _send(world, "a1", OutboundStatus.SENT)
    await _send(world, "a2", OutboundStatus.SENT)
    await _send(world, "a3", OutboundStatus.SKIPPED, "private reply already used")
    expires = now + timedelta(days=45)
    await InstagramAccount.filter(id=world.account.id).update(token_expires_at=expires)
    await _as_viewer(client, world)

    response = await client.get("/health")
    assert response.status_code == 200
    page = html.unescape(await response.get_data(as_text=True))
    assert "Webhooks missing — check the Meta app's subscriptions" in page
    assert "3 of 4 comments in 24 h were caught by the sweep" in page
    assert "comments webhook not subscribed or app lacks Advanced Access" in page
    assert "Times in America/New_York" in page
    shown = last.astimezone(ZoneInfo("America/New_York"))
    assert f"{shown:%Y-%m-%d %H:%M} (America/New_York)" in page
    assert "2 in 24 h" in page
    assert "3 of 4 comments" in page
    assert "2 sent" in page and "1 skipped" in page
    assert "skipped: private reply already used" in page
    assert "0 of 100 posts in 24 h" in page  # read from the sandbox's content_publishing_limit


async def test_a_viewer_with_a_zone_of_their_own_reads_the_times_in_it(
    client: Any, world: World
) -> None:
    last = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=20)
    await _event("c1", "comment", "webhook", last)
    await _as_viewer(client, world)
    await User.filter(email="viewer@example.com").update(timezone="Asia/Tokyo")

    page = html.unescape(await (await client.get("/health")).get_data(as_text=True))
    assert "Times in Asia/Tokyo" in page
    shown = last.astimezone(ZoneInfo("Asia/Tokyo"))
    assert f"{shown:%Y-%m-%d %H:%M} (Asia/Tokyo)" in page


async def test_a_working_account_says_so(client: Any, world: World, container: Any) -> None:
    now = datetime.now(UTC)
    await beat(container.redis, container.clock.now())  # a worker runs
    await _event("c1", "comment", "webhook", now - timedelta(minutes=5))
    await _send(world, "a1", OutboundStatus.SENT)
    page = html.unescape(await (await client.get("/health")).get_data(as_text=True))
    assert ">Working</span>" in page
    assert "Webhooks missing" not in page
    assert 'id="no-worker"' not in page


async def test_the_page_says_when_no_worker_runs(client: Any, world: World, container: Any) -> None:
    await _as_viewer(client, world)
    page = html.unescape(await (await client.get("/health")).get_data(as_text=True))
    assert NO_WORKER in page  # none has beaten: events, replies and posts wait
    await beat(container.redis, container.clock.now() - timedelta(seconds=ALIVE_S + 5))
    page = html.unescape(await (await client.get("/health")).get_data(as_text=True))
    assert NO_WORKER in page  # the last beat is too old
    await beat(container.redis, container.clock.now())
    page = html.unescape(await (await client.get("/health")).get_data(as_text=True))
    assert NO_WORKER not in page


async def test_a_slow_quota_answer_leaves_the_rest_of_the_page(
    client: Any, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    from core.services import health

    monkeypatch.setattr(health, "QUOTA_TIMEOUT_S", 0.2)
    world.sandbox.faults.latency(2, path="content_publishing_limit")
    response = await client.get("/health")
    assert response.status_code == 200
    page = html.unescape(await response.get_data(as_text=True))
    assert "unknown: Instagram did not answer within 0.2 s" in page
    assert ">Working</span>" in page
