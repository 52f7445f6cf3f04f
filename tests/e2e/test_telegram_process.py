"""`reelay bot` as a team meets it: a real process talking HTTP to a Bot API server.

The fake Bot API server (tests/bot/fake_telegram.py) serves updates through long-polling
getUpdates, or expects a webhook, and refuses what Telegram refuses, so every request the
process makes is checked against the Bot API's rules as well as against the journey.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from core.db.models import DraftStatus, Membership, Post, ReplyDraft
from core.domain.posts import Status
from core.services import chat_links
from core.services.chat_members import HOW_TO_LINK, NOT_LINKED_HERE
from core.services.chatops import HELP_TEXT
from tests.actors import acting
from tests.bot.fake_telegram import BOT_ID, FakeTelegram, running_fake_telegram
from tests.chatops_world import World, make_draft, make_world
from tests.media_samples import image_bytes

pytestmark = pytest.mark.timeout(90)

TOKEN = "123456:TEST-TOKEN-never-logged"
GROUP = -1001234
OTHER_GROUP = -1009876
TEAMMATE = 5151
WAIT_S = 20.0
STARTUP_S = 60.0  # imports, migrations and an embedded Redis, on a busy machine


@dataclass
class BotProcess:
    proc: asyncio.subprocess.Process
    log: Path

    def output(self) -> str:
        return self.log.read_text() if self.log.exists() else ""


@pytest.fixture
async def fake() -> AsyncIterator[FakeTelegram]:
    async with running_fake_telegram() as server:
        yield server


@pytest.fixture
async def world(sqlite_db: str) -> World:
    return await make_world()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _start(tmp_path: Path, sqlite_url: str, **extra: str) -> BotProcess:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("TELEGRAM_", "DISCORD_", "REDIS_URL", "DATABASE_URL"))
    }
    env.update(
        DATABASE_URL=sqlite_url,
        VAR_DIR=str(tmp_path / "var"),
        TELEGRAM_TOKEN=TOKEN,
        LOG_LEVEL="INFO",
        **extra,
    )
    log = tmp_path / "bot.log"
    with log.open("w") as sink:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "reelay", "bot", cwd=tmp_path, env=env, stdout=sink, stderr=sink
        )
    return BotProcess(proc, log)


async def _stop(bot: BotProcess) -> str:
    if bot.proc.returncode is None:
        bot.proc.send_signal(signal.SIGINT)
        try:
            await asyncio.wait_for(bot.proc.wait(), 20)
        except TimeoutError:
            bot.proc.kill()
            await bot.proc.wait()
    return bot.output()


async def _until(
    bot: BotProcess, what: str, check: Callable[[], Any], wait_s: float = WAIT_S
) -> Any:
    """Wait for ``check()`` to be truthy; fail with the process's log if it never is."""
    deadline = asyncio.get_running_loop().time() + wait_s
    while asyncio.get_running_loop().time() < deadline:
        found = check()
        if found:
            return found
        assert bot.proc.returncode is None, f"reelay bot exited:\n{bot.output()}"
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}\n{bot.output()}")


_message_ids = iter(range(1, 10**6))


def _chat(chat_id: int) -> dict[str, Any]:
    if chat_id > 0:  # a private chat with the bot has the person's id
        return {"id": chat_id, "type": "private", "first_name": "Eda"}
    return {"id": chat_id, "type": "supergroup", "title": "Cafe <team> & friends"}


def _user(user_id: int) -> dict[str, Any]:
    return {"id": user_id, "is_bot": False, "first_name": "Eda", "username": f"eda{user_id}"}


def message(text: str, *, chat: int = GROUP, user: int = TEAMMATE, **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "message_id": next(_message_ids),
        "date": int(datetime.now(UTC).timestamp()),
        "chat": _chat(chat),
        "from": _user(user),
        **fields,
    }
    key, entities = ("caption", "caption_entities") if "photo" in fields else ("text", "entities")
    body[key] = text
    if text.startswith("/"):
        body[entities] = [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}]
    return body


def button_press(data: str, on_message: dict[str, Any], user: int = TEAMMATE) -> dict[str, Any]:
    return {
        "id": f"cbq-{next(_message_ids)}",
        "from": _user(user),
        "chat_instance": "-42",
        "data": data,
        "message": {
            "message_id": on_message["message_id"],
            "date": on_message["date"],
            "chat": _chat(GROUP),
            "from": {"id": BOT_ID, "is_bot": True, "first_name": "Reelay"},
            "text": on_message["text"],
        },
    }


