"""The notifier port over Discord's REST API: alerts sent and edited by the worker, with no
gateway connection (the bot's own process is ``bot/discord_bot.py``)."""

from __future__ import annotations

import discord

from bot.discord_bot import (
    DEFAULT_RETRY_AFTER_S,
    MAX_RATELIMIT_WAIT_S,
    NETWORK_ERRORS,
    UNKNOWN_MESSAGE,
    rendered,
    use_api_url,
    with_links_as_text_if_refused,
)
from core.db.models import Platform
from core.domain.chat import Reply
from core.ports.notifier import ChatDeliveryError, ChatGone, ChatRateLimited


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
