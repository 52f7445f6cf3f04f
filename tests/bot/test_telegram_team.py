"""A team of three in one Telegram group, through the real dispatcher and the fake Bot API:
each person links themselves and acts with their own role; replies survive 429s; a
repeated delivery acts once."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from aiogram import Bot, Dispatcher

from core.bootstrap import Container
from core.db.models import AuditLog, DraftStatus, Membership, Platform, Post, User
from core.services import chat_links
from tests.actors import acting
from tests.bot.fake_telegram import FakeTelegram
from tests.bot.telegram_updates import NOW, RecordingSender
from tests.chatops_world import FixedClock, World, link, make_draft, make_world
from tests.media_samples import image_bytes

TEAM = -100777
PEOPLE = {"Olga": 1001, "Eda": 1002, "Vic": 1003}
_ids = iter(range(50_000, 10**6))


@pytest.fixture
async def world(container: Container) -> World:
    container.clock = FixedClock(NOW)
    made = await make_world()
    for user, name in ((made.owner, "Olga"), (made.editor, "Eda"), (made.viewer, "Vic")):
        user.name = name
        await user.save(update_fields=["name"])
    return made


class Session:
    """Feeds updates from the team and keeps a transcript of what went in and came out."""

    def __init__(self, dispatcher: Dispatcher, bot: Bot, fake: FakeTelegram) -> None:
        self.dispatcher = dispatcher
        self.bot = bot
        self.fake = fake
        self.lines: list[str] = []
        self.seen = 0

    def _person(self, name: str) -> dict[str, Any]:
        return {"id": PEOPLE[name], "is_bot": False, "first_name": name}

    async def says(
        self, name: str, text: str, *, private: bool = False, **extra: Any
    ) -> dict[str, Any]:
        chat = (
            {"id": PEOPLE[name], "type": "private", "first_name": name}
            if private
            else {"id": TEAM, "type": "supergroup", "title": "Cafe team"}
        )
        body: dict[str, Any] = {
            "message_id": next(_ids),
            "date": 1_741_165_200,
            "chat": chat,
            "from": self._person(name),
            **extra,
        }
        if "photo" not in extra:
            body["text"] = text
        if text.startswith("/"):
            key = "caption_entities" if "photo" in extra else "entities"
            body[key] = [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}]
        where = "privately" if private else "in the group"
        if "reply_to_message" in extra:
            where += ", replying to the prompt"
        self.lines.append(f"{name} ({where}): {text}")
        update = {"update_id": next(_ids), "message": body}
        await self.feed(update)
        return update

    async def feed(self, update: dict[str, Any]) -> None:
        await self.dispatcher.feed_raw_update(self.bot, update)
        self._record()

    async def presses(self, name: str, label: str, on: str) -> None:
        """``name`` presses the button labelled ``label`` under the bot's message ``on``."""
        message_id = self.fake.message_id(on)
        shown, markup = self.fake.messages[(TEAM, message_id)]
        [data] = [
            b["callback_data"]
            for row in markup["inline_keyboard"]
            for b in row
            if b["text"] == label
        ]
        self.lines.append(f"{name} presses [{label}]")
        query = {
            "id": f"cb{next(_ids)}",
            "from": self._person(name),
            "chat_instance": "ci",
            "data": data,
            "message": {
                "message_id": message_id,
                "date": 1_741_165_200,
                "chat": {"id": TEAM, "type": "supergroup", "title": "Cafe team"},
                "from": {"id": 777000, "is_bot": True, "first_name": "Reelay"},
                "text": shown,
                "reply_markup": markup,
            },
        }
        await self.feed({"update_id": next(_ids), "callback_query": query})

    def _record(self) -> None:
        for method, params in self.fake.answered[self.seen :]:
            if method in ("sendMessage", "editMessageText"):
                verb = "says" if method == "sendMessage" else "changes its message to"
                buttons = [
                    b["text"]
                    for row in (params.get("reply_markup") or {}).get("inline_keyboard", [])
                    for b in row
                ]
                shown = params["text"] + (f"  {buttons}" if buttons else "")
                self.lines.append(f"  Reelay {verb}: {shown}")
            elif method == "answerCallbackQuery" and params.get("text"):
                self.lines.append(f"  Reelay alerts the presser: {params['text']}")
        self.seen = len(self.fake.answered)

    def last(self) -> str:
        return str(self.fake.sent("sendMessage")[-1]["text"])


