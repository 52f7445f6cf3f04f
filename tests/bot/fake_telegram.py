"""A small local Bot API server: records what the bot sends and serves files to download."""

from __future__ import annotations

import itertools
import json
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

BOT_ID = 777000


@dataclass
class FakeTelegram:
    """What the bot did, by method name, plus per-chat failures to inject."""

    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # answered or not
    answered: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # answered "ok"
    files: dict[str, bytes] = field(default_factory=dict)
    gone_chats: set[int] = field(default_factory=set)
    retry_after: dict[int, int] = field(default_factory=dict)  # chat -> seconds, once
    base_url: str = ""
    _ids: Any = field(default_factory=lambda: itertools.count(1000))

    def sent(self, method: str) -> list[dict[str, Any]]:
        """The successful calls of ``method``."""
        return [params for name, params in self.answered if name == method]

    def add_file(self, file_id: str, content: bytes) -> None:
        self.files[file_id] = content

    async def handle(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        params = await _params(request)
        self.calls.append((method, params))
        chat_id = int(params["chat_id"]) if "chat_id" in params else None
        if chat_id is not None and chat_id in self.gone_chats:
            return _error(403, "Forbidden: bot was kicked from the group chat")
        if chat_id is not None and chat_id in self.retry_after:
            wait = self.retry_after.pop(chat_id)
            return _error(429, f"Too Many Requests: retry after {wait}", {"retry_after": wait})
        handler = getattr(self, f"_{method.lower()}", None)
        result = handler(params) if handler else True
        self.answered.append((method, params))
        return web.json_response({"ok": True, "result": result})

    async def download(self, request: web.Request) -> web.Response:
        path = request.match_info["path"]
        content = self.files.get(path.removeprefix("files/"))
        if content is None:
            raise web.HTTPNotFound()
        return web.Response(body=content)

    def _getme(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"id": BOT_ID, "is_bot": True, "first_name": "Reelay", "username": "ReelayBot"}

    def _message(self, params: dict[str, Any]) -> dict[str, Any]:
        message: dict[str, Any] = {
            "message_id": int(params.get("message_id") or next(self._ids)),
            "date": 1_700_000_000,
            "chat": {"id": int(params["chat_id"]), "type": "group", "title": "Team"},
            "from": self._getme(params),
            "text": params.get("text", ""),
        }
        markup = params.get("reply_markup")
        if markup and "inline_keyboard" in markup:
            message["reply_markup"] = markup
        return message

    _sendmessage = _message
    _editmessagetext = _message

    def _getfile(self, params: dict[str, Any]) -> dict[str, Any]:
        file_id = params["file_id"]
        return {
            "file_id": file_id,
            "file_unique_id": f"u-{file_id}",
            "file_size": len(self.files.get(file_id, b"")),
            "file_path": f"files/{file_id}",
        }


async def _params(request: web.Request) -> dict[str, Any]:
    if request.content_type == "application/json":
        raw: dict[str, Any] = await request.json()
    else:
        raw = dict(await request.post())
    params: dict[str, Any] = {}
    for key, value in raw.items():
        if isinstance(value, str) and value[:1] in "[{":
            try:
                params[key] = json.loads(value)
                continue
            except ValueError:
                pass
        params[key] = value
    return params


def _error(code: int, description: str, parameters: dict[str, Any] | None = None) -> web.Response:
    body: dict[str, Any] = {"ok": False, "error_code": code, "description": description}
    if parameters:
        body["parameters"] = parameters
    return web.json_response(body, status=code)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@asynccontextmanager
async def running_fake_telegram() -> AsyncIterator[FakeTelegram]:
    fake = FakeTelegram()
    app = web.Application()
    app.router.add_post("/bot{token}/{method}", fake.handle)
    app.router.add_get("/file/bot{token}/{path:.+}", fake.download)
    runner = web.AppRunner(app)
    await runner.setup()
    port = _free_port()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    fake.base_url = f"http://127.0.0.1:{port}"
    try:
        yield fake
    finally:
        await runner.cleanup()
