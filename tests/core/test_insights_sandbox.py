"""Insights sync against the built-in sandbox Instagram, through the real Graph client."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import aiohttp
import pytest
from redis.asyncio import Redis

from core.adapters.call_budget import RedisCallBudget
from core.adapters.graph import GraphClient, MemoryUsageStore
from core.db.models import AccountInsight, InstagramAccount, LoginKind, MediaInsight, Workspace
from core.domain.analytics import ACCOUNT_DAILY_METRICS
from core.ports.clock import SystemClock
from core.ports.instagram import AccountRef
from core.services import insights_sync
from core.settings import Settings

IG_ID = "17841400000000042"


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def _no_sleep(seconds: float) -> None:
    return None


@pytest.fixture
async def world(sandbox: Any, sqlite_db: str, http: aiohttp.ClientSession, redis: Redis) -> Any:
    sandbox.state.add_account(IG_ID, "sandbox_shop")
    token = sandbox.state.issue_token(IG_ID)
    workspace = await Workspace.create(name="Shop")
    account = await InstagramAccount.create(
        workspace=workspace,
        ig_id=IG_ID,
        username="sandbox_shop",
        login_kind=LoginKind.SANDBOX,
        token_encrypted="x",
    )
    settings = Settings(_env_file=None, sandbox_url=sandbox.url)  # type: ignore[call-arg]
    clock = SystemClock()
    deps = insights_sync.SyncDeps(
        client=GraphClient(http, settings, usage=MemoryUsageStore(), sleep=_no_sleep),
        account_ref=lambda a: AccountRef(
            ig_id=a.ig_id, token=token, login_kind="sandbox", account_id=a.id
        ),
        clock=clock,
        budget=RedisCallBudget(redis, clock, per_hour=120, prefix="test:sandbox"),
    )
    return sandbox, account, deps


async def test_daily_sync_and_rerun_against_the_sandbox(world: Any) -> None:
    _, account, deps = world
    first = await insights_sync.sync_account(deps, account.id, insights_sync.DAILY)
    assert first.ok, first.error
    yesterday = deps.clock.now().date() - timedelta(days=1)
    row = await AccountInsight.get(account=account, date=yesterday)
    assert set(ACCOUNT_DAILY_METRICS) <= set(row.metrics)

    again = await insights_sync.sync_account(deps, account.id, insights_sync.DAILY)
    assert again.ok and again.rows_changed == 0
    assert (await AccountInsight.get(account=account, date=yesterday)).updated_at == row.updated_at


async def test_metric_refusal_from_the_sandbox_does_not_fail_the_run(world: Any) -> None:
    sandbox, account, deps = world
    sandbox.faults.fail(
        400, code=10, message="(#10) Not enough followers", path=f"{IG_ID}/insights", times=1
    )
    outcome = await insights_sync.sync_account(deps, account.id, insights_sync.DAILY)
    assert outcome.ok and not outcome.error
    yesterday = deps.clock.now().date() - timedelta(days=1)
    # The batch was refused once; asked one by one, every metric came back.
    assert set(ACCOUNT_DAILY_METRICS) <= set(
        (await AccountInsight.get(account=account, date=yesterday)).metrics
    )


async def test_small_account_skips_follower_count(world: Any) -> None:
    sandbox, account, deps = world
    sandbox.state.accounts[IG_ID].followers_count = 40
    outcome = await insights_sync.sync_account(deps, account.id, insights_sync.DAILY)
    assert outcome.ok and "follower_count" in outcome.unavailable


async def test_rate_limit_from_the_sandbox_defers(world: Any) -> None:
    sandbox, account, deps = world
    sandbox.faults.rate_limit(code=4, regain_minutes=20, times=None)
    outcome = await insights_sync.sync_account(deps, account.id, insights_sync.COUNTS)
    assert not outcome.ok and outcome.deferred_s == 20 * 60
    assert outcome.next_run_at is not None


async def test_media_and_backfill_against_the_sandbox(world: Any) -> None:
    sandbox, account, deps = world
    reel = sandbox.state.add_media(IG_ID, caption="Reel!", media_type="VIDEO", product="REELS")
    photo = sandbox.state.add_media(IG_ID, caption="Photo", media_type="IMAGE", product="FEED")
    outcome = await insights_sync.sync_account(deps, account.id, insights_sync.BACKFILL)
    assert outcome.ok, outcome.error

    today = deps.clock.now().date()
    days = {row.date for row in await AccountInsight.filter(account=account)}
    assert {today - timedelta(days=n) for n in range(1, 31)} <= days
    media = {m.ig_media_id: m for m in await MediaInsight.filter(account=account)}
    assert set(media) == {reel.id, photo.id}
    assert "ig_reels_avg_watch_time" in media[reel.id].metrics
    assert "ig_reels_avg_watch_time" not in media[photo.id].metrics
    assert media[reel.id].metrics["info"]["caption"] == "Reel!"
    assert media[photo.id].permalink.endswith(f"/p/{photo.id}/")
