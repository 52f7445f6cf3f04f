"""The Discord adapter: command callbacks, persistent button views, the REST notifier."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import json
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import discord
import pytest
import yarl
from aiohttp import web
from discord import app_commands
from pydantic import AnyHttpUrl

from bot import discord_bot
from bot.discord_bot import (
    ActionButton,
    ChatCommands,
    DiscordNotifier,
    EditModal,
    ReelayDiscordBot,
    press,
    rendered,
    run_discord,
)
from core.bootstrap import Container
from core.db.models import DraftStatus, Lead, Platform, Post, PostMedia
from core.domain.chat import Action, ActionVerb, Button, ButtonStyle, Reply
from core.domain.posts import Kind
from core.errors import SettingsError
from core.ports.notifier import ChatDeliveryError, ChatGone, ChatRateLimited
from core.services.chatops import HOW_TO_LINK, NOT_LINKED_HERE, ChatOps
from core.services.smart_replies import OutgoingReply, SmartReplies
from tests.chatops_world import FixedClock, World, link, make_draft, make_world
from tests.media_samples import image_bytes

NOW = datetime(2025, 3, 5, 9, 0, tzinfo=UTC)
CHANNEL = 880000000000000001
GUILD = 770000000000000001
EDITOR = 990000000000000001


# ---------------------------------------------------------------- what Discord refuses


def refusal(content: str | None, components: list[dict[str, Any]]) -> str | None:
    """Why Discord would refuse this message (Invalid Form Body), or None."""
    if content is not None and len(content) > 2000:
        return "content: Must be 2000 or fewer in length."
    if len(components) > 5:
        return "components: Must be 5 or fewer in length."
    seen: set[str] = set()
    for row in components:
        if len(row["components"]) > 5:
            return "components.0.components: Must be 5 or fewer in length."
        for button in row["components"]:
            if len(button.get("label") or "") > 80:
                return "components.0.components.0.label: Must be 80 or fewer in length."
            url = button.get("url")
            if url is not None and not url.startswith(("http://", "https://", "discord://")):
                return "components.0.components.0.url: Scheme must be one of http, https."
            if url is not None and "//127.0.0.1" in url:
                return "components.0.components.0.url: Not a well formed URL."
            custom_id = button.get("custom_id")
            if custom_id is not None and (len(custom_id) > 100 or custom_id in seen):
                return "components.0.components.0.custom_id: Must be unique and short."
            if custom_id is not None:
                seen.add(custom_id)
    return None


class Refused(discord.HTTPException):
    """A 400 Invalid Form Body as discord.py raises it."""

    def __init__(self, reason: str) -> None:
        response = SimpleNamespace(status=400, reason="Bad Request")
        super().__init__(response, {"code": 50035, "message": f"Invalid Form Body\nIn {reason}"})


def check(content: str | None, kwargs: dict[str, Any]) -> None:
    view: discord.ui.View | None = kwargs.get("view")
    reason = refusal(content, view.to_components() if view is not None else [])
    if reason is not None:
        raise Refused(reason)


# ---------------------------------------------------------------- interaction stand-ins


@dataclass
class Sent:
    kind: str
    content: str | None = None
    kwargs: dict[str, Any] = field(default_factory=dict)


# Discord's 3 seconds, scaled down with the adapter's deadline (see the fixture below).
DISCORD_WAITS_S = 1.0


class Response:
    """The first answer: once only, and only while Discord still waits for it."""

    def __init__(self, interaction: Interaction) -> None:
        self.interaction = interaction
        self.log = interaction.log
        self.type: discord.InteractionResponseType | None = None

    def is_done(self) -> bool:
        return self.type is not None

    def _answer(self, kind: discord.InteractionResponseType) -> None:
        if self.type is not None:
            raise discord.InteractionResponded(self.interaction)  # type: ignore[arg-type]
        if asyncio.get_running_loop().time() - self.interaction.created > DISCORD_WAITS_S:
            expired = SimpleNamespace(status=404, reason="Not Found")
            raise discord.NotFound(expired, {"code": 10062, "message": "Unknown interaction"})
        self.type = kind

    async def defer(self, **kwargs: Any) -> None:
        kinds = discord.InteractionResponseType
        thinking = kwargs.get("thinking") or self.interaction.message is None
        self._answer(kinds.deferred_channel_message if thinking else kinds.deferred_message_update)
        self.log.append(Sent("defer", None, kwargs))

    async def send_message(self, content: str, **kwargs: Any) -> None:
        check(content, kwargs)
        self._answer(discord.InteractionResponseType.channel_message)
        self.log.append(Sent("send", content, kwargs))

    async def edit_message(self, **kwargs: Any) -> None:
        check(kwargs.get("content"), kwargs)
        self._answer(discord.InteractionResponseType.message_update)
        self.log.append(Sent("edit", kwargs.get("content"), kwargs))

    async def send_modal(self, modal: discord.ui.Modal) -> None:
        self._answer(discord.InteractionResponseType.modal)
        self.log.append(Sent("modal", None, {"modal": modal}))


class Followup:
    def __init__(self, interaction: Interaction) -> None:
        self.interaction = interaction

    async def send(self, content: str, **kwargs: Any) -> None:
        check(content, kwargs)
        assert self.interaction.response.is_done(), "a follow-up needs a first answer"
        self.interaction.log.append(Sent("followup", content, kwargs))


@dataclass
class Person:
    id: int
    name: str


class Channel:
    name = "marketing"


class Interaction:
    """What the adapter reads from a discord.Interaction; the rest is real discord.py.

    ``on_message``: the interaction comes from a button (or a modal opened by one) under a
    message; otherwise it is a slash command.
    """

    def __init__(
        self,
        user_id: int = EDITOR,
        *,
        on_message: bool = False,
        where: str = "server",
        channel_id: int = CHANNEL,
    ) -> None:
        self.id = next(INTERACTION_IDS)
        self.created = asyncio.get_running_loop().time()
        self.log: list[Sent] = []
        self.response = Response(self)
        self.followup = Followup(self)
        self.user = Person(user_id, f"user{user_id}")
        self.channel_id = channel_id
        self.channel = Channel()
        # a server channel, a DM with the bot, or a DM between people (a user-installed app)
        contexts = {"server": 0, "bot-dm": 1, "private": 2}
        self.context = app_commands.AppCommandContext._from_value([contexts[where]])
        self.guild_id = GUILD if where == "server" else None
        self.guild = SimpleNamespace(name="Cafe Crema HQ") if where == "server" else None
        self.message = SimpleNamespace(id=4242) if on_message else None

    async def edit_original_response(self, **kwargs: Any) -> None:
        check(kwargs.get("content"), kwargs)
        assert self.response.is_done(), "nothing to edit before the first answer"
        self.log.append(Sent("edit-original", kwargs.get("content"), kwargs))

    async def delete_original_response(self) -> None:
        assert self.response.is_done(), "nothing to delete before the first answer"
        self.log.append(Sent("delete-original"))


INTERACTION_IDS = itertools.count(1)


class Upload:
    """A Discord attachment: name, type, size and read()."""

    def __init__(self, data: bytes, filename: str = "photo.jpg", delay_s: float = 0.0) -> None:
        self.data = data
        self.filename = filename
        self.content_type = "image/jpeg"
        self.size = len(data)
        self.delay_s = delay_s  # how long Discord's CDN takes to hand it over

    async def read(self) -> bytes:
        await asyncio.sleep(self.delay_s)
        return self.data


# ---------------------------------------------------------------- fixtures


class RecordingSender:
    def __init__(self) -> None:
        self.sent: list[OutgoingReply] = []
        self.delay_s = 0.0  # how long Instagram takes to take the DM

    async def send_reply(self, reply: OutgoingReply) -> None:
        await asyncio.sleep(self.delay_s)
        self.sent.append(reply)


@pytest.fixture(autouse=True)
def quick_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    """Discord's 3 seconds and the adapter's 2, scaled down for the tests."""
    monkeypatch.setattr(discord_bot, "ANSWER_WITHIN_S", DISCORD_WAITS_S / 10)


@pytest.fixture
async def world(container: Container) -> World:
    container.clock = FixedClock(NOW)
    made = await make_world()
    await link(
        made, made.editor, platform=Platform.DISCORD, chat_id=str(CHANNEL), user_id=str(EDITOR)
    )
    return made


@pytest.fixture
def sender() -> RecordingSender:
    return RecordingSender()


@pytest.fixture
def chatops(container: Container, sender: RecordingSender) -> ChatOps:
    return ChatOps(
        container, smart_replies=SmartReplies(ai=None, sender=sender, clock=container.clock)
    )


@pytest.fixture
def cog(chatops: ChatOps) -> ChatCommands:
    return ChatCommands(chatops)


# ---------------------------------------------------------------- commands


async def test_schedule_slash_command_with_attachments_makes_a_carousel(
    world: World, cog: ChatCommands
) -> None:
    interaction = Interaction()
    first, second = image_bytes(1080, 1080), image_bytes(1080, 1081)
    await cog.schedule.callback(  # type: ignore[call-arg]
        cog, interaction, "tomorrow 9am Two cakes", Upload(first), Upload(second, "b.jpg")
    )
    post = await Post.get(workspace=world.workspace)
    assert post.kind is Kind.CAROUSEL and post.caption == "Two cakes"
    items = await PostMedia.filter(post=post).order_by("position").prefetch_related("asset")
    assert [i.asset.checksum for i in items] == [
        hashlib.sha256(first).hexdigest(),
        hashlib.sha256(second).hexdigest(),
    ]
    # answered at once, or deferred and followed up when storing the media took a while
    assert [s.kind for s in interaction.log] in (["send"], ["defer", "followup"])
    answer = interaction.log[-1]
    assert "Thu 6 Mar 2025, 09:00 Europe/Berlin (UTC+01:00)" in (answer.content or "")
    view: discord.ui.View = answer.kwargs["view"]
    assert view.is_persistent()
    assert [c.custom_id for c in view.children] == [  # type: ignore[attr-defined]
        f"reelay:postnow:{post.id}",
        f"reelay:cancel:{post.id}",
    ]


async def test_unlinked_user_is_refused(world: World, cog: ChatCommands) -> None:
    interaction = Interaction(user_id=123)
    await cog.queue.callback(cog, interaction, 1)  # type: ignore[call-arg]
    [answer] = interaction.log
    assert answer.kind == "send" and answer.content == HOW_TO_LINK


async def test_only_a_dm_with_the_bot_acts_without_a_linked_channel(
    world: World, cog: ChatCommands
) -> None:
    await Post.create(
        workspace=world.workspace,
        account=world.account,
        kind=Kind.IMAGE,
        caption="Secret launch menu",
        status="scheduled",
        scheduled_at=datetime(2025, 3, 6, 9, 0, tzinfo=UTC),
    )
    elsewhere = CHANNEL + 1  # a channel nobody linked
    for where in ("server", "private"):
        interaction = Interaction(where=where, channel_id=elsewhere)
        await cog.queue.callback(cog, interaction, 1)  # type: ignore[call-arg]
        [refused] = interaction.log
        assert refused.content == NOT_LINKED_HERE, where
    dm = Interaction(where="bot-dm", channel_id=elsewhere)
    await cog.queue.callback(cog, dm, 1)  # type: ignore[call-arg]
    assert "Secret launch menu" in (dm.log[0].content or "")


async def test_a_viewer_cannot_approve(world: World, chatops: ChatOps) -> None:
    await link(world, world.viewer, platform=Platform.DISCORD, chat_id=str(CHANNEL), user_id="7")
    draft = await make_draft(world, now=NOW)
    interaction = Interaction(7, on_message=True)
    await press(chatops, interaction, f"approve:{draft.id}")  # type: ignore[arg-type]
    [refused] = interaction.log
    assert refused.kind == "send" and refused.kwargs["ephemeral"] is True
    assert "viewer" in (refused.content or "")
    await draft.refresh_from_db()
    assert draft.status is DraftStatus.PENDING


async def test_drafts_past_the_buttons_are_decided_by_slash_command(
    world: World, cog: ChatCommands, sender: RecordingSender
) -> None:
    drafts = [await make_draft(world, now=NOW, proposed_text=f"Reply {n}") for n in range(7)]
    listing = Interaction()
    await cog.approvals.callback(cog, listing)  # type: ignore[call-arg]
    assert "use the slash commands" in (listing.log[-1].content or "")
    approving, editing = Interaction(), Interaction()
    await cog.approve.callback(cog, approving, drafts[5].id)  # type: ignore[call-arg]
    await cog.edit.callback(cog, editing, drafts[6].id, "Our own words")  # type: ignore[call-arg]
    assert [s.text for s in sender.sent] == ["Reply 5", "Our own words"]
    assert "Approved" in (approving.log[-1].content or "")


async def test_read_commands_answer_in_the_channel(world: World, cog: ChatCommands) -> None:
    interaction = Interaction()
    await cog.approvals.callback(cog, interaction)  # type: ignore[call-arg]
    assert interaction.log[0].content == "No AI replies are waiting for approval."
    assert interaction.log[0].kwargs["ephemeral"] is False


async def test_a_slow_schedule_refused_privately_replaces_the_thinking_note(
    world: World, cog: ChatCommands
) -> None:
    interaction = Interaction()
    slow = Upload(b"not a picture", "notes.jpg", delay_s=DISCORD_WAITS_S * 1.5)
    await cog.schedule.callback(cog, interaction, "tomorrow 9am Cake", slow)  # type: ignore[call-arg]
    defer, delete, refused = interaction.log
    assert (defer.kind, delete.kind, refused.kind) == ("defer", "delete-original", "followup")
    assert refused.kwargs["ephemeral"] is True and refused.content
    assert not await Post.exists(workspace=world.workspace)


async def test_a_failing_slash_command_tells_the_user_privately(
    world: World, container: Container, cog: ChatCommands, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*args: Any) -> Reply:
        await asyncio.sleep(DISCORD_WAITS_S)
        raise RuntimeError("database went away")

    monkeypatch.setattr(cog.chatops, "handle_command", broken)
    bot = ReelayDiscordBot(container, cog.chatops)
    interaction = Interaction()
    try:
        with pytest.raises(RuntimeError) as failed:
            await cog.queue.callback(cog, interaction, 1)  # type: ignore[call-arg]
        # discord.py hands what a command raised to the tree's error handler
        error = app_commands.CommandInvokeError(cog.queue, failed.value)
        await bot.tree.on_error(interaction, error)  # type: ignore[arg-type]
    finally:
        await bot.close()
    assert [sent.kind for sent in interaction.log] == ["defer", "delete-original", "followup"]
    sorry = interaction.log[-1]
    assert sorry.kwargs["ephemeral"] is True and "went wrong" in (sorry.content or "")


# ---------------------------------------------------------------- buttons


async def test_a_slow_approval_is_deferred_and_its_message_edited_once_sent(
    world: World, chatops: ChatOps, sender: RecordingSender
) -> None:
    draft = await make_draft(world, now=NOW)
    sender.delay_s = DISCORD_WAITS_S * 1.5  # Instagram takes longer than Discord waits
    interaction = Interaction(on_message=True)
    await press(chatops, interaction, f"approve:{draft.id}")  # type: ignore[arg-type]
    [defer, edit] = interaction.log
    assert defer.kind == "defer" and not defer.kwargs.get("thinking")
    assert edit.kind == "edit-original"
    assert (edit.content or "").startswith("✅ Approved by editor@")
    assert [s.text for s in sender.sent] == [draft.proposed_text]


async def test_a_failing_button_tells_the_presser_privately(
    world: World, chatops: ChatOps, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*args: Any) -> Reply:
        raise RuntimeError("redis went away")

    monkeypatch.setattr(chatops, "press", broken)
    interaction = Interaction(on_message=True)
    interaction.client = SimpleNamespace(chatops=chatops)  # type: ignore[attr-defined]
    await ActionButton("Approve", "approve:1").callback(interaction)  # type: ignore[arg-type]
    [sorry] = interaction.log
    assert sorry.kind == "send" and sorry.kwargs["ephemeral"] is True
    assert "went wrong" in (sorry.content or "")


async def test_approve_button_sends_the_draft_and_edits_the_message(
    world: World, chatops: ChatOps, sender: RecordingSender
) -> None:
    draft = await make_draft(world, now=NOW)
    interaction = Interaction(on_message=True)
    await press(chatops, interaction, f"approve:{draft.id}")  # type: ignore[arg-type]
    [edit] = interaction.log
    assert edit.kind == "edit" and (edit.content or "").startswith("✅ Approved by editor@")
    assert edit.kwargs["view"] is None
    assert [s.text for s in sender.sent] == [draft.proposed_text]
    late = Interaction(on_message=True)
    await press(chatops, late, f"reject:{draft.id}")  # type: ignore[arg-type]
    assert late.log[0].kwargs["ephemeral"] is True and "Already approved" in (
        late.log[0].content or ""
    )


async def test_edit_button_opens_a_modal_whose_text_is_sent(
    world: World, chatops: ChatOps, sender: RecordingSender
) -> None:
    draft = await make_draft(world, now=NOW)
    interaction = Interaction(on_message=True)
    await press(chatops, interaction, f"edit:{draft.id}")  # type: ignore[arg-type]
    [opened] = interaction.log
    modal: EditModal = opened.kwargs["modal"]
    assert modal.text.default == draft.proposed_text
    modal.text._value = "Oat milk is free!"  # what the person typed
    submitted = Interaction(on_message=True)
    await modal.on_submit(submitted)  # type: ignore[arg-type]
    assert [s.text for s in sender.sent] == ["Oat milk is free!"]
    await draft.refresh_from_db()
    assert draft.status is DraftStatus.EDITED
    [decided] = submitted.log  # the approval message itself shows the decision
    assert decided.kind == "edit" and "Edited and sent" in (decided.content or "")


async def test_buttons_are_rebuilt_from_their_custom_id_after_a_restart() -> None:
    view = rendered(
        Reply(
            "x",
            (
                (
                    Button("Approve", Action(ActionVerb.APPROVE, 12), style=ButtonStyle.SUCCESS),
                    Button("Open", url="https://example.com/p/1"),
                ),
            ),
        )
    ).view
    assert view is not None and view.is_persistent() and view.timeout is None
    approve, url = view.children
    assert approve.custom_id == "reelay:approve:12"  # type: ignore[attr-defined]
    assert approve.item.style is discord.ButtonStyle.success  # type: ignore[attr-defined]
    assert url.url == "https://example.com/p/1"  # type: ignore[attr-defined]
    # a fresh process: the dynamic item matches the stored custom id alone
    template = ActionButton.__discord_ui_compiled_template__
    match = template.fullmatch("reelay:approve:12")
    assert match is not None
    rebuilt = await ActionButton.from_custom_id(Interaction(), approve, match)  # type: ignore[arg-type]
    assert rebuilt.action == "approve:12"
    assert template.fullmatch("someone-else:approve:12") is None


async def test_a_long_answer_goes_out_as_several_messages_discord_takes(
    world: World, cog: ChatCommands
) -> None:
    for number in range(40):
        await Lead.create(
            workspace=world.workspace,
            account=world.account,
            igsid=f"9{number:04d}",
            username=f"follower{number}",
            email=f"follower{number}@example.com",
            custom_fields={"note": f"lead {number} " + "wants the big catering menu " * 3},
        )
    interaction = Interaction()
    await cog.leads.callback(cog, interaction, 40)  # type: ignore[call-arg]
    assert len(interaction.log) > 1
    assert all(len(sent.content or "") <= 2000 for sent in interaction.log)
    shown = "\n".join(sent.content or "" for sent in interaction.log)
    assert all(f"@follower{number}:" in shown for number in range(40))


def test_a_reply_with_more_buttons_than_discord_shows_is_cut_to_its_limits() -> None:
    rows = tuple(
        (
            Button("Approve " + "very long label " * 10, Action(ActionVerb.APPROVE, draft)),
            Button("Reject", Action(ActionVerb.REJECT, draft)),
        )
        for draft in range(1, 9)
    )
    odd = (
        Button("Approve again", Action(ActionVerb.APPROVE, 1)),  # same custom id as row 1
        Button("Open", url="ftp://example.com/file"),
    )
    shown = rendered(Reply("Eight drafts", (odd, *rows)))
    assert shown.view is not None
    assert refusal(shown.text(), shown.view.to_components()) is None
    assert len(shown.view.to_components()) == 5
    assert "Open: ftp://example.com/file" in shown.text()
    assert "25 buttons at most" in shown.text()


# ---------------------------------------------------------------- notifier over REST


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    # discord.py only parses bodies typed exactly "application/json"
    return web.Response(
        body=json.dumps(body).encode(),
        status=status,
        headers={"Content-Type": "application/json", **(headers or {})},
    )


@dataclass
class FakeDiscord:
    messages: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    gone: set[str] = field(default_factory=set)
    limited: set[str] = field(default_factory=set)
    forbidden: set[str] = field(default_factory=set)
    cloudflare: set[str] = field(default_factory=set)
    deleted: set[str] = field(default_factory=set)
    refused: list[str] = field(default_factory=list)
    token: str = "token"
    outage: int = 0  # how many logins get a 503 before Discord answers again
    commands_down: bool = False
    synced: list[Any] = field(default_factory=list)
    gateway_connections: int = 0
    ids: Any = field(default_factory=lambda: itertools.count(5000))

    def _message(self, channel: str, body: dict[str, Any], mid: str) -> dict[str, Any]:
        return {
            "id": mid,
            "channel_id": channel,
            "content": body.get("content", ""),
            "author": {"id": "1", "username": "reelay", "discriminator": "0", "avatar": None},
            "timestamp": "2025-03-05T09:00:00+00:00",
            "edited_timestamp": None,
            "tts": False,
            "mention_everyone": False,
            "mentions": [],
            "mention_roles": [],
            "attachments": [],
            "embeds": [],
            "pinned": False,
            "type": 0,
            "components": body.get("components", []),
        }

    def _unauthorised(self, request: web.Request) -> web.Response | None:
        if request.headers.get("Authorization") == f"Bot {self.token}":
            return None
        return _json({"message": "401: Unauthorized", "code": 0}, status=401)

    async def me(self, request: web.Request) -> web.Response:
        if self.outage:
            self.outage -= 1
            return web.Response(status=503, text="upstream connect error")
        refused = self._unauthorised(request)
        if refused is not None:
            return refused
        user = {"id": "1", "username": "reelay", "discriminator": "0", "avatar": None, "bot": True}
        return _json(user)

    def _refused(self, body: dict[str, Any]) -> web.Response | None:
        reason = refusal(body.get("content"), body.get("components") or [])
        if reason is None:
            return None
        self.refused.append(reason)
        invalid = {"message": f"Invalid Form Body\nIn {reason}", "code": 50035}
        return _json(invalid, status=400)

    async def application(self, request: web.Request) -> web.Response:
        refused = self._unauthorised(request)
        if refused is not None:
            return refused
        owner = {"id": "2", "username": "owner", "discriminator": "0", "avatar": None}
        app = {
            "id": "1",
            "name": "Reelay",
            "description": "",
            "icon": None,
            "bot_public": False,
            "bot_require_code_grant": False,
            "owner": owner,
            "verify_key": "0" * 64,
            "flags": 0,
        }
        return _json(app)

    async def commands(self, request: web.Request) -> web.Response:
        self.synced.append(await request.json())
        if self.commands_down:
            return web.Response(status=503, text="upstream connect error")
        return _json([])

    async def gateway(self, request: web.Request) -> web.WebSocketResponse:
        """Says hello and keeps the connection open: enough to show the bot got this far."""
        socket = web.WebSocketResponse()
        await socket.prepare(request)
        self.gateway_connections += 1
        await socket.send_json({"op": 10, "d": {"heartbeat_interval": 45000}, "s": None, "t": None})
        async for _ in socket:
            pass
        return socket

    async def create(self, request: web.Request) -> web.Response:
        channel = request.match_info["channel"]
        unauthorised = self._unauthorised(request)
        if unauthorised is not None:
            return unauthorised
        if channel in self.forbidden:
            return _json({"message": "Missing Permissions", "code": 50013}, status=403)
        if channel in self.cloudflare:
            return web.Response(status=429, text="error code: 1015", headers={"Retry-After": "30"})
        if channel in self.gone:
            return _json({"message": "Unknown Channel", "code": 10003}, status=404)
        if channel in self.limited:
            body = {"message": "You are being rate limited.", "retry_after": 45.0, "global": False}
            return _json(body, status=429, headers={"Retry-After": "45", "Via": "1.1 google"})
        body = await request.json()
        refused = self._refused(body)
        if refused is not None:
            return refused
        self.messages.append(("create", channel, body))
        return _json(self._message(channel, body, str(next(self.ids))))

    async def edit(self, request: web.Request) -> web.Response:
        channel, mid = request.match_info["channel"], request.match_info["message"]
        if mid in self.deleted:
            return _json({"message": "Unknown Message", "code": 10008}, status=404)
        body = await request.json()
        refused = self._refused(body)
        if refused is not None:
            return refused
        self.messages.append(("edit", channel, body))
        return _json(self._message(channel, body, mid))


@pytest.fixture
async def fake_discord() -> AsyncIterator[tuple[FakeDiscord, str]]:
    fake = FakeDiscord()
    app = web.Application()
    app.router.add_get("/api/v10/users/@me", fake.me)
    app.router.add_get("/api/v10/oauth2/applications/@me", fake.application)
    app.router.add_put("/api/v10/applications/{app}/commands", fake.commands)
    app.router.add_get("/gateway", fake.gateway)
    app.router.add_post("/api/v10/channels/{channel}/messages", fake.create)
    app.router.add_patch("/api/v10/channels/{channel}/messages/{message}", fake.edit)
    runner = web.AppRunner(app)
    await runner.setup()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    original = discord.http.Route.BASE
    gateway = discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(f"ws://127.0.0.1:{port}/gateway")
    try:
        yield fake, f"http://127.0.0.1:{port}/api/v10"
    finally:
        discord.http.Route.BASE = original
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = gateway
        await runner.cleanup()


async def test_notifier_sends_buttons_edits_and_translates_errors(
    fake_discord: tuple[FakeDiscord, str],
) -> None:
    fake, url = fake_discord
    notifier = DiscordNotifier("token", url)
    try:
        reply = Reply("Approve?", ((Button("Approve", Action(ActionVerb.APPROVE, 4)),),))
        message_id = await notifier.send("111", reply)
        await notifier.edit("111", message_id, Reply("✅ Approved"))
        fake.gone.add("222")
        with pytest.raises(ChatGone):
            await notifier.send("222", reply)
        fake.limited.add("333")
        with pytest.raises(ChatRateLimited) as limited:
            await notifier.send("333", reply)
        assert limited.value.retry_after_s == pytest.approx(45.0)
    finally:
        await notifier.close()
    (kind, channel, created), (edit_kind, _, edited) = fake.messages
    assert (kind, channel, created["content"]) == ("create", "111", "Approve?")
    button = created["components"][0]["components"][0]
    assert button["custom_id"] == "reelay:approve:4"
    assert edit_kind == "edit" and edited["content"] == "✅ Approved"
    assert edited["components"] == []


async def test_notifier_fits_long_alerts_and_links_discord_refuses(
    fake_discord: tuple[FakeDiscord, str],
) -> None:
    fake, url = fake_discord
    notifier = DiscordNotifier("token", url)
    panel = "http://127.0.0.1:8000/leads"  # the default panel address: no button for it
    try:
        await notifier.send("111", Reply("New lead " * 400, ((Button("Leads", url=panel),),)))
        await notifier.edit("111", "5000", Reply("x" * 2500))
    finally:
        await notifier.close()
    (_, _, sent), (_, _, edited) = fake.messages
    assert len(sent["content"]) <= 2000 and sent["content"].endswith(f"Leads: {panel}")
    assert sent.get("components", []) == []
    assert len(edited["content"]) == 2000 and edited["content"].endswith("…")
    assert fake.refused == ["components.0.components.0.url: Not a well formed URL."]


async def test_notifier_tells_a_dead_chat_from_a_deleted_message_a_block_and_an_outage(
    fake_discord: tuple[FakeDiscord, str],
) -> None:
    fake, url = fake_discord
    notifier = DiscordNotifier("token", url)
    fake.outage = 1
    try:
        with pytest.raises(ChatDeliveryError) as outage:  # Discord down at the first delivery
            await notifier.send("111", Reply("Post published"))
        assert not isinstance(outage.value, ChatGone)
        await notifier.send("111", Reply("Post published"))  # logged in this time
        fake.deleted.add("5000")
        with pytest.raises(ChatDeliveryError) as deleted:
            await notifier.edit("111", "5000", Reply("✅ Approved"))
        assert not isinstance(deleted.value, ChatGone)  # someone deleted the message only
        fake.forbidden.add("222")
        with pytest.raises(ChatGone):  # the bot may no longer write there
            await notifier.send("222", Reply("Post published"))
        fake.cloudflare.add("333")
        with pytest.raises(ChatRateLimited) as limited:
            await notifier.send("333", Reply("Post published"))
        assert limited.value.retry_after_s == pytest.approx(30.0)
    finally:
        await notifier.close()
    assert [(kind, channel) for kind, channel, _ in fake.messages] == [("create", "111")]


async def test_notifier_says_discord_could_not_be_reached() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens here
    original = discord.http.Route.BASE
    notifier = DiscordNotifier("token", f"http://127.0.0.1:{port}/api/v10")
    try:
        with pytest.raises(ChatDeliveryError, match="could not be reached"):
            await notifier.send("111", Reply("Post published"))
    finally:
        await notifier.close()
        discord.http.Route.BASE = original


# ---------------------------------------------------------------- startup


def _against(container: Container, url: str) -> None:
    container.settings = container.settings.model_copy(update={"discord_api_url": AnyHttpUrl(url)})


async def test_the_bot_waits_out_a_discord_outage_at_startup(
    container: Container,
    fake_discord: tuple[FakeDiscord, str],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake, url = fake_discord
    _against(container, url)
    monkeypatch.setattr(discord_bot, "STARTUP_RETRY_S", (0.05,))
    fake.token = "MTIz.TEST-TOKEN"
    fake.outage = 2  # Discord answers 503 twice, then recovers
    fake.commands_down = True  # and cannot update the slash commands: not a reason to stop
    running = asyncio.create_task(run_discord(container, "MTIz.TEST-TOKEN"))
    try:
        for _ in range(200):
            if fake.gateway_connections or running.done():
                break
            await asyncio.sleep(0.05)
        assert not running.done(), running.exception()
        assert fake.gateway_connections == 1
        assert {command["name"] for command in fake.synced[0]} >= {"schedule", "queue", "leads"}
    finally:
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running
    assert caplog.text.count("trying again") == 2
    assert "could not register the slash commands" in caplog.text
    assert "TEST-TOKEN" not in caplog.text


async def test_a_token_discord_refuses_is_a_settings_error(
    container: Container, fake_discord: tuple[FakeDiscord, str]
) -> None:
    fake, url = fake_discord
    _against(container, url)
    fake.token = "MTIz.THE-REAL-ONE"
    with pytest.raises(SettingsError, match="DISCORD_TOKEN") as refused:
        await asyncio.wait_for(run_discord(container, "MTIz.A-TYPO"), 10)
    assert "A-TYPO" not in str(refused.value)
    assert fake.gateway_connections == 0
