"""A dead token: one alert on the transition, events kept while it lasts, handled after the
reconnect when Meta's windows allow."""

from __future__ import annotations

from typing import Any

import pytest

from core.db.models import (
    AccountStatus,
    AuditLog,
    Conversation,
    DomainEvent,
    EventStatus,
    InstagramAccount,
    OutboundAction,
    OutboundStatus,
    WebhookEvent,
)
from core.domain.graph_errors import ErrorKind, GraphError
from core.services import account_changes
from core.services.outbox import ActionKind
from core.services.reconnection import mark_needs_reconnect, resume_waiting
from core.services.waiting_sends import resume_sends
from tests.automation_world import comment_payload, dm_payload, make_account, make_rule
from tests.core.test_automations import World


@pytest.fixture
async def world(container: Any) -> World:
    return World(container)


@pytest.fixture
async def account(container: Any) -> InstagramAccount:
    return await make_account(container)


def dead_token() -> GraphError:
    return GraphError(
        code=190,
        subcode=None,
        message="Invalid OAuth access token",
        kind=ErrorKind.TOKEN_INVALID,
        title="token expired",
    )


async def test_dead_token_while_messaging_alerts_and_audits_once(
    world: World, account: InstagramAccount
) -> None:
    await make_rule(account, keywords=["price"])
    world.graph.errors = [dead_token(), dead_token()]
    await world.deliver(comment_payload("c1", "price"))
    await world.deliver(comment_payload("c2", "price", sender="igsid-2"))
    refreshed = await InstagramAccount.get(id=account.id)
    assert refreshed.status is AccountStatus.NEEDS_RECONNECT
    assert refreshed.status_reason == "token expired"
    events = await DomainEvent.filter(kind="account.needs_reconnect")
    assert [e.payload["account_id"] for e in events] == [account.id]
    assert await AuditLog.filter(action="account.needs_reconnect").count() == 1
    assert await mark_needs_reconnect(refreshed, "token expired", redis=None) is False
    assert await DomainEvent.filter(kind="account.needs_reconnect").count() == 1


async def test_events_wait_while_the_token_is_dead(world: World, account: InstagramAccount) -> None:
    await make_rule(account, keywords=["price"])
    await mark_needs_reconnect(account, "token expired", redis=None)
    (outcome,) = await world.deliver(comment_payload("c1", "price"))
    assert outcome.status is EventStatus.WAITING and "reconnect" in outcome.reason
    assert world.graph.calls == []
    stored = await WebhookEvent.get(dedupe_key__contains="c1")
    assert stored.status is EventStatus.WAITING


async def test_reconnect_handles_waiting_events_inside_their_windows(
    world: World, account: InstagramAccount
) -> None:
    await make_rule(account, keywords=["price"])
    await mark_needs_reconnect(account, "token expired", redis=None)
    await world.deliver(comment_payload("old-comment", "price"))
    await world.deliver(dm_payload("old-dm", "price"))
    world.clock.advance(days=2)
    await world.deliver(comment_payload("new-comment", "price", sender="igsid-2"))
    world.clock.advance(hours=1)
    await InstagramAccount.filter(id=account.id).update(status=AccountStatus.ACTIVE)

    resumed = await resume_waiting(account, world.queue, world.clock.now())

    assert (resumed.requeued, resumed.expired) == (2, 1)
    outcomes = [await world.engine.handle_event(*j.args) for j in world.queue.take("handle_event")]
    assert [o.status for o in outcomes] == [EventStatus.DONE, EventStatus.DONE]
    await world.run_sends()
    assert sorted(c.recipient["comment_id"] for c in world.graph.messages()) == [
        "new-comment",
        "old-comment",
    ]
    dm = await WebhookEvent.get(kind="message")
    assert dm.status is EventStatus.EXPIRED and "24-hour window" in dm.error


