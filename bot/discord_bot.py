"""The Discord adapter: a commands.Bot subclass over core's command layer.

Slash commands (with attachments for /schedule) become the same command text the Telegram
adapter hands to ``ChatOps``; buttons are ``DynamicItem``s whose custom id carries the action
(``reelay:approve:12``), so they keep working after a restart without any stored view. The
Edit button opens a modal with the proposed text (Discord's own way to take the next text
from that person). ``DiscordNotifier`` (``bot/discord_notifier.py``) is the notifier port over
Discord's REST API.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import re
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any, TypedDict, TypeVar, cast
from urllib.parse import urlsplit

import aiohttp
import discord
from discord import app_commands
from discord.ext import commands

from bot.discord_mirror import ThreadMessages
from core.db.models import Platform
from core.domain.chat import (
    LINK_CODES_PATH,
    PERSONAL_CODES_PATH,
    ActionVerb,
    ButtonStyle,
    Reply,
    decode_action,
)
from core.errors import SettingsError
from core.services.chat_members import ChatUser
from core.services.chatops import ChatOps, IncomingFile
from core.wiring import Services

logger = logging.getLogger(__name__)
T = TypeVar("T")

CUSTOM_ID = re.compile(r"reelay:(?P<action>[a-z]+:\d{1,18})")
# Discord's limits on a message: characters of text, rows of buttons, buttons in a row,
# characters of a button label and of a link button's URL.
MAX_TEXT = 2000
MAX_ROWS = 5
MAX_ROW_BUTTONS = 5
MAX_LABEL = 80
MAX_URL = 512
# A long answer goes out as up to this many messages; past that its end is cut.
MAX_PARTS = 5
INVALID_FORM_BODY = 50035
UNKNOWN_MESSAGE = 10008
# Failures to reach Discord at all (connection refused or reset, DNS, timeouts).
NETWORK_ERRORS = (aiohttp.ClientError, OSError, TimeoutError)
BUTTONS_LEFT_OUT = "(Discord shows 25 buttons at most: use the slash commands for the rest.)"
# Longer waits than this come back as ChatRateLimited so a job never sleeps on them.
MAX_RATELIMIT_WAIT_S = 10.0
# Seconds between tries while Discord cannot be reached at startup; the last repeats.
STARTUP_RETRY_S = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0)
GATEWAY_AUTHENTICATION_FAILED = 4004
# Discord drops an interaction left unanswered for 3 seconds: longer work is deferred first.
ANSWER_WITHIN_S = 2.0
THINKING = discord.InteractionResponseType.deferred_channel_message
SORRY = "Something went wrong on our side; please try again."
# The wait asked for by a 429 that names none (Cloudflare's, not Discord's).
DEFAULT_RETRY_AFTER_S = 60.0

_STYLES = {
    ButtonStyle.PRIMARY: discord.ButtonStyle.primary,
    ButtonStyle.SECONDARY: discord.ButtonStyle.secondary,
    ButtonStyle.SUCCESS: discord.ButtonStyle.success,
    ButtonStyle.DANGER: discord.ButtonStyle.danger,
}


# ---------------------------------------------------------------- translation


@dataclass(frozen=True)
class Rendered:
    """A reply as Discord takes it: the text, what goes under it, and the buttons.

    ``tail`` (links Discord would not take as buttons, a note on buttons left out) is never
    cut; the body is cut or split around it to fit Discord's 2000-character messages.
    """

    body: str
    tail: str
    view: discord.ui.View | None

    def text(self) -> str:
        """One message: the body cut so that body and tail fit."""
        return fit_text(self.body, MAX_TEXT - len(self.tail)) + self.tail

    def texts(self) -> list[str]:
        """Consecutive messages split at line ends; the tail (and the buttons) go on the last."""
        parts = split_text(self.body)
        if len(parts[-1]) + len(self.tail) <= MAX_TEXT:
            return [*parts[:-1], parts[-1] + self.tail]
        return [*parts, fit_text(self.tail.lstrip("\n"))]


def rendered(reply: Reply, *, links_as_text: bool = False) -> Rendered:
    """The reply's text and buttons within Discord's limits.

    Action buttons carry the encoded action in their custom id; a link Discord cannot take as
    a button (not http(s) or discord, too long, or every link with ``links_as_text``, used
    when Discord refused one anyway) is written under the text. Labels are cut to 80
    characters, at most 5 rows of 5 buttons are kept, and a note says when some were left out.
    """
    view = discord.ui.View(timeout=None)
    links: list[str] = []
    custom_ids: set[str] = set()
    left_out = False
    for row_number, row in enumerate(reply.buttons):
        for position, button in enumerate(row):
            fits = row_number < MAX_ROWS and position < MAX_ROW_BUTTONS
            label = fit_text(button.label, MAX_LABEL)
            if button.url:
                if fits and not links_as_text and discord_takes_url(button.url):
                    view.add_item(discord.ui.Button(label=label, url=button.url, row=row_number))
                else:
                    links.append(f"{button.label}: {button.url}")
            elif button.action is not None:
                custom_id = button.action.encode()
                if not fits:
                    left_out = True
                elif custom_id not in custom_ids:  # Discord refuses a repeated custom id
                    custom_ids.add(custom_id)
                    view.add_item(ActionButton(label, custom_id, button.style, row_number))
    tail = "".join(f"\n{link}" for link in links)
    if left_out:
        tail += f"\n{BUTTONS_LEFT_OUT}"
    return Rendered(reply.text, tail, view if view.children else None)


def to_view(reply: Reply) -> discord.ui.View | None:
    """The reply's buttons as a persistent view (no timeout, action in each custom id)."""
    return rendered(reply).view


