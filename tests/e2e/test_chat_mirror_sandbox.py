"""Answering Instagram DMs from the team's Telegram forum group, end to end: the sandbox
Instagram sends signed webhooks to the real endpoint (uvicorn), an arq worker runs the
automations and the notifications, the real dispatcher reads the team's messages, and the
fake Bot API records what the bot posted in each topic."""

from __future__ import annotations

import asyncio
import itertools
import time
import warnings
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiogram import Bot, Dispatcher
from arq.worker import Worker

from bot.telegram import create_bot, create_dispatcher
from core.adapters.redis_server import RedisLocation
from core.db.models import (
    ChatIdentity,
    ChatLink,
    Conversation,
    InstagramAccount,
    LoginKind,
    Membership,
    Platform,
    Role,
    Trigger,
    User,
    Workspace,
)
from core.domain.chat_mirror import topic_name
from core.domain.followers import Follower
from core.domain.scope import Actor
from jobs import (
    events as event_jobs,
    followers as follower_jobs,
    notifications as notification_jobs,
)
from jobs.worker import worker_settings
from panel.app import create_app
from reelay.cli import open_services
from reelay.queue import arq_settings
from tests.automation_world import make_rule
from tests.bot.fake_telegram import FakeTelegram, running_fake_telegram
from tests.e2e.stack import free_port, serve

IG_ID = "17841400000000088"
TEAM = -1001234567890
PEOPLE = {"Olga": 1001, "Eda": 1002, "Vic": 1003, "Stranger": 1009}
FOLLOWER = "9990042"
_ids = itertools.count(70_000)


class Team:
    """The team's Telegram group as the bot sees it: updates in, the fake Bot API's record out."""

    def __init__(self, dispatcher: Dispatcher, bot: Bot, fake: FakeTelegram) -> None:
        self.dispatcher = dispatcher
        self.bot = bot
        self.fake = fake

    def update(self, name: str, text: str, *, thread: int | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "message_id": next(_ids),
            "date": int(time.time()),
            "chat": {"id": TEAM, "type": "supergroup", "title": "Shop team", "is_forum": True},
            "from": {"id": PEOPLE[name], "is_bot": False, "first_name": name},
            "text": text,
        }
        if text.startswith("/"):
            body["entities"] = [
                {"type": "bot_command", "offset": 0, "length": len(text.split()[0])}
            ]
        if thread is not None:
            body["message_thread_id"] = thread
            body["is_topic_message"] = True
        return {"update_id": next(_ids), "message": body}

    async def feed(self, update: dict[str, Any]) -> None:
        await self.dispatcher.feed_raw_update(self.bot, update)

    async def says(self, name: str, text: str, *, thread: int | None = None) -> str:
        """What the bot answered ``name`` (the last sendMessage replying to the message)."""
        update = self.update(name, text, thread=thread)
        await self.feed(update)
        return self.answer_to(update)

    def answer_to(self, update: dict[str, Any]) -> str:
        message_id = update["message"]["message_id"]
        answers = [
            params["text"]
            for params in self.fake.sent("sendMessage")
            if _replies_to(params) == message_id
        ]
        return answers[-1] if answers else ""

    def topic_lines(self, thread: int) -> list[str]:
        return [
            str(params.get("text") or params.get("caption") or "")
            for params in self.fake.in_topic(TEAM, thread)
            if _replies_to(params) is None
        ]


def _replies_to(params: dict[str, Any]) -> int | None:
    parameters = params.get("reply_parameters")
    if isinstance(parameters, dict):
        return int(parameters["message_id"])
    if params.get("reply_to_message_id") is not None:
        return int(params["reply_to_message_id"])
    return None


async def until(check: Callable[[], bool], timeout_s: float = 5.0) -> float:
    """Seconds until ``check()`` holds (fails the test after ``timeout_s``)."""
    start = time.perf_counter()
    while not check():
        if time.perf_counter() - start > timeout_s:
            pytest.fail(f"not within {timeout_s} s")
        await asyncio.sleep(0.005)
    return time.perf_counter() - start


