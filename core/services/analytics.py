"""Analytics queries: the panel's pages, the CSV exports and the chat's ``/stats`` summary.

Account numbers come from ``AccountInsight`` (one row per account and day), post numbers
from the latest ``MediaInsight`` snapshot of each post, automation results from
``OutboundAction``, ``Lead`` and ``RuleStats``. Days are Meta's days for insights and the
workspace's local days for automation results.
"""

from __future__ import annotations

import csv
import io
import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from core.db.models import (
    AccountInsight,
    AutomationRule,
    InstagramAccount,
    Lead,
    MediaInsight,
    OutboundAction,
    OutboundStatus,
    Post,
    RuleStats,
    SyncState,
    Workspace,
)
from core.domain.analytics import (
    ACCOUNT_DAILY_METRICS,
    FOLLOWER_COUNT_METRIC,
    PROFILE_COUNTS,
    Comparison,
    DateRange,
    PeriodTotals,
    PostPerformance,
    as_number,
    compare,
    engagement_rate,
    period_totals,
    post_performance,
    top_posts,
)
from core.domain.insights import posted_at
from core.domain.scope import Actor
from core.domain.spreadsheet import safe_row
from core.errors import NotFound
from core.ports.clock import Clock, SystemClock

logger = logging.getLogger(__name__)

# Outbox kinds (core.services.outbox.ActionKind values) by what a team counts them as.
COMMENT_REPLY_KINDS = frozenset({"public_reply"})
DM_KINDS = frozenset({"private_reply", "dm"})
TOP_POSTS = 5
SYNC_KIND_LABELS = {
    "counts": "Followers and counts",
    "daily": "Daily account metrics",
    "media": "Posts and reels",
    "backfill": "30-day back-fill",
}


# ------------------------------------------------------------------ results


@dataclass(frozen=True)
class DayPoint:
    """One day of an account's numbers (None where Meta gave nothing)."""

    day: date
    followers: float | None
    new_follows: float | None
    reach: float | None
    views: float | None
    interactions: float | None


@dataclass(frozen=True)
class RuleResult:
    """One automation rule's results in the period, beside its all-time counters."""

    rule_id: int
    name: str
    trigger: str
    active: bool
    comments_replied: int
    dms_sent: int
    leads: int
    total_triggers: int
    total_leads: int


@dataclass(frozen=True)
class AutomationResults:
    """What the automations did per day in the period, in total and per rule."""

    days: list[date]
    comments_replied: list[int]
    dms_sent: list[int]
    leads: list[int]
    leads_by_rule: dict[str, list[int]]
    rules: list[RuleResult]

    @property
    def totals(self) -> dict[str, int]:
        return {
            "comments_replied": sum(self.comments_replied),
            "dms_sent": sum(self.dms_sent),
            "leads": sum(self.leads),
        }


@dataclass(frozen=True)
class SyncRow:
    """One account's sync state for one kind of sync."""

    account: str
    kind: str
    label: str
    last_success_at: datetime | None
    last_error: str
    next_run_at: datetime | None


@dataclass(frozen=True)
class Overview:
    """Everything the analytics page shows for one account and period."""

    accounts: list[InstagramAccount]
    account: InstagramAccount | None
    period: DateRange
    compare_to: DateRange
    series: list[DayPoint]
    comparison: Comparison
    top_posts: list[PostPerformance]
    automation: AutomationResults
    sync: list[SyncRow]


@dataclass(frozen=True)
class PostDetail:
    """One post: its latest numbers, its snapshots over time, and the Reelay post if any."""

    account: InstagramAccount
    latest: PostPerformance
    snapshots: list[tuple[date, dict[str, Any]]]
    post: Post | None


@dataclass(frozen=True)
class TopPost:
    caption: str
    permalink: str
    media_type: str
    interactions: int
    reach: int
    views: int
    engagement_rate: float | None