def discord_takes_url(url: str) -> bool:
    """Whether Discord takes ``url`` on a link button: http(s) with a host, or discord://."""
    if len(url) > MAX_URL or any(char.isspace() for char in url):
        return False
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    return scheme == "discord" or (scheme in {"http", "https"} and bool(parts.hostname))


def fit_text(text: str, limit: int = MAX_TEXT) -> str:
    """``text`` cut to ``limit`` characters (Discord counts code points), with an ellipsis."""
    return text if len(text) <= limit else text[: max(limit - 1, 0)] + "…"


def split_text(text: str, limit: int = MAX_TEXT, most: int = MAX_PARTS) -> list[str]:
    """``text`` in pieces of at most ``limit`` characters, split at line ends where possible;
    past ``most`` pieces the last one is cut."""
    parts: list[str] = []
    rest = text
    while len(rest) > limit and len(parts) < most - 1:
        cut = rest.rfind("\n", 0, limit + 1)
        if cut <= 0:
            cut = limit
        parts.append(rest[:cut])
        rest = rest[cut:].removeprefix("\n")
    parts.append(fit_text(rest, limit))
    return parts


def refused_link(exc: discord.HTTPException) -> bool:
    """Discord refused a link button's URL (Invalid Form Body on a component's url)."""
    return exc.code == INVALID_FORM_BODY and ".url" in exc.text


async def with_links_as_text_if_refused(send: Callable[[bool], Awaitable[T]]) -> T:
    """``send(False)``; when Discord refuses a link button, the same message again with its
    links written in the text, rather than losing it."""
    try:
        return await send(False)
    except discord.HTTPException as exc:
        if not refused_link(exc):
            raise
        logger.info("Discord refused a link button (%s); links go in the text", exc.text)
        return await send(True)


def chat_user(interaction: discord.Interaction[Any]) -> ChatUser:
    """Who acts, and where. Only a DM with the bot is direct: a server channel, a group DM or
    a DM between two people (where the app is installed by a user) is seen by others."""
    channel = interaction.channel
    title = getattr(channel, "name", None) or interaction.user.name
    guild = interaction.guild.name if interaction.guild else ""
    return ChatUser(
        platform=Platform.DISCORD,
        chat_id=str(interaction.channel_id),
        user_id=str(interaction.user.id),
        name=interaction.user.name,
        chat_title=f"{guild} #{title}" if guild else str(title),
        direct=interaction.guild_id is None and interaction.context.dm_channel,
    )


