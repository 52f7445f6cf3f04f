"""Insights sync against stubbed Graph endpoints (aioresponses) through the real Graph client."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from aioresponses import aioresponses
from redis.asyncio import Redis

from core.adapters.call_budget import RedisCallBudget
from core.adapters.graph import GraphClient, MemoryUsageStore
from core.db.models import (
    AccountInsight,
    AccountStatus,
    AuditLog,
    DomainEvent,
    InstagramAccount,
    LoginKind,
    MediaInsight,
    Post,
    SyncState,
    Workspace,
)
from core.domain import analytics
from core.domain.analytics import ACCOUNT_DAILY_METRICS
from core.domain.insights import MEDIA_FALLBACK_METRICS
from core.domain.posts import Kind, Status
from core.ports.instagram import AccountRef
from core.services import insights_sync
from core.settings import Settings
from tests.fake_meta_insights import GRAPH_URL, IG_ID, NOW, TODAY, FakeMeta, FixedClock, day_value


@pytest.fixture
def meta() -> Iterator[FakeMeta]:
    fake = FakeMeta()
    with aioresponses() as mocked:
        mocked.get(re.compile(GRAPH_URL), callback=fake, repeat=True)
        yield fake


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(NOW)


async def _no_sleep(seconds: float) -> None:
    return None


@pytest.fixture
def deps(http: aiohttp.ClientSession, clock: FixedClock, redis: Redis) -> insights_sync.SyncDeps:
    settings = Settings(_env_file=None, meta_app_id="1")  # type: ignore[call-arg]
    graph = GraphClient(http, settings, usage=MemoryUsageStore(), sleep=_no_sleep)
    return insights_sync.SyncDeps(
        client=graph,
        account_ref=lambda a: AccountRef(ig_id=a.ig_id, token="tok", account_id=a.id),
        clock=clock,
        budget=RedisCallBudget(redis, clock, per_hour=120, prefix="test:calls"),
    )


@pytest.fixture
async def account(sqlite_db: str) -> InstagramAccount:
    workspace = await Workspace.create(name="Shop")
    return await InstagramAccount.create(
        workspace=workspace,
        ig_id=IG_ID,
        username="shop",
        login_kind=LoginKind.INSTAGRAM,
        token_encrypted="x",
    )


async def _days(account: InstagramAccount) -> dict[date, dict[str, Any]]:
    rows = await AccountInsight.filter(account=account)
    return {row.date: row.metrics for row in rows}


async def test_daily_sync_stores_previous_days_with_metas_metric_list(
    deps: insights_sync.SyncDeps, meta: FakeMeta, account: InstagramAccount
) -> None:
    outcome = await insights_sync.sync_account(deps, account.id, insights_sync.DAILY)
    assert outcome.ok and not outcome.error
    days = await _days(account)
    yesterday = TODAY - timedelta(days=1)
    for n in (1, 2, 3):
        day = TODAY - timedelta(days=n)
        assert days[day]["reach"] == day_value("reach", day)
        assert days[day]["profile_links_taps"] == day_value("profile_links_taps", day)
        assert days[day]["follower_count"] == day.day  # new followers, on the right day
    assert TODAY - timedelta(days=4) not in {d for d in days if "reach" in days[d]}

    first = meta.insight_calls()[0]
    assert first["metric"].split(",") == list(ACCOUNT_DAILY_METRICS)
    assert "impressions" not in first["metric"] and "profile_views" not in first["metric"]
    assert first["period"] == "day" and first["metric_type"] == "total_value"
    sinces = {
        datetime.fromtimestamp(int(q["since"]), UTC).date()
        for q in meta.insight_calls()
        if q["metric"] != "follower_count"
    }
    assert sinces == {yesterday, yesterday - timedelta(days=1), yesterday - timedelta(days=2)}

    state = await SyncState.get(account=account, kind="daily")
    assert state.last_success_at == NOW and state.last_error == ""
    assert state.next_run_at == datetime(2025, 3, 21, 9, 0, tzinfo=UTC)


async def test_running_a_day_again_changes_nothing(
    deps: insights_sync.SyncDeps, meta: FakeMeta, account: InstagramAccount
) -> None:
    await insights_sync.sync_account(deps, account.id, insights_sync.DAILY)
    await insights_sync.sync_account(deps, account.id, insights_sync.MEDIA)
    before = {(r.id, r.date): (r.metrics, r.updated_at) for r in await AccountInsight.all()}
    media_before = [(r.id, r.metrics, r.updated_at) for r in await MediaInsight.all()]

    again = await insights_sync.sync_account(deps, account.id, insights_sync.DAILY)
    media_again = await insights_sync.sync_account(deps, account.id, insights_sync.MEDIA)

    assert again.ok and again.rows_changed == 0 and media_again.rows_changed == 0
    after = {(r.id, r.date): (r.metrics, r.updated_at) for r in await AccountInsight.all()}
    assert after == before
    assert [(r.id, r.metrics, r.updated_at) for r in await MediaInsight.all()] == media_before


async def test_refused_metric_is_skipped_and_the_run_succeeds(
    deps: insights_sync.SyncDeps, meta: FakeMeta, account: InstagramAccount
) -> None:
    meta.refused = {"profile_links_taps"}
    outcome = await insights_sync.sync_account(deps, account.id, insights_sync.DAILY)

    assert outcome.ok and outcome.unavailable == {"profile_links_taps"}
    day = TODAY - timedelta(days=1)
    stored = (await _days(account))[day]
    assert stored["reach"] == day_value("reach", day)
    assert "profile_links_taps" not in stored
    # After one refusal the other days ask without the refused metric: one call each.
    later = [q["metric"] for q in meta.insight_calls()[-3:]]
    assert all("profile_links_taps" not in m for m in later)
    state = await SyncState.get(account=account, kind="daily")
    assert state.last_success_at == NOW and state.last_error == ""


async def test_follower_count_is_read_from_metas_documented_answer(
    deps: insights_sync.SyncDeps, meta: FakeMeta, account: InstagramAccount
) -> None:
    # Meta's answer as it comes: each value stamped with the end of its day (midnight
    # Pacific, here daylight time: 07:00 UTC), title, description, id and paging, and
    # today's unfinished day too.
    meta.follower_answer = {
        "data": [
            {
                "name": "follower_count",
                "period": "day",
                "values": [
                    {"value": 12, "end_time": "2025-03-18T07:00:00+0000"},
                    {"value": 5, "end_time": "2025-03-19T07:00:00+0000"},
                    {"value": 0, "end_time": "2025-03-20T07:00:00+0000"},
                    {"value": 3, "end_time": "2025-03-21T07:00:00+0000"},
                ],
                "title": "Follower Count",
                "description": "Total number of unique accounts following this profile",
                "id": f"{IG_ID}/insights/follower_count/day",
            }
        ],
        "paging": {
            "previous": "https://graph.instagram.com/v21.0/1784001/insights?since=1",
            "next": "https://graph.instagram.com/v21.0/1784001/insights?until=2",
        },
    }
    outcome = await insights_sync.sync_account(deps, account.id, insights_sync.DAILY)
    assert outcome.ok and "follower_count" not in outcome.unavailable
    days = await _days(account)
    assert {d: m.get("follower_count") for d, m in days.items() if d < TODAY} == {
        date(2025, 3, 17): 12,
        date(2025, 3, 18): 5,
        date(2025, 3, 19): 0,
    }
    assert "follower_count" not in days.get(TODAY, {})


async def test_follower_count_only_asked_from_100_followers(
    deps: insights_sync.SyncDeps, meta: FakeMeta, account: InstagramAccount
) -> None:
    meta.followers = 99
    outcome = await insights_sync.sync_account(deps, account.id, insights_sync.DAILY)

    assert outcome.ok and "follower_count" in outcome.unavailable
    assert not any(q["metric"] == "follower_count" for q in meta.insight_calls())
    assert all("follower_count" not in m for m in (await _days(account)).values())


async def test_follower_count_refused_with_error_10_does_not_fail(
    deps: insights_sync.SyncDeps, meta: FakeMeta, account: InstagramAccount
) -> None:
    meta.refused = {"follower_count"}
    outcome = await insights_sync.sync_account(deps, account.id, insights_sync.DAILY)
    assert outcome.ok and outcome.unavailable == {"follower_count"}
    assert (await _days(account))[TODAY - timedelta(days=1)]["reach"] > 0


async def test_counts_snapshot_keeps_the_latest_of_the_day(
    deps: insights_sync.SyncDeps, meta: FakeMeta, account: InstagramAccount, clock: FixedClock
) -> None:
    await insights_sync.sync_account(deps, account.id, insights_sync.COUNTS)
    meta.followers = 260
    clock.at = NOW + timedelta(minutes=30)
    outcome = await insights_sync.sync_account(deps, account.id, insights_sync.COUNTS)

    assert outcome.calls == 1
    today = (await _days(account))[TODAY]
    assert today == {"followers_count": 260, "follows_count": 12, "media_count": 0}
    state = await SyncState.get(account=account, kind="counts")
    assert state.next_run_at == clock.at + timedelta(minutes=30)


async def test_backfill_fills_30_days_and_skips_stored_days(
    deps: insights_sync.SyncDeps, meta: FakeMeta, account: InstagramAccount
) -> None:
    outcome = await insights_sync.sync_account(deps, account.id, insights_sync.BACKFILL)

    assert outcome.ok
    days = await _days(account)
    filled = sorted(d for d, m in days.items() if "reach" in m)
    assert filled[0] == TODAY - timedelta(days=30) and filled[-1] == TODAY - timedelta(days=1)
    assert len(filled) == 30
    assert days[TODAY]["followers_count"] == 250
    # One follower_count call covers the whole month.
    fc = [q for q in meta.insight_calls() if q["metric"] == "follower_count"]
    assert len(fc) == 1
    assert sum(1 for d in days.values() if "follower_count" in d) == 30
    first_calls = outcome.calls
    assert first_calls <= 40  # 1 profile + 30 days + 1 follower_count + 1 media list

    meta.calls.clear()
    again = await insights_sync.sync_account(deps, account.id, insights_sync.BACKFILL)
    day_calls = [q for q in meta.insight_calls() if q["metric"] != "follower_count"]
    assert len(day_calls) == insights_sync.LAG_DAYS  # only the days Meta may still change
    assert again.rows_changed == 0


async def test_rate_limit_error_defers_the_run(
    deps: insights_sync.SyncDeps, meta: FakeMeta, account: InstagramAccount
) -> None:
    meta.rate_limited = True
    outcome = await insights_sync.sync_account(deps, account.id, insights_sync.DAILY)

    assert not outcome.ok and outcome.deferred_s is not None
    state = await SyncState.get(account=account, kind="daily")
    assert state.next_run_at is not None and state.next_run_at > NOW + timedelta(minutes=1)
    assert state.last_error.startswith("waiting:")
    assert state.last_success_at is None
    # One call only: the client does not hammer a rate-limited account.
    assert len(meta.calls) == 1


async def test_usage_headers_at_100_percent_stop_the_run_before_the_next_call(
    deps: insights_sync.SyncDeps, meta: FakeMeta, account: InstagramAccount
) -> None:
    meta.usage_pct = 100
    outcome = await insights_sync.sync_account(deps, account.id, insights_sync.BACKFILL)

    assert not outcome.ok
    assert len(meta.calls) == 1  # the profile call reported 100 %: nothing more was sent
    assert outcome.deferred_s == 30 * 60  # Meta's estimated_time_to_regain_access, minutes
    state = await SyncState.get(account=account, kind="backfill")
    assert state.next_run_at == NOW + timedelta(minutes=30)


async def test_hourly_budget_stops_a_backfill_which_resumes_next_hour(
    deps: insights_sync.SyncDeps,
    meta: FakeMeta,
    account: InstagramAccount,
    clock: FixedClock,
    redis: Redis,
) -> None:
    small = insights_sync.SyncDeps(
        client=deps.client,
        account_ref=deps.account_ref,
        clock=clock,
        budget=RedisCallBudget(redis, clock, per_hour=12, prefix="test:small"),
    )
    first = await insights_sync.sync_account(small, account.id, insights_sync.BACKFILL)
    assert not first.ok and first.calls == 12
    assert first.next_run_at == datetime(2025, 3, 20, 11, 0, tzinfo=UTC)
    stored = [d for d, m in (await _days(account)).items() if "reach" in m]
    assert len(stored) == 11  # kept: 1 profile call, then 11 days

    clock.at = datetime(2025, 3, 20, 11, 0, 5, tzinfo=UTC)
    meta.calls.clear()
    second = await insights_sync.sync_account(small, account.id, insights_sync.BACKFILL)
    day_calls = [q for q in meta.insight_calls() if q["metric"] != "follower_count"]
    # The stored days are not asked again, apart from the last three (Meta may still count).
    asked = {datetime.fromtimestamp(int(q["since"]), UTC).date() for q in day_calls}
    assert not (set(stored) - set(insights_sync_recent())) & asked
    assert second.calls == 12


def insights_sync_recent() -> list[date]:
    return [TODAY - timedelta(days=n) for n in range(1, insights_sync.LAG_DAYS + 1)]


async def test_dead_token_marks_the_account_for_reconnect(
    deps: insights_sync.SyncDeps, meta: FakeMeta, account: InstagramAccount
) -> None:
    meta.token_dead = True
    outcome = await insights_sync.sync_account(deps, account.id, insights_sync.COUNTS)
    assert not outcome.ok and outcome.error
    await account.refresh_from_db()
    assert account.status == AccountStatus.NEEDS_RECONNECT
    skipped = await insights_sync.sync_account(deps, account.id, insights_sync.COUNTS)
    assert skipped.calls == 0 and "needs reconnect" in skipped.error
    assert await DomainEvent.filter(kind="account.needs_reconnect").count() == 1
    assert await AuditLog.filter(action="account.needs_reconnect").count() == 1


def _media(
    media_id: str, age: timedelta, product: str, media_type: str = "IMAGE"
) -> dict[str, Any]:
    return {
        "id": media_id,
        "caption": f"caption {media_id}",
        "media_type": media_type,
        "media_product_type": product,
        "permalink": f"https://instagram.test/p/{media_id}",
        "timestamp": (NOW - age).strftime("%Y-%m-%dT%H:%M:%S+0000"),
        "like_count": 5,
        "comments_count": 2,
    }


async def test_media_sync_asks_the_right_metrics_per_kind(
    deps: insights_sync.SyncDeps, meta: FakeMeta, account: InstagramAccount
) -> None:
    meta.media = [
        _media("reel1", timedelta(days=2), "REELS", "VIDEO"),
        _media("feed1", timedelta(days=5), "FEED"),
        _media("old1", timedelta(days=45), "FEED"),
        _media("story_old", timedelta(hours=30), "STORY"),
        _media("broken", timedelta(days=1), "FEED"),
    ]
    meta.refused_media = {"broken"}
    story = await Post.create(
        workspace_id=account.workspace_id,
        account=account,
        kind=Kind.STORY,
        status=Status.PUBLISHED,
        ig_media_id="story_new",
        published_at=NOW - timedelta(hours=3),
    )
    outcome = await insights_sync.sync_account(deps, account.id, insights_sync.MEDIA)

    assert outcome.ok
    asked = {p.split("/")[0]: q["metric"].split(",") for p, q in meta.calls if "/insights" in p}
    assert "ig_reels_avg_watch_time" in asked["reel1"] and "views" in asked["reel1"]
    assert "ig_reels_avg_watch_time" not in asked["feed1"]
    assert "old1" not in asked and "story_old" not in asked
    assert "replies" in asked[story.ig_media_id or ""]

    rows = {r.ig_media_id: r for r in await MediaInsight.filter(account=account)}
    assert set(rows) == {"reel1", "feed1", "broken", "story_new"}
    assert rows["reel1"].media_type == "REELS"
    assert rows["reel1"].metrics["ig_reels_avg_watch_time"] > 0
    assert rows["reel1"].metrics["info"]["caption"] == "caption reel1"
    assert rows["feed1"].permalink == "https://instagram.test/p/feed1"
    # A media whose insights are refused keeps the counts from the list; the run goes on.
    assert rows["broken"].metrics["like_count"] == 5 and "reach" not in rows["broken"].metrics
    assert "media:broken" in outcome.unavailable


async def test_dispatch_queues_due_syncs_once_and_respects_back_off(
    deps: insights_sync.SyncDeps, meta: FakeMeta, account: InstagramAccount, clock: FixedClock
) -> None:
    queued: list[tuple[str, tuple[Any, ...], str | None]] = []

    class Queue:
        async def enqueue(
            self,
            function: str,
            *args: Any,
            job_id: str | None = None,
            defer_until: datetime | None = None,
            defer_by_s: float | None = None,
        ) -> bool:
            queued.append((function, args, job_id))
            return True

        async def job_exists(self, job_id: str) -> bool:
            return False

    other = await InstagramAccount.create(
        workspace_id=account.workspace_id,
        ig_id="999",
        username="gone",
        login_kind=LoginKind.INSTAGRAM,
        token_encrypted="x",
        status=AccountStatus.DISCONNECTED,
    )
    assert await insights_sync.dispatch_due(Queue(), clock) == 4
    syncs = [q for q in queued if q[0] == "sync_account_insights"]
    assert {q[1] for q in syncs} == {(account.id, k) for k in ("counts", "daily", "media")}
    # A new connection gets its 30-day back-fill without anyone asking.
    backfill = ("backfill_account_insights", (account.id,), f"insights:backfill:{account.id}")
    assert backfill in queued
    assert all(other.id not in q[1] for q in queued)
    await insights_sync.sync_account(deps, account.id, insights_sync.BACKFILL)

    meta.rate_limited = True
    await insights_sync.sync_account(deps, account.id, insights_sync.COUNTS)
    meta.rate_limited = False
    await insights_sync.sync_account(deps, account.id, insights_sync.DAILY)
    queued.clear()
    clock.at = NOW + timedelta(minutes=4)  # code 17 asks for 5 minutes
    await insights_sync.dispatch_due(Queue(), clock)
    # Counts waits out the limit; daily and the back-fill are done; media never ran alone.
    assert [q[1] for q in queued] == [(account.id, "media")]
    queued.clear()
    clock.at = NOW + timedelta(minutes=6)
    await insights_sync.dispatch_due(Queue(), clock)
    assert [q[1] for q in queued] == [(account.id, "counts"), (account.id, "media")]


async def test_a_deferred_backfill_is_queued_again_when_due(
    deps: insights_sync.SyncDeps, meta: FakeMeta, account: InstagramAccount, clock: FixedClock
) -> None:
    queued: list[str] = []

    class Queue:
        async def enqueue(self, function: str, *args: Any, **options: Any) -> bool:
            queued.append(function)
            return True

        async def job_exists(self, job_id: str) -> bool:
            return False

    meta.rate_limited = True
    deferred = await insights_sync.sync_account(deps, account.id, insights_sync.BACKFILL)
    assert deferred.next_run_at is not None
    await insights_sync.dispatch_due(Queue(), clock)
    assert "backfill_account_insights" not in queued

    meta.rate_limited = False
    clock.at = deferred.next_run_at
    await insights_sync.dispatch_due(Queue(), clock)
    assert "backfill_account_insights" in queued
    done = await insights_sync.sync_account(deps, account.id, insights_sync.BACKFILL)
    assert done.ok and done.next_run_at is None
    queued.clear()
    clock.at += timedelta(days=2)
    await insights_sync.dispatch_due(Queue(), clock)
    assert "backfill_account_insights" not in queued


async def test_daily_sync_against_the_sandbox_stores_new_followers_per_day(
    http: aiohttp.ClientSession, clock: FixedClock, redis: Redis, sqlite_db: str, sandbox: Any
) -> None:
    ig_id = "17841400000000009"
    sandbox.state.add_account(ig_id, "sandbox_shop")  # 128 followers: follower_count is given
    token = sandbox.state.issue_token(ig_id)
    workspace = await Workspace.create(name="Shop")
    account = await InstagramAccount.create(
        workspace=workspace,
        ig_id=ig_id,
        username="sandbox_shop",
        login_kind=LoginKind.SANDBOX,
        token_encrypted="x",
    )
    settings = Settings(_env_file=None, sandbox_url=sandbox.url)  # type: ignore[call-arg]
    deps = insights_sync.SyncDeps(
        client=GraphClient(http, settings, usage=MemoryUsageStore(), sleep=_no_sleep),
        account_ref=lambda a: AccountRef(
            ig_id=a.ig_id, token=token, login_kind="sandbox", account_id=a.id
        ),
        clock=clock,
        budget=RedisCallBudget(redis, clock, per_hour=120, prefix="test:calls"),
    )
    outcome = await insights_sync.sync_account(deps, account.id, insights_sync.DAILY)
    assert outcome.ok and not outcome.unavailable, outcome
    days = await _days(account)
    for n in range(1, insights_sync.LAG_DAYS + 1):
        day = TODAY - timedelta(days=n)
        assert isinstance(days[day].get("follower_count"), int), (day, days[day])
        assert days[day]["reach"] >= 0


def test_only_metrics_valid_in_the_current_graph_version_are_asked() -> None:
    # Removed by Meta: impressions, plays and the old reel counters (2025-04-21, every
    # version), and the time-series profile metrics (v21).
    removed = {
        "impressions",
        "plays",
        "clips_replays_count",
        "ig_reels_aggregated_all_plays_count",
        "profile_views",
        "website_clicks",
        "email_contacts",
        "phone_call_clicks",
        "text_message_clicks",
        "get_directions_clicks",
    }
    asked = {
        *ACCOUNT_DAILY_METRICS,
        *analytics.MEDIA_METRICS,
        *analytics.REEL_EXTRA_METRICS,
        *analytics.STORY_METRICS,
        *MEDIA_FALLBACK_METRICS,
    }
    assert not asked & removed
    assert {"views", "reach", "total_interactions"} <= set(ACCOUNT_DAILY_METRICS)


async def test_the_call_budget_spends_what_fits_and_nothing_when_it_does_not(
    redis: Redis,
) -> None:
    clock = FixedClock(NOW)
    budget = RedisCallBudget(redis, clock, per_hour=5, prefix="test:budget")
    assert await budget.take(7, 3) is None
    wait = await budget.take(7, 3)  # 6 > 5: refused, nothing spent
    hour_ends = (int(NOW.timestamp()) // 3600 + 1) * 3600
    assert wait == pytest.approx(hour_ends - NOW.timestamp())
    assert await budget.take(7, 2) is None  # exactly the 5
    assert await budget.take(7) is not None
    assert await budget.take(8) is None  # another account's budget
    key = f"test:budget:7:{int(NOW.timestamp()) // 3600}"
    assert int(await redis.get(key)) == 5
    assert 0 < await redis.ttl(key) <= 7200
