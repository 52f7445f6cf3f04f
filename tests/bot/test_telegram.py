"""The real aiogram dispatcher against a local fake Bot API server."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from typing import Any

import pytest
from aiogram import Bot, Dispatcher
from pydantic import AnyHttpUrl

from bot import telegram
from bot.telegram import (
    BOT_COMMANDS,
    TelegramNotifier,
    run_telegram,
)
from core.bootstrap import Container
from core.db.models import (
    ChatIdentity,
    DraftStatus,
    MediaAsset,
    Membership,
    Platform,
    Post,
    PostMedia,
)
from core.domain.chat import Action, ActionVerb, Button, Reply
from core.domain.posts import Kind, Status
from core.errors import SettingsError
from core.ports.notifier import ChatGone, ChatRateLimited
from core.services import chat_links
from core.services.chat_members import HOW_TO_LINK
from core.wiring import assemble_services
from tests.actors import acting
from tests.bot.fake_telegram import (
    FakeTelegram,
    _free_port,
    utf16_length,
)
from tests.bot.telegram_updates import (
    EDITOR_TG,
    GROUP,
    NOW,
    STRANGER_TG,
    RecordingSender,
    message,
    photo_message,
    pressed,
)
from tests.chatops_world import FixedClock, World, link, make_draft, make_world
from tests.media_samples import image_bytes


@pytest.fixture
async def world(container: Container) -> World:
    container.clock = FixedClock(NOW)
    made = await make_world()
    await link(
        made, made.editor, platform=Platform.TELEGRAM, chat_id=str(GROUP), user_id=str(EDITOR_TG)
    )
    return made


async def test_schedule_with_a_photo_creates_a_scheduled_post_with_that_media(
    world: World, fake: FakeTelegram, bot: Bot, dispatcher: Dispatcher
) -> None:
    jpeg = image_bytes(1080, 1080)
    fake.add_file("big-photo", jpeg)
    await dispatcher.feed_raw_update(
        bot, photo_message("/schedule tomorrow 9am Croissants", "big-photo")
    )
    post = await Post.get(workspace=world.workspace)
    assert post.kind is Kind.IMAGE and post.status is Status.SCHEDULED
    assert post.caption == "Croissants" and post.source == "chat"
    item = await PostMedia.get(post=post).prefetch_related("asset")
    assert item.asset.checksum == hashlib.sha256(jpeg).hexdigest()
    # the largest size was downloaded, not a thumbnail
    assert [p["file_id"] for p in fake.sent("getFile")] == ["big-photo"]
    [reply] = fake.sent("sendMessage")
    assert int(reply["chat_id"]) == GROUP
    assert "Thu 6 Mar 2025, 09:00 Europe/Berlin (UTC+01:00)" in reply["text"]
    buttons = reply["reply_markup"]["inline_keyboard"][0]
    assert [b["callback_data"] for b in buttons] == [f"postnow:{post.id}", f"cancel:{post.id}"]


async def test_an_album_becomes_one_carousel(
    world: World, fake: FakeTelegram, bot: Bot, dispatcher: Dispatcher
) -> None:
    for i in range(3):
        fake.add_file(f"p{i}", image_bytes(1080, 1080 + i))
    updates = [
        photo_message(
            "/schedule fri 18:00 Weekend menu" if i == 0 else "", f"p{i}", media_group_id="g1"
        )
        for i in range(3)
    ]
    await asyncio.gather(*(dispatcher.feed_raw_update(bot, u) for u in updates))
    post = await Post.get(workspace=world.workspace)
    assert post.kind is Kind.CAROUSEL
    assert await PostMedia.filter(post=post).count() == 3
    assert len(fake.sent("sendMessage")) == 1


async def test_a_document_is_downloaded_too(
    world: World, fake: FakeTelegram, bot: Bot, dispatcher: Dispatcher
) -> None:
    fake.add_file("doc1", image_bytes(1080, 1350, "PNG"))
    document = {
        "file_id": "doc1",
        "file_unique_id": "d1",
        "file_name": "menu.png",
        "mime_type": "image/png",
    }
    update = message(
        caption="/schedule in 2h Menu",
        caption_entities=[{"type": "bot_command", "offset": 0, "length": 9}],
        document=document,
    )
    await dispatcher.feed_raw_update(bot, update)
    post = await Post.get(workspace=world.workspace)
    asset = await MediaAsset.get(uses__post=post)
    assert asset.mime == "image/jpeg" and asset.filename == "menu.png"


async def test_unlinked_user_is_refused_and_nothing_is_stored(
    world: World, fake: FakeTelegram, bot: Bot, dispatcher: Dispatcher
) -> None:
    fake.add_file("x", image_bytes())
    await dispatcher.feed_raw_update(
        bot,
        photo_message(
            "/schedule tomorrow 9am hi",
            "x",
            **{"from": {"id": STRANGER_TG, "is_bot": False, "first_name": "S"}},
        ),
    )
    assert not await Post.exists()
    assert fake.sent("getFile") == []
    [reply] = fake.sent("sendMessage")
    assert reply["text"].startswith("S, I don't know you yet")
    [[button]] = reply["reply_markup"]["inline_keyboard"]
    assert button["url"] == "https://t.me/ReelayBot?start=link"


async def test_link_command_links_the_group_not_the_person(
    world: World, fake: FakeTelegram, bot: Bot, dispatcher: Dispatcher
) -> None:
    admin = await Membership.get(user=world.admin)
    code = await chat_links.create_code(await acting(admin), NOW)
    await dispatcher.feed_raw_update(
        bot, message(f"/link {code.code}", user=STRANGER_TG, chat={"id": -1007, "type": "group"})
    )
    [reply] = fake.sent("sendMessage")
    assert reply["text"].startswith("Linked to Cafe Crema")
    [[button]] = reply["reply_markup"]["inline_keyboard"]
    assert button == {"text": "Link privately", "url": "https://t.me/ReelayBot?start=link"}
    assert not await ChatIdentity.exists(platform_user_id=str(STRANGER_TG))


async def test_approve_button_sends_the_draft_and_edits_the_message(
    world: World, fake: FakeTelegram, bot: Bot, dispatcher: Dispatcher, sender: RecordingSender
) -> None:
    draft = await make_draft(world, now=NOW)
    await dispatcher.feed_raw_update(bot, pressed(f"approve:{draft.id}", message_id=77))
    assert [s.text for s in sender.sent] == [draft.proposed_text]
    [edit] = fake.sent("editMessageText")
    assert int(edit["message_id"]) == 77 and edit["text"].startswith(
        "✅ Approved by editor@example.com"
    )
    assert "reply_markup" not in edit or not edit["reply_markup"]
    assert len(fake.sent("answerCallbackQuery")) == 1
    # a second tap (same or other button) is told it was decided
    await dispatcher.feed_raw_update(bot, pressed(f"reject:{draft.id}", message_id=77))
    second = fake.sent("answerCallbackQuery")[-1]
    assert "Already approved" in second["text"] and second["show_alert"] in (True, "true")
    assert len(sender.sent) == 1


async def test_edit_takes_only_the_pressers_reply_and_shows_it_back_before_sending(
    world: World, fake: FakeTelegram, bot: Bot, dispatcher: Dispatcher, sender: RecordingSender
) -> None:
    draft = await make_draft(world, now=NOW)
    await dispatcher.feed_raw_update(bot, pressed(f"edit:{draft.id}"))
    [prompt] = fake.sent("sendMessage")
    # the prompt names the presser, so the selective reply box reaches them in privacy mode
    assert prompt["text"].startswith("Eda: reply to this message with the new text")
    assert prompt["reply_markup"]["force_reply"] in (True, "true")
    assert prompt["reply_markup"]["selective"] in (True, "true")
    [mention] = prompt["entities"]
    assert mention["type"] == "text_mention" and mention["user"]["id"] == EDITOR_TG
    prompt_id = fake.message_id(prompt["text"])
    # a teammate's aside, and the presser's own message that is no reply, are ignored
    await dispatcher.feed_raw_update(bot, message("Coffee anyone?", user=STRANGER_TG))
    await dispatcher.feed_raw_update(bot, message("brb"))
    assert len(fake.sent("sendMessage")) == 1 and sender.sent == []
    replied = {"message_id": prompt_id, "date": 1, "chat": {"id": GROUP, "type": "supergroup"}}
    await dispatcher.feed_raw_update(
        bot, message("Oat milk is free, see you!", reply_to_message=replied)
    )
    preview = fake.sent("sendMessage")[-1]
    assert preview["text"].endswith("\nOat milk is free, see you!") and sender.sent == []
    [[send, cancel]] = preview["reply_markup"]["inline_keyboard"]
    assert (send["text"], cancel["text"]) == ("Send", "Cancel")
    await dispatcher.feed_raw_update(bot, pressed(send["callback_data"], message_id=88))
    assert [s.text for s in sender.sent] == ["Oat milk is free, see you!"]
    await draft.refresh_from_db()
    assert draft.status is DraftStatus.EDITED
    assert "Edited and sent" in fake.sent("editMessageText")[-1]["text"]


async def test_viewer_button_press_is_refused_with_an_alert(
    world: World, fake: FakeTelegram, bot: Bot, dispatcher: Dispatcher, sender: RecordingSender
) -> None:
    await link(world, world.viewer, platform=Platform.TELEGRAM, chat_id=str(GROUP), user_id="31")
    draft = await make_draft(world, now=NOW)
    await dispatcher.feed_raw_update(bot, pressed(f"approve:{draft.id}", user=31))
    [answer] = fake.sent("answerCallbackQuery")
    assert "can't do that" in answer["text"]
    assert sender.sent == [] and fake.sent("editMessageText") == []


async def test_startup_registers_the_commands(
    world: World, fake: FakeTelegram, bot: Bot, dispatcher: Dispatcher
) -> None:
    await dispatcher.emit_startup(bot=bot)
    [registered] = fake.sent("setMyCommands")
    assert [c["command"] for c in registered["commands"]] == [c.command for c in BOT_COMMANDS]


async def test_notifier_translates_errors(fake: FakeTelegram, bot: Bot) -> None:
    notifier = TelegramNotifier(bot)
    reply = Reply("Hi", ((Button("Approve", Action(ActionVerb.APPROVE, 3)),),))
    message_id = await notifier.send("-1001", reply)
    assert (
        fake.sent("sendMessage")[0]["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
        == "approve:3"
    )
    await notifier.edit("-1001", message_id, Reply("Done"))
    fake.retry_after[-1001] = 7
    with pytest.raises(ChatRateLimited) as limited:
        await notifier.send("-1001", reply)
    assert limited.value.retry_after_s == 7
    fake.gone_chats.add(-1002)
    with pytest.raises(ChatGone):
        await notifier.send("-1002", reply)


async def test_a_link_telegram_would_refuse_as_a_button_is_written_in_the_text(
    fake: FakeTelegram, bot: Bot
) -> None:
    notifier = TelegramNotifier(bot)
    failed = Reply(
        "❌ Post #5 failed",
        ((Button("Open in the panel", url="http://localhost:8000/posts/5"),),),
    )
    await notifier.send("-1001", failed)
    published = Reply(
        "✅ Published", ((Button("Open on Instagram", url="https://www.instagram.com/p/x"),),)
    )
    await notifier.send("-1001", published)
    assert fake.refused == []
    first, second = fake.sent("sendMessage")
    assert first["text"] == "❌ Post #5 failed\nOpen in the panel: http://localhost:8000/posts/5"
    assert "reply_markup" not in first
    assert second["reply_markup"]["inline_keyboard"] == [
        [{"text": "Open on Instagram", "url": "https://www.instagram.com/p/x"}]
    ]


async def test_a_link_button_telegram_refuses_anyway_is_resent_as_text(
    fake: FakeTelegram, bot: Bot
) -> None:
    fake.refused_url_hosts.add("127.0.0.1")
    notifier = TelegramNotifier(bot)
    failed = Reply(
        "❌ Post #5 failed",
        (
            (Button("Open in the panel", url="http://127.0.0.1:8000/posts/5"),),
            (Button("Retry", Action(ActionVerb.APPROVE, 5)),),
        ),
    )
    message_id = await notifier.send("-1001", failed)
    await notifier.edit("-1001", message_id, Reply("❌ Post #5 failed again", failed.buttons))
    [sent] = fake.sent("sendMessage")
    assert sent["text"] == "❌ Post #5 failed\nOpen in the panel: http://127.0.0.1:8000/posts/5"
    assert sent["reply_markup"]["inline_keyboard"] == [
        [{"text": "Retry", "callback_data": "approve:5"}]
    ]
    [edited] = fake.sent("editMessageText")
    assert edited["text"].endswith("again\nOpen in the panel: http://127.0.0.1:8000/posts/5")


async def test_a_long_text_is_cut_to_what_telegram_takes(fake: FakeTelegram, bot: Bot) -> None:
    notifier = TelegramNotifier(bot)
    await notifier.send("-1001", Reply("🎯 lead\n" * 1000))
    assert fake.refused == []
    [sent] = fake.sent("sendMessage")
    assert utf16_length(sent["text"]) <= 4096 and sent["text"].endswith("…")


async def test_pressing_the_same_page_twice_is_not_an_error(
    world: World, fake: FakeTelegram, bot: Bot, dispatcher: Dispatcher
) -> None:
    for _ in range(2):
        await dispatcher.feed_raw_update(bot, pressed("queue:1", message_id=91))
    # Telegram refuses the second edit as changing nothing; the press is still answered.
    [(method, _, why)] = fake.refused
    assert method == "editMessageText" and "not modified" in why
    answers = fake.sent("answerCallbackQuery")
    assert len(answers) == 2 and not any(a.get("show_alert") for a in answers)
    assert fake.messages[(GROUP, 91)][0].startswith("Nothing is scheduled")


async def test_a_button_whose_answer_cannot_be_shown_gets_one_alert(
    world: World, fake: FakeTelegram, bot: Bot, dispatcher: Dispatcher
) -> None:
    fake.gone_chats.add(GROUP)
    await dispatcher.feed_raw_update(bot, pressed("queue:1", message_id=92))
    [alert] = fake.sent("answerCallbackQuery")
    assert "Something went wrong" in alert["text"] and alert["show_alert"] in (True, "true")
    assert [method for method, _, _ in fake.refused] == ["editMessageText"]


def _against(container: Container, fake: FakeTelegram) -> None:
    container.settings = container.settings.model_copy(
        update={"telegram_api_server": AnyHttpUrl(fake.base_url)}
    )


async def test_the_bot_waits_out_a_bot_api_outage_at_startup(
    container: Container,
    fake: FakeTelegram,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _against(container, fake)
    monkeypatch.setattr(telegram, "STARTUP_RETRY_S", (0.05,))
    fake.outage = 2  # Telegram answers 502 Bad Gateway twice, then recovers
    running = asyncio.create_task(run_telegram(assemble_services(container), "123456:TEST-TOKEN"))
    try:
        # Polling: the first long poll is asked (its answer would take its whole timeout).
        for _ in range(200):
            if any(name == "getUpdates" for name, _ in fake.calls) or running.done():
                break
            await asyncio.sleep(0.05)
        assert not running.done(), running.exception()
        asking = message("/help", user=STRANGER_TG)["message"]
        fake.push_update("message", asking)
        for _ in range(100):
            if fake.sent("sendMessage"):
                break
            await asyncio.sleep(0.05)
        [reply] = fake.sent("sendMessage")
        assert reply["text"].endswith(HOW_TO_LINK)
    finally:
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running
    assert "trying again" in caplog.text and "TEST-TOKEN" not in caplog.text


async def test_a_token_telegram_refuses_is_a_settings_error(
    container: Container, fake: FakeTelegram
) -> None:
    _against(container, fake)
    fake.token = "123456:THE-REAL-ONE"
    with pytest.raises(SettingsError, match="TELEGRAM_TOKEN") as refused:
        await asyncio.wait_for(run_telegram(assemble_services(container), "123456:A-TYPO"), 10)
    assert "A-TYPO" not in str(refused.value)


async def test_a_webhook_url_telegram_refuses_is_a_settings_error(
    container: Container, fake: FakeTelegram
) -> None:
    _against(container, fake)
    container.settings = container.settings.model_copy(
        update={
            "telegram_webhook_url": AnyHttpUrl("http://bot.example.com"),
            "telegram_webhook_port": _free_port(),
        }
    )
    with pytest.raises(SettingsError, match=r"TELEGRAM_WEBHOOK_URL.*HTTPS"):
        await asyncio.wait_for(run_telegram(assemble_services(container), "123456:TEST-TOKEN"), 10)


# ---------------------------------------------------------------- slow work, long captions


def _names(fake: FakeTelegram) -> list[str]:
    return [name for name, _ in fake.answered]


async def test_caption_shows_typing_before_the_answer(
    world: World, fake: FakeTelegram, bot: Bot, dispatcher: Dispatcher
) -> None:
    await dispatcher.feed_raw_update(bot, message("/caption witty fresh croissants"))
    (typing,) = fake.sent("sendChatAction")[:1]
    assert typing["action"] == "typing" and int(typing["chat_id"]) == GROUP
    names = _names(fake)
    assert names.index("sendChatAction") < names.index("sendMessage")


async def test_a_long_caption_comes_from_the_message_the_schedule_replies_to(
    world: World, fake: FakeTelegram, bot: Bot, dispatcher: Dispatcher
) -> None:
    long_caption = "Our spring menu is here. " * 60  # 1500 characters: more than 1024
    original = message(long_caption.strip())["message"]
    fake.add_file("menu-photo", image_bytes(1080, 1080))
    update: dict[str, Any] = photo_message(
        "/schedule tomorrow 9am", "menu-photo", reply_to_message=original
    )
    await dispatcher.feed_raw_update(bot, update)
    post = await Post.get(workspace=world.workspace)
    assert post.caption == long_caption.strip()
    assert "Scheduled" in fake.sent("sendMessage")[-1]["text"]
    assert "typing" in [p["action"] for p in fake.sent("sendChatAction")]
