"""The Discord adapter: a commands.Bot subclass over core's command layer.

Slash commands (with attachments for /schedule) become the same command text the Telegram
adapter hands to ``ChatOps``; buttons are ``DynamicItem``s whose custom id carries the action
(``reelay:approve:12``), so they keep working after a restart without any stored view. The
Edit button opens a modal with the proposed text (Discord's own way to take the next text
from that person). ``DiscordNotifier`` is the notifier port over Discord's REST API.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from core.bootstrap import Container
from core.db.models import Platform
from core.domain.chat import ActionVerb, ButtonStyle, Reply, decode_action
from core.ports.notifier import ChatDeliveryError, ChatGone, ChatRateLimited
from core.services.chatops import ChatOps, ChatUser, IncomingFile, chatops_for

logger = logging.getLogger(__name__)

CUSTOM_ID = re.compile(r"reelay:(?P<action>[a-z]+:\d{1,18})")
MAX_TEXT = 2000
# Longer waits than this come back as ChatRateLimited so a job never sleeps on them.
MAX_RATELIMIT_WAIT_S = 10.0

_STYLES = {
    ButtonStyle.PRIMARY: discord.ButtonStyle.primary,
    ButtonStyle.SECONDARY: discord.ButtonStyle.secondary,
    ButtonStyle.SUCCESS: discord.ButtonStyle.success,
    ButtonStyle.DANGER: discord.ButtonStyle.danger,
}


# ---------------------------------------------------------------- translation


def _text(reply: Reply) -> str:
    return reply.text if len(reply.text) <= MAX_TEXT else reply.text[: MAX_TEXT - 1] + "…"


def to_view(reply: Reply) -> discord.ui.View | None:
    """The reply's buttons as a persistent view (no timeout, action in each custom id)."""
    view = discord.ui.View(timeout=None)
    for row_number, row in enumerate(reply.buttons[:5]):
        for button in row[:5]:
            if button.url:
                view.add_item(discord.ui.Button(label=button.label, url=button.url, row=row_number))
            elif button.action is not None:
                view.add_item(
                    ActionButton(button.label, button.action.encode(), button.style, row_number)
                )
    return view if view.children else None


def chat_user(interaction: discord.Interaction[Any]) -> ChatUser:
    channel = interaction.channel
    title = getattr(channel, "name", None) or interaction.user.name
    guild = interaction.guild.name if interaction.guild else ""
    return ChatUser(
        platform=Platform.DISCORD,
        chat_id=str(interaction.channel_id),
        user_id=str(interaction.user.id),
        name=interaction.user.name,
        chat_title=f"{guild} #{title}" if guild else str(title),
        direct=interaction.guild is None,
    )


def incoming(attachment: discord.Attachment) -> IncomingFile:
    return IncomingFile(
        filename=attachment.filename,
        mime=attachment.content_type or "application/octet-stream",
        fetch=attachment.read,
        size=attachment.size,
    )


async def respond(interaction: discord.Interaction[Any], reply: Reply) -> None:
    """Answer an interaction (first answer or follow-up) with the reply and its buttons."""
    view = to_view(reply)
    kwargs: dict[str, Any] = {"ephemeral": reply.private}
    if view is not None:
        kwargs["view"] = view
    if interaction.response.is_done():
        await interaction.followup.send(_text(reply), **kwargs)
    else:
        await interaction.response.send_message(_text(reply), **kwargs)


# ---------------------------------------------------------------- buttons


class ActionButton(discord.ui.DynamicItem[discord.ui.Button[Any]], template=CUSTOM_ID):
    """A button whose custom id is ``reelay:<verb>:<id>``: handled the same after a restart."""

    def __init__(
        self,
        label: str,
        action: str,
        style: ButtonStyle = ButtonStyle.SECONDARY,
        row: int | None = None,
    ) -> None:
        super().__init__(
            discord.ui.Button(
                label=label,
                style=_STYLES[style],
                custom_id=f"reelay:{action}",
                row=row,
            )
        )
        self.action = action

    @classmethod
    async def from_custom_id(
        cls,
        interaction: discord.Interaction[Any],
        item: discord.ui.Item[Any],
        match: re.Match[str],
        /,
    ) -> ActionButton:
        label = getattr(item, "label", None) or match["action"]
        return cls(label, match["action"])

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        chatops: ChatOps = interaction.client.chatops  # type: ignore[attr-defined]
        await press(chatops, interaction, self.action)


