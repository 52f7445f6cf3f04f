"""The inbox through the real engine and outbox, on SQLite and PostgreSQL: a teammate who takes
a conversation over silences every automation for the person until they hand it back, a
message written in the Instagram app takes over by itself, and a teammate's reply keeps
Instagram's windows and goes out once."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from redis.asyncio import Redis
from tortoise.backends.base.executor import EXECUTOR_CACHE

from core.bootstrap import RedisLocation
from core.db.models import (
    Conversation,
    ConversationNote,
    DomainEvent,
    EventStatus,
    InstagramAccount,
    Membership,
    Message,
    OutboundAction,
    OutboundStatus,
    Trigger,
    User,
)
from core.domain import alerts
from core.domain.graph_errors import ErrorKind, GraphError
from core.domain.scope import Actor, Role
from core.domain.webhooks import parse_body
from core.errors import Forbidden, NotFound, ValidationFailed
from core.services.automations import Automations, Outcome
from core.services.conversation_log import TEAMMATE_HAS_IT
from core.services.conversations import Conversations
from core.services.inbox import record_events
from core.services.outbox import MAX_ATTEMPTS
from core.wiring import Services
from reelay.cli import open_services
from tests.automation_world import (
    FakeClock,
    FakeMessaging,
    RecordingQueue,
    body_of,
    build_engine,
    dm_payload,
    echo_payload,
    make_account,
    make_rule,
)
from tests.conftest import _truncate_postgres

FOLLOWER = "igsid-1"


@dataclass
class World:
    services: Services
    engine: Automations
    graph: FakeMessaging
    queue: RecordingQueue
    clock: FakeClock
    account: InstagramAccount
    owner: Actor
    viewer: Actor

    def inbox(self, *, human_agent: bool = False) -> Conversations:
        return Conversations(
            outbox=self.engine.outbox, clock=self.clock, queue=self.queue, human_agent=human_agent
        )

    async def deliver(self, payload: dict[str, Any]) -> list[Outcome]:
        """A webhook delivery through the inbox writer (echoes noted in Redis), then its jobs."""
        events = parse_body(body_of(payload))
        redis = self.services.container.redis
        await record_events(events, self.queue, self.clock.now(), redis=redis)
        jobs = self.queue.take("handle_event")
        return [await self.engine.handle_event(*job.args) for job in jobs]

    async def run_sends(self) -> None:
        for _ in range(4 * MAX_ATTEMPTS):
            jobs = self.queue.take("send_outbound")
            if not jobs:
                return
            for job in jobs:
                if job.defer_until is not None and job.defer_until > self.clock.now():
                    self.clock.current = job.defer_until
                await self.engine.outbox.send(*job.args)
        raise AssertionError("sends still queued")

    async def conversation(self) -> Conversation:
        return await Conversation.get(account_id=self.account.id, igsid=FOLLOWER)


async def _member(workspace_id: int, email: str, role: Role) -> Actor:
    user = await User.create(email=email, password_hash="x", name=email.split("@")[0])
    await Membership.create(workspace_id=workspace_id, user=user, role=role)
    return Actor(workspace_id=workspace_id, role=role, label=email, user_id=user.id)


@pytest.fixture
async def world(
    any_database_url: str, settings_factory: Any, redis: Redis, redis_location: RedisLocation
) -> AsyncIterator[World]:
    if any_database_url.startswith("postgres"):
        await _truncate_postgres(any_database_url)
    EXECUTOR_CACHE.clear()
    settings = settings_factory(database_url=any_database_url)
    services = await open_services(settings, run_migrations=False, redis_location=redis_location)
    # The session-wide Redis outlives each test's services.
    services.container.redis_location = RedisLocation(
        url=redis_location.url, unix_socket_path=redis_location.unix_socket_path
    )
    graph, queue, clock = FakeMessaging(), RecordingQueue(), FakeClock()
    engine = build_engine(services.container, graph, queue, clock)
    account = await make_account(services.container)
    owner = await _member(account.workspace_id, "owner@shop.example", Role.OWNER)
    viewer = await _member(account.workspace_id, "viewer@shop.example", Role.VIEWER)
    yield World(services, engine, graph, queue, clock, account, owner, viewer)
    await services.close()


async def test_another_workspaces_conversation_is_not_found(world: World) -> None:
    await world.deliver(dm_payload("m1", "hello"))
    conversation = await world.conversation()
    other = await make_account(world.services.container, ig_id="17841400000000777")
    stranger = await _member(other.workspace_id, "boss@other.example", Role.OWNER)
    inbox = world.inbox()

    assert (await inbox.list(stranger)).conversations == []
    for call in (
        inbox.thread(stranger, conversation.id),
        inbox.take_over(stranger, conversation.id),
        inbox.hand_back(stranger, conversation.id),
        inbox.set_status(stranger, conversation.id, "done"),
        inbox.assign(stranger, conversation.id, stranger.user_id),
        inbox.add_note(stranger, conversation.id, "mine now"),
        inbox.set_labels(stranger, conversation.id, ["vip"]),
        inbox.reply(stranger, conversation.id, text="hi"),
    ):
        with pytest.raises(NotFound):
            await call
    fresh = await world.conversation()
    assert (fresh.paused_until, fresh.assignee_id, fresh.labels) == (None, None, "")
    assert await ConversationNote.all().count() == 0 and world.graph.messages() == []
    with pytest.raises(Forbidden):
        await inbox.take_over(world.viewer, conversation.id)
    (listed,) = (await inbox.list(world.viewer)).conversations
    assert listed.id == conversation.id and listed.last_message_text == "hello"
    assert listed.status == "waiting"


async def test_takeover_silences_a_keyword_rule_until_handed_back(world: World) -> None:
    await make_rule(world.account, trigger=Trigger.DM, keywords=["price"])
    (first,) = await world.deliver(dm_payload("m1", "price?"))
    assert first.status is EventStatus.DONE and len(world.graph.messages()) == 1
    conversation = await world.conversation()
    inbox = world.inbox()

    until = await inbox.take_over(world.owner, conversation.id, hours=24)
    assert until > world.clock.now()
    world.clock.advance(minutes=5)
    (silenced,) = await world.deliver(dm_payload("m2", "price please"))
    assert (silenced.status, silenced.reason) == (EventStatus.IGNORED, TEAMMATE_HAS_IT)
    assert len(world.graph.messages()) == 1
    stored = await Message.filter(conversation_id=conversation.id, direction="in").count()
    assert stored == 2  # the person's message is in the thread all the same

    await inbox.hand_back(world.owner, conversation.id)
    world.clock.advance(minutes=5)
    (resumed,) = await world.deliver(dm_payload("m3", "price again"))
    assert resumed.status is EventStatus.DONE
    assert len(world.graph.messages()) == 2
    kinds = [e.kind for e in await DomainEvent.filter(kind__startswith="conversation.")]
    assert alerts.CONVERSATION_TAKEN_OVER in kinds and alerts.CONVERSATION_HANDED_BACK in kinds


async def test_a_takeover_ends_by_itself_after_its_hours(world: World) -> None:
    await make_rule(world.account, trigger=Trigger.DM, keywords=["price"])
    await world.deliver(dm_payload("m1", "hello"))
    await world.inbox().take_over(world.owner, (await world.conversation()).id, hours=2)
    world.clock.advance(hours=2, minutes=1)
    (outcome,) = await world.deliver(dm_payload("m2", "price"))
    assert outcome.status is EventStatus.DONE and len(world.graph.messages()) == 1


async def test_a_reply_from_the_instagram_app_takes_over(world: World) -> None:
    await make_rule(world.account, trigger=Trigger.DM, keywords=["price"])
    await world.deliver(dm_payload("m1", "price?"))
    (rule_reply,) = world.graph.messages()
    # Meta echoes the rule's own DM: Reelay sent it, nothing changes.
    own = echo_payload("mid.out.1", rule_reply.payload["text"], sender=world.account.ig_id)
    own["entry"][0]["messaging"][0]["recipient"] = {"id": FOLLOWER}
    assert await world.deliver(own) == []
    assert (await world.conversation()).paused_until is None

    typed = echo_payload("mid.app.1", "Hi! It's Sam from the shop", sender=world.account.ig_id)
    typed["entry"][0]["messaging"][0]["recipient"] = {"id": FOLLOWER}
    (outcome,) = await world.deliver(typed)
    assert outcome.status is EventStatus.DONE
    conversation = await world.conversation()
    assert conversation.paused_until is not None and conversation.paused_until > world.clock.now()
    app = await Message.get(conversation_id=conversation.id, source="instagram_app")
    assert (app.direction, app.text, app.mid) == ("out", "Hi! It's Sam from the shop", "mid.app.1")
    (silenced,) = await world.deliver(dm_payload("m2", "price?"))
    assert silenced.reason == TEAMMATE_HAS_IT and len(world.graph.messages()) == 1
    sent = await DomainEvent.filter(kind=alerts.CONVERSATION_MESSAGE_SENT).order_by("id")
    assert sent[-1].payload["source"] == "instagram_app"
    assert sent[-1].payload["message_id"] == app.id


async def test_each_message_records_its_event_with_its_ids(world: World) -> None:
    await make_rule(world.account, trigger=Trigger.DM, keywords=["price"])
    await world.deliver(dm_payload("m1", "price?"))
    conversation = await world.conversation()
    inbound = await Message.get(conversation_id=conversation.id, direction="in")
    outbound = await Message.get(conversation_id=conversation.id, direction="out")
    assert (inbound.source, outbound.source) == ("follower", "automation")
    received = await DomainEvent.get(kind=alerts.CONVERSATION_MESSAGE_RECEIVED)
    sent = await DomainEvent.get(kind=alerts.CONVERSATION_MESSAGE_SENT)
    assert received.payload["conversation_id"] == conversation.id
    assert received.payload["message_id"] == inbound.id
    assert (sent.payload["message_id"], sent.payload["source"]) == (outbound.id, "automation")
    assert received.workspace_id == sent.workspace_id == world.account.workspace_id


async def test_a_reply_outside_24_hours_is_refused_without_the_human_agent_permission(
    world: World,
) -> None:
    await world.deliver(dm_payload("m1", "are you there?"))
    conversation = await world.conversation()
    world.clock.advance(hours=30)
    with pytest.raises(ValidationFailed, match="24 hours"):
        await world.inbox().reply(world.owner, conversation.id, text="Sorry for the wait!")
    assert world.graph.messages() == [] and await OutboundAction.all().count() == 0

    world.clock.advance(days=7)
    with pytest.raises(ValidationFailed, match="7 days"):
        await world.inbox(human_agent=True).reply(world.owner, conversation.id, text="Hello?")
    assert world.graph.messages() == []


async def test_a_reply_within_7_days_goes_tagged_human_agent(world: World) -> None:
    await world.deliver(dm_payload("m1", "are you there?"))
    conversation = await world.conversation()
    inbox = world.inbox(human_agent=True)
    fresh = await inbox.reply(world.owner, conversation.id, text="Right away!")
    assert not fresh.tagged and world.graph.messages()[-1].tag is None

    world.clock.advance(days=3)
    late = await inbox.reply(
        world.owner, conversation.id, text="Sorry for the wait!", quick_replies=("Thanks",)
    )
    assert late.tagged and late.status == "sent"
    call = world.graph.messages()[-1]
    assert call.tag == "HUMAN_AGENT" and call.payload["text"] == "Sorry for the wait!"
    assert call.payload["quick_replies"][0]["title"] == "Thanks"
    message = await Message.filter(conversation_id=conversation.id, direction="out").order_by("-id")
    assert (message[0].source, message[0].author_id) == ("inbox", world.owner.user_id)
    # Replying takes the conversation over.
    assert (await world.conversation()).paused_until is not None


async def test_one_reply_is_one_dm_even_when_its_answer_is_lost(world: World) -> None:
    await world.deliver(dm_payload("m1", "hi"))
    conversation = await world.conversation()
    world.graph.errors.append(
        GraphError(
            code=None,
            subcode=None,
            message="connection dropped",
            title="the connection dropped before Instagram answered",
            kind=ErrorKind.TRANSIENT,
            maybe_sent=True,
        )
    )
    inbox = world.inbox()
    sent = await inbox.reply(world.owner, conversation.id, text="On its way", key="form-1")
    assert sent.status == "pending" and len(world.graph.messages()) == 1
    # The same form sent twice is the same reply.
    again = await inbox.reply(world.owner, conversation.id, text="On its way", key="form-1")
    assert again.status == "duplicate"
    # Instagram's echo says the first one arrived: it is recorded, never sent again.
    echo = echo_payload("mid.echo.1", "On its way", sender=world.account.ig_id)
    echo["entry"][0]["messaging"][0]["recipient"] = {"id": FOLLOWER}
    await world.deliver(echo)
    await world.run_sends()
    assert len(world.graph.messages()) == 1
    (action,) = await OutboundAction.all()
    assert action.status is OutboundStatus.SENT
    (out,) = await Message.filter(conversation_id=conversation.id, direction="out")
    assert (out.source, out.mid) == ("inbox", "mid.echo.1")
    assert await Message.filter(source="instagram_app").count() == 0


async def test_notes_labels_status_assignment_search_and_pages(world: World) -> None:
    inbox = world.inbox()
    for n in range(3):
        payload = dm_payload(f"m{n}", f"order {n}", sender=f"igsid-{n}")
        await world.deliver(payload)
        world.clock.advance(minutes=1)
    first = await Conversation.get(igsid="igsid-0")
    await inbox.add_note(world.owner, first.id, "Asked for a refund last month")
    assert await inbox.set_labels(world.owner, first.id, ["VIP", "refund", "vip"]) == [
        "VIP",
        "refund",
    ]
    await inbox.set_status(world.owner, first.id, "done")
    await inbox.assign(world.owner, first.id, world.viewer.user_id)
    with pytest.raises(ValidationFailed):
        await inbox.set_status(world.owner, first.id, "archived")
    outsider = await User.create(email="x@else.example", password_hash="x")
    with pytest.raises(ValidationFailed):
        await inbox.assign(world.owner, first.id, outsider.id)

    thread = await inbox.thread(world.viewer, first.id)
    assert [n.text for n in thread.notes] == ["Asked for a refund last month"]
    assert thread.conversation.assignee_id == world.viewer.user_id
    assert [(await inbox.list(world.owner, label="refund")).conversations[0].id] == [first.id]
    assert [c.id for c in (await inbox.list(world.owner, status="done")).conversations] == [
        first.id
    ]
    mine = await inbox.list(world.owner, assignee_id=world.viewer.user_id)
    assert [c.id for c in mine.conversations] == [first.id]
    found = await inbox.list(world.owner, query="order 2")
    assert [c.igsid for c in found.conversations] == ["igsid-2"]
    page = await inbox.list(world.owner, limit=2)
    assert [c.igsid for c in page.conversations] == ["igsid-2", "igsid-1"]
    rest = await inbox.list(world.owner, limit=2, cursor=page.next_cursor)
    assert [c.igsid for c in rest.conversations] == ["igsid-0"] and rest.next_cursor is None
    (assigned,) = await DomainEvent.filter(kind=alerts.CONVERSATION_ASSIGNED)
    assert assigned.payload["assignee_id"] == world.viewer.user_id
    assert [j.args for j in world.queue.take("deliver_event")] == [(assigned.id,)]


async def test_a_delayed_rule_dm_stays_unsent_once_a_teammate_takes_over(world: World) -> None:
    await make_rule(
        world.account,
        trigger=Trigger.DM,
        keywords=["price"],
        config={"message_variations": ["Here you go!"], "delay_minutes": 5},
    )
    (outcome,) = await world.deliver(dm_payload("m1", "price?"))
    assert outcome.status is EventStatus.DONE and world.graph.messages() == []
    await world.inbox().take_over(world.owner, (await world.conversation()).id)
    await world.run_sends()
    assert world.graph.messages() == []
    (action,) = await OutboundAction.all()
    assert (action.status, action.error) == (OutboundStatus.SKIPPED, TEAMMATE_HAS_IT)
