"""Telegram updates as the Bot API sends them, and the fixtures of the Telegram tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from aiogram import Bot, Dispatcher

from bot.telegram import create_bot, create_dispatcher
from core.bootstrap import Container
from core.services.chatops import ChatOps
from core.services.reply_sending import OutgoingReply
from core.services.smart_replies import SmartReplies
from core.wiring import assemble_services
from tests.bot.fake_telegram import FakeTelegram, running_fake_telegram

NOW = datetime(2025, 3, 5, 9, 0, tzinfo=UTC)
GROUP = -100555
EDITOR_TG = 4242
STRANGER_TG = 9999


class RecordingSender:
    def __init__(self) -> None:
        self.sent: list[OutgoingReply] = []

    async def send_reply(self, reply: OutgoingReply) -> None:
        self.sent.append(reply)


@pytest.fixture
async def fake() -> AsyncIterator[FakeTelegram]:
    async with running_fake_telegram() as server:
        yield server


@pytest.fixture
def sender() -> RecordingSender:
    return RecordingSender()


@pytest.fixture
async def bot(fake: FakeTelegram) -> AsyncIterator[Bot]:
    made = create_bot("123456:TEST-TOKEN", fake.base_url)
    yield made
    await made.session.close()


@pytest.fixture
def dispatcher(container: Container, sender: RecordingSender) -> Dispatcher:
    drafts = SmartReplies(ai=None, sender=sender, clock=container.clock)
    services = assemble_services(container)
    chatops = ChatOps(
        container, publishing=services.publishing, storage=services.storage, smart_replies=drafts
    )
    return create_dispatcher(services, chatops=chatops, album_wait_s=0.2)


_ids = iter(range(1, 10**6))


def message(text: str | None = None, *, user: int = EDITOR_TG, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "message_id": next(_ids),
        "date": 1_741_165_200,
        "chat": {"id": GROUP, "type": "supergroup", "title": "Cafe team"},
        "from": {"id": user, "is_bot": False, "first_name": "Eda", "username": f"u{user}"},
    }
    if text is not None:
        body["text"] = text
        if text.startswith("/"):
            length = len(text.split()[0])
            body["entities"] = [{"type": "bot_command", "offset": 0, "length": length}]
    body.update(extra)
    return {"update_id": next(_ids), "message": body}


def photo_message(caption: str, file_id: str, **extra: Any) -> dict[str, Any]:
    sizes = [
        {"file_id": f"{file_id}-small", "file_unique_id": "s", "width": 90, "height": 90},
        {"file_id": file_id, "file_unique_id": file_id, "width": 1080, "height": 1080},
        {"file_id": f"{file_id}-mid", "file_unique_id": "m", "width": 320, "height": 320},
    ]
    length = len(caption.split()[0]) if caption else 0
    fields: dict[str, Any] = {"photo": sizes, **extra}
    if caption:
        fields["caption"] = caption
        fields["caption_entities"] = [{"type": "bot_command", "offset": 0, "length": length}]
    return message(**fields)


def pressed(data: str, *, user: int = EDITOR_TG, message_id: int = 77) -> dict[str, Any]:
    return {
        "update_id": next(_ids),
        "callback_query": {
            "id": f"cb{next(_ids)}",
            "from": {"id": user, "is_bot": False, "first_name": "Eda"},
            "chat_instance": "ci",
            "data": data,
            "message": {
                "message_id": message_id,
                "date": 1_741_165_200,
                "chat": {"id": GROUP, "type": "supergroup", "title": "Cafe team"},
                "from": {"id": 777000, "is_bot": True, "first_name": "Reelay"},
                "text": "approval",
            },
        },
    }
