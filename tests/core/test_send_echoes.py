"""The echo Meta sends for each message settles a DM or private reply whose answer was lost:
recorded sent, never sent again, even when the conversation cannot be read. Against the
sandbox Instagram (which echoes what it sends), on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from redis.asyncio import Redis

from core.db.models import OutboundAction, OutboundStatus, WebhookEvent
from core.domain.webhooks import parse_body
from core.services.automations import Automations
from core.services.inbox import record_events
from core.services.leads import Leads
from core.services.outbox import ActionKind
from core.services.tracked_links import LinkTracker
from tests.automation_world import PUBLIC_BASE_URL
from tests.core import test_exactly_once_sends as exactly_once
from tests.core.test_exactly_once_sends import BUTTONS, World, stats

world = exactly_once.world

CONVERSATIONS = r"/conversations$"


def engine(world: World, redis: Redis) -> Automations:
    leads = Leads(
        queue=world.queue, clock=world.clock, poster=None, secret_key="k" * 32, secrets=None
    )
    return Automations(
        outbox=world.outbox,
        leads=leads,
        redis=redis,
        clock=world.clock,
        links=LinkTracker(base_url=PUBLIC_BASE_URL),
    )


async def deliver_echoes(world: World, redis: Redis) -> list[str]:
    """Hand the echoes the sandbox sent so far to the engine; the outcomes' reasons."""
    await asyncio.sleep(0.05)  # the sandbox sends its echoes in the background
    events = []
    for delivery in world.sandbox.deliveries:
        events.extend(parse_body(json.dumps(delivery.payload).encode()))
    world.sandbox.deliveries.clear()
    await record_events(events, world.queue, world.clock.now(), redis=redis)
    automations = engine(world, redis)
    reasons = [
        (await automations.handle_event(*job.args)).reason
        for job in world.queue.take("handle_event")
    ]
    ignored = await WebhookEvent.filter(kind="echo", status="ignored").values_list(
        "error", flat=True
    )
    return reasons + [f"not queued: {reason}" for reason in ignored]


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        pytest.param(ActionKind.DM, {"text": "Our prices"}, id="dm"),
        pytest.param(ActionKind.DM, BUTTONS, id="buttons"),
        pytest.param(ActionKind.PRIVATE_REPLY, {"text": "Here is the price"}, id="pr"),
    ],
)
async def test_the_echo_settles_a_message_whose_answer_was_lost(
    world: World, redis: Redis, kind: ActionKind, message: dict[str, Any]
) -> None:
    world.sandbox.echoes = True
    world.sandbox.faults.lost_answer("drop", path=r"/messages$")
    # Neither the conversation nor a second send could tell: only the echo can.
    world.sandbox.faults.fail(500, code=None, method="GET", path=CONVERSATIONS, times=None)
    action = await world.submit(kind, message)
    assert (await OutboundAction.get(id=action.id)).status is OutboundStatus.PENDING

    reasons = await deliver_echoes(world, redis)

    assert reasons == [f"echo: the {kind.value} {action.id} arrived"]
    row = await OutboundAction.get(id=action.id)
    assert row.status is OutboundStatus.SENT
    assert row.response is not None and row.response["confirmed_by"] == "echo"
    assert row.response["message_id"] == world.effects(kind)[0].id
    await world.run_sends()  # the check queued for it finds it settled
    assert len(world.effects(kind)) == 1
    assert await stats(world.rule) == (0, 1)
    assert (await WebhookEvent.get(kind="echo")).status == "done"


async def test_an_echo_that_came_before_the_answer_was_lost_is_found(
    world: World, redis: Redis
) -> None:
    """The worker sent, Meta acted and echoed, the worker died: the re-queued send finds the
    echo and does not read the conversation or send again."""
    world.sandbox.echoes = True
    action = await world.submit(ActionKind.DM, {"text": "Our prices"})
    await OutboundAction.filter(id=action.id).update(
        status=OutboundStatus.PENDING, attempts=1, response=None
    )
    assert await deliver_echoes(world, redis) == ["not queued: echo of a message the account sent"]
    world.sandbox.faults.fail(500, code=None, method="GET", path=CONVERSATIONS, times=None)
    world.clock.advance(minutes=10)

    assert await world.outbox.requeue_stuck() == 1
    await world.run_sends()

    row = await OutboundAction.get(id=action.id)
    assert row.status is OutboundStatus.SENT, row.error
    assert row.response is not None and row.response["confirmed_by"] == "echo"
    assert len(world.effects(ActionKind.DM)) == 1


async def test_a_late_echo_settles_an_unconfirmed_message_and_counts_it(
    world: World, redis: Redis
) -> None:
    world.sandbox.faults.lost_answer("504", path=r"/messages$")
    world.sandbox.faults.fail(500, code=None, method="GET", path=CONVERSATIONS, times=None)
    action = await world.submit(ActionKind.DM, {"text": "Our prices"})
    await world.run_sends()
    assert (await OutboundAction.get(id=action.id)).status is OutboundStatus.UNCONFIRMED
    assert await stats(world.rule) == (0, 0)
    sent = world.effects(ActionKind.DM)[0]
    await world.sandbox.echo(
        world.sandbox.state.accounts[sent.ig_id], sent.target, sent.id, sent.payload
    )

    await deliver_echoes(world, redis)

    assert (await OutboundAction.get(id=action.id)).status is OutboundStatus.SENT
    assert await stats(world.rule) == (0, 1)


async def test_an_echo_of_an_earlier_message_with_the_same_text_settles_nothing(
    world: World, redis: Redis
) -> None:
    world.sandbox.echoes = True
    await world.submit(ActionKind.DM, {"text": "Our prices"})
    await deliver_echoes(world, redis)  # the first message, delivered and echoed
    world.clock.advance(minutes=30)
    world.sandbox.echoes = False
    world.sandbox.faults.fail(502, code=None, method="POST", path=r"/messages$")
    second = await world.outbox.submit(
        account=world.account,
        kind=ActionKind.DM,
        target="9990001",
        message={"text": "Our prices"},
        key="again",
        rule_id=world.rule.id,
        conversation_id=world.conversation.id,
    )
    assert second.action is not None
    await world.run_sends()
    row = await OutboundAction.get(id=second.action.id)
    assert row.status is OutboundStatus.SENT
    assert row.response is not None and "confirmed_by" not in row.response
    assert len(world.effects(ActionKind.DM)) == 2
