"""The insights jobs run by a real arq worker on the real Redis, Graph stubbed with aioresponses."""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator
from datetime import timedelta

import pytest
from aioresponses import aioresponses

from core.bootstrap import Container
from core.db.models import (
    AccountInsight,
    AccountStatus,
    DomainEvent,
    InstagramAccount,
    LoginKind,
    SyncState,
    Workspace,
)
from core.services import insights_sync
from core.wiring import Services
from jobs import insights
from jobs.worker import CRON_JOBS, FUNCTIONS, create_worker
from reelay.queue import arq_settings
from tests.fake_meta_insights import GRAPH_URL, IG_ID, FakeMeta


@pytest.fixture
def meta() -> Iterator[FakeMeta]:
    fake = FakeMeta()
    with aioresponses(passthrough=["http://127.0.0.1"]) as mocked:
        mocked.get(re.compile(GRAPH_URL), callback=fake, repeat=True)
        yield fake


def test_jobs_are_registered_under_the_names_core_enqueues() -> None:
    names = {f.name for f in FUNCTIONS}
    assert {insights_sync.SYNC_JOB, insights_sync.BACKFILL_JOB} <= names
    assert any(c.name == "cron:insights_dispatch" for c in CRON_JOBS)
    assert insights.FUNCTIONS[0].name == insights_sync.SYNC_JOB


async def test_worker_dispatches_and_runs_the_syncs(
    container: Container, services: Services, meta: FakeMeta, settings: object
) -> None:
    workspace = await Workspace.create(name="Shop")
    account = await InstagramAccount.create(
        workspace=workspace,
        ig_id=IG_ID,
        username="shop",
        login_kind=LoginKind.INSTAGRAM,
        token_encrypted=container.secrets.encrypt("tok-live"),
    )
    assert await insights_sync.request_backfill(container.queue, account.id)
    assert not await insights_sync.request_backfill(container.queue, account.id)

    worker = create_worker(
        container.settings,
        services=services,
        redis_settings=arq_settings(container.redis_location),
    )
    worker.burst = True
    try:
        await worker.async_run()
    finally:
        with warnings.catch_warnings():
            # arq 0.28 closes its pool with redis' deprecated close().
            warnings.simplefilter("ignore", DeprecationWarning)
            await worker.close()

    states = {s.kind: s for s in await SyncState.filter(account=account)}
    assert set(states) == {"counts", "daily", "media", "backfill"}
    assert all(s.last_success_at is not None and s.last_error == "" for s in states.values())
    today = container.clock.now().date()
    stored = {row.date for row in await AccountInsight.filter(account=account)}
    assert {today - timedelta(days=n) for n in range(1, 31)} <= stored
    assert any(q.get("metric") == "follower_count" for _, q in meta.calls)


async def test_dead_token_in_a_job_flags_the_account_and_tells_the_team(
    container: Container, services: Services, meta: FakeMeta
) -> None:
    workspace = await Workspace.create(name="Shop")
    account = await InstagramAccount.create(
        workspace=workspace,
        ig_id=IG_ID,
        username="shop",
        login_kind=LoginKind.INSTAGRAM,
        token_encrypted=container.secrets.encrypt("tok-dead"),
    )
    meta.token_dead = True
    await insights.sync_account_insights({"services": services}, account.id, "counts")

    await account.refresh_from_db()
    assert account.status == AccountStatus.NEEDS_RECONNECT
    assert await DomainEvent.filter(workspace=workspace, kind="account.needs_reconnect").exists()
    state = await SyncState.get(account=account, kind="counts")
    assert state.last_error and state.last_success_at is None
