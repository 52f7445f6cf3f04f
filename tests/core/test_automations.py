"""The automations engine end to end on a real database and Redis, with a recording Instagram:
triggers, actions, windows, pacing, errors, lead flows, stats."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import Any

import pytest

from core.db.models import (
    AccountStatus,
    Conversation,
    DomainEvent,
    EventStatus,
    InstagramAccount,
    Lead,
    MatchMode,
    Message,
    OutboundAction,
    OutboundStatus,
    RuleStats,
    Trigger,
    WebhookEvent,
)
from core.domain.graph_errors import ErrorKind, GraphError
from core.domain.webhooks import parse_body
from core.services.inbox import record_events
from core.services.outbox import ActionKind
from tests.automation_world import (
    ACCOUNT_IG_ID,
    FakeClock,
    FakeMessaging,
    RecordingQueue,
    body_of,
    build_engine,
    comment_payload,
    dm_payload,
    echo_payload,
    make_account,
    make_rule,
    postback_payload,
    quick_reply_payload,
    story_mention_payload,
    story_reply_payload,
)


class World:
    def __init__(self, container: Any) -> None:
        self.container = container
        self.graph = FakeMessaging()
        self.queue = RecordingQueue()
        self.clock = FakeClock()
        self.engine = build_engine(container, self.graph, self.queue, self.clock)

    async def deliver(self, payload: dict[str, Any]) -> list[Any]:
        """Record a webhook delivery and run the handle_event jobs it queued."""
        await record_events(parse_body(body_of(payload)), self.queue, self.clock.now())
        return [
            await self.engine.handle_event(*job.args) for job in self.queue.take("handle_event")
        ]

    async def run_sends(self) -> None:
        for job in self.queue.take("send_outbound"):
            await self.engine.outbox.send(*job.args)


@pytest.fixture
async def world(container: Any) -> World:
    return World(container)


@pytest.fixture
async def account(container: Any) -> InstagramAccount:
    return await make_account(container)


async def test_comment_rule_public_reply_and_private_reply(world: World, account: Any) -> None:
    rule = await make_rule(
        account,
        keywords=["price"],
        config={
            "comment_replies": ["Sent you a DM, @{username}!"],
            "message_variations": ["Hi {first_name}, prices: {link}"],
            "link": "https://shop.example/prices",
        },
    )
    (outcome,) = await world.deliver(comment_payload("c1", "What's the Príce?"))
    assert outcome.status is EventStatus.DONE and outcome.rule_id == rule.id
    (reply,) = world.graph.replies()
    assert reply.recipient == {"comment_id": "c1"}
    assert reply.payload == {"message": "Sent you a DM, @alice!"}
    (private,) = world.graph.messages()
    assert private.recipient == {"comment_id": "c1"}
    assert private.payload == {"text": "Hi alice, prices: https://shop.example/prices"}
    stats = await RuleStats.get(rule_id=rule.id)
    assert (stats.total_triggers, stats.total_dms_sent, stats.total_comments_replied) == (1, 1, 1)
    assert stats.last_triggered_at is not None
    conversation = await Conversation.get(account=account, igsid="igsid-1")
    assert conversation.username == "alice" and conversation.last_inbound_at is None
    assert [m.direction for m in await Message.filter(conversation=conversation)] == ["out"]


async def test_both_payload_shapes_and_comment_id_field(world: World, account: Any) -> None:
    await make_rule(account, keywords=["info"])
    await world.deliver(comment_payload("c1", "info", shape="entry"))
    await world.deliver(comment_payload("c2", "info", id_field="comment_id"))
    assert [c.recipient for c in world.graph.messages()] == [
        {"comment_id": "c1"},
        {"comment_id": "c2"},
    ]


async def test_media_scope_and_non_matching_text(world: World, account: Any) -> None:
    await make_rule(account, keywords=["guide"], media_ids=["media-2"])
    (other_post,) = await world.deliver(comment_payload("c1", "guide", media="media-1"))
    (no_keyword,) = await world.deliver(comment_payload("c2", "nice", media="media-2"))
    (scoped,) = await world.deliver(comment_payload("c3", "guide?", media="media-2"))
    assert other_post.status is EventStatus.IGNORED and other_post.reason == "no rule matched"
    assert no_keyword.status is EventStatus.IGNORED
    assert scoped.status is EventStatus.DONE
    assert len(world.graph.messages()) == 1


async def test_each_messaging_trigger(world: World, account: Any) -> None:
    await make_rule(
        account,
        trigger=Trigger.DM,
        keywords=["menu"],
        config={"message_variations": ["dm"]},
    )
    await make_rule(
        account,
        trigger=Trigger.STORY_REPLY,
        keywords=[],
        match_mode=MatchMode.ANY,
        config={"message_variations": ["story reply"]},
    )
    await make_rule(
        account,
        trigger=Trigger.STORY_MENTION,
        keywords=[],
        match_mode=MatchMode.ANY,
        config={"message_variations": ["thanks for the mention"]},
    )
    await make_rule(
        account,
        trigger=Trigger.POSTBACK,
        keywords=["GET_GUIDE"],
        match_mode=MatchMode.EXACT,
        config={"message_variations": ["the guide"]},
    )
    await world.deliver(dm_payload("m1", "MENU please", sender="p1"))
    await world.deliver(story_reply_payload("m2", "love it", sender="p2"))
    await world.deliver(story_mention_payload("m3", sender="p3"))
    await world.deliver(postback_payload("m4", "Get guide", "GET_GUIDE", sender="p4"))
    await world.deliver(quick_reply_payload("m5", "Guide", "GET_GUIDE", sender="p5"))
    sent = [(c.recipient, c.payload["text"]) for c in world.graph.messages()]
    assert sent == [
        ({"id": "p1"}, "dm"),
        ({"id": "p2"}, "story reply"),
        ({"id": "p3"}, "thanks for the mention"),
        ({"id": "p4"}, "the guide"),
        ({"id": "p5"}, "the guide"),
    ]
    conversation = await Conversation.get(account=account, igsid="p1")
    assert conversation.last_inbound_at is not None
    directions = [m.direction for m in await Message.filter(conversation=conversation)]
    assert directions == ["in", "out"]


async def test_buttons_quick_replies_and_seeded_variations(container: Any, account: Any) -> None:
    config = {
        "message_variations": ["One {username}", "Two {username}", "Three {username}"],
        "dmType": "text_button",
        "buttons": [
            {"text": "Shop", "url": "https://shop.example"},
            {"text": "Talk", "payload": "TALK"},
        ],
    }
    await make_rule(account, trigger=Trigger.DM, keywords=["hi"], config=config)

    calls = iter(range(1000))

    async def texts(seed: int) -> list[str]:
        n = next(calls)
        world = World(container)
        world.engine = build_engine(container, world.graph, world.queue, world.clock, seed=seed)
        await world.deliver(dm_payload(f"s{n}-a", "hi", sender=f"s{n}a"))
        await world.deliver(dm_payload(f"s{n}-b", "hi", sender=f"s{n}b"))
        payloads = [c.payload["attachment"]["payload"] for c in world.graph.messages()]
        assert all(p["buttons"][0]["type"] == "web_url" for p in payloads)
        assert all(
            p["buttons"][1] == {"type": "postback", "title": "Talk", "payload": "TALK"}
            for p in payloads
        )
        return [p["text"].split()[0] for p in payloads]

    first, again = await texts(1), await texts(1)
    assert first == again
    assert {t for seed in range(2, 8) for t in await texts(seed)} == {"One", "Two", "Three"}

    quick = World(container)
    await make_rule(
        account,
        trigger=Trigger.DM,
        keywords=["size"],
        config={"message_variations": ["Which size?"], "quick_replies": ["S", "M", "L"]},
    )
    await quick.deliver(dm_payload("q1", "size", sender="q"))
    (call,) = quick.graph.messages()
    assert call.payload["quick_replies"][1] == {
        "content_type": "text",
        "title": "M",
        "payload": "M",
    }


async def test_delay_defers_the_send(world: World, account: Any) -> None:
    await make_rule(
        account, keywords=["later"], config={"message_variations": ["x"], "delay_minutes": 5}
    )
    await world.deliver(comment_payload("c1", "later"))
    assert world.graph.calls == []
    (job,) = [j for j in world.queue.jobs if j.function == "send_outbound"]
    assert job.defer_until == world.clock.now() + timedelta(minutes=5)
    world.clock.advance(minutes=5)
    await world.run_sends()
    assert len(world.graph.messages()) == 1


async def test_echoes_and_own_comments_never_trigger(world: World, account: Any) -> None:
    await make_rule(account, trigger=Trigger.DM, keywords=[], match_mode=MatchMode.ANY)
    await make_rule(account, keywords=[], match_mode=MatchMode.ANY)
    assert await world.deliver(echo_payload("e1", "hello", sender=ACCOUNT_IG_ID)) == []
    (own,) = await world.deliver(comment_payload("c1", "hi", sender=ACCOUNT_IG_ID))
    (own_name,) = await world.deliver(
        comment_payload("c2", "hi", sender="x", username="Reelay_Shop")
    )
    assert own.reason == own_name.reason == "the account's own activity"
    assert world.graph.calls == []
    echo = await WebhookEvent.get(kind="echo")
    assert echo.status is EventStatus.IGNORED


async def test_unknown_account_is_ignored(world: World, account: Any) -> None:
    (outcome,) = await world.deliver(dm_payload("m1", "hi", account="999"))
    assert outcome.status is EventStatus.IGNORED and "no active account" in outcome.reason


async def test_cooldown_and_first_comment_only(world: World, account: Any) -> None:
    await make_rule(account, keywords=["deal"], cooldown_s=3600)
    await make_rule(
        account, keywords=["promo"], first_comment_only=True, config={"comment_replies": ["ok"]}
    )
    await world.deliver(comment_payload("c1", "deal", media="m1"))
    await world.deliver(comment_payload("c2", "deal", media="m2"))
    await world.deliver(comment_payload("c3", "deal", media="m3", sender="other"))
    await world.deliver(comment_payload("c4", "promo", media="m1"))
    await world.deliver(comment_payload("c5", "promo", media="m1"))
    await world.deliver(comment_payload("c6", "promo", media="m2"))
    assert [c.recipient["comment_id"] for c in world.graph.messages()] == ["c1", "c3"]
    assert [c.recipient["comment_id"] for c in world.graph.replies()] == ["c4", "c6"]


async def test_lower_priority_rule_answers_when_the_best_one_cools_down(
    world: World, account: Any
) -> None:
    await make_rule(
        account, keywords=["x"], priority=1, cooldown_s=600, config={"message_variations": ["best"]}
    )
    await make_rule(
        account, keywords=["x"], priority=0, config={"message_variations": ["fallback"]}
    )
    await world.deliver(comment_payload("c1", "x"))
    await world.deliver(comment_payload("c2", "x"))
    assert [c.payload["text"] for c in world.graph.messages()] == ["best", "fallback"]


async def test_private_reply_twice_for_one_comment_calls_meta_once(
    world: World, account: Any
) -> None:
    first = await world.engine.outbox.submit(
        account=account,
        kind=ActionKind.PRIVATE_REPLY,
        target="c9",
        message={"text": "a"},
        key="r1:e1:dm",
    )
    second = await world.engine.outbox.submit(
        account=account,
        kind=ActionKind.PRIVATE_REPLY,
        target="c9",
        message={"text": "b"},
        key="r2:e1:dm",
    )
    assert first.status is OutboundStatus.SENT and second.action is None
    assert len(world.graph.calls) == 1


async def test_redelivered_event_is_acted_on_once(world: World, account: Any) -> None:
    await make_rule(
        account, keywords=["price"], config={"comment_replies": ["r"], "message_variations": ["d"]}
    )
    payload = comment_payload("c1", "price")
    await world.deliver(payload)
    assert await world.deliver(payload) == []
    assert len(world.graph.calls) == 2
    # Even a handle_event run twice for the same row acts once.
    event = await WebhookEvent.get(dedupe_key=f"{ACCOUNT_IG_ID}:comment:c1")
    await WebhookEvent.filter(id=event.id).update(status=EventStatus.PENDING)
    await world.engine.handle_event(event.id)
    assert len(world.graph.calls) == 2


async def test_dm_outside_24h_window_is_not_attempted(
    world: World, account: Any, caplog: pytest.LogCaptureFixture
) -> None:
    conversation = await Conversation.create(
        account=account, igsid="p1", last_inbound_at=world.clock.now() - timedelta(hours=25)
    )
    caplog.set_level(logging.WARNING)
    result = await world.engine.outbox.submit(
        account=account,
        kind=ActionKind.DM,
        target="p1",
        message={"text": "hello"},
        key="k1",
        conversation_id=conversation.id,
    )
    assert result.status is OutboundStatus.SKIPPED and world.graph.calls == []
    assert result.action is not None
    action = await OutboundAction.get(id=result.action.id)
    assert "24 h messaging window closed" in action.error
    assert "24 h messaging window closed" in caplog.text


async def test_delayed_dm_whose_window_closed_meanwhile_is_skipped(
    world: World, account: Any
) -> None:
    await make_rule(
        account,
        trigger=Trigger.DM,
        keywords=["hi"],
        config={"message_variations": ["x"], "delay_minutes": 60 * 25},
    )
    await world.deliver(dm_payload("m1", "hi"))
    world.clock.advance(hours=25)
    await world.run_sends()
    assert world.graph.calls == []
    assert (await OutboundAction.get()).status is OutboundStatus.SKIPPED


async def test_private_reply_after_7_days_is_not_attempted(
    world: World, account: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    result = await world.engine.outbox.submit(
        account=account,
        kind=ActionKind.PRIVATE_REPLY,
        target="old-comment",
        message={"text": "x"},
        key="k",
        anchor_at=world.clock.now() - timedelta(days=8),
    )
    assert result.status is OutboundStatus.SKIPPED and world.graph.calls == []
    assert "private reply window closed" in caplog.text


async def test_graph_errors_by_classification(world: World, account: Any) -> None:
    def error(kind: ErrorKind, title: str) -> GraphError:
        return GraphError(code=1, subcode=None, message=title, kind=kind, title=title)

    async def submit(target: str) -> Any:
        return await world.engine.outbox.submit(
            account=await InstagramAccount.get(id=account.id),
            kind=ActionKind.PRIVATE_REPLY,
            target=target,
            message={"text": "x"},
            key=target,
        )

    world.graph.errors = [error(ErrorKind.ALREADY_DONE, "private reply already sent")]
    assert (await submit("c1")).status is OutboundStatus.SKIPPED
    world.graph.errors = [error(ErrorKind.TRANSIENT, "server error")]
    pending = await submit("c2")
    assert pending.status is OutboundStatus.PENDING
    (retry,) = world.queue.take("send_outbound")
    assert retry.defer_until is not None and retry.defer_until > world.clock.now()
    world.clock.advance(seconds=60)
    assert await world.engine.outbox.send(*retry.args) is OutboundStatus.SENT
    world.graph.errors = [error(ErrorKind.PERMANENT, "bad request")]
    assert (await submit("c3")).status is OutboundStatus.FAILED
    world.graph.errors = [error(ErrorKind.TOKEN_INVALID, "token expired")]
    assert (await submit("c4")).status is OutboundStatus.WAITING  # until the reconnect
    refreshed = await InstagramAccount.get(id=account.id)
    assert refreshed.status is AccountStatus.NEEDS_RECONNECT
    assert (await submit("c5")).status is OutboundStatus.WAITING  # no call for a dead account
    assert len(world.graph.calls) == 5


async def test_pacer_defers_excess_and_never_drops(container: Any, account: Any) -> None:
    world = World(container)
    await InstagramAccount.filter(id=account.id).update(dm_pace_per_hour=2)
    await make_rule(account, trigger=Trigger.DM, keywords=["hi"])
    for n in range(4):
        await world.deliver(dm_payload(f"m{n}", "hi", sender=f"p{n}"))
    assert len(world.graph.calls) == 2
    deferred = world.queue.take("send_outbound")
    assert len(deferred) == 2
    assert all(j.defer_until == world.clock.now() + timedelta(hours=1) for j in deferred)
    world.clock.advance(hours=1)
    for job in deferred:
        await world.engine.outbox.send(*job.args)
    assert len(world.graph.calls) == 4
    assert await OutboundAction.filter(status=OutboundStatus.SENT).count() == 4


async def test_stats_are_not_lost_under_concurrency(world: World, account: Any) -> None:
    from core.services.send_records import bump_stats

    rule = await make_rule(account)
    await asyncio.gather(*(bump_stats(rule.id, total_triggers=1) for _ in range(40)))
    assert (await RuleStats.get(rule_id=rule.id)).total_triggers == 40


# ---------------------------------------------------------------- lead flows

FLOW_CONFIG = {
    "keywords": ["guide"],
    "dm_type": "lead_capture",
    "message_variations": ["fallback"],
    "lead_capture_flow": [
        {
            "step": 1,
            "type": "ask",
            "text": "Your email?",
            "field_type": "email",
            "retry_message": "That email looks wrong, try again?",
            "max_attempts": 3,
        },
        {"step": 2, "type": "ask", "text": "And your phone?", "field_type": "phone"},
        {"step": 3, "type": "save"},
        {"step": 4, "type": "send", "message_variations": ["Here it is: [LINK]"]},
    ],
    "lead_capture_settings": {"link": "https://gift.example", "phone_region": "US"},
}


async def test_lead_flow_from_a_comment(world: World, account: Any) -> None:
    rule = await make_rule(account, keywords=["guide"], config=FLOW_CONFIG)
    await world.deliver(comment_payload("c1", "guide please", sender="p1"))
    (ask,) = world.graph.messages()
    assert ask.recipient == {"comment_id": "c1"} and ask.payload == {"text": "Your email?"}
    await world.deliver(dm_payload("m1", "not-an-email", sender="p1"))
    await world.deliver(dm_payload("m2", "ALICE@example.com", sender="p1"))
    await world.deliver(dm_payload("m3", "12", sender="p1"))
    await world.deliver(dm_payload("m4", "(415) 555-2671", sender="p1"))
    texts = [c.payload["text"] for c in world.graph.messages()]
    assert texts == [
        "Your email?",
        "That email looks wrong, try again?",
        "And your phone?",
        "That doesn't look like a phone number. Please send it with the country code.",
        "Here it is: https://gift.example",
    ]
    assert all(c.recipient == {"id": "p1"} for c in world.graph.messages()[1:])
    lead = await Lead.get(rule_id=rule.id)
    assert (lead.email, lead.phone, lead.igsid, lead.username) == (
        "ALICE@example.com",
        "+14155552671",
        "p1",
        "alice",
    )
    assert (await RuleStats.get(rule_id=rule.id)).total_leads_captured == 1
    event = await DomainEvent.get(kind="lead.captured")
    assert event.payload["email"] == "ALICE@example.com"
    assert (await Conversation.get(igsid="p1")).flow_state is None


async def test_lead_flow_gives_up(world: World, account: Any) -> None:
    await make_rule(account, trigger=Trigger.DM, keywords=["guide"], config=FLOW_CONFIG)
    await world.deliver(dm_payload("m0", "guide", sender="p1"))
    for n in range(3):
        await world.deliver(dm_payload(f"m{n + 1}", "nope", sender="p1"))
    texts = [c.payload["text"] for c in world.graph.messages()]
    assert texts[-1].startswith("No problem")
    assert len(texts) == 4 and await Lead.all().count() == 0
    assert (await Conversation.get(igsid="p1")).flow_state is None


async def test_new_keyword_mid_flow_leaves_the_flow(world: World, account: Any) -> None:
    await make_rule(account, trigger=Trigger.DM, keywords=["guide"], config=FLOW_CONFIG)
    await make_rule(
        account,
        trigger=Trigger.DM,
        keywords=["prices"],
        config={"message_variations": ["Our prices"]},
    )
    await make_rule(
        account,
        trigger=Trigger.DM,
        keywords=[],
        match_mode=MatchMode.ANY,
        priority=-1,
        config={"message_variations": ["catch-all"]},
    )
    await world.deliver(dm_payload("m0", "guide", sender="p1"))
    # A valid answer wins even though "prices" is a keyword.
    await world.deliver(dm_payload("m1", "prices@example.com", sender="p1"))
    # An invalid answer that names a keyword leaves the flow for that rule.
    await world.deliver(dm_payload("m2", "what are your prices?", sender="p1"))
    texts = [c.payload["text"] for c in world.graph.messages()]
    assert texts == ["Your email?", "And your phone?", "Our prices"]
    assert (await Conversation.get(igsid="p1")).flow_state is None
    # Without a keyword the catch-all rule does not interrupt: the question is asked again.
    await world.deliver(dm_payload("m3", "guide", sender="p2"))
    await world.deliver(dm_payload("m4", "hmm", sender="p2"))
    assert world.graph.messages()[-1].payload["text"] == "That email looks wrong, try again?"


# ---------------------------------------------------------------- which rule acted


async def test_each_event_records_the_rule_that_acted_even_after_it_is_deleted(
    world: World, account: Any
) -> None:
    prices = await make_rule(account, name="Prices", keywords=["price"])
    guide = await make_rule(account, name="Guide", keywords=["guide"], config=FLOW_CONFIG)
    entries = [
        comment_payload(comment, text, sender=sender)["entry"][0]
        for comment, text, sender in (
            ("c1", "price?", "p1"),
            ("c2", "the guide please", "p2"),
            ("c3", "nice post", "p3"),
            ("c4", "price again", "p4"),
        )
    ]
    # Recorded together, handled as one batch.
    body = body_of({"object": "instagram", "entry": entries})
    await record_events(parse_body(body), world.queue, world.clock.now())
    ids = [event_id for job in world.queue.take("handle_event") for event_id in job.args]
    outcomes = await world.engine.handle_events(ids)
    assert [o.rule_id for o in outcomes] == [prices.id, guide.id, None, prices.id]
    events = {e.dedupe_key.rsplit(":", 1)[-1]: e for e in await WebhookEvent.all()}
    assert {key: (e.rule_id, e.rule_name) for key, e in events.items()} == {
        "c1": (prices.id, "Prices"),
        "c2": (guide.id, "Guide"),
        "c3": (None, None),
        "c4": (prices.id, "Prices"),
    }
    assert events["c3"].status is EventStatus.IGNORED
    # The lead flow's answer is put down to the rule whose flow it answered.
    await world.deliver(dm_payload("m1", "ann@example.com", sender="p2"))
    answer = await WebhookEvent.get(dedupe_key__endswith=":m1")
    assert (answer.rule_id, answer.rule_name) == (guide.id, "Guide")
    assert answer.error.startswith("lead flow")

    await prices.delete()
    kept = await WebhookEvent.get(id=events["c1"].id)
    assert (kept.rule_id, kept.rule_name, kept.status) == (None, "Prices", EventStatus.DONE)


# ---------------------------------------------------------------- parsed once


async def test_the_worker_acts_on_the_event_as_parsed_at_the_endpoint(
    world: World, account: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    def parse_again(document: Any) -> list[Any]:
        raise AssertionError("the stored payload was parsed again")

    await make_rule(account, keywords=["price"])
    delivered = comment_payload("c1", "price?")
    await record_events(parse_body(body_of(delivered)), world.queue, world.clock.now())
    monkeypatch.setattr("core.domain.webhooks.parse_payload", parse_again)
    (job,) = world.queue.take("handle_event")
    outcome = await world.engine.handle_event(*job.args)
    assert outcome.status is EventStatus.DONE
    assert [m.recipient for m in world.graph.messages()] == [{"comment_id": "c1"}]
    stored = await WebhookEvent.get(dedupe_key__endswith=":c1")
    assert stored.event is not None and stored.event["comment_id"] == "c1"
    assert stored.payload == delivered  # Meta's shape, kept for the event log


async def test_an_event_recorded_before_parsed_events_were_stored_is_still_handled(
    world: World, account: Any
) -> None:
    await make_rule(account, keywords=["price"])
    await record_events(
        parse_body(body_of(comment_payload("c1", "price?"))), world.queue, world.clock.now()
    )
    await WebhookEvent.all().update(event=None)
    (job,) = world.queue.take("handle_event")
    outcome = await world.engine.handle_event(*job.args)
    assert outcome.status is EventStatus.DONE
    assert [m.recipient for m in world.graph.messages()] == [{"comment_id": "c1"}]


async def test_an_event_whose_handling_fails_once_more_is_handled_on_a_later_try(
    world: World, account: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # PostgreSQL ends a deadlock by failing one side: here the batch, then the event alone.
    from core.services import automations as automations_module

    real_write = automations_module.BatchPeople.write
    failures = ["deadlock detected", "deadlock detected"]

    async def write_failing_twice(self: Any) -> None:
        if failures:
            raise RuntimeError(failures.pop())
        await real_write(self)

    monkeypatch.setattr(automations_module.BatchPeople, "write", write_failing_twice)
    monkeypatch.setattr(automations_module, "HANDLE_RETRY_S", 0.0)
    await make_rule(
        account, keywords=["price"], config={"comment_replies": [], "message_variations": ["d"]}
    )
    (outcome,) = await world.deliver(comment_payload("c1", "price"))
    assert failures == []
    assert outcome.status is EventStatus.DONE
    assert [m.recipient for m in world.graph.messages()] == [{"comment_id": "c1"}]
    event = await WebhookEvent.get(dedupe_key=f"{ACCOUNT_IG_ID}:comment:c1")
    assert event.status is EventStatus.DONE and event.error in ("", None)


async def test_an_event_whose_handling_always_fails_is_recorded_failed_and_sends_nothing(
    world: World, account: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from core.services import automations as automations_module

    async def write_failing(self: Any) -> None:
        raise RuntimeError("disk I/O error")

    monkeypatch.setattr(automations_module.BatchPeople, "write", write_failing)
    monkeypatch.setattr(automations_module, "HANDLE_RETRY_S", 0.0)
    await make_rule(
        account, keywords=["price"], config={"comment_replies": [], "message_variations": ["d"]}
    )
    (outcome,) = await world.deliver(comment_payload("c1", "price"))
    assert outcome.status is EventStatus.FAILED
    assert outcome.reason == "RuntimeError: disk I/O error"
    assert world.graph.calls == []
    event = await WebhookEvent.get(dedupe_key=f"{ACCOUNT_IG_ID}:comment:c1")
    assert event.status is EventStatus.FAILED and event.error == "RuntimeError: disk I/O error"
    assert await OutboundAction.all().count() == 0
