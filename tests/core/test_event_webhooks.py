"""Event webhooks: each event once per subscription, signed with a timestamp, retried for a
day through the public-address guard; subscriptions are an admin's and their secrets sealed."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from core.adapters.outgoing_webhooks import AiohttpWebhookPoster
from core.db.models import (
    ChatLink,
    DomainEvent,
    EventWebhook,
    EventWebhookDelivery,
    NotificationDelivery,
    Platform,
    Trigger,
    WebhookDeliveryStatus,
)
from core.domain import event_webhooks as hooks
from core.domain.scope import Actor, Role
from core.errors import Forbidden, NotFound, ValidationFailed
from core.services import notifications
from core.services.event_webhooks import DELIVER_JOB, EventWebhooks
from tests.automation_world import comment_payload, dm_payload, make_account, make_rule
from tests.core.test_automations import World
from tests.core.test_lead_webhooks import flow_config


class Receiver:
    """A team's endpoint that verifies the signature, and can be down."""

    def __init__(self) -> None:
        self.secret = ""
        self.down = False
        self.accepted: list[dict[str, Any]] = []
        self.hits = 0

    async def handle(self, request: web.Request) -> web.Response:
        self.hits += 1
        if self.down:
            return web.Response(status=500)
        body = await request.read()
        header = request.headers.get(hooks.SIGNATURE_HEADER, "")
        if not hooks.verify(self.secret, header, body, time.time()):
            return web.Response(status=400)
        self.accepted.append(json.loads(body))
        return web.Response(text="ok")


