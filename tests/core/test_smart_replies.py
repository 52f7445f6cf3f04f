"""Smart replies end to end against a local OpenAI-compatible server and a real database."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from core.adapters.openai_ai import OpenAiClient
from core.db.models import (
    AiUsage,
    AuditLog,
    AutomationRule,
    Conversation,
    DomainEvent,
    DraftStatus,
    InstagramAccount,
    LoginKind,
    Membership,
    Message,
    ReplyDraft,
    Role,
    Trigger,
    User,
    Workspace,
)
from core.domain.ai_replies import Channel
from core.domain.scope import Actor
from core.errors import Forbidden, NotFound, ValidationFailed
from core.services.reply_drafts import DraftAlreadyDecided
from core.services.reply_sending import OutgoingReply
from core.services.smart_replies import Inbound, Outcome, SmartReplies
from tests.fake_openai import FakeOpenAI, closed_port_url, fake_openai  # noqa: F401

T0 = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)
PROMPT = "You answer for Lumen Studio, a candle shop in Lisbon."


class MovableClock:
    def __init__(self, now: datetime) -> None:
        self.current = now

    def now(self) -> datetime:
        return self.current


class RecordingSender:
    """Stands in for the outbox: records what it was handed and, as the outbox does once a
    message went out, stores it in the conversation."""

    def __init__(self, clock: MovableClock) -> None:
        self.clock = clock
        self.sent: list[OutgoingReply] = []

    async def send_reply(self, reply: OutgoingReply) -> None:
        self.sent.append(reply)
        if reply.conversation_id is not None:
            await Message.create(
                conversation_id=reply.conversation_id,
                direction="out",
                text=reply.text,
                created_at=self.clock.now(),
            )


@dataclass
class World:
    workspace: Workspace
    owner: User
    editor: User
    viewer: User
    account: InstagramAccount
    conversation: Conversation
    clock: MovableClock
    sender: RecordingSender
    server: FakeOpenAI
    ai: OpenAiClient
    service: SmartReplies

    def actor(self, user: User, workspace: Workspace | None = None) -> Actor:
        """``user`` acting with their role here (in ``workspace`` when given)."""
        role = {self.owner.id: Role.OWNER, self.editor.id: Role.EDITOR}.get(user.id, Role.VIEWER)
        return Actor((workspace or self.workspace).id, role, user.email, user_id=user.id)

    async def rule(self, **ai: Any) -> AutomationRule:
        config = {"ai": {"prompt": PROMPT, **ai}}
        return await AutomationRule.create(
            workspace=self.workspace,
            account=self.account,
            name="AI helper",
            trigger=Trigger.DM,
            keywords=["price"],
            config=config,
        )

    def inbound(self, text: str = "How much is the big candle?", **overrides: Any) -> Inbound:
        values: dict[str, Any] = {
            "account_id": self.account.id,
            "channel": Channel.DM,
            "igsid": "IGSID-1",
            "text": text,
            "received_at": self.clock.now(),
            "event_key": f"mid-{len(self.server.requests)}-{text[:5]}",
            "conversation_id": self.conversation.id,
            "username": "ana.k",
            "first_name": "Ana",
        }
        values.update(overrides)
        return Inbound(**values)


@pytest.fixture
async def world(sqlite_db: str, fake_openai: FakeOpenAI) -> AsyncIterator[World]:  # noqa: F811
    workspace = await Workspace.create(name="Lumen", ai_monthly_token_quota=10_000)
    users = []
    for name, role in (("Olga", Role.OWNER), ("Eddie", Role.EDITOR), ("Vic", Role.VIEWER)):
        user = await User.create(email=f"{name.lower()}@lumen.test", password_hash="x", name=name)
        await Membership.create(workspace=workspace, user=user, role=role)
        users.append(user)
    account = await InstagramAccount.create(
        workspace=workspace,
        ig_id="17841400000000001",
        username="lumen.studio",
        login_kind=LoginKind.SANDBOX,
        token_encrypted="x",
    )
    conversation = await Conversation.create(account=account, igsid="IGSID-1", username="ana.k")
    clock = MovableClock(T0)
    sender = RecordingSender(clock)
    ai = OpenAiClient(
        base_url=fake_openai.base_url,
        api_key="sk-test",
        model="reply-model",
        timeout_s=2,
        max_retries=1,
        backoff_s=0.01,
    )
    service = SmartReplies(ai=ai, sender=sender, clock=clock, max_tokens=123)
    yield World(workspace, *users, account, conversation, clock, sender, fake_openai, ai, service)
    await ai.close()


async def add_message(world: World, direction: str, text: str, at: datetime) -> None:
    await Message.create(
        conversation=world.conversation, direction=direction, text=text, created_at=at
    )


# ---------------------------------------------------------------- the request


async def test_request_has_system_prompt_history_in_order_and_the_new_message(
    world: World,
) -> None:
    rule = await world.rule(tone="warm", knowledge="Big candle: 24 EUR.", history_messages=5)
    await add_message(world, "in", "Hi, are you open on Sunday?", T0 - timedelta(minutes=30))
    await add_message(world, "out", "Yes, from 10 to 18.", T0 - timedelta(minutes=29))
    world.server.reply("The big candle is 24 EUR.")
    result = await world.service.reply(rule.id, world.inbound())
    assert result.outcome is Outcome.SENT
    sent = world.server.last
    assert sent["model"] == "reply-model"
    assert sent["max_tokens"] == 123
    system, *rest = sent["messages"]
    assert system["role"] == "system"
    assert PROMPT in system["content"]
    assert "Tone: warm." in system["content"]
    assert "Big candle: 24 EUR." in system["content"]
    assert rest == [
        {"role": "user", "content": "Hi, are you open on Sunday?"},
        {"role": "assistant", "content": "Yes, from 10 to 18."},
        {"role": "user", "content": "How much is the big candle?"},
    ]


async def test_the_inbound_message_stored_by_the_engine_is_not_repeated(world: World) -> None:
    rule = await world.rule()
    await Message.create(
        conversation=world.conversation, direction="in", text="Price?", mid="m-9", created_at=T0
    )
    await world.service.reply(rule.id, world.inbound("Price?", mid="m-9"))
    assert [m["content"] for m in world.server.last["messages"][1:]] == ["Price?"]


# ---------------------------------------------------------------- auto and approve


async def test_auto_mode_sends_the_cleaned_answer_through_the_outbox(world: World) -> None:
    rule = await world.rule()
    world.server.reply(
        '"Hi {first_name}! The big candle is 24 EUR. It burns 60 hours. Want one?"',
        prompt_tokens=300,
        completion_tokens=40,
    )
    result = await world.service.reply(rule.id, world.inbound())
    assert result.outcome is Outcome.SENT
    assert result.text == "Hi Ana! The big candle is 24 EUR."
    [reply] = world.sender.sent
    assert reply.text == "Hi Ana! The big candle is 24 EUR."
    assert reply.recipient.as_json() == {"id": "IGSID-1"}
    assert reply.channel is Channel.DM
    assert reply.rule_id == rule.id
    assert reply.dedupe_key.startswith(f"{rule.id}:") and reply.dedupe_key.endswith(":ai")
    assert reply.not_after == T0 + timedelta(hours=24)
    out = await Message.filter(conversation=world.conversation, direction="out").first()
    assert out is not None and out.text == reply.text
    conversation = await Conversation.get(id=world.conversation.id)
    assert conversation.ai_rule_id == rule.id
    usage = await AiUsage.get(workspace=world.workspace, month="2026-03")
    assert usage.tokens == 340
    assert not await ReplyDraft.exists()


async def test_private_reply_goes_to_the_comment(world: World) -> None:
    rule = await world.rule()
    inbound = world.inbound(channel=Channel.PRIVATE_REPLY, comment_id="C-77", conversation_id=None)
    await world.service.reply(rule.id, inbound)
    [reply] = world.sender.sent
    assert reply.recipient.as_json() == {"comment_id": "C-77"}
    assert reply.not_after == T0 + timedelta(days=7)


async def test_approve_mode_holds_a_draft_and_asks_the_team(world: World) -> None:
    rule = await world.rule(approval="approve")
    world.server.reply("The big candle is 24 EUR.")
    result = await world.service.reply(rule.id, world.inbound())
    assert result.outcome is Outcome.HELD
    assert world.sender.sent == []
    draft = await ReplyDraft.get(id=result.draft_id)
    assert draft.status is DraftStatus.PENDING
    assert draft.proposed_text == "The big candle is 24 EUR."
    assert draft.inbound_text == "How much is the big candle?"
    assert draft.expires_at == T0 + timedelta(hours=24)
    event = await DomainEvent.get(kind="draft.approval_needed")
    assert event.payload["draft_id"] == draft.id
    assert event.payload["proposed_text"] == "The big candle is 24 EUR."
    assert event.payload["account_username"] == "lumen.studio"
    assert not await Message.filter(direction="out").exists()


async def held_draft(world: World, **ai: Any) -> ReplyDraft:
    rule = await world.rule(approval="approve", **ai)
    world.server.reply("The big candle is 24 EUR.")
    result = await world.service.reply(rule.id, world.inbound())
    assert result.draft_id is not None
    return await ReplyDraft.get(id=result.draft_id)


async def test_approve_sends_the_proposed_text_once_and_records_who_and_when(
    world: World,
) -> None:
    draft = await held_draft(world)
    world.clock.current = T0 + timedelta(minutes=5)
    decided = await world.service.approve(world.actor(world.editor), draft.id)
    assert decided.status is DraftStatus.APPROVED
    assert decided.decided_by_id == world.editor.id
    assert decided.decided_at == T0 + timedelta(minutes=5)
    assert decided.final_text == "The big candle is 24 EUR."
    [reply] = world.sender.sent
    assert reply.text == "The big candle is 24 EUR."
    assert reply.dedupe_key == f"draft:{draft.id}"
    assert await AuditLog.filter(action="draft.approved", actor="eddie@lumen.test").exists()
    event = await DomainEvent.get(kind="draft.decided")
    assert event.payload["status"] == "approved" and event.payload["decided_by"] == "Eddie"
    with pytest.raises(DraftAlreadyDecided, match="Already approved by Eddie"):
        await world.service.approve(world.actor(world.owner), draft.id)
    assert len(world.sender.sent) == 1


async def test_edit_sends_the_edited_text(world: World) -> None:
    draft = await held_draft(world)
    with pytest.raises(ValidationFailed):
        await world.service.edit(world.actor(world.editor), draft.id, "x" * 1001)
    assert (await ReplyDraft.get(id=draft.id)).status is DraftStatus.PENDING
    decided = await world.service.edit(
        world.actor(world.editor), draft.id, "Hi {first_name}, it's 24 EUR and ships tomorrow."
    )
    assert decided.status is DraftStatus.EDITED
    assert decided.final_text == "Hi Ana, it's 24 EUR and ships tomorrow."
    assert [r.text for r in world.sender.sent] == ["Hi Ana, it's 24 EUR and ships tomorrow."]


async def test_reject_sends_nothing(world: World) -> None:
    draft = await held_draft(world)
    decided = await world.service.reject(world.actor(world.owner), draft.id)
    assert decided.status is DraftStatus.REJECTED
    assert decided.decided_by_id == world.owner.id
    assert decided.final_text is None
    assert world.sender.sent == []
    assert not await Message.filter(direction="out").exists()


async def test_reject_with_a_fallback_sends_the_static_reply(world: World) -> None:
    draft = await held_draft(world, fallback_reply="A teammate will answer you shortly.")
    await world.service.reject(world.actor(world.owner), draft.id, use_rule_fallback=True)
    [reply] = world.sender.sent
    assert reply.text == "A teammate will answer you shortly."
    assert reply.dedupe_key == f"draft:{draft.id}:fallback"
    other = await held_draft(world)
    await world.service.reject(
        world.actor(world.owner),
        other.id,
        fallback_text="Please call us at +351 21 000 0000.",
    )
    assert world.sender.sent[-1].text == "Please call us at +351 21 000 0000."


async def test_two_teammates_at_once_first_wins_second_is_told(world: World) -> None:
    draft = await held_draft(world)
    results = await asyncio.gather(
        world.service.approve(world.actor(world.editor), draft.id),
        world.service.reject(world.actor(world.owner), draft.id),
        return_exceptions=True,
    )
    winners = [r for r in results if isinstance(r, ReplyDraft)]
    losers = [r for r in results if isinstance(r, DraftAlreadyDecided)]
    assert len(winners) == 1 and len(losers) == 1
    stored = await ReplyDraft.get(id=draft.id)
    winner_name = "Eddie" if stored.status is DraftStatus.APPROVED else "Olga"
    assert f"by {winner_name}" in str(losers[0])
    assert len(world.sender.sent) == (1 if stored.status is DraftStatus.APPROVED else 0)


async def test_viewers_cannot_decide(world: World) -> None:
    draft = await held_draft(world)
    with pytest.raises(Forbidden):
        await world.service.approve(world.actor(world.viewer), draft.id)
    assert world.sender.sent == []
    assert (await ReplyDraft.get(id=draft.id)).status is DraftStatus.PENDING


DECISIONS = {
    "approve": lambda service, actor, draft_id: service.approve(actor, draft_id),
    "edit": lambda service, actor, draft_id: service.edit(actor, draft_id, "Hello from elsewhere"),
    "reject": lambda service, actor, draft_id: service.reject(actor, draft_id, fallback_text="Bye"),
}


@pytest.mark.parametrize("decision", DECISIONS)
async def test_another_workspaces_draft_is_not_found_and_stays_pending(
    world: World, decision: str
) -> None:
    draft = await held_draft(world)
    other = await Workspace.create(name="Other")
    stranger = world.actor(world.owner, workspace=other)
    with pytest.raises(NotFound):
        await DECISIONS[decision](world.service, stranger, draft.id)
    assert (await ReplyDraft.get(id=draft.id)).status is DraftStatus.PENDING
    assert world.sender.sent == []
    assert not await AuditLog.filter(action__startswith="draft.").exists()
    assert not await DomainEvent.filter(kind="draft.decided").exists()


# ---------------------------------------------------------------- expiry


async def test_drafts_expire_when_the_dm_window_closes_and_are_never_sent(world: World) -> None:
    draft = await held_draft(world)
    world.clock.current = T0 + timedelta(hours=23, minutes=59)
    assert await world.service.expire_due() == 0
    world.clock.current = T0 + timedelta(hours=24)
    assert await world.service.expire_due() == 1
    assert (await ReplyDraft.get(id=draft.id)).status is DraftStatus.EXPIRED
    [event] = await DomainEvent.filter(kind="draft.decided")
    assert event.payload == {
        "draft_id": draft.id,
        "status": "expired",
        "decided_at": (T0 + timedelta(hours=24)).isoformat(),
    }
    with pytest.raises(DraftAlreadyDecided, match="expired"):
        await world.service.approve(world.actor(world.editor), draft.id)
    assert world.sender.sent == []


async def test_a_late_decision_before_the_cron_still_expires_the_draft(world: World) -> None:
    draft = await held_draft(world)
    world.clock.current = T0 + timedelta(hours=25)
    with pytest.raises(DraftAlreadyDecided, match="expired"):
        await world.service.edit(world.actor(world.editor), draft.id, "Hello!")
    assert (await ReplyDraft.get(id=draft.id)).status is DraftStatus.EXPIRED
    assert world.sender.sent == []


async def test_private_reply_drafts_live_seven_days(world: World) -> None:
    rule = await world.rule(approval="approve")
    result = await world.service.reply(
        rule.id,
        world.inbound(channel=Channel.PRIVATE_REPLY, comment_id="C-1", conversation_id=None),
    )
    world.clock.current = T0 + timedelta(days=3)
    assert await world.service.expire_due() == 0
    assert result.draft_id is not None
    await world.service.approve(world.actor(world.editor), result.draft_id)
    [reply] = world.sender.sent
    assert reply.recipient.as_json() == {"comment_id": "C-1"}


async def test_nothing_is_asked_once_the_window_has_closed(world: World) -> None:
    rule = await world.rule()
    result = await world.service.reply(rule.id, world.inbound(received_at=T0 - timedelta(hours=25)))
    assert result.outcome is Outcome.SKIPPED
    assert world.server.requests == [] and world.sender.sent == []


# ---------------------------------------------------------------- quota, switch, failures


async def test_quota_exhausted_stops_ai_calls_with_one_event(world: World) -> None:
    rule = await world.rule()
    await AiUsage.create(workspace=world.workspace, month="2026-03", tokens=10_000)
    for _ in range(2):
        result = await world.service.reply(rule.id, world.inbound())
        assert result.outcome is Outcome.SKIPPED
        assert result.error_kind == "quota"
    assert world.server.requests == [] and world.sender.sent == []
    [event] = await DomainEvent.filter(kind="ai.quota_reached")
    assert event.payload == {"month": "2026-03", "used": 10_000, "quota": 10_000}
    # A new month starts afresh.
    world.clock.current = datetime(2026, 4, 1, 0, 0, tzinfo=UTC)
    result = await world.service.reply(rule.id, world.inbound())
    assert result.outcome is Outcome.SENT


async def test_crossing_the_quota_announces_it(world: World) -> None:
    rule = await world.rule()
    await AiUsage.create(workspace=world.workspace, month="2026-03", tokens=9_990)
    world.server.reply("Sure.", prompt_tokens=15, completion_tokens=5)
    assert (await world.service.reply(rule.id, world.inbound())).outcome is Outcome.SENT
    assert await DomainEvent.filter(kind="ai.quota_reached").count() == 1
    assert (await world.service.reply(rule.id, world.inbound())).outcome is Outcome.SKIPPED
    assert len(world.server.requests) == 1
    assert await DomainEvent.filter(kind="ai.quota_reached").count() == 1


async def test_ai_disabled_for_the_workspace_makes_no_call(world: World) -> None:
    rule = await world.rule()
    await Workspace.filter(id=world.workspace.id).update(ai_enabled=False)
    result = await world.service.reply(rule.id, world.inbound())
    assert result.outcome is Outcome.SKIPPED and result.error_kind == "disabled"
    assert world.server.requests == [] and world.sender.sent == []
    unconfigured = SmartReplies(ai=None, sender=world.sender, clock=world.clock)
    await Workspace.filter(id=world.workspace.id).update(ai_enabled=True)
    result = await unconfigured.reply(rule.id, world.inbound())
    assert result.outcome is Outcome.SKIPPED and "OPENAI" in result.reason
    assert world.sender.sent == []


@pytest.mark.parametrize("approval", ["auto", "approve"])
async def test_ai_server_down_sends_nothing_and_tells_the_team(world: World, approval: str) -> None:
    rule = await world.rule(approval=approval)
    for _ in range(2):
        world.server.fail(503, "overloaded")
    result = await world.service.reply(rule.id, world.inbound())
    assert result.outcome is Outcome.FAILED and result.error_kind == "unavailable"
    assert len(world.server.requests) == 2  # one retry, then give up
    assert world.sender.sent == []
    assert not await ReplyDraft.exists()
    assert not await Message.filter(direction="out").exists()
    entry = await AuditLog.get(action="ai.reply_failed")
    assert entry.level == "warning" and entry.details["kind"] == "unavailable"
    event = await DomainEvent.get(kind="ai.reply_failed")
    assert event.payload["inbound_text"] == "How much is the big candle?"


async def test_unreachable_ai_server_sends_nothing(world: World) -> None:
    rule = await world.rule()
    down = OpenAiClient(base_url=closed_port_url(), api_key="k", model="m", max_retries=0)
    service = SmartReplies(ai=down, sender=world.sender, clock=world.clock)
    try:
        result = await service.reply(rule.id, world.inbound())
    finally:
        await down.close()
    assert result.outcome is Outcome.FAILED
    assert world.sender.sent == []


@pytest.mark.parametrize("answer", ["   ", "[Your Name]", "{greeting}"])
async def test_an_answer_with_nothing_left_is_not_sent(world: World, answer: str) -> None:
    rule = await world.rule()
    world.server.reply(answer)
    result = await world.service.reply(rule.id, world.inbound())
    assert result.outcome is Outcome.FAILED and result.error_kind == "empty"
    assert world.sender.sent == []


# ---------------------------------------------------------------- continued conversations


async def test_unkeyworded_dm_continues_an_ai_conversation_with_its_history(
    world: World,
) -> None:
    rule = await world.rule()
    world.server.reply("The big candle is 24 EUR.")
    first = world.inbound()
    await add_message(world, "in", first.text, T0)
    await world.service.reply(rule.id, first)
    world.clock.current = T0 + timedelta(hours=2)
    follow_up = world.inbound("And do you ship to Porto?", mid="m-2")
    await Message.create(
        conversation=world.conversation,
        direction="in",
        text=follow_up.text,
        mid="m-2",
        created_at=world.clock.current,
    )
    world.server.reply("Yes, Porto in 2 days.")
    result = await world.service.continue_conversation(follow_up)
    assert result is not None and result.outcome is Outcome.SENT
    assert [(m["role"], m["content"]) for m in world.server.last["messages"][1:]] == [
        ("user", "How much is the big candle?"),
        ("assistant", "The big candle is 24 EUR."),
        ("user", "And do you ship to Porto?"),
    ]
    assert [r.text for r in world.sender.sent][-1] == "Yes, Porto in 2 days."


async def test_continuation_follows_the_rules_approval_mode(world: World) -> None:
    rule = await world.rule(approval="approve")
    await Conversation.filter(id=world.conversation.id).update(ai_rule_id=rule.id)
    await add_message(world, "out", "Hello!", T0 - timedelta(hours=1))
    result = await world.service.continue_conversation(world.inbound("Thanks"))
    assert result is not None and result.outcome is Outcome.HELD
    assert world.sender.sent == []


async def test_no_continuation_outside_the_window_or_without_an_ai_rule(world: World) -> None:
    assert await world.service.continue_conversation(world.inbound("hi")) is None
    rule = await world.rule()
    await Conversation.filter(id=world.conversation.id).update(ai_rule_id=rule.id)
    await add_message(world, "out", "Old answer", T0 - timedelta(hours=25))
    assert await world.service.continue_conversation(world.inbound("hi again")) is None
    no_chat = await world.rule(continue_conversation=False)
    await Conversation.filter(id=world.conversation.id).update(ai_rule_id=no_chat.id)
    await add_message(world, "out", "Recent answer", T0 - timedelta(minutes=5))
    assert await world.service.continue_conversation(world.inbound("hi")) is None
    assert world.server.requests == []