async def test_comment_waiting_past_seven_days_expires(
    world: World, account: InstagramAccount
) -> None:
    await mark_needs_reconnect(account, "token expired", redis=None)
    await world.deliver(comment_payload("c1", "price"))
    world.clock.advance(days=7, seconds=1)
    resumed = await resume_waiting(account, world.queue, world.clock.now())
    assert (resumed.requeued, resumed.expired) == (0, 1)
    event = await WebhookEvent.get(kind="comment")
    assert event.status is EventStatus.EXPIRED and "7-day window" in event.error
    assert world.queue.take("handle_event") == []


async def test_a_dead_token_stops_every_worker_at_once(
    world: World, account: InstagramAccount, container: Any
) -> None:
    """Two workers: one has the account cached as active; another finds the token dead. The
    first keeps the next event waiting instead of sending with the dead token."""
    await make_rule(account, keywords=["price"])
    (first,) = await world.deliver(comment_payload("c1", "price"))
    assert first.status is EventStatus.DONE
    calls = len(world.graph.calls)

    elsewhere = await InstagramAccount.get(id=account.id)  # as another worker read it
    await mark_needs_reconnect(elsewhere, "token expired", redis=container.redis)

    (second,) = await world.deliver(comment_payload("c2", "price", sender="igsid-2"))
    assert second.status is EventStatus.WAITING
    assert len(world.graph.calls) == calls


async def test_an_account_connected_meanwhile_is_seen_by_the_next_event(
    world: World, container: Any
) -> None:
    (first,) = await world.deliver(comment_payload("c1", "price"))
    assert "no active account" in first.reason
    account = await make_account(container)  # connected in the panel meanwhile
    await make_rule(account, keywords=["price"])
    await account_changes.announce(container.redis)
    (second,) = await world.deliver(comment_payload("c2", "price"))
    assert second.status is EventStatus.DONE


async def test_sends_kept_while_the_token_was_dead_go_out_after_the_reconnect(
    world: World, account: InstagramAccount
) -> None:
    await make_rule(
        account,
        keywords=["price"],
        config={"comment_replies": ["Sent you a DM!"], "message_variations": ["Prices: …"]},
    )
    outbox = world.engine.outbox
    person = await Conversation.create(
        account=account, igsid="igsid-9", last_inbound_at=world.clock.now()
    )
    queued = await outbox.submit(
        account=account,
        kind=ActionKind.DM,
        target="igsid-9",
        message={"text": "Still there?"},
        key="follow-up",
        conversation_id=person.id,
        delay_s=600,
    )
    world.graph.errors = [dead_token(), dead_token()]
    await world.deliver(comment_payload("c1", "price"))  # both replies meet error 190
    world.clock.advance(minutes=10)
    await world.run_sends()  # the delayed DM finds the account flagged: no call
    kept = await OutboundAction.all().order_by("id")
    assert [a.status for a in kept] == [OutboundStatus.WAITING] * 3
    assert "needs reconnecting" in kept[0].error
    calls = len(world.graph.calls)
    assert calls == 2

    world.clock.advance(days=2)  # the private reply's 7 days still run, the DM's 24 h do not
    await InstagramAccount.filter(id=account.id).update(status=AccountStatus.ACTIVE)
    resumed = await resume_sends(account, world.queue, world.clock.now())
    await world.run_sends()

    assert (resumed.requeued, resumed.expired) == (2, 1)
    assert [c.recipient for c in world.graph.calls[calls:]] == [
        {"comment_id": "c1"},
        {"comment_id": "c1"},
    ]
    assert {a.kind: a.status for a in await OutboundAction.all()} == {
        "public_reply": OutboundStatus.SENT,
        "private_reply": OutboundStatus.SENT,
        "dm": OutboundStatus.EXPIRED,
    }
    dm = await OutboundAction.get(id=queued.action.id if queued.action else 0)
    assert "reconnected too late" in dm.error and "24 h messaging window closed" in dm.error
