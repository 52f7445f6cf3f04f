"""A small local Bot API server: records what the bot sends, serves files to download, and
hands out updates through long-polling ``getUpdates`` as Telegram does.

It refuses what Telegram refuses, with Telegram's descriptions: empty or over-long texts,
text that does not parse in the given ``parse_mode``, malformed inline keyboards, callback
data over 64 bytes, button URLs Telegram calls invalid, ``getUpdates`` while a webhook is set,
and a callback query answered twice. ``refused`` lists every refusal so a test can assert that
the bot never sent anything Telegram would have thrown back.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

BOT_ID = 777000
MAX_TEXT = 4096
MAX_CALLBACK_DATA = 64
MAX_CALLBACK_ANSWER = 200
HTML_TAGS = {
    "b",
    "strong",
    "i",
    "em",
    "u",
    "ins",
    "s",
    "strike",
    "del",
    "span",
    "tg-spoiler",
    "a",
    "tg-emoji",
    "code",
    "pre",
    "blockquote",
}
MARKDOWN_V2_RESERVED = set("_*[]()~`>#+-=|{}.!")


class BotApiError(Exception):
    """A refusal, as the Bot API words it."""

    def __init__(self, code: int, description: str, parameters: dict[str, Any] | None = None):
        super().__init__(description)
        self.code = code
        self.description = description
        self.parameters = parameters


@dataclass
class FakeTelegram:
    """What the bot did, by method name, plus updates to serve and failures to inject."""

    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # answered or not
    answered: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # answered "ok"
    refused: list[tuple[str, dict[str, Any], str]] = field(default_factory=list)
    files: dict[str, bytes] = field(default_factory=dict)
    gone_chats: set[int] = field(default_factory=set)
    retry_after: dict[int, int] = field(default_factory=dict)  # chat -> seconds, once
    webhook: dict[str, Any] = field(default_factory=dict)  # the last setWebhook, until deleted
    token: str = ""  # when set, any other token is answered 401 Unauthorized
    outage: int = 0  # this many calls are answered 502 Bad Gateway first
    refused_url_hosts: set[str] = field(default_factory=set)  # button URLs answered 400
    messages: dict[tuple[int, int], tuple[str, Any]] = field(default_factory=dict)
    forums: set[int] = field(default_factory=set)  # supergroups with Topics on
    topics: dict[int, dict[int, str]] = field(default_factory=dict)  # chat -> thread -> name
    base_url: str = ""
    _ids: Any = field(default_factory=lambda: itertools.count(1000))
    _update_ids: Any = field(default_factory=lambda: itertools.count(500_001))
    _pending: list[dict[str, Any]] = field(default_factory=list)
    _arrived: asyncio.Event = field(default_factory=asyncio.Event)
    _closing: bool = False
    _answered_queries: set[str] = field(default_factory=set)

    def message_id(self, text: str) -> int:
        """The id of the message the bot sent with ``text`` (the last one)."""
        return [mid for (_, mid), (shown, _) in self.messages.items() if shown == text][-1]

    def sent(self, method: str) -> list[dict[str, Any]]:
        """The successful calls of ``method``."""
        return [params for name, params in self.answered if name == method]

    def in_topic(self, chat_id: int, thread_id: int) -> list[dict[str, Any]]:
        """What the bot posted in a forum topic, in order (sendMessage and sendPhoto)."""
        return [
            params
            for name, params in self.answered
            if name in {"sendMessage", "sendPhoto"}
            and int(params["chat_id"]) == chat_id
            and int(params.get("message_thread_id") or 0) == thread_id
        ]

    def add_file(self, file_id: str, content: bytes) -> None:
        self.files[file_id] = content

    def push_update(self, kind: str, body: dict[str, Any]) -> int:
        """Queue an update (``kind`` is "message", "callback_query"...); its update_id."""
        update_id: int = next(self._update_ids)
        self._pending.append({"update_id": update_id, kind: body})
        self._arrived.set()
        return update_id

    @property
    def unconfirmed(self) -> list[int]:
        """Update ids the bot has not confirmed with a higher ``offset`` yet."""
        return [update["update_id"] for update in self._pending]

    async def handle(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        params = await _params(request)
        self.calls.append((method, params))
        try:
            if self.outage > 0:
                self.outage -= 1
                raise BotApiError(502, "Bad Gateway")
            if self.token and request.match_info["token"] != self.token:
                raise BotApiError(401, "Unauthorized")
            self._check_chat(method, params)
            check = getattr(self, f"_check_{method.lower()}", None)
            if check is not None:
                check(params)
            if method.lower() == "getupdates":
                result: Any = await self._get_updates(params)
            else:
                handler = getattr(self, f"_{method.lower()}", None)
                result = handler(params) if handler else True
        except BotApiError as exc:
            self.refused.append((method, params, exc.description))
            return _error(exc.code, exc.description, exc.parameters)
        self.answered.append((method, params))
        return web.json_response({"ok": True, "result": result})

    async def download(self, request: web.Request) -> web.Response:
        path = request.match_info["path"]
        content = self.files.get(path.removeprefix("files/"))
        if content is None:
            raise web.HTTPNotFound()
        return web.Response(body=content)

    # ------------------------------------------------------------ checks

    def _check_chat(self, method: str, params: dict[str, Any]) -> None:
        chat_id = int(params["chat_id"]) if "chat_id" in params else None
        if chat_id is not None and chat_id in self.gone_chats:
            raise BotApiError(403, "Forbidden: bot was kicked from the group chat")
        # The 429 falls on a message sent, not on the "typing…" shown while a command works.
        if chat_id is not None and chat_id in self.retry_after and method != "sendChatAction":
            wait = self.retry_after.pop(chat_id)
            raise BotApiError(429, f"Too Many Requests: retry after {wait}", {"retry_after": wait})

    def _check_url_hosts(self, markup: Any) -> None:
        """Hosts Telegram's servers refuse beyond tdlib's syntax check (e.g. private addresses)."""
        rows = markup.get("inline_keyboard", []) if isinstance(markup, dict) else []
        for row in rows:
            for button in row:
                if urlsplit(str(button.get("url", ""))).hostname in self.refused_url_hosts:
                    raise BotApiError(400, "Bad Request: BUTTON_URL_INVALID")

    def _check_sendmessage(self, params: dict[str, Any]) -> None:
        if "chat_id" not in params:
            raise BotApiError(400, "Bad Request: chat_id is empty")
        _check_text(params)
        _check_entities(params)
        _check_markup(params.get("reply_markup"))
        self._check_url_hosts(params.get("reply_markup"))

    def _check_thread(self, params: dict[str, Any]) -> None:
        thread = params.get("message_thread_id")
        if thread is None:
            return
        chat_id = int(params["chat_id"])
        if int(thread) not in self.topics.get(chat_id, {}):
            raise BotApiError(400, "Bad Request: message thread not found")

    def _check_createforumtopic(self, params: dict[str, Any]) -> None:
        if int(params["chat_id"]) not in self.forums:
            raise BotApiError(400, "Bad Request: the chat is not a forum")
        name = str(params.get("name") or "")
        if not 1 <= len(name) <= 128:
            raise BotApiError(400, "Bad Request: TOPIC_NAME_INVALID")

    def _check_editforumtopic(self, params: dict[str, Any]) -> None:
        if int(params["message_thread_id"]) not in self.topics.get(int(params["chat_id"]), {}):
            raise BotApiError(400, "Bad Request: TOPIC_ID_INVALID")
        name = params.get("name")
        if name is not None and not 1 <= len(str(name)) <= 128:
            raise BotApiError(400, "Bad Request: TOPIC_NAME_INVALID")

    def _check_sendphoto(self, params: dict[str, Any]) -> None:
        if not params.get("photo"):
            raise BotApiError(400, "Bad Request: there is no photo in the request")
        if len(str(params.get("caption") or "")) > 1024:
            raise BotApiError(400, "Bad Request: message caption is too long")
        self._check_thread(params)

    def _check_editmessagetext(self, params: dict[str, Any]) -> None:
        _check_text(params)
        _check_markup(params.get("reply_markup"), inline_only=True)
        self._check_url_hosts(params.get("reply_markup"))
        key = (int(params["chat_id"]), int(params["message_id"]))
        if self.messages.get(key) == (params["text"], params.get("reply_markup")):
            raise BotApiError(
                400,
                "Bad Request: message is not modified: specified new message content and reply "
                "markup are exactly the same as a current content and reply markup of the message",
            )

    def _check_answercallbackquery(self, params: dict[str, Any]) -> None:
        query_id = str(params.get("callback_query_id") or "")
        if not query_id or query_id in self._answered_queries:
            raise BotApiError(
                400,
                "Bad Request: query is too old and response timeout expired or query ID is invalid",
            )
        if len(str(params.get("text") or "")) > MAX_CALLBACK_ANSWER:
            raise BotApiError(400, "Bad Request: MESSAGE_TOO_LONG")
        self._answered_queries.add(query_id)

    def _check_setwebhook(self, params: dict[str, Any]) -> None:
        url = str(params.get("url") or "")
        if not url.startswith("https://"):
            raise BotApiError(400, "Bad Request: bad webhook: An HTTPS URL must be provided")
        secret = str(params.get("secret_token") or "")
        if secret and (len(secret) > 256 or not all(ch.isalnum() or ch in "_-" for ch in secret)):
            raise BotApiError(400, "Bad Request: secret token contains unallowed characters")

    # ------------------------------------------------------------ methods

    async def _get_updates(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        if self.webhook:
            raise BotApiError(
                409,
                "Conflict: can't use getUpdates method while webhook is active; "
                "use deleteWebhook to delete the webhook first",
            )
        offset = int(params.get("offset") or 0)
        limit = int(params.get("limit") or 100)
        timeout = float(params.get("timeout") or 0)
        allowed = params.get("allowed_updates") or []
        if offset:
            # Telegram forgets every update below the offset: they are confirmed.
            self._pending = [u for u in self._pending if u["update_id"] >= offset]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            ready = [u for u in self._pending if not allowed or _kind(u) in allowed]
            if ready or loop.time() >= deadline or self._closing:
                return ready[:limit]
            self._arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), deadline - loop.time())

    def _getme(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"id": BOT_ID, "is_bot": True, "first_name": "Reelay", "username": "ReelayBot"}

    def _setwebhook(self, params: dict[str, Any]) -> bool:
        self.webhook = dict(params)
        return True

    def _deletewebhook(self, params: dict[str, Any]) -> bool:
        self.webhook = {}
        if str(params.get("drop_pending_updates", "")).lower() == "true":
            self._pending.clear()
        return True

    def _chat(self, chat_id: int) -> dict[str, Any]:
        if chat_id in self.forums:
            return {"id": chat_id, "type": "supergroup", "title": "Team", "is_forum": True}
        return {"id": chat_id, "type": "group", "title": "Team"}

    def _message(self, params: dict[str, Any]) -> dict[str, Any]:
        message: dict[str, Any] = {
            "message_id": int(params.get("message_id") or next(self._ids)),
            "date": 1_700_000_000,
            "chat": self._chat(int(params["chat_id"])),
            "from": self._getme(params),
            "text": params.get("text", ""),
        }
        if params.get("message_thread_id") is not None:
            message["message_thread_id"] = int(params["message_thread_id"])
            message["is_topic_message"] = True
        markup = params.get("reply_markup")
        if markup and "inline_keyboard" in markup:
            message["reply_markup"] = markup
        self.messages[(message["chat"]["id"], message["message_id"])] = (
            message["text"],
            params.get("reply_markup"),
        )
        return message

    _sendmessage = _message
    _editmessagetext = _message

    def _sendphoto(self, params: dict[str, Any]) -> dict[str, Any]:
        message = self._message({**params, "text": ""})
        del message["text"]
        message["photo"] = [
            {
                "file_id": f"photo-{message['message_id']}",
                "file_unique_id": "p",
                "width": 1080,
                "height": 1080,
            }
        ]
        if params.get("caption"):
            message["caption"] = params["caption"]
        return message

    def _editforumtopic(self, params: dict[str, Any]) -> bool:
        if params.get("name") is not None:
            self.topics[int(params["chat_id"])][int(params["message_thread_id"])] = params["name"]
        return True

    def _createforumtopic(self, params: dict[str, Any]) -> dict[str, Any]:
        """A topic's thread id is the id of the service message that opened it, as in Telegram."""
        chat_id = int(params["chat_id"])
        thread_id: int = next(self._ids)
        self.topics.setdefault(chat_id, {})[thread_id] = str(params["name"])
        return {"message_thread_id": thread_id, "name": params["name"], "icon_color": 7322096}

    def _getfile(self, params: dict[str, Any]) -> dict[str, Any]:
        file_id = params["file_id"]
        return {
            "file_id": file_id,
            "file_unique_id": f"u-{file_id}",
            "file_size": len(self.files.get(file_id, b"")),
            "file_path": f"files/{file_id}",
        }