def _replies_to(fake: FakeTelegram, sent: dict[str, Any]) -> Callable[[], dict[str, Any] | None]:
    """The sendMessage answering the message ``sent`` (a reply to it, in its chat)."""

    def find() -> dict[str, Any] | None:
        for params in fake.sent("sendMessage"):
            replied = params.get("reply_parameters") or {}
            replied_id = replied.get("message_id") or params.get("reply_to_message_id")
            if int(params["chat_id"]) == sent["chat"]["id"] and int(replied_id or 0) == int(
                sent["message_id"]
            ):
                return params
        return None

    return find


def _inline_data(params: dict[str, Any]) -> list[list[str]]:
    rows = params["reply_markup"]["inline_keyboard"]
    return [[button["callback_data"] for button in row] for row in rows]


async def test_a_team_links_its_group_and_runs_instagram_from_it(
    tmp_path: Path, sqlite_db: str, world: World, fake: FakeTelegram
) -> None:
    fake.add_file("croissant-photo", image_bytes(1080, 1080))
    bot = await _start(tmp_path, sqlite_db, TELEGRAM_API_SERVER=fake.base_url)
    try:
        await _until(bot, "getMe", lambda: fake.sent("getMe"), STARTUP_S)
        # The first long poll as it arrives (it is answered once an update comes).
        [poll, *_] = await _until(
            bot,
            "the first long poll",
            lambda: [params for method, params in fake.calls if method == "getUpdates"],
        )
        assert fake.sent("deleteWebhook"), "polling must start by removing any webhook"
        [commands] = await _until(bot, "setMyCommands", lambda: fake.sent("setMyCommands"))
        assert {"schedule", "queue", "help", "link"} <= {c["command"] for c in commands["commands"]}
        assert int(poll["timeout"]) > 0, "getUpdates must long-poll"

        # A chat nobody linked: a clear refusal that says how to link.
        stranger = message("/queue", chat=OTHER_GROUP, user=8080)
        fake.push_update("message", stranger)
        refusal = await _until(bot, "the refusal", _replies_to(fake, stranger))
        assert refusal["text"] == HOW_TO_LINK
        assert "parse_mode" not in refusal  # plain text: nothing in it can break parsing

        # An admin makes a code in the panel; a teammate sends it in the group.
        admin = await Membership.get(user=world.admin)
        code = await chat_links.create_code(await acting(admin), datetime.now(UTC))
        linking = message(f"/link {code.code}")
        fake.push_update("message", linking)
        linked = await _until(bot, "the link answer", _replies_to(fake, linking))
        assert linked["text"].startswith("Linked to Cafe Crema")
        assert linked["reply_markup"]["inline_keyboard"] == [
            [{"text": "Link privately", "url": "https://t.me/ReelayBot?start=link"}]
        ]

        # Linking the group says nothing of who writes: the teammate links themselves once,
        # privately, with the personal code (deep link) from their account page.
        personal = await chat_links.create_personal_code(await acting(admin), datetime.now(UTC))
        starting = message(f"/start {personal.code.replace('-', '')}", chat=TEAMMATE)
        fake.push_update("message", starting)
        started = await _until(bot, "the personal link", _replies_to(fake, starting))
        assert started["text"].startswith("Hello admin@example.com: you are linked")

        # The same teammate in a group nobody linked: refused, nothing of the team shown there.
        elsewhere = message("/leads", chat=OTHER_GROUP)
        fake.push_update("message", elsewhere)
        not_here = await _until(bot, "the unlinked group's refusal", _replies_to(fake, elsewhere))
        assert not_here["text"] == NOT_LINKED_HERE

        helping = message("/help@ReelayBot")
        fake.push_update("message", helping)
        help_reply = await _until(bot, "/help", _replies_to(fake, helping))
        assert help_reply["text"] == HELP_TEXT

        empty = message("/queue")
        fake.push_update("message", empty)
        empty_reply = await _until(bot, "/queue", _replies_to(fake, empty))
        assert empty_reply["text"].startswith("Nothing is scheduled")

        # A photo with /schedule as its caption: user text with HTML-looking characters.
        photo = [
            {"file_id": "thumb", "file_unique_id": "t", "width": 90, "height": 90},
            {"file_id": "croissant-photo", "file_unique_id": "c", "width": 1080, "height": 1080},
        ]
        caption = "Croissants <b>fresh</b> & warm"
        scheduling = message(f"/schedule tomorrow 9am {caption}", photo=photo)
        fake.push_update("message", scheduling)
        scheduled = await _until(bot, "/schedule", _replies_to(fake, scheduling))
        post = await Post.get(workspace=world.workspace)
        assert post.status is Status.SCHEDULED and post.caption == caption
        assert post.source == "chat"
        assert scheduled["text"].startswith(f"Scheduled #{post.id} (image, 1 item) on @cafecrema")
        assert _inline_data(scheduled) == [[f"postnow:{post.id}", f"cancel:{post.id}"]]
        assert [p["file_id"] for p in fake.sent("getFile")] == ["croissant-photo"]

        listing = message("/queue")
        fake.push_update("message", listing)
        queue = await _until(bot, "/queue with the post", _replies_to(fake, listing))
        assert f"#{post.id}" in queue["text"] and caption in queue["text"]

        # An AI reply waits for approval; the Approve button under its alert is pressed.
        draft = await make_draft(world, now=datetime.now(UTC))
        alert = fake._message({"chat_id": GROUP, "text": f"AI reply #{draft.id} needs approval"})
        press = button_press(f"approve:{draft.id}", alert)
        fake.push_update("callback_query", press)
        answered = await _until(
            bot,
            "answerCallbackQuery",
            lambda: [
                a for a in fake.sent("answerCallbackQuery") if a["callback_query_id"] == press["id"]
            ],
        )
        assert len(answered) == 1
        edited = await _until(bot, "the approval edit", lambda: fake.sent("editMessageText"))
        assert int(edited[0]["message_id"]) == alert["message_id"]
        assert edited[0]["text"].startswith("✅ Approved by admin@example.com")
        await draft.refresh_from_db()
        assert draft.status is DraftStatus.APPROVED

        # A button that is not Reelay's gets an alert, not silence.
        junk = button_press("something:else", alert)
        fake.push_update("callback_query", junk)
        [refused] = await _until(
            bot,
            "the refusal alert",
            lambda: [
                a for a in fake.sent("answerCallbackQuery") if a["callback_query_id"] == junk["id"]
            ],
        )
        assert "not one of Reelay's" in refused["text"]

        # Every update was confirmed through getUpdates' offset.
        await _until(bot, "every update confirmed", lambda: not fake.unconfirmed or None)
        assert await ReplyDraft.filter(status=DraftStatus.PENDING).count() == 0
    finally:
        output = await _stop(bot)
    assert fake.refused == [], f"Telegram would have refused: {fake.refused}"
    assert bot.proc.returncode == 0, output
    assert "Traceback" not in output and TOKEN not in output


