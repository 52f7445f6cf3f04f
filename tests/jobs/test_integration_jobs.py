"""The event-webhook jobs as the worker runs them: the notification job plans the deliveries,
the delivery job sends each once (a failed attempt waits for its retry), the sweep re-queues
lost ones; old idempotency keys are forgotten by a cron."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp import web

from core.db.models import (
    DomainEvent,
    EventWebhookDelivery,
    IdempotentRequest,
    WebhookDeliveryStatus,
    Workspace,
)
from core.domain import event_webhooks as hooks
from core.domain.scope import Actor, Role
from core.settings import Settings
from core.wiring import Services
from jobs.integrations import (
    deliver_event_webhook,
    forget_idempotency_keys,
    sweep_event_webhooks,
)
from jobs.notifications import deliver_event
from jobs.worker import CRON_JOBS, FUNCTIONS


@pytest.fixture
def settings(settings_factory: Any) -> Settings:
    """The receiver listens on this machine."""
    made: Settings = settings_factory(private_urls_ok=True)
    return made


class Receiver:
    def __init__(self) -> None:
        self.secret = ""
        self.fail_next = 1
        self.accepted: list[dict[str, Any]] = []

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        if not hooks.verify(
            self.secret, request.headers[hooks.SIGNATURE_HEADER], body, time.time()
        ):
            return web.Response(status=401)
        if self.fail_next:
            self.fail_next -= 1
            return web.Response(status=502)
        self.accepted.append(json.loads(body))
        return web.Response(status=204)


@pytest.fixture
async def receiver(unused_tcp_port: int) -> AsyncIterator[tuple[Receiver, str]]:
    found = Receiver()
    app = web.Application()
    app.router.add_post("/in", found.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", unused_tcp_port).start()
    yield found, f"http://127.0.0.1:{unused_tcp_port}/in"
    await runner.cleanup()


def test_the_jobs_and_crons_are_registered() -> None:
    assert any(f.coroutine is deliver_event_webhook for f in FUNCTIONS)
    crons = {job.coroutine for job in CRON_JOBS}
    assert {sweep_event_webhooks, forget_idempotency_keys} <= crons


async def test_lead_captured_is_received_signed_and_once_through_the_jobs(
    services: Services, receiver: tuple[Receiver, str]
) -> None:
    endpoint, url = receiver
    ctx = {"services": services}
    workspace = await Workspace.create(name="W")
    owner = Actor(workspace.id, Role.OWNER, "owner@example.com")
    made = await services.event_webhooks.create(owner, url=url, events=["lead.captured"])
    endpoint.secret = made.secret
    event = await DomainEvent.create(
        workspace_id=workspace.id, kind="lead.captured", payload={"lead_id": 9, "email": "a@b.c"}
    )
    await deliver_event(ctx, event.id)
    await deliver_event(ctx, event.id)  # arq ran it twice
    (delivery,) = await EventWebhookDelivery.filter(event_id=event.id)

    await deliver_event_webhook(ctx, delivery.id)  # the receiver answers 502
    failed = await EventWebhookDelivery.get(id=delivery.id)
    assert failed.status is WebhookDeliveryStatus.PENDING and failed.response_status == 502
    await deliver_event_webhook(ctx, delivery.id)  # too early: the retry's job sends it
    assert endpoint.accepted == []

    # The retry's job was lost (Redis flushed): once due, the sweep queues it again.
    await EventWebhookDelivery.filter(id=delivery.id).update(
        next_attempt_at=datetime.now(UTC) - timedelta(seconds=1)
    )
    await services.container.redis.flushdb()
    minutes = {int(time.time()) // 60}
    await sweep_event_webhooks(ctx)
    minutes.add(int(time.time()) // 60)
    queue = services.container.queue
    assert [m for m in minutes if await queue.job_exists(f"hook:{delivery.id}:sweep:{m}")]
    await deliver_event_webhook(ctx, delivery.id)
    await deliver_event_webhook(ctx, delivery.id)
    (document,) = endpoint.accepted
    assert document["type"] == "lead.captured" and document["data"]["email"] == "a@b.c"
    done = await EventWebhookDelivery.get(id=delivery.id)
    assert done.status is WebhookDeliveryStatus.DELIVERED and done.attempts == 2


async def test_idempotency_keys_are_forgotten_after_a_day(services: Services) -> None:
    workspace = await Workspace.create(name="W")
    now = datetime.now(UTC)
    for key, age in (("old", 25), ("new", 1)):
        await IdempotentRequest.create(
            workspace_id=workspace.id,
            key=key,
            fingerprint="f",
            status=201,
            created_at=now - timedelta(hours=age),
        )
    await forget_idempotency_keys({"services": services})
    assert await IdempotentRequest.all().values_list("key", flat=True) == ["new"]
