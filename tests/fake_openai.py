"""A small OpenAI-compatible server for tests: records requests, answers from a script.

Start it with ``fake_openai`` (the fixture) and point ``OPENAI_BASE_URL`` at ``server.base_url``.
Queue answers with ``server.reply(...)``, ``server.fail(...)``, ``server.hang(...)`` or
``server.raw(...)``; with nothing queued it answers ``server.default_text``.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web


@dataclass
class Scripted:
    status: int = 200
    body: Any = None  # JSON-able, or str for a raw body
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0


class FakeOpenAI:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.script: list[Scripted] = []
        self.default_text = "Thanks for your message! We will get back to you soon."
        self.base_url = ""
        self._runner: web.AppRunner | None = None
        self._counter = 0

    # ---------------------------------------------------------------- scripting

    def reply(
        self,
        text: str | None,
        *,
        prompt_tokens: int = 50,
        completion_tokens: int = 20,
        finish_reason: str = "stop",
        refusal: str | None = None,
        usage: bool = True,
        delay_s: float = 0.0,
    ) -> None:
        self.script.append(
            Scripted(
                body=self._completion(
                    text, prompt_tokens, completion_tokens, finish_reason, refusal, usage
                ),
                delay_s=delay_s,
            )
        )

    def fail(
        self, status: int, message: str = "boom", *, headers: dict[str, str] | None = None
    ) -> None:
        body = {"error": {"message": message, "type": "server_error", "code": None}}
        self.script.append(Scripted(status=status, body=body, headers=headers or {}))

    def hang(self, seconds: float) -> None:
        """Answer only after ``seconds`` (longer than the client's timeout)."""
        self.script.append(
            Scripted(body=self._completion("late", 1, 1, "stop", None, True), delay_s=seconds)
        )

    def raw(self, body: str, status: int = 200) -> None:
        self.script.append(Scripted(status=status, body=body))

    # ---------------------------------------------------------------- inspection

    @property
    def last(self) -> dict[str, Any]:
        return self.requests[-1]

    # ---------------------------------------------------------------- server

    def _completion(
        self,
        text: str | None,
        prompt_tokens: int,
        completion_tokens: int,
        finish_reason: str,
        refusal: str | None,
        usage: bool,
    ) -> dict[str, Any]:
        self._counter += 1
        body: dict[str, Any] = {
            "id": f"chatcmpl-{self._counter}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": "fake-model",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text, "refusal": refusal},
                    "finish_reason": finish_reason,
                }
            ],
        }
        if usage:
            body["usage"] = {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            }
        return body

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(await request.json())
        self.headers.append(dict(request.headers))
        step = (
            self.script.pop(0)
            if self.script
            else Scripted(body=self._completion(self.default_text, 50, 20, "stop", None, True))
        )
        if step.delay_s:
            await asyncio.sleep(step.delay_s)
        if isinstance(step.body, str):
            return web.Response(
                status=step.status,
                text=step.body,
                content_type="application/json",
                headers=step.headers,
            )
        return web.json_response(step.body, status=step.status, headers=step.headers)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._handle)
        self._runner = web.AppRunner(app, shutdown_timeout=0.1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None
        port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.base_url = f"http://127.0.0.1:{port}/v1"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


def closed_port_url() -> str:
    """A localhost base URL where nothing listens (an AI server that is down)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


@pytest.fixture
async def fake_openai() -> AsyncIterator[FakeOpenAI]:
    server = FakeOpenAI()
    await server.start()
    yield server
    await server.stop()