async def _personal_code(user: User) -> str:
    membership = await Membership.get(user=user)
    made = await chat_links.create_personal_code(await acting(membership), NOW)
    return made.code.replace("-", "")


async def test_owner_editor_and_viewer_each_act_as_themselves(
    world: World, fake: FakeTelegram, bot: Bot, dispatcher: Dispatcher, sender: RecordingSender
) -> None:
    team = Session(dispatcher, bot, fake)
    owner = await Membership.get(user=world.owner)
    chat_code = await chat_links.create_code(await acting(owner), NOW)
    await team.says("Olga", f"/link {chat_code.code}")
    assert team.last().startswith("Linked to Cafe Crema")
    await team.says("Vic", "/queue")
    assert team.last().startswith("Vic, I don't know you yet")
    for name, user in (("Olga", world.owner), ("Eda", world.editor), ("Vic", world.viewer)):
        await team.says(name, f"/start {await _personal_code(user)}", private=True)
        assert team.last().startswith(f"Hello {name}: you are linked")

    fake.add_file("croissant", image_bytes(1080, 1080))
    sizes = [{"file_id": "croissant", "file_unique_id": "c", "width": 1080, "height": 1080}]
    await team.says(
        "Eda",
        "/schedule tomorrow 9am Croissants",
        photo=sizes,
        caption="/schedule tomorrow 9am Croissants",
    )
    post = await Post.get(workspace=world.workspace)
    assert team.last().startswith(f"Scheduled #{post.id}")
    created = await AuditLog.get(action="post.created")
    assert created.actor == "editor@example.com via telegram"
    await team.says("Vic", f"/cancel {post.id}")
    assert team.last().startswith("Your role (viewer) can't do that here")
    await team.says("Vic", "/queue")
    assert "Croissants" in team.last()

    first = await make_draft(world, now=NOW)
    second = await make_draft(world, now=NOW, inbound_text="Open on Sunday?")
    await team.says("Olga", "/approvals")
    listing = team.last()
    await team.presses("Olga", f"Approve #{first.id}", on=listing)
    [changed] = fake.sent("editMessageText")
    assert f"#{first.id}: " in changed["text"] and "approved by Olga" in changed["text"]
    assert f"#{second.id}: they wrote 'Open on Sunday?' → " in changed["text"]
    kept = [b["text"] for row in changed["reply_markup"]["inline_keyboard"] for b in row]
    assert kept == [f"Approve #{second.id}", f"Edit #{second.id}", f"Reject #{second.id}"]

    await team.presses("Eda", f"Edit #{second.id}", on=changed["text"])
    prompt = team.last()
    assert prompt.startswith("Eda: reply to this message")
    await team.says("Olga", "Coffee anyone?")
    prompt_id = fake.message_id(prompt)
    replied = {"message_id": prompt_id, "date": 1, "chat": {"id": TEAM, "type": "supergroup"}}
    await team.says("Eda", "Yes, and on Sundays from 10!", reply_to_message=replied)
    preview = team.last()
    assert preview.endswith("\nYes, and on Sundays from 10!")
    await team.presses("Vic", "Send", on=preview)
    await team.presses("Olga", "Send", on=preview)
    assert [s.text for s in sender.sent] == [first.proposed_text]
    await team.presses("Eda", "Send", on=preview)
    assert [s.text for s in sender.sent] == [first.proposed_text, "Yes, and on Sundays from 10!"]
    assert "Edited and sent by Eda (editor@example.com)" in fake.sent("editMessageText")[-1]["text"]

    await first.refresh_from_db()
    await second.refresh_from_db()
    assert first.decided_by_id == world.owner.id  # type: ignore[attr-defined]
    assert second.status is DraftStatus.EDITED
    assert second.decided_by_id == world.editor.id  # type: ignore[attr-defined]
    print("\n".join(team.lines))


