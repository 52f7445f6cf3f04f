"""The notifier port over Discord's REST API: alerts sent and edited by the worker, with no
gateway connection (the bot's own process is ``bot/discord_bot.py``)."""

from __future__ import annotations

from typing import Final

import discord

from bot.discord_bot import (
    DEFAULT_RETRY_AFTER_S,
    MAX_RATELIMIT_WAIT_S,
    NETWORK_ERRORS,
    UNKNOWN_MESSAGE,
    fit_text,
    rendered,
    use_api_url,
    with_links_as_text_if_refused,
)
from core.db.models import Platform
from core.domain.chat import Reply
from core.ports.chat_threads import ThreadGone
from core.ports.notifier import ChatDeliveryError, ChatGone, ChatRateLimited

MAX_THREAD_NAME = 100
WEEK_MINUTES: Final = 10080
PUBLIC_THREAD: Final = 11


class DiscordNotifier:
    """The notifier port over Discord's REST API (no gateway connection needed); also the
    chat-thread port: a conversation's thread in the mirror channel."""

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
            # REST only: no gateway, and no application lookup that login() would add. Kept
            # only once logged in, so a failed login is tried again by the next delivery.
            try:
                await client.http.static_login(self.token)
            except BaseException:
                await client.close()
                raise
            self.client = client
        return self.client

    async def send(self, chat_id: str, reply: Reply) -> str:
        async def send(links_as_text: bool) -> discord.Message:
            shown = rendered(reply, links_as_text=links_as_text)
            channel = (await self._client()).get_partial_messageable(int(chat_id))
            if shown.view is None:
                return await channel.send(shown.text())
            return await channel.send(shown.text(), view=shown.view)

        try:
            message = await with_links_as_text_if_refused(send)
        except (discord.DiscordException, *NETWORK_ERRORS) as exc:
            raise _delivery_error(exc) from exc
        return str(message.id)

    async def send_to_person(self, platform_user_id: str, reply: Reply) -> str:
        """A direct message to one Discord user (their private channel with the bot)."""
        try:
            channel = await (await self._client()).create_dm(discord.Object(int(platform_user_id)))
        except (discord.DiscordException, *NETWORK_ERRORS) as exc:
            raise _delivery_error(exc) from exc
        return await self.send(str(channel.id), reply)

    async def edit(self, chat_id: str, message_id: str, reply: Reply) -> None:
        async def edit(links_as_text: bool) -> None:
            shown = rendered(reply, links_as_text=links_as_text)
            channel = (await self._client()).get_partial_messageable(int(chat_id))
            await channel.get_partial_message(int(message_id)).edit(
                content=shown.text(), view=shown.view
            )

        try:
            await with_links_as_text_if_refused(edit)
        except (discord.DiscordException, *NETWORK_ERRORS) as exc:
            raise _delivery_error(exc) from exc

    async def open_thread(self, chat_id: str, name: str) -> str:
        """A public thread in the channel (no starter message), kept a week after its last
        message before Discord archives it."""
        try:
            client = await self._client()
            thread = await client.http.start_thread_without_message(
                int(chat_id),
                name=name[:MAX_THREAD_NAME],
                auto_archive_duration=WEEK_MINUTES,
                type=PUBLIC_THREAD,
            )
        except (discord.DiscordException, *NETWORK_ERRORS) as exc:
            raise _delivery_error(exc) from exc
        return str(thread["id"])

    async def rename_thread(self, chat_id: str, thread_id: str, name: str) -> None:
        try:
            client = await self._client()
            await client.http.edit_channel(int(thread_id), name=name[:MAX_THREAD_NAME])
        except discord.NotFound as exc:
            raise ThreadGone(str(exc)) from exc
        except (discord.DiscordException, *NETWORK_ERRORS) as exc:
            raise _delivery_error(exc) from exc

    async def post(self, chat_id: str, thread_id: str, text: str, image_url: str = "") -> str:
        """A message in the thread (a thread is a channel of its own); an image as an embed."""
        try:
            thread = (await self._client()).get_partial_messageable(int(thread_id))
            if image_url:
                embed = discord.Embed().set_image(url=image_url)
                message = await thread.send(fit_text(text), embed=embed)
            else:
                message = await thread.send(fit_text(text))
        except discord.NotFound as exc:
            raise ThreadGone(str(exc)) from exc
        except (discord.DiscordException, *NETWORK_ERRORS) as exc:
            raise _delivery_error(exc) from exc
        return str(message.id)

    async def close(self) -> None:
        if self.client is not None:
            await self.client.close()
            self.client = None


def _delivery_error(exc: BaseException) -> ChatDeliveryError:
    if isinstance(exc, discord.RateLimited):
        return ChatRateLimited(str(exc), exc.retry_after)
    if isinstance(exc, discord.LoginFailure):
        return ChatDeliveryError("Discord refused DISCORD_TOKEN (401 Unauthorized)")
    if not isinstance(exc, discord.HTTPException):
        return ChatDeliveryError(f"Discord could not be reached: {type(exc).__name__}: {exc}")
    if exc.status == 429:  # refused before Discord's own rate limits, e.g. by Cloudflare
        return ChatRateLimited(str(exc), _retry_after(exc))
    if exc.code == UNKNOWN_MESSAGE:  # the message was deleted, the chat is still there
        return ChatDeliveryError(str(exc))
    if isinstance(exc, discord.Forbidden | discord.NotFound):
        return ChatGone(str(exc))
    return ChatDeliveryError(str(exc))


def _retry_after(exc: discord.HTTPException) -> float:
    headers = getattr(exc.response, "headers", None) or {}
    try:
        return max(float(headers.get("Retry-After", "")), 1.0)
    except ValueError:
        return DEFAULT_RETRY_AFTER_S