def _kind(update: dict[str, Any]) -> str:
    return next(key for key in update if key != "update_id")


def utf16_length(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _check_text(params: dict[str, Any]) -> None:
    text = params.get("text")
    if not isinstance(text, str) or not text.strip():
        raise BotApiError(400, "Bad Request: message text is empty")
    parse_mode = params.get("parse_mode")
    if parse_mode is not None:
        text = _parsed(text, str(parse_mode))
    # Telegram counts characters; holding to UTF-16 code units (what entity offsets use) is
    # the stricter reading and keeps every emoji-heavy text inside the limit either way.
    if utf16_length(text) > MAX_TEXT:
        raise BotApiError(400, "Bad Request: message is too long")


def _check_entities(params: dict[str, Any]) -> None:
    """Entities must lie inside the text; a text_mention names its user."""
    text_length = utf16_length(str(params.get("text") or ""))
    for entity in params.get("entities") or []:
        offset, length = int(entity.get("offset", -1)), int(entity.get("length", 0))
        if offset < 0 or length <= 0 or offset + length > text_length:
            raise BotApiError(400, "Bad Request: can't parse entities: entity beyond the text")
        if entity.get("type") == "text_mention" and not entity.get("user", {}).get("id"):
            raise BotApiError(400, "Bad Request: can't parse entities: mention without a user")


def _check_markup(markup: Any, *, inline_only: bool = False) -> None:
    if markup is None:
        return
    if not isinstance(markup, dict):
        raise BotApiError(400, "Bad Request: can't parse reply keyboard markup JSON object")
    if "inline_keyboard" not in markup:
        if inline_only:
            raise BotApiError(400, "Bad Request: inline keyboard expected")
        if "force_reply" in markup and markup["force_reply"] is not True:
            raise BotApiError(400, 'Bad Request: field "force_reply" must be true')
        return
    rows = markup["inline_keyboard"]
    if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
        raise BotApiError(400, 'Bad Request: field "inline_keyboard" must be an Array of Arrays')
    for row in rows:
        for button in row:
            _check_button(button)


def _check_button(button: Any) -> None:
    if not isinstance(button, dict) or not str(button.get("text") or "").strip():
        raise BotApiError(400, "Bad Request: inline keyboard button text is empty")
    kinds = [key for key in button if key != "text"]
    if not kinds:
        raise BotApiError(400, "Bad Request: text buttons are unallowed in the inline keyboard")
    if len(kinds) > 1:
        raise BotApiError(400, "Bad Request: inline keyboard button must have exactly one action")
    if "callback_data" in button:
        data = button["callback_data"]
        if not isinstance(data, str) or not 1 <= len(data.encode()) <= MAX_CALLBACK_DATA:
            raise BotApiError(400, "Bad Request: BUTTON_DATA_INVALID")
    if "url" in button:
        problem = _url_problem(str(button["url"]))
        if problem:
            raise BotApiError(
                400,
                f"Bad Request: inline keyboard button URL '{button['url']}' is invalid: {problem}",
            )


def _url_problem(url: str) -> str:
    """What Telegram (tdlib's ``LinkManager::check_link``) finds wrong with a button URL."""
    parts = urlsplit(url if "://" in url else f"http://{url}")
    if parts.scheme.lower() not in {"http", "https", "tg"}:
        return "Unsupported URL protocol"
    host = parts.hostname or ""
    if parts.scheme.lower() != "tg" and "." not in host and ":" not in host:
        return "Wrong HTTP URL"
    return ""


def _parsed(text: str, parse_mode: str) -> str:
    """The plain text of ``text`` in ``parse_mode``; Telegram's 400 when it does not parse."""
    if parse_mode == "HTML":
        checker = _TelegramHtml()
        checker.feed(text)
        checker.close()
        if checker.problem or checker.open_tags:
            problem = checker.problem or f'Can\'t find end tag of "{checker.open_tags[-1]}"'
            raise BotApiError(400, f"Bad Request: can't parse entities: {problem}")
        return "".join(checker.plain)
    if parse_mode == "MarkdownV2":
        escaped = False
        for ch in text:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch in MARKDOWN_V2_RESERVED and ch not in "*_~`|[]()":
                raise BotApiError(
                    400,
                    f"Bad Request: can't parse entities: Character '{ch}' is reserved and must "
                    "be escaped with the preceding '\\'",
                )
        return text
    if parse_mode == "Markdown":
        return text
    raise BotApiError(400, f"Bad Request: unsupported parse_mode {parse_mode!r}")


class _TelegramHtml(HTMLParser):
    """Telegram's HTML: a few tags, every ``<`` and ``&`` of the text escaped."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=False)
        self.open_tags: list[str] = []
        self.plain: list[str] = []
        self.problem = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in HTML_TAGS:
            self.problem = self.problem or f'Unsupported start tag "{tag}"'
        self.open_tags.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.open_tags or self.open_tags[-1] != tag:
            self.problem = self.problem or f'Unmatched end tag "{tag}"'
            return
        self.open_tags.pop()

    def handle_data(self, data: str) -> None:
        for ch in "<&":
            if ch in data:
                self.problem = self.problem or f"Unescaped {ch!r} in the text"
        self.plain.append(data)

    def handle_entityref(self, name: str) -> None:
        if name not in {"lt", "gt", "amp", "quot"}:
            self.problem = self.problem or f'Unsupported HTML entity "&{name};"'
        self.plain.append("x")

    def handle_charref(self, name: str) -> None:
        self.plain.append("x")

    def unknown_decl(self, data: str) -> None:
        self.problem = self.problem or "Unsupported HTML declaration"


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
    runner = web.AppRunner(app, shutdown_timeout=1)
    await runner.setup()
    port = _free_port()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    fake.base_url = f"http://127.0.0.1:{port}"
    try:
        yield fake
    finally:
        # A long poll still open ends now rather than holding the shutdown for its timeout.
        fake._closing = True
        fake._arrived.set()
        await runner.cleanup()
