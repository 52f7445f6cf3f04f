"""Stand-ins for what the Discord adapter is handed: interactions, uploads, the reply sender.

They refuse what Discord refuses (``refusal``), so a test fails where Discord would.
"""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import discord
from discord import app_commands

from core.services.reply_sending import OutgoingReply

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


# Discord's 3 seconds, scaled down with the adapter's deadline (see ``quick_deadline``).
DISCORD_WAITS_S = 2.0


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


class RecordingSender:
    def __init__(self) -> None:
        self.sent: list[OutgoingReply] = []
        self.delay_s = 0.0  # how long Instagram takes to take the DM

    async def send_reply(self, reply: OutgoingReply) -> None:
        await asyncio.sleep(self.delay_s)
        self.sent.append(reply)
