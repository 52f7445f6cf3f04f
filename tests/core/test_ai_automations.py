"""AI actions inside the automations engine: webhook event in, AI answer out through the
outbox (real database, Redis and outbox; a local OpenAI-compatible server; a recording
Instagram)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest

from core.adapters.openai_ai import OpenAiClient
from core.db.models import (
    AuditLog,
    AutomationRule,
    Conversation,
    DomainEvent,
    DraftStatus,
    EventStatus,
    InstagramAccount,
    Membership,
    Message,
    OutboundAction,
    OutboundStatus,
    ReplyDraft,
    Role,
    RuleStats,
    Trigger,
    User,
)
from core.domain.scope import Actor
from core.domain.webhooks import parse_body
from core.services.inbox import record_events
from core.services.reply_drafts import DraftAlreadyDecided
from core.services.reply_sending import OutboxReplySender
from core.services.smart_replies import EngineHooks, SmartReplies
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
)
from tests.fake_openai import FakeOpenAI, fake_openai  # noqa: F401

PROMPT = "You answer for Reelay Shop. Shipping to Portugal takes 2 days."


class World:
    def __init__(self, container: Any, server: FakeOpenAI, ai: OpenAiClient) -> None:
        self.container = container
        self.server = server
        self.graph = FakeMessaging()
        self.queue = RecordingQueue()
        self.clock = FakeClock()
        self.engine = build_engine(container, self.graph, self.queue, self.clock)
        self.replies = SmartReplies(
            ai=ai, sender=OutboxReplySender(self.engine.outbox), clock=self.clock, max_tokens=200
        )
        hooks = EngineHooks(self.replies, self.clock)
        self.engine.ai_replies = hooks
        self.engine.continuation = hooks.continue_conversation

    async def deliver(self, payload: dict[str, Any]) -> list[Any]:
        await record_events(parse_body(body_of(payload)), self.queue, self.clock.now())
        return [
            await self.engine.handle_event(*job.args) for job in self.queue.take("handle_event")
        ]

    def stamp_ms(self) -> int:
        return int(self.clock.now().timestamp() * 1000)


@pytest.fixture
async def world(container: Any, fake_openai: FakeOpenAI) -> AsyncIterator[World]:  # noqa: F811
    ai = OpenAiClient(
        base_url=fake_openai.base_url, api_key="k", model="m", max_retries=0, timeout_s=2
    )
    yield World(container, fake_openai, ai)
    await ai.close()


@pytest.fixture
async def account(container: Any) -> InstagramAccount:
    return await make_account(container)


async def ai_rule(account: InstagramAccount, **ai: Any) -> AutomationRule:
    return await make_rule(
        account,
        trigger=ai.pop("trigger", Trigger.DM),
        keywords=["price"],
        config={"ai": {"prompt": PROMPT, **ai}, **ai.pop("extra", {})},
    )


async def test_dm_keyword_gets_the_ai_answer_once_through_the_outbox(
    world: World, account: InstagramAccount
) -> None:
    rule = await ai_rule(account)
    world.server.reply("Hi alice! It is 24 EUR. Anything else?")
    (outcome,) = await world.deliver(dm_payload("m1", "What's the price?"))
    assert outcome.status is EventStatus.DONE and outcome.rule_id == rule.id
    (call,) = world.graph.messages()
    assert call.recipient == {"id": "igsid-1"}
    assert call.payload == {"text": "Hi alice! It is 24 EUR."}
    assert world.server.last["messages"][-1] == {"role": "user", "content": "What's the price?"}
    action = await OutboundAction.get()
    assert action.status is OutboundStatus.SENT and action.dedupe_key.endswith(":ai")
    conversation = await Conversation.get(account=account, igsid="igsid-1")
    assert conversation.ai_rule_id == rule.id
    texts = [(m.direction, m.text) for m in await Message.filter(conversation=conversation)]
    assert texts == [("in", "What's the price?"), ("out", "Hi alice! It is 24 EUR.")]
    assert (await RuleStats.get(rule_id=rule.id)).total_dms_sent == 1


async def test_comment_keyword_gets_an_ai_private_reply(
    world: World, account: InstagramAccount
) -> None:
    await ai_rule(account, trigger=Trigger.COMMENT, extra={"comment_replies": ["Check your DMs!"]})
    world.server.reply("Thanks for asking! It is 24 EUR.")
    await world.deliver(comment_payload("c1", "price please"))
    (reply,) = world.graph.replies()
    assert reply.payload == {"message": "Check your DMs!"}
    (private,) = world.graph.messages()
    assert private.recipient == {"comment_id": "c1"}
    assert private.payload == {"text": "Thanks for asking! It is 24 EUR."}


async def test_approve_mode_holds_then_the_approved_draft_goes_through_the_outbox(
    world: World, account: InstagramAccount
) -> None:
    await ai_rule(account, approval="approve")
    world.server.reply("It is 24 EUR.")
    await world.deliver(dm_payload("m1", "price?"))
    assert world.graph.calls == []
    draft = await ReplyDraft.get()
    assert draft.status is DraftStatus.PENDING and draft.proposed_text == "It is 24 EUR."
    assert await DomainEvent.filter(kind="draft.approval_needed").exists()
    owner = await _owner(account)
    actor = Actor(account.workspace_id, Role.OWNER, owner.email, user_id=owner.id)
    await world.replies.approve(actor, draft.id)
    (call,) = world.graph.messages()
    assert call.payload == {"text": "It is 24 EUR."} and call.recipient == {"id": "igsid-1"}
    assert (await OutboundAction.get()).dedupe_key == f"draft:{draft.id}"
    with pytest.raises(DraftAlreadyDecided):
        await world.replies.edit(actor, draft.id, "Other")
    assert len(world.graph.calls) == 1


async def test_unkeyworded_dm_continues_the_ai_conversation_with_history(
    world: World, account: InstagramAccount
) -> None:
    await ai_rule(account)
    world.server.reply("It is 24 EUR.")
    await world.deliver(dm_payload("m1", "price?", timestamp_ms=world.stamp_ms()))
    world.clock.advance(minutes=10)
    world.server.reply("Yes, Porto in 2 days.")
    (outcome,) = await world.deliver(
        dm_payload("m2", "Do you ship to Porto?", timestamp_ms=world.stamp_ms())
    )
    assert outcome.status is EventStatus.DONE and outcome.reason == "continued conversation"
    assert [(m["role"], m["content"]) for m in world.server.last["messages"][1:]] == [
        ("user", "price?"),
        ("assistant", "It is 24 EUR."),
        ("user", "Do you ship to Porto?"),
    ]
    assert [c.payload["text"] for c in world.graph.messages()] == [
        "It is 24 EUR.",
        "Yes, Porto in 2 days.",
    ]


async def test_no_continuation_after_the_window_or_without_an_ai_start(
    world: World, account: InstagramAccount
) -> None:
    (outcome,) = await world.deliver(dm_payload("m0", "hello there"))
    assert outcome.status is EventStatus.IGNORED  # no AI rule started this conversation
    await ai_rule(account)
    await world.deliver(dm_payload("m1", "price?", timestamp_ms=world.stamp_ms()))
    world.clock.advance(hours=25)
    requests = len(world.server.requests)
    (late,) = await world.deliver(dm_payload("m2", "still there?", timestamp_ms=world.stamp_ms()))
    assert late.status is EventStatus.IGNORED
    assert len(world.server.requests) == requests


async def test_ai_server_down_the_person_gets_nothing(
    world: World, account: InstagramAccount
) -> None:
    rule = await ai_rule(account, extra={"message_variations": ["static text, never sent"]})
    world.server.fail(500, "upstream exploded")
    (outcome,) = await world.deliver(dm_payload("m1", "price?"))
    assert outcome.status is EventStatus.DONE and outcome.rule_id == rule.id
    assert world.graph.calls == []
    assert not await OutboundAction.exists()
    assert await AuditLog.filter(action="ai.reply_failed", level="warning").exists()


async def test_the_services_engine_has_ai_wired_in(services: Any) -> None:
    engine = services.automations
    assert engine.ai_replies is not None
    assert engine.continuation == engine.ai_replies.continue_conversation
    assert services.container.ai is None  # no key, default base URL: AI is off, rules skip it
    assert services.smart_replies is engine.ai_replies.replies  # one per process


async def _owner(account: InstagramAccount) -> User:
    user = await User.create(email="boss@shop.test", password_hash="x", name="Boss")
    await Membership.create(workspace_id=account.workspace_id, user=user, role=Role.OWNER)
    return user


async def test_draft_expires_24_hours_after_the_dm(world: World, account: InstagramAccount) -> None:
    await ai_rule(account, approval="approve")
    await world.deliver(dm_payload("m1", "price?", timestamp_ms=world.stamp_ms()))
    draft = await ReplyDraft.get()
    assert draft.expires_at == world.clock.now() + timedelta(hours=24)