@pytest.fixture
async def receiver(unused_tcp_port: int) -> AsyncIterator[tuple[Receiver, str]]:
    found = Receiver()
    app = web.Application()
    app.router.add_post("/hooks", found.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", unused_tcp_port).start()
    yield found, f"http://127.0.0.1:{unused_tcp_port}/hooks"
    await runner.cleanup()


def _service(container: Any, world: World, *, private_ok: bool = True) -> EventWebhooks:
    return EventWebhooks(
        queue=world.queue,
        clock=world.clock,
        poster=AiohttpWebhookPoster(container.http, private_ok=private_ok),
        secrets=container.secrets,
        jitter=lambda: 0.5,
    )


async def _run(service: EventWebhooks, world: World) -> list[WebhookDeliveryStatus | None]:
    return [await service.deliver(*job.args) for job in world.queue.take(DELIVER_JOB)]


async def test_lead_captured_reaches_the_receiver_signed_and_once_despite_a_failure(
    container: Any, receiver: tuple[Receiver, str]
) -> None:
    endpoint, url = receiver
    world = World(container)
    service = _service(container, world)
    account = await make_account(container)
    owner = Actor(account.workspace_id, Role.OWNER, "owner@example.com")
    made = await service.create(owner, url=url, events=["lead.captured", "post.failed"])
    endpoint.secret = made.secret
    await make_rule(account, trigger=Trigger.DM, keywords=["join"], config=flow_config(url))
    await world.deliver(dm_payload("m1", "join", sender="p1"))
    await world.deliver(dm_payload("m2", "bob@example.com", sender="p1"))
    (event,) = await DomainEvent.filter(kind="lead.captured")

    assert await service.plan(event.id) == 1
    assert await service.plan(event.id) == 0  # the job ran twice: still one delivery
    endpoint.down = True
    assert await _run(service, world) == [WebhookDeliveryStatus.PENDING]
    (retry,) = [job for job in world.queue.jobs if job.function == DELIVER_JOB]
    assert retry.defer_until is not None and retry.defer_until > world.clock.now()
    endpoint.down = False
    world.clock.advance(minutes=1)
    assert await _run(service, world) == [WebhookDeliveryStatus.DELIVERED]
    (delivery,) = await EventWebhookDelivery.all()
    assert await service.deliver(delivery.id) == WebhookDeliveryStatus.DELIVERED  # stray job
    assert endpoint.hits == 2
    (document,) = endpoint.accepted
    assert document["type"] == "lead.captured" and document["id"] == f"evt_{event.id}"
    assert document["data"]["email"] == "bob@example.com"
    assert delivery.attempts == 2 and delivery.response_status == 200


async def test_a_stale_or_forged_signature_is_refused_by_the_check() -> None:
    body = b'{"id":"evt_1"}'
    header = hooks.signature("whsec_x", 1_000_000, body)
    assert hooks.verify("whsec_x", header, body, now=1_000_100)
    assert not hooks.verify("whsec_x", header, body, now=1_000_000 + 301)  # replayed later
    assert not hooks.verify("whsec_y", header, body, now=1_000_100)
    assert not hooks.verify("whsec_x", header, body + b" ", now=1_000_100)
    assert not hooks.verify("whsec_x", "t=abc,v1=00", body, now=1_000_100)


async def test_retries_stop_a_day_after_the_event_with_the_reason(
    container: Any, unused_tcp_port: int
) -> None:
    world = World(container)
    service = _service(container, world)
    account = await make_account(container)
    owner = Actor(account.workspace_id, Role.ADMIN, "admin@example.com")
    dead = f"http://127.0.0.1:{unused_tcp_port}/nothing"
    made = await service.create(owner, url=dead, events=["post.failed"])
    event = await DomainEvent.create(
        workspace_id=account.workspace_id, kind="post.failed", payload={"post_id": 7}
    )
    await service.plan(event.id)
    statuses: list[WebhookDeliveryStatus | None] = []
    for _ in range(60):
        statuses += await _run(service, world)
        if statuses[-1] is WebhookDeliveryStatus.FAILED:
            break
        world.clock.advance(hours=1)
    assert statuses[-1] is WebhookDeliveryStatus.FAILED
    assert set(statuses[:-1]) == {WebhookDeliveryStatus.PENDING}
    (delivery,) = await EventWebhookDelivery.filter(webhook_id=made.webhook.id)
    assert "attempts over 24 hours failed" in delivery.error


async def test_subscriptions_are_an_admins_checked_by_the_guard_and_sealed(
    container: Any, receiver: tuple[Receiver, str]
) -> None:
    endpoint, url = receiver
    world = World(container)
    guarded = _service(container, world, private_ok=False)
    account = await make_account(container)
    admin = Actor(account.workspace_id, Role.ADMIN, "admin@example.com")
    editor = Actor(account.workspace_id, Role.EDITOR, "editor@example.com")
    with pytest.raises(Forbidden):
        await guarded.create(editor, url="https://hooks.example.com/x", events=["post.failed"])
    with pytest.raises(ValidationFailed) as refused:
        await guarded.create(admin, url="http://169.254.169.254/latest", events=["post.failed"])
    assert "private or local" in refused.value.fields["url"]
    with pytest.raises(ValidationFailed) as unknown:
        await guarded.create(admin, url="https://hooks.example.com/x", events=["post.eaten"])
    assert "post.eaten" in unknown.value.fields["events"]

    # A name that resolves to a private address is refused when the delivery connects.
    made = await guarded.create(
        admin, url=url.replace("127.0.0.1", "localhost"), events=["post.failed"]
    )
    assert made.secret.startswith("whsec_")
    stored = await EventWebhook.get(id=made.webhook.id)
    assert made.secret not in stored.secret_encrypted
    assert container.secrets.decrypt(stored.secret_encrypted) == made.secret
    test = await guarded.send_test(admin, made.webhook.id)
    assert await _run(guarded, world) == [WebhookDeliveryStatus.PENDING]
    assert "private or local" in (await EventWebhookDelivery.get(id=test.id)).error
    assert endpoint.hits == 0


async def test_test_event_and_resend_make_new_deliveries_of_the_same_envelope(
    container: Any, receiver: tuple[Receiver, str]
) -> None:
    endpoint, url = receiver
    world = World(container)
    service = _service(container, world)
    account = await make_account(container)
    owner = Actor(account.workspace_id, Role.OWNER, "owner@example.com")
    made = await service.create(owner, url=url, events=["post.published"])
    endpoint.secret = made.secret
    await service.send_test(owner, made.webhook.id)
    event = await DomainEvent.create(
        workspace_id=account.workspace_id, kind="post.published", payload={"post_id": 3}
    )
    await service.plan(event.id)
    await _run(service, world)
    first = (await service.deliveries(owner, made.webhook.id))[0]
    again = await service.resend(owner, first.id)
    await _run(service, world)
    assert [d["type"] for d in endpoint.accepted] == [
        "webhook.test",
        "post.published",
        "post.published",
    ]
    assert endpoint.accepted[1]["id"] == endpoint.accepted[2]["id"] == f"evt_{event.id}"
    log = await service.deliveries(owner, made.webhook.id)
    assert log[0].id == again.id and len(log) == 3
    other = Actor(account.workspace_id + 1000, Role.OWNER, "someone@else")
    with pytest.raises(NotFound):
        await service.resend(other, first.id)


async def test_comments_are_announced_only_to_webhooks_that_want_them(
    container: Any, receiver: tuple[Receiver, str]
) -> None:
    _, url = receiver
    world = World(container)
    service = _service(container, world)
    account = await make_account(container)
    await ChatLink.create(
        workspace_id=account.workspace_id, platform=Platform.TELEGRAM, chat_id="1", title="t"
    )
    await world.deliver(comment_payload("c1", "nice"))
    assert not await DomainEvent.filter(kind="comment.received").exists()

    owner = Actor(account.workspace_id, Role.OWNER, "owner@example.com")
    await service.create(owner, url=url, events=["comment.received"])
    await world.deliver(comment_payload("c2", "lovely", username="bea"))
    (event,) = await DomainEvent.filter(kind="comment.received")
    assert event.payload["comment_id"] == "c2" and event.payload["from_username"] == "bea"
    assert await service.plan(event.id) == 1
    # Chats are not told of every comment.
    await notifications.deliver(container, notifications.Delivery(), event.id)
    assert not await NotificationDelivery.filter(event_id=event.id).exists()
