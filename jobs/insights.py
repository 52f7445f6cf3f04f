"""Insights sync jobs: a dispatcher cron and the per-account sync and back-fill jobs."""

from __future__ import annotations

from typing import Any

from arq import cron, func

from core.services import insights_sync
from core.wiring import Services


async def insights_dispatch(ctx: dict[str, Any]) -> None:
    """Queue the insights syncs that are due (every 10 minutes)."""
    services: Services = ctx["services"]
    await insights_sync.dispatch_due(services.container.queue, services.container.clock)


async def sync_account_insights(ctx: dict[str, Any], account_id: int, kind: str) -> None:
    """Run one kind of insights sync (counts, daily, media) for one account."""
    services: Services = ctx["services"]
    await insights_sync.sync_account(services.insights, account_id, kind)


async def backfill_account_insights(ctx: dict[str, Any], account_id: int) -> None:
    """Back-fill the last 30 days of insights for a newly connected account."""
    services: Services = ctx["services"]
    await insights_sync.sync_account(services.insights, account_id, insights_sync.BACKFILL)


FUNCTIONS = [
    func(sync_account_insights, max_tries=2, timeout=300),
    func(backfill_account_insights, max_tries=2, timeout=900),
]
CRON_JOBS = [
    cron(
        insights_dispatch,
        minute=set(range(0, 60, 10)),
        second=15,
        run_at_startup=True,
        unique=True,
        timeout=60,
    ),
]
