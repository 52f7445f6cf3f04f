"""The comment sweep: a safety net for comment webhooks Meta never delivered.

Every ``COMMENT_SWEEP_MINUTES`` the worker reads, for each active account, the comments of
its recent media (``GET /{ig-id}/media``, then ``GET /{media-id}/comments`` with each
comment's replies expanded, page by page)
and hands each comment from the last 7 days (Meta's private-reply window, and never before
the account was connected) to the webhook inbox as the event Meta would have sent:
:func:`core.domain.webhooks.comment_from_graph` builds it with the same parser and the same
dedupe key (``<account>:comment:<comment id>``). The inbox's ``INSERT … ON CONFLICT DO
NOTHING`` keeps one row per comment, so a comment the webhook brought is not acted on again,
and a webhook that comes after the sweep is a duplicate. Rows the sweep added are stored
with ``source = "sweep"``: how many there are is the health view's sign of missing webhooks.

The sweep leaves Meta's call budget to the rest of Reelay: at most ``CALLS_PER_HOUR`` calls
per account (a Redis budget shared by the workers), and it stops for an account as soon as
Meta reports its usage at ``SLOWDOWN_FROM_PCT`` or more, or rate-limits a call. It reads a
media's comments only when the media's ``comments_count`` differs from the count it saw
last time (kept in Redis), so an account whose posts are quiet costs one call per sweep.
Comments younger than ``GRACE`` are left for the next sweep: their webhook is usually on
its way.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from redis.asyncio import Redis

from core.db.models import AccountStatus, InstagramAccount
from core.domain.graph_errors import SLOWDOWN_FROM_PCT, ErrorKind, GraphError, Usage
from core.domain.scope import Actor, instance_level
from core.domain.webhooks import InboundEvent, comment_from_graph, graph_time
from core.errors import NotFound
from core.ports.call_budget import CallBudget
from core.ports.clock import Clock
from core.ports.instagram import AccountRef, InstagramClient, Page
from core.ports.queue import JobQueue
from core.services.inbox import record_events
from core.services.reconnection import mark_needs_reconnect

logger = logging.getLogger(__name__)

SWEEP_JOB = "sweep_account_comments"
SOURCE = "sweep"
# Meta allows a private reply within 7 days of the comment: older ones are past acting on.
WINDOW = timedelta(days=7)
# A webhook usually arrives within seconds: give it this long before the sweep steps in.
GRACE = timedelta(minutes=2)
MEDIA_PAGES = 2
MEDIA_PER_PAGE = 25
COMMENT_PAGES = 4
COMMENTS_PER_PAGE = 50
# The sweep's share of Meta's 200 calls per hour per account (insights take 120).
CALLS_PER_HOUR = 40
BUDGET_PREFIX = "sweep:calls"
COUNTS_TTL_S = int((WINDOW + timedelta(days=1)).total_seconds())

AccountRefFactory = Callable[[InstagramAccount], AccountRef]
# The usage figures Meta last reported for an account (None: none known).
UsageReader = Callable[[AccountRef], Awaitable[Usage | None]]


class _Short(Exception):
    """The account's call budget is short: stop its sweep until the next one."""


@dataclass
class _Run:
    """One account's sweep: its calls, within budget, and what it caught."""

    sweep: CommentSweep
    account: InstagramAccount
    ref: AccountRef
    since: datetime
    until: datetime
    caught: int = 0
    calls: int = 0

    async def page(self, read: Callable[[], Awaitable[Page]]) -> Page:
        usage = await self.sweep.usage(self.ref)
        if usage is not None and usage.pct >= SLOWDOWN_FROM_PCT:
            raise _Short(f"Meta reports {usage.pct:.0f}% of the call budget used")
        if await self.sweep.budget.take(self.account.id) is not None:
            raise _Short(f"the sweep's {CALLS_PER_HOUR} calls this hour are used")
        self.calls += 1
        return await read()


