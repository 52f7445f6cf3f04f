"""The chat mirror's delivery: one topic per conversation however many messages arrive at
once, a deleted topic opened again, and the team's own chat replies not posted back."""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import pytest
from aioresponses import aioresponses

from core.db.models import (
    ChatIdentity,
    ChatLink,
    ChatMirror,
    ChatThread,
    Conversation,
    DomainEvent,
    Message,
    OutboundAction,
    Platform,
)
from core.domain import alerts
from core.ports.chat_threads import ThreadGone
from core.services import chat_topics
from core.services.chat_members import ChatUser
from core.services.chat_mirror import ChatDesk
from core.services.chat_state import CommandResults
from core.services.chatops import IncomingFile
from core.wiring import assemble_services
from tests.automation_world import RecordingQueue
from tests.chatops_world import World, make_world
from tests.media_samples import image_bytes

NOW = datetime(2025, 3, 5, 9, 0, tzinfo=UTC)


class SlowThreads:
    """Topics that take a moment to open; records what was posted where."""

    platform = Platform.TELEGRAM

    def __init__(self) -> None:
        self.opened: list[str] = []
        self.posts: list[tuple[str, str, str]] = []
        self.gone: set[str] = set()
        self.renamed: list[tuple[str, str]] = []

    async def open_thread(self, chat_id: str, name: str) -> str:
        await asyncio.sleep(0.1)
        self.opened.append(name)
        return str(100 + len(self.opened))

    async def rename_thread(self, chat_id: str, thread_id: str, name: str) -> None:
        self.renamed.append((thread_id, name))

    async def post(self, chat_id: str, thread_id: str, text: str, image_url: str = "") -> str:
        if thread_id in self.gone:
            raise ThreadGone("Bad Request: message thread not found")
        self.posts.append((thread_id, text, image_url))
        return str(len(self.posts))


async def _setup(world: World) -> tuple[ChatLink, Conversation]:
    link = await ChatLink.create(
        workspace=world.workspace, platform=Platform.TELEGRAM, chat_id="-100777", title="Team"
    )
    await ChatMirror.create(workspace=world.workspace, chat_link=link)
    conversation = await Conversation.create(
        account=world.account, igsid="9001", username="ana", profile_name="Ana"
    )
    return link, conversation


async def _event(world: World, conversation: Conversation, text: str, **facts: Any) -> DomainEvent:
    direction = facts.get("direction", "in")
    source = facts.get("source", "follower")
    message = await Message.create(
        conversation_id=conversation.id, direction=direction, source=source, text=text
    )
    kind = (
        alerts.CONVERSATION_MESSAGE_RECEIVED
        if direction == "in"
        else alerts.CONVERSATION_MESSAGE_SENT
    )
    return await DomainEvent.create(
        workspace=world.workspace,
        kind=kind,
        payload={
            "conversation_id": conversation.id,
            "message_id": message.id,
            "direction": direction,
            "source": source,
            "text": text,
        },
    )


async def test_two_messages_at_once_open_one_topic_and_both_land_in_it(container: Any) -> None:
    world = await make_world()
    link, conversation = await _setup(world)
    first = await _event(world, conversation, "Hello?")
    second = await _event(world, conversation, "Anyone there?")
    threads = SlowThreads()
    await asyncio.gather(
        chat_topics.deliver({Platform.TELEGRAM: threads}, first, link, NOW),
        chat_topics.deliver({Platform.TELEGRAM: threads}, second, link, NOW),
    )
    assert threads.opened == ["@ana · Ana"]
    assert sorted(threads.posts) == [
        ("101", "💬 @ana · Ana: Anyone there?", ""),
        ("101", "💬 @ana · Ana: Hello?", ""),
    ]
    assert await ChatThread.filter(conversation_id=conversation.id).count() == 1


async def test_a_topic_opened_before_the_profile_was_known_takes_the_persons_name(
    container: Any,
) -> None:
    world = await make_world()
    link, _ = await _setup(world)
    stranger = await Conversation.create(account=world.account, igsid="9002")
    threads = SlowThreads()
    mirrors = {Platform.TELEGRAM: threads}
    await chat_topics.deliver(mirrors, await _event(world, stranger, "Hi"), link, NOW)
    await Conversation.filter(id=stranger.id).update(username="bo", profile_name="Bo Berg")
    await chat_topics.deliver(mirrors, await _event(world, stranger, "Price?"), link, NOW)
    await chat_topics.deliver(mirrors, await _event(world, stranger, "?"), link, NOW)
    assert threads.opened == ["a follower (id 9002)"]
    assert threads.renamed == [("101", "@bo · Bo Berg")]
    assert [text for _, text, _ in threads.posts] == [
        "💬 a follower (id 9002): Hi",
        "💬 @bo · Bo Berg: Price?",
        "💬 @bo · Bo Berg: ?",
    ]


async def test_a_deleted_topic_is_opened_again(container: Any) -> None:
    world = await make_world()
    link, conversation = await _setup(world)
    threads = SlowThreads()
    event = await _event(world, conversation, "Rule answer", direction="out", source="automation")
    await chat_topics.deliver({Platform.TELEGRAM: threads}, event, link, NOW)
    threads.gone.add("101")
    await chat_topics.deliver({Platform.TELEGRAM: threads}, event, link, NOW)
    assert threads.opened == ["@ana · Ana", "@ana · Ana"]
    assert [post[:2] for post in threads.posts] == [
        ("101", "🤖 Automation: Rule answer"),
        ("102", "🤖 Automation: Rule answer"),
    ]
    (row,) = await ChatThread.filter(conversation_id=conversation.id)
    assert row.thread_id == "102"


