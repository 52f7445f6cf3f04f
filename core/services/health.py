"""Account health: the figures of each account's last 24 hours, gathered for one workspace.

Every query is scoped by the ``Actor``'s workspace: its accounts, then their webhook events
(by the account's Instagram and Page ids), their outbox and Meta's publishing quota (one
``content_publishing_limit`` call per active account). What the figures mean is decided in
``core.domain.health``.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from redis.asyncio import Redis

from core.db.models import (
    AccountStatus,
    InstagramAccount,
    OutboundAction,
    WebhookEvent,
)
from core.domain.graph_errors import GraphError
from core.domain.health import WINDOW, Figures, Verdict, verdict
from core.domain.scope import Actor, instance_level
from core.domain.webhooks import EventKind
from core.errors import NotFound
from core.ports.clock import Clock
from core.ports.instagram import AccountRef, InstagramClient
from core.services.heartbeat import worker_alive

logger = logging.getLogger(__name__)

HOURS = 24
# The page waits this long for Meta's quota answer, then shows the rest without it.
QUOTA_TIMEOUT_S = 5.0
REASON_LENGTH = 120


@dataclass(frozen=True)
class AccountHealth:
    account: InstagramAccount
    figures: Figures
    verdict: Verdict


class Health:
    """Gathers each account's health figures (see the module)."""

    def __init__(
        self,
        *,
        instagram: InstagramClient,
        account_ref: Callable[[InstagramAccount], AccountRef],
        clock: Clock,
        redis: Redis | None = None,
    ) -> None:
        self.instagram = instagram
        self.account_ref = account_ref
        self.clock = clock
        self.redis = redis

    @instance_level("the workers of the instance serve every workspace")
    async def worker_running(self) -> bool:
        """Whether a worker beat lately (true when there is no Redis to ask)."""
        if self.redis is None:
            return True
        return await worker_alive(self.redis, self.clock.now())

    async def accounts(self, actor: Actor, account_id: int | None = None) -> list[AccountHealth]:
        """The health of the workspace's connected accounts (or of one), by username."""
        found = InstagramAccount.filter(workspace_id=actor.workspace_id).exclude(
            status=AccountStatus.DISCONNECTED
        )
        if account_id is not None:
            found = found.filter(id=account_id)
        accounts = await found.order_by("username", "id")
        if account_id is not None and not accounts:
            raise NotFound("No such Instagram account.")
        reports = []
        for account in accounts:
            figures = await self._figures(account)
            reports.append(AccountHealth(account, figures, verdict(figures)))
        return reports

    async def _figures(self, account: InstagramAccount) -> Figures:
        now = self.clock.now()
        since = now - WINDOW
        entry_ids = [account.ig_id, *([account.page_id] if account.page_id else [])]
        events = WebhookEvent.filter(account_ig_id__in=entry_ids)
        last: list[datetime] = (
            await events.filter(source="webhook")
            .order_by("-received_at")
            .limit(1)
            .values_list("received_at", flat=True)  # type: ignore[assignment]
        )
        per_hour = [0] * HOURS
        recent = events.filter(received_at__gte=since)
        stamps: list[datetime] = await recent.filter(source="webhook").values_list(
            "received_at",
            flat=True,  # type: ignore[assignment]
        )
        for received_at in stamps:
            hour = int((now - received_at) // (WINDOW / HOURS))
            if 0 <= hour < HOURS:
                per_hour[HOURS - 1 - hour] += 1
        comments = recent.filter(kind=EventKind.COMMENT.value)
        sends: Counter[str] = Counter()
        reasons: Counter[str] = Counter()
        outbox = OutboundAction.filter(account_id=account.id, created_at__gte=since)
        for status, error in await outbox.values_list("status", "error"):
            outcome = str(getattr(status, "value", status))
            sends[outcome] += 1
            if outcome not in {"sent", "pending"}:
                reasons[f"{outcome}: {(error or 'no reason given')[:REASON_LENGTH]}"] += 1
        active = account.status is AccountStatus.ACTIVE
        quota_used = quota_total = None
        quota_error = ""
        if active:
            try:
                limit = await asyncio.wait_for(
                    self.instagram.publishing_limit(self.account_ref(account)), QUOTA_TIMEOUT_S
                )
                quota_used, quota_total = limit.quota_usage, limit.quota_total
            except GraphError as exc:
                quota_error = exc.title
                logger.info("health: quota of account %s not read: %s", account.id, exc.title)
            except TimeoutError:
                quota_error = f"Instagram did not answer within {QUOTA_TIMEOUT_S:g} s"
                logger.info("health: quota of account %s not read in time", account.id)
        return Figures(
            now=now,
            active=active,
            status_reason=account.status_reason,
            webhook_subscribed=account.webhook_subscribed,
            last_webhook_at=last[0] if last else None,
            events_per_hour=tuple(per_hour),
            comments=await comments.count(),
            swept=await comments.filter(source="sweep").count(),
            sends=dict(sends),
            reasons=dict(reasons),
            token_expires_at=account.token_expires_at,
            quota_used=quota_used,
            quota_total=quota_total,
            quota_error=quota_error,
        )
