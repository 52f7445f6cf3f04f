"""A comment alert in Telegram, end to end: a follower comments on the sandbox Instagram, the
engine records the alert, the worker sends it to the linked chat (the fake Bot API), and the
card's Hide and Delete buttons act on Instagram as the person who pressed them."""

from __future__ import annotations

from typing import Any

import pytest
from aiogram import Bot, Dispatcher

from bot.telegram import TelegramNotifier, create_dispatcher
from core.bootstrap import Container
from core.db.models import DomainEvent, Platform, WebhookEvent
from core.domain import alerts
from core.domain.webhooks import parse_payload
from core.services import notifications
from core.services.chatops import ChatOps
from core.services.inbox import record_events
from core.settings import Settings
from core.wiring import Services
from tests.bot.fake_telegram import FakeTelegram
from tests.bot.telegram_updates import EDITOR_TG, GROUP, NOW, pressed
from tests.chatops_world import World, link, make_world

IG_ID = "17841400000000001"
VIEWER_TG = "31"


@pytest.fixture
def settings(settings_factory: Any, sandbox: Any) -> Settings:
    made: Settings = settings_factory(sandbox_url=sandbox.url)
    return made


@pytest.fixture
def dispatcher(services: Services) -> Dispatcher:
    chatops = ChatOps(
        services.container,
        publishing=services.publishing,
        storage=services.storage,
        comments=services.comment_moderation,
    )
    return create_dispatcher(services, chatops=chatops, album_wait_s=0.2)


@pytest.fixture
async def world(container: Container, sandbox: Any) -> World:
    made = await make_world()
    sandbox.state.add_account(IG_ID, "cafecrema")
    made.account.token_encrypted = container.secrets.encrypt(sandbox.state.issue_token(IG_ID))
    made.account.comment_alerts = True
    await made.account.save()
    await link(
        made, made.editor, platform=Platform.TELEGRAM, chat_id=str(GROUP), user_id=str(EDITOR_TG)
    )
    await link(made, made.viewer, platform=Platform.TELEGRAM, chat_id=str(GROUP), user_id=VIEWER_TG)
    return made


async def comment_alert(services: Services, sandbox: Any, bot: Bot, text: str) -> Any:
    """A follower's comment, through the inbox and the engine to a card in the chat; the
    sandbox's comment and the card's buttons by label."""
    media = sandbox.state.add_media(IG_ID, caption="Fresh croissants")
    comment = sandbox.state.add_comment(media.id, from_id="555", username="spam_bot", text=text)
    payload = {
        "object": "instagram",
        "entry": [
            {
                "id": IG_ID,
                "time": 1_741_165_200,
                "changes": [
                    {
                        "field": "comments",
                        "value": {
                            "id": comment.id,
                            "from": {"id": "555", "username": "spam_bot"},
                            "text": text,
                            "media": {"id": media.id, "media_product_type": "FEED"},
                        },
                    }
                ],
            }
        ],
    }
    container = services.container
    await record_events(parse_payload(payload), container.queue, NOW)
    event = await WebhookEvent.get(dedupe_key=f"{IG_ID}:comment:{comment.id}")
    await services.automations.handle_events([event.id])
    alert = await DomainEvent.get(kind=alerts.COMMENT_ALERT)
    services.delivery.notifiers[Platform.TELEGRAM] = TelegramNotifier(bot)
    await notifications.deliver(container, services.delivery, alert.id)
    return comment


def buttons_of(message: dict[str, Any]) -> dict[str, str]:
    rows = message["reply_markup"]["inline_keyboard"]
    return {b["text"]: b.get("callback_data") or b.get("url") for row in rows for b in row}


async def test_hide_from_a_chat_button_hides_the_comment(
    world: World,
    services: Services,
    sandbox: Any,
    fake: FakeTelegram,
    bot: Bot,
    dispatcher: Dispatcher,
) -> None:
    comment = await comment_alert(services, sandbox, bot, "cheap followers at spam.example")
    [card] = fake.sent("sendMessage")
    assert card["text"].startswith("💬 @spam_bot commented on @cafecrema: cheap followers")
    buttons = buttons_of(card)
    assert set(buttons) == {"Hide", "Delete", "Open in the panel"}
    assert buttons["Open in the panel"].endswith(f"/inbox/comments/{comment.media_id}")
    # A viewer's press is refused, and nothing changes on Instagram.
    await dispatcher.feed_raw_update(bot, pressed(buttons["Hide"], user=int(VIEWER_TG)))
    assert "can't do that" in fake.sent("answerCallbackQuery")[-1]["text"]
    assert comment.hidden is False and fake.sent("editMessageText") == []
    # The editor's press hides it, and the card says so and by whom.
    await dispatcher.feed_raw_update(bot, pressed(buttons["Hide"], message_id=77))
    assert sandbox.state.comments[comment.id].hidden is True
    [edit] = fake.sent("editMessageText")
    assert int(edit["message_id"]) == 77
    assert "🙈 Hidden by editor@example.com" in edit["text"]
    assert set(buttons_of(edit)) == {"Show again", "Delete", "Open in the panel"}


async def test_delete_from_a_chat_button_asks_first_then_deletes(
    world: World,
    services: Services,
    sandbox: Any,
    fake: FakeTelegram,
    bot: Bot,
    dispatcher: Dispatcher,
) -> None:
    comment = await comment_alert(services, sandbox, bot, "visit rival-shop.example")
    buttons = buttons_of(fake.sent("sendMessage")[0])
    await dispatcher.feed_raw_update(bot, pressed(buttons["Delete"], message_id=78))
    [confirm] = fake.sent("editMessageText")
    assert "Delete this comment for good?" in confirm["text"]
    assert comment.id in sandbox.state.comments  # asked, not yet deleted
    sure = buttons_of(confirm)
    await dispatcher.feed_raw_update(bot, pressed(sure["Keep it"], message_id=78))
    assert set(buttons_of(fake.sent("editMessageText")[-1])) >= {"Hide", "Delete"}
    await dispatcher.feed_raw_update(bot, pressed(sure["Yes, delete"], message_id=78))
    assert comment.id not in sandbox.state.comments
    done = fake.sent("editMessageText")[-1]
    assert "🗑 Deleted by editor@example.com" in done["text"]
    assert set(buttons_of(done)) == {"Open in the panel"}