async def test_only_a_mirroring_workspace_plans_posts_and_never_for_its_chat_replies(
    container: Any,
) -> None:
    world = await make_world()
    _, conversation = await _setup(world)
    follower = await _event(world, conversation, "Hi")
    from_chat = await _event(world, conversation, "Hello!", direction="out", source="chat")
    assert [row[0] for row in await chat_topics.planned(follower)] == [chat_topics.MIRROR]
    assert await chat_topics.planned(from_chat) == []
    await ChatMirror.filter(workspace_id=world.workspace.id).delete()
    assert await chat_topics.planned(follower) == []


async def test_a_photo_written_in_the_topic_goes_to_the_person_as_an_image(
    container: Any,
) -> None:
    world = await make_world()
    link, conversation = await _setup(world)
    await Conversation.filter(id=conversation.id).update(last_inbound_at=datetime.now(UTC))
    world.account.token_encrypted = container.secrets.encrypt("token")
    await world.account.save(update_fields=["token_encrypted"])
    await ChatIdentity.create(platform=Platform.TELEGRAM, platform_user_id="42", user=world.editor)
    await ChatThread.create(
        workspace=world.workspace,
        conversation=conversation,
        platform="telegram",
        chat_id=link.chat_id,
        thread_id="101",
    )
    services = assemble_services(container)
    desk = ChatDesk(
        conversations=services.conversations,
        storage=services.storage,
        media_url=lambda asset: f"https://reelay.example/media/{asset.storage_key}",
        results=CommandResults(container.redis),
    )
    who = ChatUser(Platform.TELEGRAM, chat_id=link.chat_id, user_id="42", name="eda")

    async def photo() -> bytes:
        return image_bytes()

    with aioresponses() as graph:
        graph.post(re.compile(r".*/messages.*"), payload={"message_id": "m-1"}, repeat=True)
        reply = await desk.handle(
            who, "101", "7", "Here it is", IncomingFile("p.jpg", "image/jpeg", photo)
        )
    assert reply is not None and reply.text.startswith(("✓", "⏳"))
    messages = [
        a.payload["message"] for a in await OutboundAction.filter(target="9001").order_by("id")
    ]
    image = messages[0]["attachment"]["payload"]["url"]
    assert image.startswith("https://reelay.example/media/")
    assert messages[1] == {"text": "Here it is"}


async def test_a_reply_after_instagrams_window_is_refused_in_the_topic(container: Any) -> None:
    world = await make_world()
    link, conversation = await _setup(world)
    await Conversation.filter(id=conversation.id).update(
        last_inbound_at=datetime(2025, 1, 1, tzinfo=UTC)
    )
    await ChatIdentity.create(platform=Platform.TELEGRAM, platform_user_id="42", user=world.editor)
    await ChatThread.create(
        workspace=world.workspace,
        conversation=conversation,
        platform="telegram",
        chat_id=link.chat_id,
        thread_id="101",
    )
    desk = assemble_services(container).chat_desk
    who = ChatUser(Platform.TELEGRAM, chat_id=link.chat_id, user_id="42", name="eda")
    reply = await desk.handle(who, "101", "8", "Sorry for the wait!")
    assert reply is not None and "within 24 hours" in reply.text
    assert not await OutboundAction.filter(target="9001").exists()


class CountingQueue(RecordingQueue):
    """Counts every enqueue asked for, each taking a moment (as a round trip to Redis does)."""

    def __init__(self) -> None:
        super().__init__()
        self.asked: Counter[str] = Counter()

    async def enqueue(self, function: str, *args: Any, **options: Any) -> bool:
        self.asked[str(options.get("job_id"))] += 1
        await asyncio.sleep(0.01)
        return await super().enqueue(function, *args, **options)


class Now:
    def now(self) -> datetime:
        return datetime.now(UTC)


async def test_nudges_asked_together_queue_every_new_message_in_one_run_and_one_more(
    container: Any,
) -> None:
    world = await make_world()
    _, conversation = await _setup(world)
    events = [await _event(world, conversation, f"message {n}") for n in range(3)]
    queue = CountingQueue()
    nudge = chat_topics.MirrorNudge(queue, Now())

    first = asyncio.create_task(nudge())
    while not queue.asked:  # the first job's nudge is under way
        await asyncio.sleep(0.001)
    await asyncio.gather(first, *(nudge() for _ in range(7)))

    wanted = {f"notify:{event.id}" for event in events}
    assert {job.job_id for job in queue.take(chat_topics.DELIVER_JOB)} == wanted
    # Eight jobs' nudges: the run under way, then one more for the seven asked during it.
    assert set(queue.asked) == wanted
    assert max(queue.asked.values()) == 2


async def test_no_nudge_reads_while_no_workspace_mirrors_and_a_new_mirror_is_seen(
    container: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = await make_world()
    conversation = await Conversation.create(account=world.account, igsid="9001", username="ana")
    first = await _event(world, conversation, "before the mirror")
    queue = CountingQueue()
    nudge = chat_topics.MirrorNudge(queue, Now())

    await nudge()
    assert queue.jobs == []

    link = await ChatLink.create(
        workspace=world.workspace, platform=Platform.TELEGRAM, chat_id="-100777", title="Team"
    )
    await ChatMirror.create(workspace=world.workspace, chat_link=link)
    await nudge()  # within MIRRORS_CHECK_S of the last look: still none (the sweep posts it)
    assert queue.jobs == []

    monkeypatch.setattr(chat_topics, "MIRRORS_CHECK_S", 0.0)
    await nudge()
    assert [job.job_id for job in queue.jobs] == [f"notify:{first.id}"]