def incoming(attachment: discord.Attachment) -> IncomingFile:
    return IncomingFile(
        filename=attachment.filename,
        mime=attachment.content_type or "application/octet-stream",
        fetch=attachment.read,
        size=attachment.size,
    )


async def in_time(interaction: discord.Interaction[Any], work: Coroutine[Any, Any, T]) -> T:
    """``work``'s reply; when it takes longer than Discord waits for an answer, the interaction
    is deferred first (a "thinking…" note, or the button's message waits) and answered later."""
    task = asyncio.ensure_future(work)
    try:
        done, _ = await asyncio.wait({task}, timeout=ANSWER_WITHIN_S)
        if not done:
            await interaction.response.defer(thinking=interaction.message is None)
    finally:
        # the command runs to its end (a DM sent, a post scheduled) even when Discord could
        # not be told in time
        reply = await task
    return reply


async def answer(interaction: discord.Interaction[Any], reply: Reply) -> None:
    """Show ``reply`` as the answer to ``interaction``, answering it exactly once.

    A ``replace`` reply to a button edits the button's message. Anything else is a new
    message, several for a long reply with the buttons on the last; after a public
    "thinking…" note, a private reply replaces it with one only the asker sees.
    """
    if reply.replace and not reply.private and interaction.message is not None:
        message = interaction.message

        async def replace(links_as_text: bool) -> None:
            shown = rendered(reply, links_as_text=links_as_text)
            content, view = shown.text(), shown.view
            if reply.line_of is not None:
                content, view = line_replaced(message, reply.line_of, reply.text)
            if interaction.response.is_done():
                await interaction.edit_original_response(content=content, view=view)
            else:
                await interaction.response.edit_message(content=content, view=view)

        await with_links_as_text_if_refused(replace)
        return
    if reply.private and interaction.response.type is THINKING:
        await interaction.delete_original_response()
    shown = rendered(reply)
    texts = shown.texts()
    for text in texts[:-1]:
        await _post(interaction, text, private=reply.private)
    sent = len(texts) - 1

    async def rest(links_as_text: bool) -> None:
        final = rendered(reply, links_as_text=True) if links_as_text else shown
        last = final.texts()[sent:]
        for text in last[:-1]:
            await _post(interaction, text, private=reply.private)
        await _post(interaction, last[-1], private=reply.private, view=final.view)

    await with_links_as_text_if_refused(rest)


def line_replaced(
    message: discord.Message, target: int, line: str
) -> tuple[str, discord.ui.View | None]:
    """``message`` with the line of ``target`` (``#<target>: …``) replaced by ``line`` and the
    buttons acting on ``target`` dropped; every other line and button stays as it is."""
    prefix = f"#{target}:"
    lines = [line if old.startswith(prefix) else old for old in message.content.split("\n")]
    view = discord.ui.View.from_message(message, timeout=None)
    for item in list(view.children):
        if str(getattr(item, "custom_id", None) or "").endswith(f":{target}"):
            view.remove_item(item)
    return fit_text("\n".join(lines)), view if view.children else None


class _PostOptions(TypedDict, total=False):
    """What ``_post`` passes to discord.py's send: a view only when there are buttons."""

    ephemeral: bool
    view: discord.ui.View


async def _post(
    interaction: discord.Interaction[Any],
    text: str,
    *,
    private: bool,
    view: discord.ui.View | None = None,
) -> None:
    kwargs: _PostOptions = {"ephemeral": private}
    if view is not None:
        kwargs["view"] = view
    if interaction.response.is_done():
        await interaction.followup.send(text, **kwargs)
    else:
        await interaction.response.send_message(text, **kwargs)


async def apologise(interaction: discord.Interaction[Any], error: BaseException) -> None:
    """Log a failed interaction and tell the asker privately (not "This interaction failed")."""
    logger.error("discord interaction %s failed", interaction.id, exc_info=error)
    try:
        await answer(interaction, Reply(SORRY, private=True))
    except discord.HTTPException as exc:
        logger.warning("discord: could not tell interaction %s it failed: %s", interaction.id, exc)


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
        # Only ReelayDiscordBot registers this button (setup_hook): it is the client here.
        chatops = cast(ReelayDiscordBot, interaction.client).chatops
        try:
            await press(chatops, interaction, self.action)
        except Exception as exc:  # whatever failed, the presser hears of it and the log has it
            await apologise(interaction, exc)