async def test_a_reply_refused_with_429_is_sent_after_retry_after_and_the_post_made_once(
    world: World, fake: FakeTelegram, bot: Bot, dispatcher: Dispatcher
) -> None:
    await link(world, world.editor, platform=Platform.TELEGRAM, chat_id=str(TEAM), user_id="1002")
    team = Session(dispatcher, bot, fake)
    fake.add_file("p", image_bytes(1080, 1080))
    sizes = [{"file_id": "p", "file_unique_id": "p", "width": 1080, "height": 1080}]
    fake.retry_after[TEAM] = 1
    update = await team.says(
        "Eda", "/schedule tomorrow 9am Hi", photo=sizes, caption="/schedule tomorrow 9am Hi"
    )
    [(method, _, why)] = fake.refused
    assert method == "sendMessage" and "retry after 1" in why
    [reply] = fake.sent("sendMessage")
    post = await Post.get(workspace=world.workspace)
    assert reply["text"].startswith(f"Scheduled #{post.id}")
    # Telegram delivers the same update again: the same answer, no second post
    await team.feed(update)
    assert await Post.filter(workspace=world.workspace).count() == 1
    assert [m["text"] for m in fake.sent("sendMessage")] == [reply["text"], reply["text"]]


async def test_an_answer_that_cannot_be_sent_is_not_followed_by_try_again(
    world: World,
    fake: FakeTelegram,
    bot: Bot,
    dispatcher: Dispatcher,
    caplog: pytest.LogCaptureFixture,
) -> None:
    await link(world, world.editor, platform=Platform.TELEGRAM, chat_id=str(TEAM), user_id="1002")
    team = Session(dispatcher, bot, fake)
    fake.add_file("p", image_bytes(1080, 1080))
    sizes = [{"file_id": "p", "file_unique_id": "p", "width": 1080, "height": 1080}]
    fake.retry_after[TEAM] = 120  # longer than a reply waits
    with caplog.at_level(logging.ERROR):
        update = await team.says(
            "Eda", "/schedule tomorrow 9am Hi", photo=sizes, caption="/schedule tomorrow 9am Hi"
        )
    assert fake.sent("sendMessage") == []  # no "Something went wrong; please try again"
    assert "the command ran but its answer could not be sent" in caplog.text
    # the person (or Telegram) tries again: the answer names the post made the first time
    await team.feed(update)
    post = await Post.get(workspace=world.workspace)
    [reply] = fake.sent("sendMessage")
    assert reply["text"].startswith(f"Scheduled #{post.id}")
    assert await Post.filter(workspace=world.workspace).count() == 1


async def test_an_editors_post_waits_until_the_owner_approves_its_card(
    world: World, fake: FakeTelegram, bot: Bot, dispatcher: Dispatcher
) -> None:
    from bot.telegram import TelegramNotifier
    from core.db.models import DomainEvent
    from core.domain import alerts
    from core.domain.posts import Status
    from core.services.publishing import set_posts_need_approval

    for name, user in (("Olga", world.owner), ("Eda", world.editor), ("Vic", world.viewer)):
        await link(
            world, user, platform=Platform.TELEGRAM, chat_id=str(TEAM), user_id=str(PEOPLE[name])
        )
    await set_posts_need_approval(await acting(await Membership.get(user=world.owner)), True)
    team = Session(dispatcher, bot, fake)
    fake.add_file("p", image_bytes(1080, 1080))
    sizes = [{"file_id": "p", "file_unique_id": "p", "width": 1080, "height": 1080}]
    command = "/schedule tomorrow 9am Cake day"
    await team.says("Eda", command, photo=sizes, caption=command)
    post = await Post.get(workspace=world.workspace)
    assert post.status is Status.PENDING_APPROVAL and "waits for an owner's" in team.last()
    # the worker delivers the card to the linked chat
    event = await DomainEvent.get(kind=alerts.POST_APPROVAL_NEEDED)
    ctx = alerts.AlertContext("Europe/Berlin", "https://reelay.example.com", "Cafe Crema")
    facts = {**event.payload, "username": "cafecrema", "caption_snippet": post.caption}
    await TelegramNotifier(bot).send(str(TEAM), alerts.render_event(event.kind, facts, ctx))
    team._record()
    card = team.last()
    assert card.startswith(f"📝 Post #{post.id} by editor@example.com via telegram waits")
    await team.presses("Eda", "Approve", on=card)
    await team.presses("Olga", "Approve", on=card)
    await post.refresh_from_db()
    assert post.status is Status.SCHEDULED
    assert fake.sent("editMessageText")[-1]["text"].startswith(f"Approved post #{post.id}")
    print("\n".join(team.lines))