class Stack:
    def __init__(self, services: Any, sandbox: Any, team: Team) -> None:
        self.services = services
        self.sandbox = sandbox
        self.team = team

    def dms(self, text: str | None = None) -> list[str]:
        """The DMs the sandbox recorded to the follower (with ``text`` only, when given)."""
        sent = [
            str(s.payload["message"].get("text") or "")
            for s in self.sandbox.state.sent
            if s.kind == "message" and s.target == FOLLOWER
        ]
        return [t for t in sent if text is None or t == text]


@pytest.fixture
async def stack(
    sandbox: Any, settings_factory: Any, redis: Any, redis_location: RedisLocation
) -> AsyncIterator[Stack]:
    async with running_fake_telegram() as fake:
        fake.forums.add(TEAM)
        settings = settings_factory(
            sandbox_url=sandbox.url,
            telegram_token="123456:TEST-TOKEN",
            telegram_api_server=fake.base_url,
        )
        services = await open_services(
            settings, run_migrations=False, redis_location=redis_location
        )
        container = services.container
        port = free_port()
        stop_panel = await serve(create_app(settings, services=services), port)
        sandbox.state.webhook_url = f"http://127.0.0.1:{port}/webhooks/meta"
        sandbox.state.add_account(IG_ID, "sandbox_shop")
        workspace = await Workspace.create(name="Shop")
        account = await InstagramAccount.create(
            workspace=workspace,
            ig_id=IG_ID,
            username="sandbox_shop",
            login_kind=LoginKind.SANDBOX,
            token_encrypted=container.secrets.encrypt(sandbox.state.issue_token(IG_ID)),
        )
        await make_rule(
            account,
            trigger=Trigger.DM,
            keywords=["price"],
            config={"message_variations": ["Our prices: https://shop.example/prices"]},
        )
        await ChatLink.create(
            workspace=workspace, platform=Platform.TELEGRAM, chat_id=str(TEAM), title="Shop team"
        )
        for name, role in (("Olga", Role.OWNER), ("Eda", Role.EDITOR), ("Vic", Role.VIEWER)):
            user = await User.create(email=f"{name.lower()}@shop.example", password_hash="-")
            user.name = name
            await user.save(update_fields=["name"])
            await Membership.create(workspace=workspace, user=user, role=role)
            await ChatIdentity.create(
                platform=Platform.TELEGRAM, platform_user_id=str(PEOPLE[name]), user=user
            )
        options = worker_settings(
            settings, services=services, redis_settings=arq_settings(container.redis_location)
        )
        options.update(
            functions=[
                *event_jobs.FUNCTIONS,
                *notification_jobs.FUNCTIONS,
                *follower_jobs.FUNCTIONS,
            ],
            cron_jobs=[],
            poll_delay=0.01,
        )
        worker = Worker(**options)
        working = asyncio.create_task(worker.main())
        bot = create_bot("123456:TEST-TOKEN", fake.base_url)
        try:
            yield Stack(services, sandbox, Team(create_dispatcher(services), bot, fake))
        finally:
            await bot.session.close()
            working.cancel()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                await worker.close()
            await stop_panel()
            container.redis_location = RedisLocation(
                url=redis_location.url, unix_socket_path=redis_location.unix_socket_path
            )
            await services.close()


