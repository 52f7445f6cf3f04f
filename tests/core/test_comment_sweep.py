"""The comment sweep catches comments whose webhook never came, against the sandbox Instagram
losing comment webhooks, on SQLite and PostgreSQL: a caught comment is answered once, a late
webhook is a duplicate, the account's own comments are left alone, the call budget holds."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from tortoise.backends.base.executor import EXECUTOR_CACHE

from core.adapters.graph import GraphClient
from core.adapters.redis_server import RedisLocation
from core.db.models import (
    AccountStatus,
    AutomationRule,
    DomainEvent,
    EventStatus,
    InstagramAccount,
    Trigger,
    WebhookEvent,
    Workspace,
)
from core.domain.graph_errors import Usage
from core.domain.scope import Actor
from core.domain.webhooks import parse_body
from core.services import comment_sweep
from core.services.comment_sweep import SWEEP_JOB, CommentSweep
from core.services.reconnection import NEEDS_RECONNECT
from core.settings import Settings
from core.wiring import Services
from jobs import events as event_jobs
from panel.app import create_app
from reelay.cli import open_services
from tests.automation_world import FakeClock, RecordingQueue
from tests.conftest import _truncate_postgres
from tests.panel.sandbox_world import webhooks_into
from tests.publishing_world import sandbox_account

IG_ID = "17841400000000055"
FOLLOWER = "9990001"


@dataclass
class World:
    services: Services
    sandbox: Any
    account: InstagramAccount
    settings: Settings

    @property
    def actor(self) -> Actor:
        return Actor.system(self.account.workspace_id)  # type: ignore[attr-defined]

    async def lost_comment(self, text: str, **kwargs: Any) -> str:
        """A follower comments; Meta never delivers its webhook. The comment is a few minutes
        old by the time the sweep runs (past the sweep's grace for webhooks on their way)."""
        self.sandbox.faults.lose_webhooks("comments", times=1)
        comment, delivery = await self.sandbox.comment(IG_ID, text, **kwargs)
        assert delivery in self.sandbox.lost
        comment.created_at -= timedelta(minutes=5)
        return str(comment.id)

    async def sweep(self) -> int:
        return await self.services.comment_sweep.sweep_account(self.actor, self.account.id)

    async def handle_pending(self) -> int:
        pending = await WebhookEvent.filter(status=EventStatus.PENDING).values_list("id", flat=True)
        if pending:
            await self.services.automations.handle_events(list(pending))
        return len(pending)

    def sent(self, kind: str) -> list[Any]:
        return [s for s in self.sandbox.state.sent if s.kind == kind]


@pytest.fixture
async def world(
    any_database_url: str,
    settings_factory: Any,
    sandbox: Any,
    redis: Any,
    redis_location: RedisLocation,
) -> AsyncIterator[World]:
    if any_database_url.startswith("postgres"):
        await _truncate_postgres(any_database_url)
    EXECUTOR_CACHE.clear()
    settings = settings_factory(database_url=any_database_url, sandbox_url=sandbox.url)
    services = await open_services(settings, run_migrations=False, redis_location=redis_location)
    services.container.redis_location = RedisLocation(
        url=redis_location.url, unix_socket_path=redis_location.unix_socket_path
    )
    workspace = await Workspace.create(name="Shop")
    account = await sandbox_account(services.container, sandbox, workspace, IG_ID, "sandbox_shop")
    # Connected a day ago: the sweep reads nothing older than the connection.
    await InstagramAccount.filter(id=account.id).update(
        created_at=datetime.now(UTC) - timedelta(days=1)
    )
    account = await InstagramAccount.get(id=account.id)
    sandbox.state.add_media(IG_ID, caption="New drop")
    await AutomationRule.create(
        workspace=workspace,
        account=account,
        trigger=Trigger.COMMENT,
        keywords=["price"],
        config={"message_variations": ["Prices inside!"], "comment_replies": ["Sent you a DM"]},
    )
    yield World(services, sandbox, account, settings)
    await services.close()


async def test_a_comment_whose_webhook_never_came_is_caught_and_answered_once(
    world: World,
) -> None:
    comment_id = await world.lost_comment("price?", from_id=FOLLOWER, username="ann")
    assert await WebhookEvent.all().count() == 0

    assert await world.sweep() == 1
    (event,) = await WebhookEvent.all()
    assert event.dedupe_key == f"{IG_ID}:comment:{comment_id}"
    assert event.source == "sweep" and event.kind == "comment"
    assert await world.handle_pending() == 1
    assert [s.target for s in world.sent("private_reply")] == [comment_id]
    assert [s.target for s in world.sent("comment_reply")] == [comment_id]

    # The public reply is now a comment of the account's own: the next sweep leaves it, and
    # the follower's comment already has its event.
    assert await world.sweep() == 0
    assert await WebhookEvent.all().count() == 1


async def test_a_late_webhook_after_the_sweep_is_a_duplicate(world: World) -> None:
    await world.lost_comment("price please", from_id=FOLLOWER, username="ann")
    assert await world.sweep() == 1
    await world.handle_pending()

    (late,) = world.sandbox.lost
    recorded = await world.services.inbox_writer.submit(parse_body(late.body))
    assert (recorded.new, recorded.duplicates) == (0, 1)
    assert await world.handle_pending() == 0
    assert len(world.sent("private_reply")) == 1
    assert len(world.sent("comment_reply")) == 1


async def test_a_comment_its_webhook_brought_is_not_caught_again(world: World) -> None:
    comment, delivery = await world.sandbox.comment(IG_ID, "price?", from_id=FOLLOWER)
    comment.created_at -= timedelta(minutes=5)
    await world.services.inbox_writer.submit(parse_body(delivery.body))
    assert await world.sweep() == 0
    (event,) = await WebhookEvent.all()
    assert event.source == "webhook"


async def test_the_accounts_own_comments_are_skipped(world: World) -> None:
    await world.lost_comment("price list below", from_id=IG_ID, username="sandbox_shop")
    await world.lost_comment("price list, again", from_id="other-id", username="Sandbox_Shop")
    assert await world.sweep() == 0
    assert await WebhookEvent.all().count() == 0


async def test_a_comment_younger_than_the_grace_is_left_for_the_next_sweep(world: World) -> None:
    world.sandbox.faults.lose_webhooks("comments", times=1)
    await world.sandbox.comment(IG_ID, "price?", from_id=FOLLOWER)
    assert await world.sweep() == 0
    comment = next(iter(world.sandbox.state.comments.values()))
    comment.created_at -= timedelta(minutes=5)
    assert await world.sweep() == 1


async def test_the_sweep_stops_when_metas_usage_is_high(world: World) -> None:
    await world.lost_comment("price?", from_id=FOLLOWER)
    world.sandbox.faults.usage(app_pct=80)
    assert await world.sweep() == 0  # one call (the media list) told of 80 %: stop there
    assert await WebhookEvent.all().count() == 0

    # Meta's next answers report the usage back down.
    world.sandbox.faults.clear()
    graph = world.services.container.graph
    assert isinstance(graph, GraphClient)
    await graph.usage.put(str(world.account.id), Usage(app_pct=5))
    assert await world.sweep() == 1


async def test_the_sweep_keeps_to_its_hourly_call_budget(world: World) -> None:
    await world.lost_comment("price?", from_id=FOLLOWER)
    hour = int(datetime.now(UTC).timestamp() // 3600)
    budget_key = f"{comment_sweep.BUDGET_PREFIX}:{world.account.id}:{hour}"
    await world.services.container.redis.set(budget_key, comment_sweep.CALLS_PER_HOUR - 1)
    # One call left: the media list; the comments must wait for the next hour.
    assert await world.sweep() == 0
    assert int(await world.services.container.redis.get(budget_key)) == (
        comment_sweep.CALLS_PER_HOUR
    )
    await world.services.container.redis.delete(budget_key)
    assert await world.sweep() == 1


async def test_quiet_media_cost_no_comment_reads(world: World) -> None:
    await world.lost_comment("price?", from_id=FOLLOWER)
    assert await world.sweep() == 1
    hour = int(datetime.now(UTC).timestamp() // 3600)
    budget_key = f"{comment_sweep.BUDGET_PREFIX}:{world.account.id}:{hour}"
    before = int(await world.services.container.redis.get(budget_key))
    assert await world.sweep() == 0
    assert int(await world.services.container.redis.get(budget_key)) == before + 1


async def test_a_reply_under_a_comment_is_caught_too(world: World) -> None:
    parent = await world.lost_comment("love it", from_id="9990003")
    reply = await world.lost_comment("price?", from_id=FOLLOWER, parent_id=parent)
    assert await world.sweep() == 2
    event = await WebhookEvent.get(dedupe_key=f"{IG_ID}:comment:{reply}")
    assert event.event is not None and event.event["parent_id"] == parent


async def test_comments_past_the_first_page_are_caught_too(world: World) -> None:
    world.sandbox.faults.lose_webhooks("comments")
    for n in range(comment_sweep.COMMENTS_PER_PAGE + 5):
        comment, _ = await world.sandbox.comment(IG_ID, f"price {n}?", from_id=f"99{n:03}")
        comment.created_at -= timedelta(minutes=5)
    assert await world.sweep() == comment_sweep.COMMENTS_PER_PAGE + 5


async def test_a_dead_token_takes_the_one_reconnect_path_and_later_sweeps_skip_it(
    world: World,
) -> None:
    await world.lost_comment("price?", from_id=FOLLOWER)
    world.sandbox.faults.fail(400, code=190, message="Error validating access token", path="/media")
    assert await world.sweep() == 0
    account = await InstagramAccount.get(id=world.account.id)
    assert account.status is AccountStatus.NEEDS_RECONNECT
    assert await DomainEvent.filter(kind=NEEDS_RECONNECT).count() == 1
    assert await world.sweep() == 0
    assert await world.services.comment_sweep.sweep_all() == {}


async def test_a_rate_limit_stops_the_sweep_until_meta_allows_calls_again(world: World) -> None:
    await world.lost_comment("price?", from_id=FOLLOWER)
    world.sandbox.faults.rate_limit(path="/comments")
    assert await world.sweep() == 0
    assert await world.sweep() == 0  # Meta reported the budget used up: no call is made
    graph = world.services.container.graph
    assert isinstance(graph, GraphClient)
    await graph.usage.put(str(world.account.id), Usage(app_pct=5))
    assert await world.sweep() == 1


async def test_sweep_all_covers_each_active_account(world: World) -> None:
    await world.lost_comment("price?", from_id=FOLLOWER)
    assert await world.services.comment_sweep.sweep_all() == {world.account.id: 1}


@pytest.mark.parametrize(
    ("every", "minute", "queued"), [(10, 600, True), (10, 601, False), (0, 600, False)]
)
async def test_the_cron_queues_a_sweep_every_few_minutes(
    world: World, every: int, minute: int, queued: bool
) -> None:
    queue = RecordingQueue()
    clock = FakeClock(datetime.fromtimestamp(minute * 60 + 40, UTC))
    sweep = CommentSweep(
        instagram=world.services.container.graph,
        account_ref=lambda a: world.services.outbox.account_ref(a),
        queue=queue,
        redis=world.services.container.redis,
        clock=clock,
        budget=world.services.comment_sweep.budget,
        usage=world.services.comment_sweep.usage,
        every_minutes=every,
    )
    assert await sweep.queue_due() == (1 if queued else 0)
    jobs = queue.take(SWEEP_JOB)
    expected = [(world.account.workspace_id, world.account.id)]  # type: ignore[attr-defined]
    assert [j.args for j in jobs] == (expected if queued else [])


async def test_end_to_end_signed_webhooks_the_sweep_job_a_late_webhook_and_the_health_view(
    world: World,
) -> None:
    """Through the panel's signed webhook endpoint and the worker's jobs: one comment's
    webhook arrives, another's is lost; the sweep job catches the lost one; its webhook, when
    it finally comes, is a duplicate; each comment gets one private and one public reply."""
    ctx = {"services": world.services}
    workspace_id = world.account.workspace_id  # type: ignore[attr-defined]

    async def handle_pending() -> None:
        pending = await WebhookEvent.filter(status=EventStatus.PENDING).values_list("id", flat=True)
        if pending:
            await event_jobs.handle_event(ctx, *pending)

    app = create_app(world.settings, services=world.services)
    async with app.test_app() as test_app:
        client = test_app.test_client()
        async with webhooks_into(client, world.sandbox):
            seen, delivered = await world.sandbox.comment(IG_ID, "price?", from_id="9990001")
            assert delivered.status == 200
            world.sandbox.faults.lose_webhooks("comments", times=1)
            missed, lost = await world.sandbox.comment(IG_ID, "price too?", from_id="9990002")
            assert lost.status is None and lost in world.sandbox.lost
            for comment in (seen, missed):
                comment.created_at -= timedelta(minutes=5)
            await handle_pending()

            await event_jobs.sweep_account_comments(ctx, workspace_id, world.account.id)
            sources = await WebhookEvent.all().order_by("id").values_list("source", flat=True)
            assert sources == ["webhook", "sweep"]
            await handle_pending()

            late = await world.sandbox.deliver(lost.payload)
            assert late.status == 200
            assert await WebhookEvent.all().count() == 2
            await handle_pending()

    replied = sorted(str(s.target) for s in world.sent("private_reply"))
    assert replied == sorted([str(seen.id), str(missed.id)])
    assert sorted(str(s.target) for s in world.sent("comment_reply")) == replied

    (health,) = await world.services.health.accounts(world.actor)
    assert (health.figures.comments, health.figures.swept) == (2, 1)
    assert health.figures.last_webhook_at is not None
    assert health.figures.events == 1  # the late webhook was a duplicate: not stored again