async def press(chatops: ChatOps, interaction: discord.Interaction[Any], data: str) -> None:
    """Run a button's action; Edit opens a modal with the draft's text."""
    who = chat_user(interaction)
    action = decode_action(data)
    if action.verb is ActionVerb.EDIT:
        reply = await chatops.press(who, data)
        if reply.awaits_reply:
            await interaction.response.send_modal(EditModal(chatops, action.target, reply.text))
            return
        await respond(interaction, reply)
        return
    reply = await chatops.press(who, data)
    if reply.replace and not reply.private:
        await interaction.response.edit_message(content=_text(reply), view=to_view(reply))
        return
    await respond(interaction, reply)


class EditModal(discord.ui.Modal, title="Edit the reply"):
    """Takes the new reply text for a draft and sends it as the decision."""

    def __init__(self, chatops: ChatOps, draft_id: int, prompt: str) -> None:
        super().__init__(timeout=15 * 60)
        self.chatops = chatops
        self.draft_id = draft_id
        current = prompt.split("It currently says:\n", 1)[-1]
        self.text: discord.ui.TextInput[EditModal] = discord.ui.TextInput(
            label=f"New text for draft #{draft_id}",
            style=discord.TextStyle.paragraph,
            default=current[:1000],
            max_length=1000,
        )
        self.add_item(self.text)

    async def on_submit(self, interaction: discord.Interaction[Any]) -> None:
        reply = await self.chatops.handle_command(
            chat_user(interaction), f"/edit {self.draft_id} {self.text.value}"
        )
        await respond(interaction, reply)


# ---------------------------------------------------------------- slash commands


class ChatCommands(commands.Cog):
    """Every slash command: each builds the command text and hands it to ``ChatOps``."""

    def __init__(self, chatops: ChatOps) -> None:
        self.chatops = chatops

    async def run(
        self,
        interaction: discord.Interaction[Any],
        text: str,
        attachments: list[discord.Attachment | None] | None = None,
    ) -> None:
        files = [incoming(a) for a in attachments or [] if a is not None]
        if files:
            await interaction.response.defer(thinking=True)
        reply = await self.chatops.handle_command(chat_user(interaction), text, files)
        await respond(interaction, reply)

    @app_commands.command(name="help", description="What Reelay can do from this chat")
    async def help(self, interaction: discord.Interaction[Any]) -> None:
        await self.run(interaction, "/help")

    @app_commands.command(name="link", description="Link this channel with a code from the panel")
    async def link(self, interaction: discord.Interaction[Any], code: str) -> None:
        await self.run(interaction, f"/link {code}")

    @app_commands.command(name="schedule", description="Schedule the attached media")
    @app_commands.describe(
        when_and_caption='e.g. "tomorrow 9am Fresh croissants"; start with "story" for a story',
        media="a photo or video; add more for a carousel",
    )
    async def schedule(
        self,
        interaction: discord.Interaction[Any],
        when_and_caption: str,
        media: discord.Attachment,
        media2: discord.Attachment | None = None,
        media3: discord.Attachment | None = None,
        media4: discord.Attachment | None = None,
        media5: discord.Attachment | None = None,
    ) -> None:
        await self.run(
            interaction,
            f"/schedule {when_and_caption}",
            [media, media2, media3, media4, media5],
        )

    @app_commands.command(name="queue", description="The next scheduled posts")
    async def queue(self, interaction: discord.Interaction[Any], page: int = 1) -> None:
        await self.run(interaction, f"/queue {page}")

    @app_commands.command(name="post", description="Publish a scheduled post now")
    async def post(self, interaction: discord.Interaction[Any], post_id: int) -> None:
        await self.run(interaction, f"/post {post_id} now")

    @app_commands.command(name="cancel", description="Cancel a scheduled post")
    async def cancel(self, interaction: discord.Interaction[Any], post_id: int) -> None:
        await self.run(interaction, f"/cancel {post_id}")

    @app_commands.command(name="reschedule", description="Move a post to another time")
    async def reschedule(
        self, interaction: discord.Interaction[Any], post_id: int, when: str
    ) -> None:
        await self.run(interaction, f"/reschedule {post_id} {when}")

    @app_commands.command(name="caption", description="Write a caption with hashtags")
    async def caption(
        self,
        interaction: discord.Interaction[Any],
        topic: str,
        tone: str = "casual",
    ) -> None:
        await self.run(interaction, f"/caption {tone} {topic}")

    @app_commands.command(name="leads", description="The latest leads")
    async def leads(self, interaction: discord.Interaction[Any], count: int = 5) -> None:
        await self.run(interaction, f"/leads {count}")

    @app_commands.command(name="stats", description="Reach, views and automations in numbers")
    async def stats(self, interaction: discord.Interaction[Any], days: int = 7) -> None:
        await self.run(interaction, f"/stats {days}")

    @app_commands.command(name="approvals", description="AI replies waiting for approval")
    async def approvals(self, interaction: discord.Interaction[Any]) -> None:
        await self.run(interaction, "/approvals")


