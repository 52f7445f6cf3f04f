"""The follow gate: the pure "must follow" step, and the engine with the profile check."""

from __future__ import annotations

import random
from typing import Any

import pytest

from core.db.models import Conversation, EventStatus, InstagramAccount, Lead, MatchMode, Trigger
from core.domain import lead_flow
from core.domain.messages import Person
from core.domain.rule_definition import RuleDefinition
from core.domain.webhooks import parse_body
from core.services.accounts import account_ref
from core.services.follow_gate import CHECK_FOLLOW, FollowGate
from core.services.inbox import record_events
from tests.automation_world import (
    FakeClock,
    FakeMessaging,
    RecordingQueue,
    body_of,
    build_engine,
    comment_payload,
    dm_payload,
    make_account,
    make_rule,
    postback_payload,
)

STEPS = [
    {"type": "follow", "id": "gate"},
    {"type": "ask", "id": "mail", "text": "Your email?", "field": "email"},
    {"type": "save"},
    {"type": "send", "messages": ["Here it is: {link}"]},
]
PERSON = Person(username="ann", link="https://gift.example")


def _flow(first: list[dict[str, Any]] | None = None) -> lead_flow.LeadFlow:
    definition = RuleDefinition.model_validate(
        {
            "name": "Gate",
            "account_id": 1,
            "trigger": "postback",
            "dm_type": "lead_capture",
            "lead_flow": [*(first or []), *STEPS],
        }
    )
    return definition.flow()


def test_a_follow_step_waits_for_the_check_then_asks_or_goes_on() -> None:
    rng = random.Random(1)
    flow = _flow([{"type": "send", "messages": ["Welcome!"]}])
    turn = lead_flow.start(flow, 7, PERSON, rng)
    assert turn.status == "check_follow" and turn.message() is None
    assert turn.state is not None and turn.state["pending"] == ["Welcome!"]
    asked = lead_flow.followed(flow, turn.state, False, PERSON, rng)
    message = asked.message()
    assert message is not None
    payload = message["attachment"]["payload"]
    assert payload["text"] == "Welcome!\n\nFollow us, then tap Done to continue."
    assert payload["buttons"] == [
        {"type": "postback", "title": "Done", "payload": lead_flow.FOLLOW_DONE}
    ]
    assert asked.state is not None and "pending" not in asked.state
    tapped = lead_flow.answer(flow, asked.state, "Done", PERSON, rng, payload=lead_flow.FOLLOW_DONE)
    assert tapped.status == "check_follow" and tapped.message() is None
    assert tapped.state is not None
    on = lead_flow.followed(flow, tapped.state, True, PERSON, rng)
    assert on.status == "waiting" and on.message() == {"text": "Your email?"}
    assert on.state is not None and on.state["following"] is True


def test_from_a_comment_the_gate_is_sent_at_once() -> None:
    turn = lead_flow.start(_flow(), 7, PERSON, random.Random(1), consented=False)
    assert turn.status == "waiting"
    message = turn.message()
    assert message is not None and message["attachment"]["payload"]["buttons"][0]["title"] == "Done"


def test_a_follow_step_is_stored_and_read_back_with_its_text() -> None:
    definition = RuleDefinition.model_validate(
        {
            "name": "Gate",
            "account_id": 1,
            "trigger": "dm",
            "keywords": ["guide"],
            "dm_type": "lead_capture",
            "lead_flow": [{"type": "follow", "text": "Follow @shop first!"}, *STEPS[1:]],
        }
    )
    back = RuleDefinition.from_stored({**definition.stored_columns(), "account_id": 1})
    assert back.lead_flow[0].type == "follow" and back.lead_flow[0].text == "Follow @shop first!"
    assert back.flow().steps[0].texts == ("Follow @shop first!",)


@pytest.fixture
async def account(container: Any) -> InstagramAccount:
    return await make_account(container)