class CommentSweep:
    """Reads recent comments and records those whose webhook never came (see the module)."""

    def __init__(
        self,
        *,
        instagram: InstagramClient,
        account_ref: AccountRefFactory,
        queue: JobQueue,
        redis: Redis,
        clock: Clock,
        budget: CallBudget,
        usage: UsageReader,
        every_minutes: int,
        grace: timedelta = GRACE,
    ) -> None:
        self.instagram = instagram
        self.account_ref = account_ref
        self.queue = queue
        self.redis = redis
        self.clock = clock
        self.budget = budget
        self.usage = usage
        self.every_minutes = every_minutes
        # How old a comment must be before the sweep takes it (its webhook may be on its way).
        self.grace = grace

    @instance_level("a cron: finds every active account due a sweep and queues it")
    async def queue_due(self) -> int:
        """Queue a sweep of each active account when this minute is a sweep's (every
        ``every_minutes``; none when 0); the number queued."""
        if self.every_minutes <= 0:
            return 0
        minute = int(self.clock.now().timestamp() // 60)
        if minute % self.every_minutes:
            return 0
        queued = 0
        accounts = InstagramAccount.filter(status=AccountStatus.ACTIVE)
        for account_id, workspace_id in await accounts.values_list("id", "workspace_id"):
            job_id = f"sweep:{account_id}:{minute}"
            if await self.queue.enqueue(SWEEP_JOB, workspace_id, account_id, job_id=job_id):
                queued += 1
        return queued

    @instance_level("sweeps every active account, whichever workspace owns it")
    async def sweep_all(self) -> dict[int, int]:
        """Sweep each active account now: by account id, the comments caught."""
        caught: dict[int, int] = {}
        accounts = InstagramAccount.filter(status=AccountStatus.ACTIVE).order_by("id")
        for account_id, workspace_id in await accounts.values_list("id", "workspace_id"):
            caught[account_id] = await self.sweep_account(Actor.system(workspace_id), account_id)
        return caught

    async def sweep_account(self, actor: Actor, account_id: int) -> int:
        """Read the account's recent comments and record those without an event; the number
        recorded (caught). An account that is not active is left alone (0)."""
        account = await InstagramAccount.get_or_none(id=account_id, workspace_id=actor.workspace_id)
        if account is None:
            raise NotFound("No such Instagram account in this workspace.")
        if account.status is not AccountStatus.ACTIVE:
            return 0
        now = self.clock.now()
        run = _Run(
            sweep=self,
            account=account,
            ref=self.account_ref(account),
            since=max(now - WINDOW, account.created_at),
            until=now - self.grace,
        )
        try:
            await self._sweep_media(run)
        except _Short as exc:
            logger.info("comment sweep of account %s stopped: %s", account.id, exc)
        except GraphError as exc:
            await self._on_graph_error(run, exc)
        if run.caught:
            logger.warning(
                "comment sweep caught %d comment(s) of account %s whose webhook never came",
                run.caught,
                account.id,
            )
        return run.caught

    async def _on_graph_error(self, run: _Run, exc: GraphError) -> None:
        if exc.kind is ErrorKind.TOKEN_INVALID:
            await mark_needs_reconnect(run.account, exc.title, redis=self.redis)
            return
        level = logging.INFO if exc.kind is ErrorKind.RATE_LIMITED else logging.WARNING
        logger.log(
            level,
            "comment sweep of account %s stopped after %d call(s): %s",
            run.account.id,
            run.calls,
            exc.title,
        )

    async def _sweep_media(self, run: _Run) -> None:
        counts_key = f"sweep:counts:{run.account.id}"
        stored = await self.redis.get(counts_key)
        seen: dict[str, str] = json.loads(stored) if stored else {}
        after: str | None = None
        for _ in range(MEDIA_PAGES):
            page = await run.page(
                functools.partial(
                    self.instagram.recent_media, run.ref, after=after, limit=MEDIA_PER_PAGE
                )
            )
            for media in page.items:
                count = str(media.get("comments_count") or 0)
                media_id = str(media.get("id") or "")
                if not media_id or count == "0" or seen.get(media_id) == count:
                    continue
                if await self._sweep_comments(run, media):
                    seen[media_id] = count
                    await self.redis.set(counts_key, json.dumps(seen), ex=COUNTS_TTL_S)
            after = page.after
            if after is None:
                return

    async def _sweep_comments(self, run: _Run, media: dict[str, Any]) -> bool:
        """Record the media's comments without an event; True when every comment was read
        and none was left for the next sweep."""
        media_id = str(media["id"])
        complete = True
        after: str | None = None
        for _ in range(COMMENT_PAGES):
            page = await run.page(
                functools.partial(
                    self.instagram.media_comments,
                    run.ref,
                    media_id,
                    after=after,
                    limit=COMMENTS_PER_PAGE,
                )
            )
            events: list[InboundEvent] = []
            for comment in _with_replies(page.items):
                at = graph_time(comment.get("timestamp"))
                if at is not None and at > run.until:
                    complete = False
                    continue
                if at is None or at < run.since or self._own(run.account, comment):
                    continue
                event = comment_from_graph(run.account.ig_id, comment, media)
                if event is not None:
                    events.append(event)
            if events:
                recorded = await record_events(events, self.queue, self.clock.now(), source=SOURCE)
                run.caught += recorded.new
            after = page.after
            if after is None:
                return complete
        return False

    @staticmethod
    def _own(account: InstagramAccount, comment: dict[str, Any]) -> bool:
        """The account's own comments (its replies, its first comments) are not a follower's."""
        sender = comment.get("from")
        sender_id = str(sender.get("id") or "") if isinstance(sender, dict) else ""
        name = comment.get("username") or (
            sender.get("username") if isinstance(sender, dict) else ""
        )
        return sender_id == account.ig_id or (
            isinstance(name, str) and bool(name) and name.casefold() == account.username.casefold()
        )


def _with_replies(comments: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each top-level comment followed by its replies (Meta expands them in ``replies``)."""
    found: list[dict[str, Any]] = []
    for comment in comments:
        found.append(comment)
        replies = comment.get("replies")
        items = replies.get("data") if isinstance(replies, dict) else None
        for reply in items if isinstance(items, list) else []:
            if isinstance(reply, dict):
                found.append({"parent_id": comment.get("id"), **reply})
    return found
