"""Request bodies: how much, when and how fast.

Every request may send up to ``BODY_LIMIT`` bytes. Only views marked ``accepts_upload`` take
more, and only once the caller is signed in (a panel session or an API token): the limit is
raised by a hook that runs before anything reads the body. The body is read only as fast as
the view consumes it (multipart files are spooled to disk by the form parser), so an upload is
never held whole in memory, and all of it must arrive within ``BODY_TIMEOUT`` seconds.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Generator
from typing import Any, TypeVar

from quart import Quart, current_app, request
from quart.asgi import ASGIHTTPConnection
from quart.wrappers.request import Body, Request
from werkzeug.exceptions import RequestEntityTooLarge, RequestTimeout

from core.services import api_tokens
from panel.security import load_user
from panel.services import services

F = TypeVar("F", bound=Callable[..., Awaitable[Any]])

BODY_LIMIT = 1024 * 1024
# The largest file a view may take (a 300 MB video) and its multipart framing.
UPLOAD_LIMIT = 301 * 1024 * 1024
BODY_TIMEOUT_S = 120
# What the server reads ahead of a view that has not asked for the body yet.
READ_AHEAD = 256 * 1024


class LimitedBody(Body):
    """A request body that counts every byte received against a limit that may be raised,
    and asks for more only while someone reads it."""

    def __init__(self, expected_content_length: int | None, max_content_length: int | None) -> None:
        # The announced length is checked on first read, after the limit may have been raised.
        super().__init__(None, None)
        self.expected = expected_content_length
        self.limit = max_content_length
        self.received = 0
        self._whole = False
        self._reading = False
        self._wanted = asyncio.Event()
        self._wanted.set()

    def _start_reading(self) -> None:
        self._reading = True
        if self._over_limit(max(self.expected or 0, self.received)):
            self._refuse()
        self._wanted.set()

    def _over_limit(self, size: int) -> bool:
        return self.limit is not None and size > self.limit

    def _refuse(self) -> None:
        self._must_raise = RequestEntityTooLarge()
        self._data.clear()
        self.set_complete()

    async def __anext__(self) -> bytes:
        self._start_reading()
        try:
            return await super().__anext__()
        except StopAsyncIteration:
            # Quart's body ends the iteration quietly when the limit is passed mid-way.
            if self._must_raise is not None:
                raise self._must_raise from None
            raise

    def __await__(self) -> Generator[Any, None, Any]:
        self._whole = True
        self._start_reading()
        return super().__await__()

    def append(self, data: bytes) -> None:
        if not data or self._must_raise is not None:
            return
        self.received += len(data)
        # Before anyone reads, the limit may still be raised (and little is read ahead).
        if self._reading and self._over_limit(self.received):
            self._refuse()
            return
        super().append(data)
        if not self._whole and len(self._data) >= READ_AHEAD:
            self._wanted.clear()

    def fail(self, error: Exception) -> None:
        """End the body with ``error``, raised to whoever reads it."""
        self._must_raise = error
        self.set_complete()

    @property
    def complete(self) -> bool:
        return self._complete.is_set()

    async def wanted(self) -> None:
        """Return once the server should read more of the body from the client."""
        await self._wanted.wait()


class LimitedRequest(Request):
    body_class = LimitedBody


class LimitedConnection(ASGIHTTPConnection):
    """Quart's HTTP connection, reading the body only as it is consumed and within a deadline."""

    async def handle_messages(self, request: Request, receive: Any) -> None:
        body = request.body
        assert isinstance(body, LimitedBody)
        timeout = request.body_timeout
        deadline = None if timeout is None else asyncio.get_running_loop().time() + timeout
        while True:
            if not body.complete:
                await body.wanted()
            try:
                # asyncio.timeout, not wait_for: wait_for swallows a cancellation that
                # arrives together with a message, and the connection would never end.
                async with asyncio.timeout_at(None if body.complete else deadline):
                    message = await receive()
            except TimeoutError:
                body.fail(RequestTimeout())
                deadline = None
                continue
            if message["type"] == "http.request":
                body.append(message.get("body", b""))
                if not message.get("more_body", False):
                    body.set_complete()
            elif message["type"] == "http.disconnect":
                return


def accepts_upload(view: F) -> F:
    """Mark a view that takes files larger than ``BODY_LIMIT`` from a signed-in caller."""
    view.accepts_upload = True  # type: ignore[attr-defined]
    return view


async def _signed_in(view: Any) -> bool:
    if getattr(view, "api", False):
        scheme, _, secret = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not secret.strip():
            return False
        clock = services().container.clock
        return await api_tokens.authenticate(secret.strip(), clock.now()) is not None
    return await load_user() is not None


async def allow_uploads_after_sign_in() -> None:
    """Raise the body limit for an upload view once the caller is known to be signed in."""
    view = current_app.view_functions.get(request.endpoint or "")
    if view is None or not getattr(view, "accepts_upload", False):
        return
    if await _signed_in(view):
        body = request.body
        assert isinstance(body, LimitedBody)
        body.limit = UPLOAD_LIMIT
        request.max_content_length = UPLOAD_LIMIT


def install(app: Quart) -> None:
    """Apply the limits to ``app``; the hook runs before any other reads the body."""
    app.request_class = LimitedRequest
    app.asgi_http_class = LimitedConnection
    app.config.update(MAX_CONTENT_LENGTH=BODY_LIMIT, BODY_TIMEOUT=BODY_TIMEOUT_S)
    app.before_request(allow_uploads_after_sign_in)
