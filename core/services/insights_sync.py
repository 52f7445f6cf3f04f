"""Instagram insights sync: daily account metrics, profile counts and per-post numbers.

Four kinds of run per account, each with its own ``SyncState`` row:

- ``counts`` every 30 minutes: followers, follows and media counts (1 call).
- ``daily`` once a day after Meta's day closed: account metrics for the last ``LAG_DAYS``
  days (Meta's numbers can lag 48 h, so the last days are read again), and
  ``follower_count`` when the account has at least 100 followers (≤ 5 calls).
- ``media`` every 3 hours: the media list and insights of posts from the last 30 days, and
  of stories still inside their 24 h (≤ 2 + ``MEDIA_LIMIT`` + stories calls).
- ``backfill`` on connect: the last 30 days of account metrics (days already stored are
  skipped) plus a counts and media run (≤ ~70 calls).

That keeps an account far inside Meta's 200 calls per hour by design; a Redis budget of
``CALLS_PER_HOUR`` per account is the hard stop, and rate-limit errors or usage headers
(the Graph client raises a rate-limited ``GraphError`` past 100 %) move ``next_run_at``
instead of failing. Every write is an upsert that leaves a row untouched when nothing
changed, so running a day again changes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, ParamSpec, TypeVar

from redis.asyncio import Redis
from tortoise.exceptions import IntegrityError

from core.db.models import (
    AccountInsight,
    AccountStatus,
    InstagramAccount,
    MediaInsight,
    Post,
    SyncState,
)
from core.domain.analytics import (
    ACCOUNT_DAILY_METRICS,
    FOLLOWER_COUNT_METRIC,
    FOLLOWER_COUNT_MIN_FOLLOWERS,
    PROFILE_COUNTS,
    as_number,
)
from core.domain.graph_errors import ErrorKind, GraphError
from core.domain.insights import (
    MEDIA_FALLBACK_METRICS,
    METRIC_UNAVAILABLE_CODES,
    daily_values,
    media_kind,
    media_metrics_for,
    posted_at,
    total_values,
)
from core.domain.posts import Kind, Status
from core.domain.scope import instance_level
from core.errors import NotFound
from core.ports.call_budget import CallBudget
from core.ports.clock import Clock
from core.ports.instagram import AccountRef, InstagramClient
from core.ports.queue import JobQueue
from core.services.reconnection import mark_needs_reconnect

logger = logging.getLogger(__name__)

T = TypeVar("T")
P = ParamSpec("P")

COUNTS = "counts"
DAILY = "daily"
MEDIA = "media"
BACKFILL = "backfill"
SCHEDULED_KINDS: tuple[str, ...] = (COUNTS, DAILY, MEDIA)
ALL_KINDS: tuple[str, ...] = (*SCHEDULED_KINDS, BACKFILL)

# Job names (registered in jobs/insights.py).
SYNC_JOB = "sync_account_insights"
BACKFILL_JOB = "backfill_account_insights"

COUNTS_EVERY = timedelta(minutes=30)
MEDIA_EVERY = timedelta(hours=3)
# Meta's day ends at midnight Pacific (07:00 or 08:00 UTC): read yesterday after that.
DAILY_AT = time(9, 0, tzinfo=UTC)
LAG_DAYS = 3
BACKFILL_DAYS = 30
RECENT_MEDIA_DAYS = 30
MEDIA_LIMIT = 25
STORY_WINDOW = timedelta(hours=24)
# Reelay's background share of Meta's 200 calls per hour per account; the rest is left
# for publishing and replies.
CALLS_PER_HOUR = 120
BUDGET_PREFIX = "insights:calls"
RETRY_AFTER_FAILURE = timedelta(minutes=15)
BACKFILL_RETRY = timedelta(hours=6)
MIN_WAIT = timedelta(minutes=1)
DEFAULT_RATE_LIMIT_WAIT_S = 3600.0


AccountRefFactory = Callable[[InstagramAccount], AccountRef]


@dataclass(frozen=True)
class SyncDeps:
    """What a sync needs: the Instagram port, a way to act as an account, time, a budget."""

    client: InstagramClient
    account_ref: AccountRefFactory
    clock: Clock
    budget: CallBudget
    redis: Redis | None = None  # announces a dead token to every worker's account cache


@dataclass
class SyncOutcome:
    """What one run did (also written to the account's ``SyncState``)."""

    account_id: int
    kind: str
    ok: bool = False
    calls: int = 0
    rows_changed: int = 0
    unavailable: set[str] = field(default_factory=set)
    deferred_s: float | None = None
    error: str = ""
    next_run_at: datetime | None = None


class _Deferred(Exception):
    """The run must stop and come back after ``wait_s`` (budget or rate limit)."""

    def __init__(self, wait_s: float, reason: str) -> None:
        super().__init__(reason)
        self.wait_s = wait_s
        self.reason = reason


class _Run:
    """One sync run for one account: counts calls and remembers refused metrics."""

    def __init__(self, deps: SyncDeps, account: InstagramAccount, outcome: SyncOutcome) -> None:
        self.deps = deps
        self.account = account
        self.ref = deps.account_ref(account)
        self.outcome = outcome
        self.now = deps.clock.now()
        self.today = self.now.date()

    async def call(self, fn: Callable[P, Awaitable[T]], *args: P.args, **kwargs: P.kwargs) -> T:
        """``fn(*args, **kwargs)`` if the account's hourly budget allows one more call."""
        wait = await self.deps.budget.take(self.account.id)
        if wait is not None:
            raise _Deferred(wait, "hourly call budget for insights used up")
        self.outcome.calls += 1
        return await fn(*args, **kwargs)

    def refused(self, metric: str) -> None:
        self.outcome.unavailable.add(metric)


def metric_unavailable(error: GraphError) -> bool:
    """True when Meta refused a metric for this account or media (not a real failure)."""
    return error.code in METRIC_UNAVAILABLE_CODES and error.kind in {
        ErrorKind.PERMANENT,
        ErrorKind.WINDOW_CLOSED,
    }


# ------------------------------------------------------------------ upserts


async def _upsert_account_day(account_id: int, day: date, metrics: Mapping[str, Any]) -> bool:
    """Merge ``metrics`` into the account's row for ``day``; False when nothing changed."""
    row = await AccountInsight.get_or_none(account_id=account_id, date=day)
    if row is None:
        try:
            await AccountInsight.create(account_id=account_id, date=day, metrics=dict(metrics))
            return True
        except IntegrityError:
            row = await AccountInsight.get(account_id=account_id, date=day)
    merged = {**row.metrics, **metrics}
    if merged == row.metrics:
        return False
    row.metrics = merged
    await row.save(update_fields=["metrics", "updated_at"])
    return True


async def _upsert_media_day(
    account_id: int,
    ig_media_id: str,
    day: date,
    *,
    media_type: str,
    permalink: str,
    metrics: Mapping[str, Any],
) -> bool:
    """Merge one media's numbers for ``day``; False when nothing changed."""
    row = await MediaInsight.get_or_none(ig_media_id=ig_media_id, date=day)
    if row is None:
        try:
            await MediaInsight.create(
                account_id=account_id,
                ig_media_id=ig_media_id,
                date=day,
                media_type=media_type,
                permalink=permalink,
                metrics=dict(metrics),
            )
            return True
        except IntegrityError:
            row = await MediaInsight.get(ig_media_id=ig_media_id, date=day)
    merged = {**row.metrics, **metrics}
    new_type = media_type or row.media_type
    new_link = permalink or row.permalink
    if merged == row.metrics and new_type == row.media_type and new_link == row.permalink:
        return False
    row.metrics, row.media_type, row.permalink = merged, new_type, new_link
    await row.save(update_fields=["metrics", "media_type", "permalink", "updated_at"])
    return True


# ------------------------------------------------------------------ the runs


async def _sync_counts(run: _Run) -> float | None:
    profile = await run.call(run.deps.client.profile, run.ref)
    counts = {
        name: value
        for name in PROFILE_COUNTS
        if (value := as_number(profile.get(name))) is not None
    }
    if counts and await _upsert_account_day(run.account.id, run.today, counts):
        run.outcome.rows_changed += 1
    return as_number(profile.get("followers_count"))


async def _latest_followers(run: _Run) -> float | None:
    """Followers from the latest stored snapshot, or from a fresh profile call."""
    rows = await AccountInsight.filter(
        account_id=run.account.id, date__gte=run.today - timedelta(days=1)
    ).order_by("-date")
    for row in rows:
        followers = as_number(row.metrics.get("followers_count"))
        if followers is not None:
            return followers
    return await _sync_counts(run)


async def _account_day(run: _Run, day: date) -> dict[str, float]:
    """The daily account metrics for ``day``, skipping metrics Meta refuses."""
    wanted = [m for m in ACCOUNT_DAILY_METRICS if m not in run.outcome.unavailable]
    if not wanted:
        return {}
    until = day + timedelta(days=1)
    client = run.deps.client
    try:
        rows = await run.call(client.account_insights, run.ref, wanted, day, until)
    except GraphError as exc:
        if not metric_unavailable(exc):
            raise
        logger.info(
            "account %s refused a daily metric (%s): asking one by one", run.account.id, exc
        )
        rows = []
        for metric in wanted:
            try:
                rows += await run.call(client.account_insights, run.ref, [metric], day, until)
            except GraphError as one:
                if not metric_unavailable(one):
                    raise
                run.refused(metric)
    return total_values(rows)


async def _follower_counts(run: _Run, since: date) -> dict[date, float]:
    """New followers per day from ``since`` to yesterday (Meta gives at most 30 days)."""
    since = max(since, run.today - timedelta(days=30))
    try:
        rows = await run.call(
            run.deps.client.account_insights,
            run.ref,
            [FOLLOWER_COUNT_METRIC],
            since,
            run.today,
            metric_type=None,
        )
    except GraphError as exc:
        if not metric_unavailable(exc):
            raise
        run.refused(FOLLOWER_COUNT_METRIC)
        logger.info("account %s: follower_count not available (%s)", run.account.id, exc)
        return {}
    return daily_values(rows, FOLLOWER_COUNT_METRIC)


async def _store_days(run: _Run, days: Iterable[date]) -> None:
    days = sorted(days)
    if not days:
        return
    for day in days:
        metrics = await _account_day(run, day)
        if metrics and await _upsert_account_day(run.account.id, day, metrics):
            run.outcome.rows_changed += 1
    followers = await _latest_followers(run)
    if followers is None or followers < FOLLOWER_COUNT_MIN_FOLLOWERS:
        run.refused(FOLLOWER_COUNT_METRIC)
        return
    for day, value in (await _follower_counts(run, days[0])).items():
        if day in days and await _upsert_account_day(
            run.account.id, day, {FOLLOWER_COUNT_METRIC: value}
        ):
            run.outcome.rows_changed += 1


async def _sync_daily(run: _Run) -> None:
    await _store_days(run, (run.today - timedelta(days=n) for n in range(1, LAG_DAYS + 1)))


async def _backfill(run: _Run, days: int) -> None:
    await _sync_counts(run)
    wanted = [run.today - timedelta(days=n) for n in range(1, days + 1)]
    stored = await AccountInsight.filter(
        account_id=run.account.id, date__gte=wanted[-1], date__lt=run.today
    )
    complete = {
        row.date for row in stored if any(name in row.metrics for name in ACCOUNT_DAILY_METRICS)
    }
    # The last days are read again even when stored: Meta may still have been counting.
    recent = set(wanted[:LAG_DAYS])
    await _store_days(run, [day for day in wanted if day not in complete or day in recent])
    await _sync_media(run)


async def _recent_stories(run: _Run, known: set[str]) -> list[dict[str, Any]]:
    """Stories Reelay published in the last 24 h that the media list did not show."""
    posts = await Post.filter(
        account_id=run.account.id,
        kind=Kind.STORY,
        status=Status.PUBLISHED,
        published_at__gte=run.now - STORY_WINDOW,
        ig_media_id__isnull=False,
    )
    return [
        {
            "id": post.ig_media_id,
            "media_product_type": "STORY",
            "media_type": "STORY",
            "permalink": post.permalink or "",
            "caption": post.caption,
            "timestamp": post.published_at.isoformat() if post.published_at else None,
        }
        for post in posts
        if post.ig_media_id and post.ig_media_id not in known
    ]


def _wanted_media(run: _Run, listed: list[dict[str, Any]]) -> list[dict[str, Any]]:
    chosen = []
    for media in listed:
        when = posted_at(media)
        if not media.get("id") or when is None:
            continue
        age = run.now - when
        if media_kind(media) == "STORY":
            if age <= STORY_WINDOW:
                chosen.append(media)
        elif age <= timedelta(days=RECENT_MEDIA_DAYS):
            chosen.append(media)
    return chosen


async def _media_metrics(run: _Run, media: Mapping[str, Any], kind: str) -> dict[str, float]:
    media_id = str(media["id"])
    client = run.deps.client
    for metrics in (media_metrics_for(kind), MEDIA_FALLBACK_METRICS):
        try:
            rows = await run.call(client.media_insights, run.ref, media_id, metrics)
        except GraphError as exc:
            if not metric_unavailable(exc):
                raise
            logger.info("media %s refused insights %s (%s)", media_id, metrics, exc)
            continue
        return total_values(rows)
    run.refused(f"media:{media_id}")
    return {}


async def _sync_media(run: _Run) -> None:
    listed = await run.call(run.deps.client.media_list, run.ref, MEDIA_LIMIT)
    chosen = _wanted_media(run, listed)
    chosen += await _recent_stories(run, {str(m.get("id")) for m in listed})
    for media in chosen:
        kind = media_kind(media)
        numbers: dict[str, Any] = {}
        for name in ("like_count", "comments_count"):
            value = as_number(media.get(name))
            if value is not None:
                numbers[name] = value
        numbers.update(await _media_metrics(run, media, kind))
        numbers["info"] = {
            "caption": str(media.get("caption") or "")[:2200],
            "timestamp": media.get("timestamp"),
            "media_type": str(media.get("media_type") or ""),
        }
        changed = await _upsert_media_day(
            run.account.id,
            str(media["id"]),
            run.today,
            media_type=kind,
            permalink=str(media.get("permalink") or ""),
            metrics=numbers,
        )
        run.outcome.rows_changed += int(changed)


# ------------------------------------------------------------------ scheduling and state


def next_scheduled_run(kind: str, now: datetime) -> datetime | None:
    """When a kind runs next after a successful run at ``now``."""
    if kind == COUNTS:
        return now + COUNTS_EVERY
    if kind == MEDIA:
        return now + MEDIA_EVERY
    if kind == DAILY:
        at = datetime.combine(now.date(), DAILY_AT)
        return at if at > now else at + timedelta(days=1)
    return None


async def _record_state(outcome: SyncOutcome, now: datetime) -> None:
    state, _ = await SyncState.get_or_create(account_id=outcome.account_id, kind=outcome.kind)
    if outcome.ok:
        state.last_success_at = now
    state.last_error = outcome.error
    state.next_run_at = outcome.next_run_at
    await state.save(update_fields=["last_success_at", "last_error", "next_run_at"])


@instance_level("a job: syncs one account, by id, from the queue")
async def sync_account(
    deps: SyncDeps, account_id: int, kind: str, *, backfill_days: int = BACKFILL_DAYS
) -> SyncOutcome:
    """Run one kind of sync for one account and record its state; never raises on Graph errors.

    ``kind`` is one of ``counts``, ``daily``, ``media``, ``backfill``.
    """
    if kind not in ALL_KINDS:
        raise ValueError(f"unknown sync kind {kind!r}")
    account = await InstagramAccount.get_or_none(id=account_id)
    if account is None:
        raise NotFound(f"Instagram account {account_id} does not exist")
    outcome = SyncOutcome(account_id=account_id, kind=kind)
    if account.status != AccountStatus.ACTIVE:
        outcome.error = f"account is {account.status.value.replace('_', ' ')}"
        logger.info("insights %s skipped for account %s: %s", kind, account_id, outcome.error)
        await _record_state(outcome, deps.clock.now())
        return outcome
    run = _Run(deps, account, outcome)
    try:
        if kind == COUNTS:
            await _sync_counts(run)
        elif kind == DAILY:
            await _sync_daily(run)
        elif kind == MEDIA:
            await _sync_media(run)
        else:
            await _backfill(run, backfill_days)
    except _Deferred as wait:
        _defer(outcome, run.now, wait.wait_s, wait.reason)
    except GraphError as exc:
        if exc.kind in {ErrorKind.RATE_LIMITED, ErrorKind.QUOTA}:
            _defer(outcome, run.now, exc.retry_after_s or DEFAULT_RATE_LIMIT_WAIT_S, exc.title)
        elif exc.kind is ErrorKind.TOKEN_INVALID:
            outcome.error = exc.title
            await mark_needs_reconnect(account, exc.title, redis=deps.redis)
        else:
            outcome.error = exc.title
            outcome.next_run_at = (
                run.now + RETRY_AFTER_FAILURE
                if exc.retryable
                else next_scheduled_run(kind, run.now) or run.now + BACKFILL_RETRY
            )
        if not outcome.deferred_s:
            logger.warning(
                "insights %s failed for account %s: %s (%s)", kind, account_id, exc, exc.kind
            )
    else:
        outcome.ok = True
        outcome.next_run_at = next_scheduled_run(kind, run.now)
    await _record_state(outcome, run.now)
    logger.info(
        "insights %s for account %s: ok=%s calls=%d changed=%d unavailable=%s next=%s",
        kind,
        account_id,
        outcome.ok,
        outcome.calls,
        outcome.rows_changed,
        sorted(outcome.unavailable),
        outcome.next_run_at,
    )
    return outcome


def _defer(outcome: SyncOutcome, now: datetime, wait_s: float, reason: str) -> None:
    wait = max(timedelta(seconds=wait_s), MIN_WAIT)
    outcome.deferred_s = wait.total_seconds()
    outcome.error = f"waiting: {reason}"
    outcome.next_run_at = now + wait
    logger.info(
        "insights %s for account %s deferred %.0fs: %s",
        outcome.kind,
        outcome.account_id,
        wait.total_seconds(),
        reason,
    )


@instance_level("a cron over every workspace's active accounts")
async def dispatch_due(queue: JobQueue, clock: Clock) -> int:
    """Queue a sync job for every active account and kind whose next run is due.

    An account that never finished its back-fill (a new connection, or one whose back-fill
    was deferred or failed) gets it queued too, so connecting needs no extra call.
    """
    now = clock.now()
    accounts = await InstagramAccount.filter(status=AccountStatus.ACTIVE).only("id")
    account_ids = [account.id for account in accounts]
    if not account_ids:
        return 0
    states = {(s.account_id, s.kind): s for s in await SyncState.filter(account_id__in=account_ids)}
    queued = 0
    for account_id in account_ids:
        backfill = states.get((account_id, BACKFILL))
        if backfill is None or (
            backfill.last_success_at is None
            and (backfill.next_run_at is None or backfill.next_run_at <= now)
        ):
            queued += int(await request_backfill(queue, account_id))
        for kind in SCHEDULED_KINDS:
            state = states.get((account_id, kind))
            if state is not None and state.next_run_at is not None and state.next_run_at > now:
                continue
            if await queue.enqueue(
                SYNC_JOB, account_id, kind, job_id=f"insights:{kind}:{account_id}"
            ):
                queued += 1
    if queued:
        logger.info("queued %d insights sync job(s)", queued)
    return queued


@instance_level("queues one account's back-fill, by id, for the cron")
async def request_backfill(queue: JobQueue, account_id: int) -> bool:
    """Queue the 30-day back-fill for a newly connected account now.

    Optional: the dispatcher queues it within 10 minutes of a connection anyway.
    """
    return await queue.enqueue(BACKFILL_JOB, account_id, job_id=f"insights:backfill:{account_id}")