async def test_webhook_mode_sets_a_secret_and_refuses_calls_without_it(
    tmp_path: Path, sqlite_db: str, world: World, fake: FakeTelegram
) -> None:
    port = _free_port()
    bot = await _start(
        tmp_path,
        sqlite_db,
        TELEGRAM_API_SERVER=fake.base_url,
        TELEGRAM_WEBHOOK_URL="https://bot.example.com/",
        TELEGRAM_WEBHOOK_PORT=str(port),
    )
    try:
        await _until(bot, "setWebhook", lambda: fake.sent("setWebhook"), STARTUP_S)
        [hook] = fake.sent("setWebhook")
        assert hook["url"] == "https://bot.example.com/telegram/webhook"
        secret = hook["secret_token"]
        assert len(secret) >= 32
        url = f"http://127.0.0.1:{port}/telegram/webhook"
        forged = message("/help", chat=OTHER_GROUP, user=8080)
        genuine = message("/help", chat=OTHER_GROUP, user=8080)
        async with aiohttp.ClientSession() as http:
            for headers in ({}, {"X-Telegram-Bot-Api-Secret-Token": "guessed"}):
                async with http.post(
                    url, json={"update_id": 1, "message": forged}, headers=headers
                ) as response:
                    assert response.status == 401
            async with http.post(
                url,
                json={"update_id": 2, "message": genuine},
                headers={"X-Telegram-Bot-Api-Secret-Token": secret},
            ) as response:
                assert response.status == 200
        reply = await _until(bot, "the answer to the webhook update", _replies_to(fake, genuine))
        assert reply["text"] == f"{HELP_TEXT}\n\n{HOW_TO_LINK}"
        assert _replies_to(fake, forged)() is None
        assert fake.sent("getUpdates") == []
    finally:
        output = await _stop(bot)
    assert fake.refused == [], f"Telegram would have refused: {fake.refused}"
    assert bot.proc.returncode == 0, output
    assert "Traceback" not in output and TOKEN not in output and secret not in output


async def test_a_token_telegram_refuses_stops_the_bot_with_a_clear_error(
    tmp_path: Path, sqlite_db: str, fake: FakeTelegram
) -> None:
    fake.token = "123456:THE-REAL-ONE"
    bot = await _start(tmp_path, sqlite_db, TELEGRAM_API_SERVER=fake.base_url)
    try:
        await asyncio.wait_for(bot.proc.wait(), STARTUP_S)
    except TimeoutError:
        pytest.fail(f"reelay bot did not stop on a refused token:\n{bot.output()}")
    finally:
        output = await _stop(bot)
    assert bot.proc.returncode == 2, output
    assert "reelay: Telegram" in output and "refused TELEGRAM_TOKEN" in output
    assert "Traceback" not in output and TOKEN not in output