async def press(chatops: ChatOps, interaction: discord.Interaction[Any], data: str) -> None:
    """Run a button's action; Edit opens a modal with the draft's text."""
    who = chat_user(interaction)
    if data.startswith(f"{ActionVerb.EDIT.value}:"):
        # A modal can only be the first answer: no deferring (looking the draft up is quick).
        reply = await chatops.press(who, data)
        if reply.awaits_reply:
            draft_id = decode_action(data).target
            await interaction.response.send_modal(EditModal(chatops, draft_id, reply.text))
            return
    else:
        reply = await in_time(interaction, chatops.press(who, data))
    await answer(interaction, reply)


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
        who = chat_user(interaction)
        work = self.chatops.handle_command(who, f"/edit {self.draft_id} {self.text.value}")
        await answer(interaction, await in_time(interaction, work))

    async def on_error(  # type: ignore[override]  # Modal.on_error takes no item
        self, interaction: discord.Interaction[Any], error: Exception, /
    ) -> None:
        await apologise(interaction, error)


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
        # keyed by the interaction: a repeated delivery gets the first reply, acts not twice
        work = self.chatops.handle_once(chat_user(interaction), str(interaction.id), text, files)
        reply = await in_time(interaction, work)
        if reply is not None:
            await answer(interaction, reply)

    @app_commands.command(name="help", description="What Reelay can do from this chat")
    async def help(self, interaction: discord.Interaction[Any]) -> None:
        await self.run(interaction, "/help")

    @app_commands.command(
        name="link", description="Link yourself (personal code) or this channel (chat code)"
    )
    @app_commands.describe(
        code=f"your personal code ({PERSONAL_CODES_PATH}) or a chat code ({LINK_CODES_PATH})"
    )
    async def link(self, interaction: discord.Interaction[Any], code: str = "") -> None:
        await self.run(interaction, f"/link {code}".strip())

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

    @app_commands.command(name="health", description="Whether each account is working")
    async def health(self, interaction: discord.Interaction[Any]) -> None:
        await self.run(interaction, "/health")

    @app_commands.command(name="approvals", description="AI replies waiting for approval")
    async def approvals(self, interaction: discord.Interaction[Any]) -> None:
        await self.run(interaction, "/approvals")

    @app_commands.command(name="timezone", description="The team's time zone, or your own")
    @app_commands.describe(
        zone="e.g. Europe/Berlin; empty: show the zones in use",
        mine="set your own zone instead of the team's",
    )
    async def timezone(
        self, interaction: discord.Interaction[Any], zone: str = "", mine: bool = False
    ) -> None:
        await self.run(interaction, f"/timezone {'me ' if mine else ''}{zone}".strip())

    @app_commands.command(name="approve", description="Send an AI reply as proposed")
    async def approve(self, interaction: discord.Interaction[Any], draft_id: int) -> None:
        await self.run(interaction, f"/approve {draft_id}")

    @app_commands.command(name="reject", description="Drop an AI reply")
    async def reject(self, interaction: discord.Interaction[Any], draft_id: int) -> None:
        await self.run(interaction, f"/reject {draft_id}")

    @app_commands.command(name="approvepost", description="Approve an editor's post")
    @app_commands.describe(when='a new time if the planned one has passed, e.g. "tomorrow 9am"')
    async def approvepost(
        self, interaction: discord.Interaction[Any], post_id: int, when: str = ""
    ) -> None:
        await self.run(interaction, f"/approvepost {post_id} {when}".strip())

    @app_commands.command(name="rejectpost", description="Reject an editor's post, saying why")
    async def rejectpost(
        self, interaction: discord.Interaction[Any], post_id: int, reason: str
    ) -> None:
        await self.run(interaction, f"/rejectpost {post_id} {reason}")

    @app_commands.command(name="edit", description="Send your own text instead of an AI reply")
    async def edit(self, interaction: discord.Interaction[Any], draft_id: int, text: str) -> None:
        await self.run(interaction, f"/edit {draft_id} {text}")


