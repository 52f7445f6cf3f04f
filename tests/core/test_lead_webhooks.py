"""Lead webhooks: signed JSON a receiver can verify, retried until delivered, given up with a
reason."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from core.db.models import AutomationRule, Lead, Trigger
from core.domain.rule_definition import RuleDefinition
from core.domain.scope import Actor, Role
from core.services import rule_editor
from core.services.leads import MAX_ATTEMPTS, lead_webhook_secret
from tests.automation_world import (
    dm_payload,
    make_account,
    make_rule,
)
from tests.core.test_automations import World

SECRET = "receiver-secret"


class Receiver:
    """A customer's lead endpoint that can be down."""

    def __init__(self) -> None:
        self.down = False
        self.received: list[tuple[bytes, dict[str, str]]] = []
        self.hits = 0

    async def handle(self, request: web.Request) -> web.Response:
        self.hits += 1
        if self.down:
            return web.Response(status=503)
        self.received.append((await request.read(), dict(request.headers)))
        return web.Response(text="ok")


@pytest.fixture
async def receiver(unused_tcp_port: int) -> AsyncIterator[tuple[Receiver, str]]:
    found = Receiver()
    app = web.Application()
    app.router.add_post("/leads", found.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", unused_tcp_port)
    await site.start()
    yield found, f"http://127.0.0.1:{unused_tcp_port}/leads"
    await runner.cleanup()


def flow_config(url: str, secret: str | None = SECRET) -> dict[str, Any]:
    settings: dict[str, Any] = {"webhook_url": url}
    if secret:
        settings["webhook_secret"] = secret
    return {
        "dm_type": "lead_capture",
        "lead_capture_flow": [
            {"type": "ask", "text": "Email?", "field_type": "email"},
            {"type": "save"},
            {"type": "send", "message": "Thanks!"},
        ],
        "lead_capture_settings": settings,
    }


async def capture(world: World, account: Any) -> Lead:
    await world.deliver(dm_payload("m1", "join", sender="p1"))
    await world.deliver(dm_payload("m2", "bob@example.com", sender="p1"))
    return await Lead.get(igsid="p1")


async def run_deliveries(world: World) -> list[str]:
    return [
        await world.engine.leads.deliver(*job.args)
        for job in world.queue.take("deliver_lead_webhook")
    ]


async def test_lead_is_posted_with_a_signature_the_receiver_can_verify(
    container: Any, receiver: tuple[Receiver, str]
) -> None:
    endpoint, url = receiver
    world = World(container)
    account = await make_account(container)
    rule = await make_rule(account, trigger=Trigger.DM, keywords=["join"], config=flow_config(url))
    lead = await capture(world, account)
    assert await run_deliveries(world) == ["delivered"]
    ((body, headers),) = endpoint.received
    expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(headers["X-Reelay-Signature-256"], expected)
    document = json.loads(body)
    assert document["email"] == "bob@example.com" and document["rule"]["id"] == rule.id
    assert document["person"] == {"igsid": "p1", "username": ""}
    assert document["event"] == "lead.captured"
    refreshed = await Lead.get(id=lead.id)
    assert refreshed.webhook_status == "delivered" and refreshed.delivered_at is not None


async def test_plaintext_secret_of_an_older_release_is_encrypted_on_next_save(
    container: Any, receiver: tuple[Receiver, str]
) -> None:
    endpoint, url = receiver
    world = World(container)
    account = await make_account(container)
    rule = await make_rule(account, trigger=Trigger.DM, keywords=["join"], config=flow_config(url))
    definition = RuleDefinition.from_stored(rule).model_copy(deep=True, update={"name": "Join"})
    definition.lead_settings.webhook_secret = None  # keep the stored one
    await rule_editor.save_rule(
        Actor(account.workspace_id, Role.OWNER, "o"),
        definition,
        redis=container.redis,
        rule_id=rule.id,
        secrets=container.secrets,
    )
    stored = (await AutomationRule.get(id=rule.id)).config["lead_capture_settings"]
    assert SECRET not in str(stored) and stored["webhook_secret"]
    await capture(world, account)
    assert await run_deliveries(world) == ["delivered"]
    ((body, headers),) = endpoint.received
    expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(headers["X-Reelay-Signature-256"], expected)


async def test_default_secret_is_derived_per_workspace(
    container: Any, receiver: tuple[Receiver, str]
) -> None:
    endpoint, url = receiver
    world = World(container)
    account = await make_account(container)
    await make_rule(
        account, trigger=Trigger.DM, keywords=["join"], config=flow_config(url, secret=None)
    )
    await capture(world, account)
    await run_deliveries(world)
    ((body, headers),) = endpoint.received
    secret = lead_webhook_secret(container.secret_key, account.workspace_id)
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    assert headers["X-Reelay-Signature-256"] == expected


async def test_endpoint_down_then_up_is_delivered_once(
    container: Any, receiver: tuple[Receiver, str]
) -> None:
    endpoint, url = receiver
    world = World(container)
    account = await make_account(container)
    await make_rule(account, trigger=Trigger.DM, keywords=["join"], config=flow_config(url))
    lead = await capture(world, account)
    endpoint.down = True
    assert await run_deliveries(world) == ["pending"]
    assert await run_deliveries(world) == ["pending"]
    (retry,) = [j for j in world.queue.jobs if j.function == "deliver_lead_webhook"]
    assert retry.defer_until is not None and retry.defer_until > world.clock.now()
    endpoint.down = False
    assert await run_deliveries(world) == ["delivered"]
    assert await world.engine.leads.deliver(lead.id) == "delivered"  # a stray duplicate job
    assert len(endpoint.received) == 1 and endpoint.hits == 3
    assert (await Lead.get(id=lead.id)).webhook_attempts == 3


async def test_delivery_is_given_up_with_a_logged_reason(
    container: Any, caplog: pytest.LogCaptureFixture, unused_tcp_port: int
) -> None:
    world = World(container)
    account = await make_account(container)
    dead = f"http://127.0.0.1:{unused_tcp_port}/nothing-listens"
    await make_rule(account, trigger=Trigger.DM, keywords=["join"], config=flow_config(dead))
    lead = await capture(world, account)
    caplog.set_level(logging.WARNING)
    statuses: list[str] = []
    for _ in range(MAX_ATTEMPTS):
        statuses += await run_deliveries(world)
    assert statuses[-1] == "failed" and statuses[:-1] == ["pending"] * (MAX_ATTEMPTS - 1)
    refreshed = await Lead.get(id=lead.id)
    assert refreshed.webhook_status == "failed" and "attempts failed" in refreshed.webhook_error
    assert f"lead {lead.id} webhook given up" in caplog.text