async def test_a_follower_is_answered_from_the_team_topic_once_and_takeover_silences_rules(
    stack: Stack,
) -> None:
    team, fake, sandbox = stack.team, stack.team.fake, stack.sandbox
    assert "admin" in await team.says("Eda", "/mirror here")  # an editor may not
    assert "mirrored here" in await team.says("Olga", "/mirror here")

    _, delivery = await sandbox.dm(IG_ID, "Hello, do you ship to Lisbon?", from_id=FOLLOWER)
    assert delivery.status == 200
    elapsed = await until(lambda: any(p.get("message_thread_id") for p in fake.sent("sendMessage")))
    assert elapsed < 1.0, f"the DM reached the topic after {elapsed:.2f} s"
    assert len(fake.sent("createForumTopic")) == 1
    thread = int(next(iter(fake.topics[TEAM])))
    (first,) = team.topic_lines(thread)
    assert first.startswith("💬 ") and first.endswith(": Hello, do you ship to Lisbon?")

    # Eda answers in the topic; Telegram delivers her message twice: one DM goes out.
    answer = team.update("Eda", "Yes! 3-5 days to Lisbon.", thread=thread)
    await team.feed(answer)
    await team.feed(answer)
    await until(lambda: bool(stack.dms("Yes! 3-5 days to Lisbon.")))
    await asyncio.sleep(0.3)
    assert stack.dms("Yes! 3-5 days to Lisbon.") == ["Yes! 3-5 days to Lisbon."]
    assert team.answer_to(answer).startswith("✓")
    assert not any("3-5 days" in line for line in team.topic_lines(thread))  # no echo

    # Viewers read but don't send; someone not linked is told how to link.
    assert "viewer" in await team.says("Vic", "We also ship to Porto!", thread=thread)
    assert "link" in (await team.says("Stranger", "hi", thread=thread)).lower()
    assert stack.dms("We also ship to Porto!") == []

    # Instagram's profile of the person is read off the reply's path (the reads asked for
    # within a second go out together); the topic takes their name with their next message.
    for _ in range(50):
        if (await Conversation.get(igsid=FOLLOWER)).username:
            break
        await asyncio.sleep(0.1)

    # Taken over, a keyword gets no automated answer; handed back, it does again.
    assert (await team.says("Eda", "/takeover 2", thread=thread)).startswith("✋")
    await sandbox.dm(IG_ID, "price?", from_id=FOLLOWER)
    await until(lambda: any(line.endswith(": price?") for line in team.topic_lines(thread)))
    await asyncio.sleep(0.5)
    assert stack.dms("Our prices: https://shop.example/prices") == []
    assert (await team.says("Eda", "/release", thread=thread)).startswith("🤖")
    await sandbox.dm(IG_ID, "price please", from_id=FOLLOWER)
    await until(lambda: bool(stack.dms("Our prices: https://shop.example/prices")))
    await until(
        lambda: "🤖 Automation: Our prices: https://shop.example/prices" in team.topic_lines(thread)
    )
    assert len(fake.sent("createForumTopic")) == 1

    # A reply from the panel's inbox shows in the topic too, marked as such.
    olga = await User.get(name="Olga")
    conversation = await Conversation.get(igsid=FOLLOWER)
    shop = await Workspace.get(name="Shop")
    start = time.perf_counter()
    await stack.services.conversations.reply(
        Actor(shop.id, Role.OWNER, olga.email, olga.id),
        conversation.id,
        text="See you on Friday!",
        source="inbox",
    )
    await until(lambda: "🧑‍💻 Olga (inbox): See you on Friday!" in team.topic_lines(thread))
    assert time.perf_counter() - start < 1.0

    # The topic's conversation is assigned and closed from there.
    assert "Olga" in await team.says("Eda", "/assign @olga", thread=thread)
    assert (await team.says("Eda", "/done", thread=thread)).startswith("✅")
    conversation = await Conversation.get(igsid=FOLLOWER).prefetch_related("assignee")
    assert conversation.assignee is not None and conversation.assignee.name == "Olga"
    assert conversation.status == "done"
    # The topic carries the person's name once Instagram's profile of them is known.
    person = Follower(
        igsid=FOLLOWER,
        username=conversation.username,
        name=conversation.profile_name,
        verified=conversation.is_verified_user,
    )
    assert conversation.username and fake.topics[TEAM][thread] == topic_name(person)
    assert fake.refused == []