# ---------------------------------------------------------------- the bot


class ReelayCommandTree(app_commands.CommandTree[Any]):
    """The slash commands; a command that fails tells the user instead of going silent."""

    async def on_error(
        self, interaction: discord.Interaction[Any], error: app_commands.AppCommandError
    ) -> None:
        await apologise(interaction, error)


class ReelayDiscordBot(commands.Bot):
    """Receives the services in ``__init__`` and registers its commands in ``setup_hook``."""

    def __init__(
        self, services: Services, chatops: ChatOps | None = None, *, read_threads: bool = True
    ) -> None:
        intents = discord.Intents.default()
        # The team's replies in the conversations' threads need the privileged Message Content
        # intent; without it the slash commands and buttons still work.
        intents.message_content = read_threads
        super().__init__(command_prefix="!", intents=intents, tree_cls=ReelayCommandTree)
        self.services = services
        self.chatops = chatops or services.chatops
        self.read_threads = read_threads

    async def setup_hook(self) -> None:
        await self.add_cog(ChatCommands(self.chatops))
        if self.read_threads:
            await self.add_cog(ThreadMessages(self.services.chat_desk))
        self.add_dynamic_items(ActionButton)
        # The slash commands registered last time stay usable: failing to update them must
        # not stop the bot.
        try:
            await self.tree.sync()
        except discord.HTTPException as exc:
            logger.warning("discord: could not register the slash commands: %s", exc)


async def run_discord(services: Services, token: str) -> None:
    """Connect to Discord until cancelled.

    Waits while Discord cannot be reached at startup (so an outage does not stop ``reelay
    run``); once connected, discord.py reconnects by itself. A token Discord refuses is a
    ``SettingsError``.
    """
    api_url = str(services.container.settings.discord_api_url)
    use_api_url(api_url)
    read_threads = True
    for attempt in itertools.count():
        bot = ReelayDiscordBot(services, read_threads=read_threads)
        try:
            await bot.login(token)
            await bot.connect(reconnect=True)
            return
        except discord.LoginFailure as exc:
            raise _token_refused(api_url) from exc
        except discord.PrivilegedIntentsRequired as exc:
            if not read_threads:
                raise SettingsError(
                    "Discord refused the bot's gateway intents although it asks for no "
                    "privileged one: check the bot in the Developer Portal."
                ) from exc
            read_threads = False
            logger.warning(
                "discord: the bot's Message Content intent is off, so replies written in the "
                "conversations' threads cannot be read (slash commands and buttons work). To "
                "answer Instagram from Discord threads, turn it on: Developer Portal → Bot → "
                "Privileged Gateway Intents → Message Content."
            )
        except discord.ConnectionClosed as exc:
            if exc.code == GATEWAY_AUTHENTICATION_FAILED:
                raise _token_refused(api_url) from exc
            raise
        except discord.HTTPException as exc:
            if exc.status < 500 and exc.status != 429:
                raise SettingsError(
                    f"Discord ({api_url}) answered {exc.status} {exc.text or ''} at login: "
                    "check DISCORD_API_URL."
                ) from exc
            await _wait_before_retry(api_url, attempt, f"{exc.status} {exc.text}")
        except NETWORK_ERRORS as exc:
            await _wait_before_retry(api_url, attempt, f"{type(exc).__name__}: {exc}")
        finally:
            await bot.close()


def _token_refused(api_url: str) -> SettingsError:
    return SettingsError(
        f"Discord ({api_url}) refused DISCORD_TOKEN (401 Unauthorized): copy the bot's token "
        "from the Developer Portal (Bot → Reset Token) again."
    )


async def _wait_before_retry(api_url: str, attempt: int, problem: str) -> None:
    delay = STARTUP_RETRY_S[min(attempt, len(STARTUP_RETRY_S) - 1)]
    logger.warning(
        "discord: %s did not answer (%s); trying again in %.1f s", api_url, problem, delay
    )
    await asyncio.sleep(delay)


def use_api_url(url: str) -> None:
    """Point discord.py's REST client at ``url`` (DISCORD_API_URL; one Discord per process)."""
    discord.http.Route.BASE = url.rstrip("/")