# ---------------------------------------------------------------- the bot


class ReelayDiscordBot(commands.Bot):
    """Receives the container in ``__init__`` and registers its commands in ``setup_hook``."""

    def __init__(self, container: Container, chatops: ChatOps | None = None) -> None:
        super().__init__(command_prefix="!", intents=discord.Intents.default())
        self.container = container
        self.chatops = chatops or chatops_for(container)

    async def setup_hook(self) -> None:
        await self.add_cog(ChatCommands(self.chatops))
        self.add_dynamic_items(ActionButton)
        await self.tree.sync()


async def run_discord(container: Container, token: str) -> None:
    """Connect to Discord until cancelled."""
    use_api_url(str(container.settings.discord_api_url))
    bot = ReelayDiscordBot(container)
    try:
        await bot.start(token)
    finally:
        await bot.close()


def use_api_url(url: str) -> None:
    """Point discord.py's REST client at ``url`` (DISCORD_API_URL; one Discord per process)."""
    discord.http.Route.BASE = url.rstrip("/")


# ---------------------------------------------------------------- notifier


class DiscordNotifier:
    """The notifier port over Discord's REST API (no gateway connection needed)."""

    platform = Platform.DISCORD

    def __init__(self, token: str, api_url: str) -> None:
        self.token = token
        self.api_url = api_url
        self.client: discord.Client | None = None

    async def _client(self) -> discord.Client:
        if self.client is None:
            use_api_url(self.api_url)
            client = discord.Client(
                intents=discord.Intents.none(), max_ratelimit_timeout=MAX_RATELIMIT_WAIT_S
            )
            self.client = client
            # REST only: no gateway, and no application lookup that login() would add
            await client.http.static_login(self.token)
        return self.client

    async def send(self, chat_id: str, reply: Reply) -> str:
        try:
            channel = (await self._client()).get_partial_messageable(int(chat_id))
            view = to_view(reply)
            if view is None:
                message = await channel.send(_text(reply))
            else:
                message = await channel.send(_text(reply), view=view)
        except discord.DiscordException as exc:
            raise _delivery_error(exc) from exc
        return str(message.id)

    async def edit(self, chat_id: str, message_id: str, reply: Reply) -> None:
        try:
            channel = (await self._client()).get_partial_messageable(int(chat_id))
            await channel.get_partial_message(int(message_id)).edit(
                content=_text(reply), view=to_view(reply)
            )
        except discord.DiscordException as exc:
            raise _delivery_error(exc) from exc

    async def close(self) -> None:
        if self.client is not None:
            await self.client.close()
            self.client = None


def _delivery_error(exc: discord.DiscordException) -> ChatDeliveryError:
    if isinstance(exc, discord.RateLimited):
        return ChatRateLimited(str(exc), exc.retry_after)
    if isinstance(exc, discord.Forbidden | discord.NotFound):
        return ChatGone(str(exc))
    return ChatDeliveryError(str(exc))
