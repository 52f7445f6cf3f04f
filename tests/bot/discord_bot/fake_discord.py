"""A fake of Discord's REST API and gateway, served locally, for the notifier and startup."""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

from tests.bot.discord_bot.interactions import refusal

MESSAGE_CONTENT = 1 << 15  # the privileged Message Content intent's bit


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
    # The bot's Message Content intent is off in the Developer Portal: asking for it closes
    # the gateway with 4014, as Discord does.
    message_content_off: bool = False
    identified_intents: list[int] = field(default_factory=list)
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
        async for frame in socket:
            if frame.type is not WSMsgType.TEXT:
                continue
            sent = json.loads(frame.data)
            if sent.get("op") != 2:  # IDENTIFY
                continue
            intents = int(sent["d"].get("intents", 0))
            self.identified_intents.append(intents)
            if self.message_content_off and intents & MESSAGE_CONTENT:
                await socket.close(code=4014, message=b"Disallowed intent(s).")
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

    async def thread(self, request: web.Request) -> web.Response:
        """POST /channels/{id}/threads without a message: a thread channel of its own."""
        channel = request.match_info["channel"]
        body = await request.json()
        name = str(body.get("name") or "")
        if not 1 <= len(name) <= 100:
            return _json({"message": "Invalid Form Body", "code": 50035}, status=400)
        self.messages.append(("thread", channel, body))
        return _json(
            {
                "id": str(next(self.ids)),
                "type": body.get("type", 11),
                "guild_id": "770000000000000001",
                "parent_id": channel,
                "name": name,
                "owner_id": "1",
                "thread_metadata": {
                    "archived": False,
                    "auto_archive_duration": body.get("auto_archive_duration", 10080),
                    "archive_timestamp": "2025-03-05T09:00:00+00:00",
                    "locked": False,
                },
            }
        )

    async def rename(self, request: web.Request) -> web.Response:
        """PATCH /channels/{id}: a thread renamed."""
        channel = request.match_info["channel"]
        body = await request.json()
        self.messages.append(("rename", channel, body))
        return _json({"id": channel, "type": 11, "name": body.get("name", "")})

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
