"""Alert delivery: every linked chat once, dead chats disabled, retry-after respected, email."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from itertools import pairwise
from typing import Any

import pytest
from aiogram import Bot
from aiosmtpd.controller import Controller

from bot.telegram import TelegramNotifier, create_bot
from core.adapters.smtp import SmtpMailer
from core.bootstrap import Container
from core.db.models import (
    AuditLog,
    AutomationRule,
    ChatIdentity,
    ChatLink,
    Conversation,
    DeliveryStatus,
    DomainEvent,
    Lead,
    NotificationDelivery,
    Platform,
    Post,
    Trigger,
    Workspace,
)
from core.domain.chat import Reply
from core.domain.posts import Kind, Status
from core.domain.scope import Actor, Role
from core.ports.notifier import ChatDeliveryError
from core.services import notifications
from core.services.leads import lead_document
from core.services.reply_sending import OutgoingReply
from core.services.smart_replies import SmartReplies
from core.wiring import Services
from jobs.notifications import deliver_event, sweep_events
from tests.bot.fake_telegram import FakeTelegram, running_fake_telegram
from tests.chatops_world import FixedClock, World, make_draft, make_world

NOW = datetime(2025, 3, 5, 9, 0, tzinfo=UTC)
CHAT_A, CHAT_B = -1001, -1002


@pytest.fixture
async def fake() -> AsyncIterator[FakeTelegram]:
    async with running_fake_telegram() as server:
        yield server


@pytest.fixture
async def bot(fake: FakeTelegram) -> AsyncIterator[Bot]:
    made = create_bot("123456:TEST-TOKEN", fake.base_url)
    yield made
    await made.session.close()


@pytest.fixture
async def world(container: Container, services: Services, bot: Bot) -> World:
    container.clock = FixedClock(NOW)
    services.delivery.notifiers[Platform.TELEGRAM] = TelegramNotifier(bot)
    made = await make_world()
    for chat in (CHAT_A, CHAT_B):
        await ChatLink.create(
            workspace=made.workspace, platform=Platform.TELEGRAM, chat_id=str(chat), title="t"
        )
    return made


def sent_to(fake: FakeTelegram, method: str = "sendMessage") -> list[int]:
    return sorted(int(p["chat_id"]) for p in fake.sent(method))


async def published_event(world: World) -> DomainEvent:
    post = await Post.create(
        workspace=world.workspace,
        account=world.account,
        kind=Kind.IMAGE,
        status=Status.PUBLISHED,
        caption="Fresh croissants every morning",
        permalink="https://www.instagram.com/p/abc/",
    )
    return await DomainEvent.create(
        workspace=world.workspace,
        kind="post.published",
        payload={"post_id": post.id, "account_id": world.account.id},
    )


async def test_one_event_reaches_both_linked_chats_once(
    world: World, container: Container, services: Services, fake: FakeTelegram
) -> None:
    event = await published_event(world)
    await deliver_event({"services": services}, event.id)
    await deliver_event({"services": services}, event.id)
    await sweep_events({"services": services})
    await notifications.deliver(container, services.delivery, event.id)
    assert sent_to(fake) == [CHAT_B, CHAT_A]
    text = fake.sent("sendMessage")[0]["text"]
    assert "Published post #" in text and "@cafecrema" in text
    assert "https://www.instagram.com/p/abc/" in text
    await event.refresh_from_db()
    assert event.delivered_at == NOW


async def test_concurrent_deliveries_still_send_once(
    world: World, container: Container, services: Services, fake: FakeTelegram
) -> None:
    event = await published_event(world)
    await asyncio.gather(
        *(notifications.deliver(container, services.delivery, event.id) for _ in range(4))
    )
    assert sent_to(fake) == [CHAT_B, CHAT_A]


async def test_gone_chat_is_disabled_with_an_audit_entry_and_not_retried(
    world: World, container: Container, services: Services, fake: FakeTelegram
) -> None:
    fake.gone_chats.add(CHAT_B)
    first = await published_event(world)
    await notifications.deliver(container, services.delivery, first.id)
    link = await ChatLink.get(chat_id=str(CHAT_B))
    assert not link.active
    entry = await AuditLog.get(action="chat.link_disabled")
    assert entry.target_id == str(link.id) and entry.level == "warning"
    assert "kicked" in entry.details["reason"]
    await first.refresh_from_db()
    assert first.delivered_at is not None
    # later events and sweeps never call the dead chat again
    calls_before = len(fake.calls)
    second = await published_event(world)
    for _ in range(3):
        await notifications.deliver(container, services.delivery, second.id)
        await notifications.sweep(container)
    to_b = [p for m, p in fake.calls[calls_before:] if str(p.get("chat_id")) == str(CHAT_B)]
    assert to_b == []
    assert sent_to(fake) == [CHAT_A, CHAT_A]


async def test_retry_after_is_respected(
    world: World, container: Container, services: Services, fake: FakeTelegram
) -> None:
    fake.retry_after[CHAT_A] = 30
    event = await published_event(world)
    await notifications.deliver(container, services.delivery, event.id)
    waiting = await NotificationDelivery.get(event=event, target=str((await _link(CHAT_A)).id))
    assert waiting.status is DeliveryStatus.PENDING
    assert waiting.next_attempt_at == NOW + timedelta(seconds=30)
    container.clock = FixedClock(NOW + timedelta(seconds=10))
    await notifications.deliver(container, services.delivery, event.id)
    assert sent_to(fake) == [CHAT_B]
    container.clock = FixedClock(NOW + timedelta(seconds=31))
    await notifications.deliver(container, services.delivery, event.id)
    assert sent_to(fake) == [CHAT_B, CHAT_A]
    await event.refresh_from_db()
    assert event.delivered_at is not None


async def _link(chat: int) -> ChatLink:
    return await ChatLink.get(chat_id=str(chat))


class FlakyNotifier:
    platform = Platform.TELEGRAM

    def __init__(self) -> None:
        self.tries = 0

    async def send(self, chat_id: str, reply: Reply) -> str:
        self.tries += 1
        raise ChatDeliveryError("502 Bad Gateway")

    async def edit(self, chat_id: str, message_id: str, reply: Reply) -> None:
        raise ChatDeliveryError("502 Bad Gateway")


async def test_passing_failures_back_off_then_give_up_with_an_audit_entry(
    world: World, container: Container, services: Services
) -> None:
    flaky = FlakyNotifier()
    services.delivery.notifiers[flaky.platform] = flaky
    await ChatLink.filter(chat_id=str(CHAT_B)).update(active=False)
    event = await published_event(world)
    at = NOW
    delays = []
    for _ in range(notifications.MAX_ATTEMPTS):
        container.clock = FixedClock(at)
        await notifications.deliver(container, services.delivery, event.id)
        row = await NotificationDelivery.get(event=event)
        if row.status is DeliveryStatus.FAILED:
            break
        assert row.next_attempt_at is not None
        delays.append((row.next_attempt_at - at).total_seconds())
        # a delivery run before the retry time sends nothing
        await notifications.deliver(container, services.delivery, event.id)
        at = row.next_attempt_at
    assert flaky.tries == notifications.MAX_ATTEMPTS
    assert all(later > earlier for earlier, later in pairwise(delays))
    row = await NotificationDelivery.get(event=event)
    assert row.status is DeliveryStatus.FAILED and "502" in row.error
    assert await AuditLog.filter(action="notification.failed", level="error").count() == 1


async def test_approval_request_has_buttons_and_every_chat_is_edited_on_decision(
    world: World, container: Container, services: Services, fake: FakeTelegram
) -> None:
    draft = await make_draft(world, now=NOW)
    event = await DomainEvent.create(
        workspace=world.workspace, kind="draft.approval_needed", payload={"draft_id": draft.id}
    )
    await notifications.deliver(container, services.delivery, event.id)
    asks = fake.sent("sendMessage")
    assert len(asks) == 2
    for ask in asks:
        assert "needs approval" in ask["text"] and draft.proposed_text in ask["text"]
        labels = [b["text"] for b in ask["reply_markup"]["inline_keyboard"][0]]
        assert labels == ["Approve", "Edit", "Reject"]
    await draft.refresh_from_db()
    assert sorted(int(ref["chat_id"]) for ref in draft.chat_refs) == [CHAT_B, CHAT_A]

    sent: list[OutgoingReply] = []

    class Sender:
        async def send_reply(self, reply: OutgoingReply) -> None:
            sent.append(reply)

    drafts = SmartReplies(ai=None, sender=Sender(), clock=container.clock)
    editor = Actor(world.workspace.id, Role.EDITOR, world.editor.email, user_id=world.editor.id)
    await drafts.approve(editor, draft.id)
    await notifications.sweep(container)
    decided = await DomainEvent.get(kind="draft.decided")
    await notifications.deliver(container, services.delivery, decided.id)
    edits = fake.sent("editMessageText")
    assert sorted(int(e["chat_id"]) for e in edits) == [CHAT_B, CHAT_A]
    refs = {(int(r["chat_id"]), str(r["message_id"])) for r in draft.chat_refs}
    assert {(int(e["chat_id"]), str(e["message_id"])) for e in edits} == refs
    for edit in edits:
        assert edit["text"].startswith("✅ Approved by editor@example.com")
        assert not edit.get("reply_markup")


class Inbox:
    def __init__(self) -> None:
        self.messages: list[bytes] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(envelope.content)
        return "250 OK"


@pytest.fixture
def smtp(unused_tcp_port: int) -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=unused_tcp_port)
    controller.start()
    yield inbox, unused_tcp_port
    controller.stop()


async def test_lead_alert_goes_by_email_to_the_workspace_and_the_rule(
    world: World,
    container: Container,
    services: Services,
    fake: FakeTelegram,
    smtp: tuple[Inbox, int],
    settings_factory: Any,
) -> None:
    inbox, port = smtp
    mail_settings = settings_factory(smtp_host="127.0.0.1", smtp_port=port, smtp_security="none")
    services.delivery.mailer = SmtpMailer(mail_settings)
    world.workspace.notification_email = "team@example.com"
    await world.workspace.save()
    rule = await AutomationRule.create(
        workspace=world.workspace,
        account=world.account,
        name="Price DM",
        trigger=Trigger.COMMENT,
        config={"notification_email": "sales@example.com"},
    )
    lead = await Lead.create(
        workspace=world.workspace,
        account=world.account,
        rule=rule,
        igsid="9001",
        username="fan",
        email="fan@example.com",
    )
    event = await DomainEvent.create(
        workspace=world.workspace,
        kind="lead.captured",
        payload=lead_document(lead, rule, world.account),
    )
    await notifications.deliver(container, services.delivery, event.id)
    await notifications.deliver(container, services.delivery, event.id)
    assert len(fake.sent("sendMessage")) == 2
    assert "New lead from @fan on @cafecrema via “Price DM”" in fake.sent("sendMessage")[0]["text"]
    assert len(inbox.messages) == 2
    mails = [message_from_bytes(raw) for raw in inbox.messages]
    assert sorted(m["To"] for m in mails) == ["sales@example.com", "team@example.com"]
    assert mails[0]["Subject"] == "[Cafe Crema] New lead from @fan"
    body = mails[0].get_payload(decode=True).decode()
    assert "email: fan@example.com" in body and "http://127.0.0.1:8000/leads" in body


async def test_a_decision_is_not_shown_in_a_chat_now_linked_to_another_workspace(
    world: World, container: Container, services: Services, fake: FakeTelegram
) -> None:
    draft = await make_draft(world, now=NOW)
    event = await DomainEvent.create(
        workspace=world.workspace, kind="draft.approval_needed", payload={"draft_id": draft.id}
    )
    await notifications.deliver(container, services.delivery, event.id)
    # CHAT_B is unlinked here, then linked by another workspace, before the decision.
    other = await Workspace.create(name="Another shop")
    await ChatLink.filter(chat_id=str(CHAT_B)).update(workspace_id=other.id)

    class Sender:
        async def send_reply(self, reply: OutgoingReply) -> None:
            pass

    drafts = SmartReplies(ai=None, sender=Sender(), clock=container.clock)
    editor = Actor(world.workspace.id, Role.EDITOR, world.editor.email, user_id=world.editor.id)
    await drafts.approve(editor, draft.id)
    await notifications.sweep(container)
    decided = await DomainEvent.get(kind="draft.decided")
    await notifications.deliver(container, services.delivery, decided.id)
    assert [int(e["chat_id"]) for e in fake.sent("editMessageText")] == [CHAT_A]


async def test_assigned_to_you_reaches_the_assignee_s_own_chat_only(
    world: World, container: Container, services: Services, fake: FakeTelegram
) -> None:
    await ChatIdentity.create(user=world.editor, platform=Platform.TELEGRAM, platform_user_id="555")
    await ChatIdentity.create(user=world.viewer, platform=Platform.TELEGRAM, platform_user_id="777")
    conversation = await Conversation.create(
        account=world.account, igsid="9001", username="anna_b", last_message_text="Is it vegan?"
    )
    owner = Actor(world.workspace.id, Role.OWNER, "owner@example.com", world.owner.id)
    await services.conversations.assign(owner, conversation.id, world.editor.id)
    (event,) = await DomainEvent.filter(kind="conversation.assigned")
    await deliver_event({"services": services}, event.id)
    assert sent_to(fake) == [555]  # the editor's private chat: not the team's chats
    text = fake.sent("sendMessage")[0]["text"]
    assert "Assigned to you" in text and "@anna_b" in text and "Is it vegan?" in text