@dataclass(frozen=True)
class StatsSummary:
    """The numbers behind ``/stats``: plain values, no formatting."""

    days: int
    start: date
    end: date
    accounts: int
    followers: int | None
    follower_change: int | None
    reach: int | None
    reach_change_percent: float | None
    views: int | None
    views_change_percent: float | None
    interactions: int | None
    engagement_rate: float | None
    automation_start: date
    automation_end: date
    comments_replied: int
    dms_sent: int
    leads: int
    top_post: TopPost | None


# ------------------------------------------------------------------ helpers


def workspace_zone(workspace: Workspace) -> ZoneInfo:
    try:
        return ZoneInfo(workspace.timezone or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        logger.warning("workspace %s has an unknown timezone %r", workspace.id, workspace.timezone)
        return ZoneInfo("UTC")


def default_period(workspace: Workspace, clock: Clock, days: int = 28) -> DateRange:
    """The ``days`` whole days up to yesterday in the workspace's timezone."""
    today = clock.now().astimezone(workspace_zone(workspace)).date()
    return DateRange.last(days, ending=today - timedelta(days=1))


def live_period(workspace: Workspace, clock: Clock, days: int = 28) -> DateRange:
    """The ``days`` days up to and including today in the workspace's timezone.

    For automation results: Reelay's own records are up to date, while Instagram's
    insights lag (so :func:`default_period` ends yesterday).
    """
    today = clock.now().astimezone(workspace_zone(workspace)).date()
    return DateRange.last(days, ending=today)


async def zone_and_default_period(actor: Actor, clock: Clock) -> tuple[ZoneInfo, DateRange]:
    """The zone the workspace's analytics days are counted in, and the page's default period."""
    workspace = await _workspace(actor)
    return workspace_zone(workspace), default_period(workspace, clock)


def _int(value: float | None) -> int | None:
    return None if value is None else round(value)


async def _workspace(actor: Actor) -> Workspace:
    workspace = await Workspace.get_or_none(id=actor.workspace_id)
    if workspace is None:
        raise NotFound(f"workspace {actor.workspace_id} does not exist")
    return workspace


async def _accounts_of(workspace_id: int) -> list[InstagramAccount]:
    return await InstagramAccount.filter(workspace_id=workspace_id).order_by("username", "id")


async def _account_in(workspace_id: int, account_id: int) -> InstagramAccount:
    account = await InstagramAccount.get_or_none(id=account_id, workspace_id=workspace_id)
    if account is None:
        raise NotFound("No such Instagram account in this workspace")
    return account


async def _account_days(
    account_ids: Sequence[int], start: date, end: date
) -> dict[int, dict[date, dict[str, Any]]]:
    rows = await AccountInsight.filter(
        account_id__in=list(account_ids), date__gte=start, date__lte=end
    )
    found: dict[int, dict[date, dict[str, Any]]] = defaultdict(dict)
    for row in rows:
        found[row.account_id][row.date] = row.metrics
    return found


def _series(days: dict[date, dict[str, Any]], period: DateRange) -> list[DayPoint]:
    points = []
    for day in period:
        metrics = days.get(day, {})
        points.append(
            DayPoint(
                day=day,
                followers=as_number(metrics.get("followers_count")),
                new_follows=as_number(metrics.get(FOLLOWER_COUNT_METRIC)),
                reach=as_number(metrics.get("reach")),
                views=as_number(metrics.get("views")),
                interactions=as_number(metrics.get("total_interactions")),
            )
        )
    return points


def _add(a: float | None, b: float | None) -> float | None:
    if a is None:
        return b
    if b is None:
        return a
    return a + b


def combine_totals(totals: Iterable[PeriodTotals]) -> PeriodTotals:
    """Several accounts' totals as one (followers and changes add up)."""
    result = PeriodTotals(None, None, None, None, None, None)
    for one in totals:
        result = PeriodTotals(
            reach=_add(result.reach, one.reach),
            views=_add(result.views, one.views),
            interactions=_add(result.interactions, one.interactions),
            followers=_add(result.followers, one.followers),
            follower_change=_add(result.follower_change, one.follower_change),
            new_follows=_add(result.new_follows, one.new_follows),
        )
    return result


async def _latest_media(
    account_ids: Sequence[int], period: DateRange
) -> list[tuple[MediaInsight, datetime | None]]:
    """The latest snapshot of each post published in ``period`` (by its own timestamp)."""
    rows = await MediaInsight.filter(
        account_id__in=list(account_ids), date__gte=period.start
    ).order_by("ig_media_id", "date")
    latest: dict[str, MediaInsight] = {}
    first_seen: dict[str, date] = {}
    for row in rows:
        first_seen.setdefault(row.ig_media_id, row.date)
        latest[row.ig_media_id] = row
    chosen = []
    for media_id, row in latest.items():
        when = posted_at(_info(row))
        day = when.date() if when else first_seen[media_id]
        if day in period:
            chosen.append((row, when))
    return chosen


def _info(row: MediaInsight) -> dict[str, Any]:
    info = row.metrics.get("info")
    return info if isinstance(info, dict) else {}


def _performance(row: MediaInsight) -> PostPerformance:
    metrics = {k: v for k, v in row.metrics.items() if k != "info"}
    return post_performance(row.ig_media_id, row.media_type, row.permalink, metrics, _info(row))


def _local_bounds(period: DateRange, zone: ZoneInfo) -> tuple[datetime, datetime]:
    start = datetime.combine(period.start, time.min, zone).astimezone(UTC)
    end = datetime.combine(period.end + timedelta(days=1), time.min, zone).astimezone(UTC)
    return start, end


async def _automation_results(
    workspace: Workspace, account_ids: Sequence[int], period: DateRange
) -> AutomationResults:
    """Comments replied, DMs sent and leads per day (workspace days), and per rule."""
    zone = workspace_zone(workspace)
    since, until = _local_bounds(period, zone)
    days = list(period)
    index = {day: n for n, day in enumerate(days)}
    replied = [0] * len(days)
    sent_dms = [0] * len(days)
    leads_per_day = [0] * len(days)
    per_rule: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    lead_series: dict[int, list[int]] = defaultdict(lambda: [0] * len(days))

    actions = await OutboundAction.filter(
        account_id__in=list(account_ids),
        status=OutboundStatus.SENT,
        sent_at__gte=since,
        sent_at__lt=until,
    ).values("kind", "sent_at", "payload")
    for action in actions:
        slot = index.get(action["sent_at"].astimezone(zone).date())
        if slot is None:
            continue
        payload = action["payload"] if isinstance(action["payload"], dict) else {}
        rule_id = payload.get("rule_id")
        if action["kind"] in COMMENT_REPLY_KINDS:
            replied[slot] += 1
            if isinstance(rule_id, int):
                per_rule[rule_id]["comments_replied"] += 1
        elif action["kind"] in DM_KINDS:
            sent_dms[slot] += 1
            if isinstance(rule_id, int):
                per_rule[rule_id]["dms_sent"] += 1

    leads = await Lead.filter(
        workspace_id=workspace.id,
        account_id__in=list(account_ids),
        created_at__gte=since,
        created_at__lt=until,
    ).values("rule_id", "created_at")
    for lead in leads:
        slot = index.get(lead["created_at"].astimezone(zone).date())
        if slot is None:
            continue
        leads_per_day[slot] += 1
        if lead["rule_id"] is not None:
            per_rule[lead["rule_id"]]["leads"] += 1
            lead_series[lead["rule_id"]][slot] += 1

    rules = await AutomationRule.filter(account_id__in=list(account_ids)).order_by("name", "id")
    stats = {s.rule_id: s for s in await RuleStats.filter(rule_id__in=[r.id for r in rules])}
    results = []
    for rule in rules:
        counts = per_rule.get(rule.id, {})
        stat = stats.get(rule.id)
        results.append(
            RuleResult(
                rule_id=rule.id,
                name=rule.name or f"Rule {rule.id}",
                trigger=rule.trigger.value,
                active=rule.active,
                comments_replied=counts.get("comments_replied", 0),
                dms_sent=counts.get("dms_sent", 0),
                leads=counts.get("leads", 0),
                total_triggers=stat.total_triggers if stat else 0,
                total_leads=stat.total_leads_captured if stat else 0,
            )
        )
    names = {r.rule_id: r.name for r in results}
    return AutomationResults(
        days=days,
        comments_replied=replied,
        dms_sent=sent_dms,
        leads=leads_per_day,
        leads_by_rule={
            names.get(rule_id, f"Rule {rule_id}"): series
            for rule_id, series in sorted(lead_series.items())
        },
        rules=results,
    )


async def _sync_rows(account_ids: Sequence[int]) -> list[SyncRow]:
    """Every sync state of these accounts, by account and kind."""
    states = (
        await SyncState.filter(account_id__in=list(account_ids))
        .prefetch_related("account")
        .order_by("account_id", "kind")
    )
    return [
        SyncRow(
            account=state.account.username,
            kind=state.kind,
            label=SYNC_KIND_LABELS.get(state.kind, state.kind),
            last_success_at=state.last_success_at,
            last_error=state.last_error,
            next_run_at=state.next_run_at,
        )
        for state in states
    ]


# ------------------------------------------------------------------ pages


async def overview(
    actor: Actor,
    period: DateRange,
    *,
    account_id: int | None = None,
    compare_to: DateRange | None = None,
    automation_period: DateRange | None = None,
) -> Overview:
    """The analytics page for one account (the first one when none is given).

    ``automation_period`` is the period of the automation results (``period`` when None).
    """
    workspace = await _workspace(actor)
    accounts = await _accounts_of(workspace.id)
    account = None
    if account_id is not None:
        account = await _account_in(workspace.id, account_id)
    elif accounts:
        account = accounts[0]
    compare_to = compare_to or period.previous()
    ids = [account.id] if account else []
    first = min(period.start, compare_to.start)
    last = max(period.end, compare_to.end)
    days = (await _account_days(ids, first, last)).get(account.id, {}) if account else {}
    media = await _latest_media(ids, period)
    return Overview(
        accounts=accounts,
        account=account,
        period=period,
        compare_to=compare_to,
        series=_series(days, period),
        comparison=Comparison(period_totals(days, period), period_totals(days, compare_to)),
        top_posts=top_posts((_performance(row) for row, _ in media), TOP_POSTS),
        automation=await _automation_results(workspace, ids, automation_period or period),
        sync=await _sync_rows([a.id for a in accounts]),
    )


async def post_detail(actor: Actor, ig_media_id: str) -> PostDetail:
    """One post's numbers; NotFound unless it belongs to one of the workspace's accounts."""
    workspace_id = actor.workspace_id
    rows = await MediaInsight.filter(
        ig_media_id=ig_media_id, account__workspace_id=workspace_id
    ).order_by("date")
    if not rows:
        raise NotFound("No numbers for this post yet")
    account = await _account_in(workspace_id, rows[-1].account_id)
    post = await Post.get_or_none(workspace_id=workspace_id, ig_media_id=ig_media_id)
    snapshots = [(row.date, {k: v for k, v in row.metrics.items() if k != "info"}) for row in rows]
    return PostDetail(
        account=account, latest=_performance(rows[-1]), snapshots=snapshots, post=post
    )


# ------------------------------------------------------------------ CSV exports

ACCOUNT_COLUMNS = [
    "date",
    "account",
    *PROFILE_COUNTS,
    "new_followers",
    *ACCOUNT_DAILY_METRICS,
    "engagement_rate_percent",
]
POST_METRIC_COLUMNS = [
    "views",
    "reach",
    "likes",
    "comments",
    "saved",
    "shares",
    "total_interactions",
    "ig_reels_avg_watch_time",
    "ig_reels_video_view_total_time",
]
POST_COLUMNS = [
    "account",
    "media_id",
    "media_type",
    "posted_at",
    "caption",
    "permalink",
    "numbers_as_of",
    *POST_METRIC_COLUMNS,
    "engagement_rate_percent",
]


def _csv(header: list[str], rows: Iterable[list[object]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    for row in rows:
        writer.writerow(safe_row(row))
    return out.getvalue()


async def _export_accounts(workspace_id: int, account_id: int | None) -> list[InstagramAccount]:
    if account_id is not None:
        return [await _account_in(workspace_id, account_id)]
    return await _accounts_of(workspace_id)


async def account_metrics_csv(
    actor: Actor, period: DateRange, *, account_id: int | None = None
) -> str:
    """Daily account metrics, one row per account and day with numbers, safe for Excel."""
    accounts = await _export_accounts(actor.workspace_id, account_id)
    names = {a.id: a.username for a in accounts}
    found = await _account_days(list(names), period.start, period.end)
    rows: list[list[object]] = []
    for day in period:
        for account_id_, username in names.items():
            metrics = found.get(account_id_, {}).get(day)
            if not metrics:
                continue
            rate = engagement_rate(
                as_number(metrics.get("total_interactions")), as_number(metrics.get("reach"))
            )
            rows.append(
                [
                    day.isoformat(),
                    username,
                    *(metrics.get(name) for name in PROFILE_COUNTS),
                    metrics.get(FOLLOWER_COUNT_METRIC),
                    *(metrics.get(name) for name in ACCOUNT_DAILY_METRICS),
                    rate,
                ]
            )
    return _csv(ACCOUNT_COLUMNS, rows)


async def post_metrics_csv(
    actor: Actor, period: DateRange, *, account_id: int | None = None
) -> str:
    """Posts published in the period with their latest numbers, safe for Excel."""
    accounts = await _export_accounts(actor.workspace_id, account_id)
    names = {a.id: a.username for a in accounts}
    media = await _latest_media(list(names), period)
    media.sort(key=lambda item: (item[1] or datetime.min.replace(tzinfo=UTC), item[0].id))
    rows: list[list[object]] = []
    for row, when in media:
        performance = _performance(row)
        rows.append(
            [
                names[row.account_id],
                row.ig_media_id,
                row.media_type,
                when.isoformat() if when else "",
                performance.caption,
                row.permalink,
                row.date.isoformat(),
                *(row.metrics.get(name) for name in POST_METRIC_COLUMNS),
                performance.engagement_rate,
            ]
        )
    return _csv(POST_COLUMNS, rows)


# ------------------------------------------------------------------ chat


async def summary(actor: Actor, days: int, *, clock: Clock | None = None) -> StatsSummary:
    """``/stats [7d|30d]``: the last ``days`` whole days of every account of the workspace,
    compared with the ``days`` before, with the best post; the automations' results cover
    the ``days`` up to and including today, as on the analytics page (:func:`live_period`)."""
    workspace = await _workspace(actor)
    clock = clock or SystemClock()
    period = default_period(workspace, clock, days)
    live = live_period(workspace, clock, days)
    before = period.previous()
    accounts = await _accounts_of(workspace.id)
    ids = [a.id for a in accounts]
    found_days = await _account_days(ids, before.start, period.end)
    now = combine_totals(period_totals(found_days.get(i, {}), period) for i in ids)
    then = combine_totals(period_totals(found_days.get(i, {}), before) for i in ids)
    best = top_posts((_performance(row) for row, _ in await _latest_media(ids, period)), 1)
    automation = await _automation_results(workspace, ids, live)
    reach = compare(now.reach, then.reach)
    views = compare(now.views, then.views)
    totals = automation.totals
    top = None
    if best:
        post = best[0]
        top = TopPost(
            caption=post.caption,
            permalink=post.permalink,
            media_type=post.media_type,
            interactions=post.interactions,
            reach=post.reach,
            views=post.views,
            engagement_rate=post.engagement_rate,
        )
    return StatsSummary(
        days=period.days,
        start=period.start,
        end=period.end,
        accounts=len(accounts),
        followers=_int(now.followers),
        follower_change=_int(now.follower_change),
        reach=_int(now.reach),
        reach_change_percent=reach.percent if reach else None,
        views=_int(now.views),
        views_change_percent=views.percent if views else None,
        interactions=_int(now.interactions),
        engagement_rate=now.engagement_rate,
        automation_start=live.start,
        automation_end=live.end,
        comments_replied=totals["comments_replied"],
        dms_sent=totals["dms_sent"],
        leads=totals["leads"],
        top_post=top,
    )
