"""AI usage per workspace and month: atomic counting, the quota event, the month boundary."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta, timezone

import pytest

from core.db.models import AiUsage, DomainEvent, Workspace
from core.domain.ai import AiDisabled, AiQuotaReached
from core.domain.scope import Actor
from core.services.ai_usage import ensure_ai_allowed, month_of, record_usage, tokens_used

NOW = datetime(2026, 7, 31, 23, 30, tzinfo=UTC)


def test_month_is_the_utc_month() -> None:
    lisbon_summer = timezone(timedelta(hours=1))
    assert month_of(datetime(2026, 8, 1, 0, 30, tzinfo=lisbon_summer)) == "2026-07"
    assert month_of(NOW) == "2026-07"


async def test_concurrent_usage_is_counted_exactly(db: str) -> None:
    workspace = await Workspace.create(name="W", ai_monthly_token_quota=0)
    await asyncio.gather(*(record_usage(Actor.system(workspace.id), 7, NOW) for _ in range(25)))
    assert await tokens_used(Actor.system(workspace.id), NOW) == 175
    assert await AiUsage.filter(workspace=workspace).count() == 1
    assert await tokens_used(Actor.system(workspace.id), NOW + timedelta(hours=1)) == 0  # August


async def test_quota_and_switch(db: str) -> None:
    workspace = await Workspace.create(name="W", ai_monthly_token_quota=100)
    await ensure_ai_allowed(Actor.system(workspace.id), NOW)
    await record_usage(Actor.system(workspace.id), 60, NOW)
    assert not await DomainEvent.exists()
    await record_usage(Actor.system(workspace.id), 60, NOW)  # crosses the quota: announced once
    with pytest.raises(AiQuotaReached) as caught:
        await ensure_ai_allowed(Actor.system(workspace.id), NOW)
    assert (caught.value.used, caught.value.quota, caught.value.month) == (120, 100, "2026-07")
    assert await DomainEvent.filter(kind="ai.quota_reached").count() == 1
    await ensure_ai_allowed(Actor.system(workspace.id), NOW + timedelta(hours=1))  # a new month
    await Workspace.filter(id=workspace.id).update(ai_enabled=False)
    with pytest.raises(AiDisabled):
        await ensure_ai_allowed(Actor.system(workspace.id), NOW + timedelta(hours=1))
