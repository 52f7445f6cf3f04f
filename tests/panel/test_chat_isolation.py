"""Chat commands and buttons in A's linked chat never reach B's objects or take over B's chat."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest

from core.db.models import ChatIdentity, ChatLink, Platform
from core.services import chat_links
from core.services.chatops import ChatOps, ChatUser, IncomingFile
from core.services.reply_sending import OutgoingReply
from core.services.smart_replies import SmartReplies
from core.wiring import assemble_services
from tests.actors import acting
from tests.panel.isolation_world import SECRET, Two, fill_ids, jpeg, snapshot, two_workspaces


@pytest.fixture
async def two(sqlite_db: str, container: Any) -> Two:
    return await two_workspaces(container)


@dataclass(frozen=True)
class ChatAttempt:
    """A command typed (or a button pressed) in A's linked chat by A's owner."""

    name: str
    text: str = ""
    press: str = ""  # callback data of a button, instead of ``text``
    with_file: bool = False


CHAT_ATTEMPTS: list[ChatAttempt] = [
    ChatAttempt("post B's post now", "/post {b.post} now"),
    ChatAttempt("cancel B's post", "/cancel {b.post}"),
    ChatAttempt("reschedule B's post", "/reschedule {b.post} 2030-06-01 10:00"),
    ChatAttempt("approve B's draft", "/approve {b.draft}"),
    ChatAttempt("reject B's draft", "/reject {b.draft}"),
    ChatAttempt("edit B's draft", "/edit {b.draft} Hello there"),
    ChatAttempt("start editing B's draft", "/edit {b.draft}"),
    ChatAttempt("schedule on B's account", "/schedule @bravo_shop tomorrow 9am Hi", with_file=True),
    ChatAttempt("button: approve B's draft", press="approve:{b.draft}"),
    ChatAttempt("button: reject B's draft", press="reject:{b.draft}"),
    ChatAttempt("button: edit B's draft", press="edit:{b.draft}"),
    ChatAttempt("button: post B's post now", press="postnow:{b.post}"),
    ChatAttempt("button: cancel B's post", press="cancel:{b.post}"),
    ChatAttempt("queue", "/queue"),
    ChatAttempt("leads", "/leads 50"),
    ChatAttempt("stats", "/stats 30d"),
    ChatAttempt("approvals", "/approvals"),
]


class _Sender:
    def __init__(self) -> None:
        self.sent: list[OutgoingReply] = []

    async def send_reply(self, reply: OutgoingReply) -> None:
        self.sent.append(reply)


@pytest.mark.parametrize("attempt", CHAT_ATTEMPTS, ids=[a.name for a in CHAT_ATTEMPTS])
async def test_chat_commands_stay_in_the_chats_workspace(
    container: Any, two: Two, attempt: ChatAttempt
) -> None:
    await ChatIdentity.create(platform=Platform.TELEGRAM, platform_user_id="501", user=two.a.owner)
    who = ChatUser(Platform.TELEGRAM, two.a.chat.chat_id, "501", name="ana", chat_title="Alpha")
    sender = _Sender()
    services = assemble_services(container)
    chatops = ChatOps(
        container,
        publishing=services.publishing,
        storage=services.storage,
        smart_replies=SmartReplies(ai=None, sender=sender, clock=container.clock),
    )
    sides = {"a": two.a.ids(), "b": two.b.ids()}
    files = ()
    if attempt.with_file:
        data = jpeg((10, 10, 10))

        async def fetch() -> bytes:
            return data

        files = (IncomingFile("photo.jpg", "image/jpeg", fetch),)
    before = await snapshot()
    typed = fill_ids(attempt.text or attempt.press, sides)
    if attempt.press:
        reply = await chatops.press(who, typed)
    else:
        reply = await chatops.handle_command(who, typed, files)
    answer = reply.text.replace(typed.lower(), "").replace("@bravo_shop", "@…")
    assert SECRET not in answer.lower(), answer
    assert sender.sent == []
    assert await snapshot() == before, reply.text


async def test_a_link_code_does_not_take_over_another_workspaces_chat(
    container: Any, two: Two
) -> None:
    """A's admin, also in B's linked group, sends A's code there: B keeps its chat."""
    await ChatIdentity.create(platform=Platform.TELEGRAM, platform_user_id="501", user=two.a.owner)
    made = await chat_links.create_code(await acting(two.a.membership), datetime.now(UTC))
    in_b = ChatUser(Platform.TELEGRAM, two.b.chat.chat_id, "501", name="ana", chat_title="Shared")
    before = await ChatLink.get(id=two.b.chat.id)
    reply = await _chatops(container).handle_command(in_b, f"/link {made.code}")
    after = await ChatLink.get(id=two.b.chat.id)
    assert (after.workspace_id, after.active, after.title) == (
        before.workspace_id,
        before.active,
        before.title,
    )
    assert "another workspace" in reply.text and SECRET not in reply.text.lower()
    # The code is not used up: it still links a chat of A's own.
    mine = ChatUser(Platform.TELEGRAM, "-100555", "501", name="ana", chat_title="Alpha news")
    await _chatops(container).handle_command(mine, f"/link {made.code}")
    assert await ChatLink.exists(chat_id="-100555", workspace_id=two.a.workspace.id)


def _chatops(container: Any) -> ChatOps:
    services = assemble_services(container)
    return ChatOps(container, publishing=services.publishing, storage=services.storage)