async def test_the_engine_checks_meta_asks_to_follow_and_goes_on_after_done(
    container: Any, account: Any
) -> None:
    graph, queue, clock = FakeMessaging(), RecordingQueue(), FakeClock()
    engine = build_engine(container, graph, queue, clock)
    assert engine.links is not None
    gate = FollowGate(
        graph=graph,
        account_ref=lambda a: account_ref(container, a),
        outbox=engine.outbox,
        leads=engine.leads,
        links=engine.links,
        clock=clock,
    )
    config = RuleDefinition.model_validate(
        {
            "name": "Gate",
            "account_id": account.id,
            "trigger": "postback",
            "keywords": ["GUIDE"],
            "dm_type": "lead_capture",
            "lead_flow": STEPS,
            "link": "https://gift.example",
        }
    ).stored_columns()["config"]
    rule = await make_rule(
        account,
        trigger=Trigger.POSTBACK,
        keywords=["GUIDE"],
        match_mode=MatchMode.EXACT,
        config=config,
    )

    async def deliver(payload: dict[str, Any]) -> Any:
        await record_events(parse_body(body_of(payload)), queue, clock.now())
        (job,) = queue.take("handle_event")
        return await engine.handle_event(*job.args)

    async def run_checks() -> list[str]:
        return [await gate.check(*job.args) for job in queue.take(CHECK_FOLLOW)]

    tapped = await deliver(postback_payload("m1", "Get the guide", "GUIDE", sender="p1"))
    assert tapped.status is EventStatus.DONE and graph.messages() == []
    assert await run_checks() == ["asked to follow"]
    (ask,) = graph.messages()
    assert ask.recipient == {"id": "p1"}
    assert ask.payload["attachment"]["payload"]["buttons"][0]["payload"] == lead_flow.FOLLOW_DONE
    assert [c.recipient for c in graph.calls if c.kind == "follows"] == [{"id": "p1"}]

    asked = await Conversation.get(account_id=account.id, igsid="p1")
    assert asked.is_user_follow_business is False  # stored as the follower profile job does

    graph.following.add("p1")
    await deliver(postback_payload("m2", "Done", lead_flow.FOLLOW_DONE, sender="p1"))
    assert await run_checks() == ["following"]
    followed = await Conversation.get(account_id=account.id, igsid="p1")
    assert followed.is_user_follow_business is True and followed.profile_fetched_at is not None
    assert graph.messages()[-1].payload == {"text": "Your email?"}
    assert await run_checks() == []  # nothing left to check
    await deliver(dm_payload("m5", "ann@example.com", sender="p1"))
    assert graph.messages()[-1].payload == {"text": "Here it is: https://gift.example"}
    assert (await Lead.get(rule_id=rule.id)).email == "ann@example.com"
    assert (await Conversation.get(igsid="p1")).flow_state is None


async def test_a_comment_gets_the_gate_in_its_private_reply(container: Any, account: Any) -> None:
    graph, queue, clock = FakeMessaging(), RecordingQueue(), FakeClock()
    engine = build_engine(container, graph, queue, clock)
    config = RuleDefinition.model_validate(
        {
            "name": "Gate",
            "account_id": account.id,
            "trigger": "comment",
            "keywords": ["guide"],
            "dm_type": "lead_capture",
            "lead_flow": STEPS,
        }
    ).stored_columns()["config"]
    await make_rule(account, keywords=["guide"], config=config)
    await record_events(parse_body(body_of(comment_payload("c1", "guide"))), queue, clock.now())
    for job in queue.take("handle_event"):
        await engine.handle_event(*job.args)
    (private,) = graph.messages()
    assert private.recipient == {"comment_id": "c1"}
    assert private.payload["attachment"]["payload"]["buttons"][0]["title"] == "Done"
    assert not [c for c in graph.calls if c.kind == "follows"]
    assert queue.take(CHECK_FOLLOW) == []


def test_the_sandbox_answers_the_profile_only_after_the_person_wrote() -> None:
    from sandbox.people import follower_profile
    from sandbox.state import SandboxState

    state = SandboxState(secret="s", app_secret="a")
    state.add_account("1784", "shop")
    assert follower_profile(state, "1784", "p1") is None  # never heard from
    state.note_inbound("1784", "p1")

    def follows() -> object:
        profile = follower_profile(state, "1784", "p1")
        assert profile is not None and profile["consented"] is True
        return profile["is_user_follow_business"]

    assert follows() is False
    state.set_following("1784", "p1", True)
    assert follows() is True
    state.set_following("1784", "p1", False)
    assert follows() is False
