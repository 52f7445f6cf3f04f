"""Meta's webhook endpoint: verification handshake and signed event deliveries."""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from quart import Blueprint, Quart, Response, current_app, request

from core.domain.webhooks import parse_body
from core.services import meta_app
from core.services.sandbox_keys import signing_secret
from core.settings import Settings
from panel.security import public
from panel.services import EXTENSION as SERVICES, services_of

if TYPE_CHECKING:
    from hypercorn.typing import (
        ASGIReceiveCallable,
        ASGISendCallable,
        HTTPResponseBodyEvent,
        HTTPResponseStartEvent,
        Scope,
    )

logger = logging.getLogger(__name__)

blueprint = Blueprint("webhooks", __name__)

SIGNATURE_HEADER = "X-Hub-Signature-256"


KEYS_TTL_S = 5.0
REFUSALS_LOGGED_EVERY_S = 60.0


class RefusalLog:
    """Refused deliveries, logged as one line per interval with their count: anyone can send
    unsigned POSTs, and a line for each would flood the log."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.count = 0
        self.logged_at: float | None = None

    def refused(self) -> None:
        self.count += 1
        now = self.clock()
        if self.logged_at is not None and now - self.logged_at < REFUSALS_LOGGED_EVERY_S:
            return
        logger.warning(
            "%d webhook deliveries refused since the last report: missing or invalid %s",
            self.count,
            SIGNATURE_HEADER,
        )
        self.count = 0
        self.logged_at = now


@dataclass(frozen=True)
class WebhookKeys:
    """What checks Meta's calls: the verify token and the secrets that may sign a POST."""

    verify_token: str | None
    secrets: tuple[bytes, ...]
    loaded_at: float


async def webhook_keys(app: Quart) -> WebhookKeys:
    """The keys in force: environment, the Meta app entered in the wizard, or the sandbox's.

    Kept for a few seconds so the hot path does not read the database on every delivery;
    a change made in the wizard applies within ``KEYS_TTL_S``.
    """
    cached: WebhookKeys | None = app.extensions.get("reelay.webhook_keys")
    now = time.monotonic()
    if cached is not None and now - cached.loaded_at < KEYS_TTL_S:
        return cached
    container = services_of(app).container
    settings: Settings = container.settings
    meta = await meta_app.load(settings, container.secrets)
    secrets = list(meta.webhook_secrets)
    if meta.sandbox:
        secrets.append(signing_secret(settings, container.secret_key))
    keys = WebhookKeys(
        verify_token=meta.verify_token,
        secrets=tuple(dict.fromkeys(s.encode() for s in secrets)),
        loaded_at=now,
    )
    app.extensions["reelay.webhook_keys"] = keys
    return keys


def signature_valid(body: bytes, header: str | None, secrets: Sequence[bytes]) -> bool:
    """True when ``header`` is ``sha256=<hex HMAC of body>`` under one of ``secrets``."""
    if not header or not header.startswith("sha256="):
        return False
    sent = header[len("sha256=") :].strip().lower().encode()
    valid = False
    for secret in secrets:
        expected = hmac.new(secret, body, hashlib.sha256).hexdigest().encode()
        # Check every secret, so timing does not tell which one matched.
        valid |= hmac.compare_digest(expected, sent)
    return valid


@blueprint.get("/webhooks/meta")
@public
async def verify() -> Response:
    """Meta's subscription handshake: echo hub.challenge when the verify token matches."""
    expected = (await webhook_keys(current_app)).verify_token
    token = request.args.get("hub.verify_token", "")
    challenge = request.args.get("hub.challenge", "")
    if (
        not expected
        or request.args.get("hub.mode", "subscribe") != "subscribe"
        or not hmac.compare_digest(token.encode(), expected.encode())
    ):
        return Response("forbidden", status=403, content_type="text/plain")
    return Response(challenge, status=200, content_type="text/plain")


MAX_BODY = 20 * 1024 * 1024  # Meta batches up to 1000 events


def install(app: Quart) -> None:
    """Register the handshake and answer Meta's POSTs straight from ASGI.

    Meta's deliveries come in bursts and need nothing of the panel's request machinery
    (sessions, sign-in, CSRF, templates): skipping it more than doubles what one process
    takes. The GET handshake and everything else go through Quart as usual.
    """
    app.register_blueprint(blueprint)
    refusals = app.extensions["reelay.webhook_refusals"] = RefusalLog()
    inner = app.asgi_app

    async def asgi(scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable) -> None:
        """``POST /webhooks/meta``: check the signature over the raw body, then answer 200
        once the delivery is stored: in the inbox stream, or parsed once and its events in
        the database (ARCHITECTURE.md, "Data path 1")."""
        if not (
            scope["type"] == "http"
            and scope["method"] == "POST"
            and scope["path"] == "/webhooks/meta"
        ):
            await inner(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            # An HTTP request receives its body or http.disconnect, nothing else.
            if message["type"] != "http.request":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > MAX_BODY:
                await _answer(send, 413, "too large")
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        if SERVICES not in app.extensions:  # only before startup has opened the services
            await _answer(send, 503, "starting")
            return
        signature = None
        for name, value in scope["headers"]:
            if name == b"x-hub-signature-256":
                signature = value.decode("latin-1")
        body = b"".join(chunks)
        if not signature_valid(body, signature, (await webhook_keys(app)).secrets):
            refusals.refused()
            await _answer(send, 403, "invalid signature")
            return
        services = services_of(app)
        if services.inbox_stream is not None:
            # Kept in Redis (append-only file) for the worker's writer: answered at once.
            await services.inbox_stream.append(body)
        elif events := parse_body(body):
            await services.inbox_writer.submit(events)
        await _answer(send, 200, "ok")

    app.asgi_app = asgi  # type: ignore[method-assign]  # how Quart takes ASGI middleware


async def _answer(send: ASGISendCallable, status: int, text: str) -> None:
    data = text.encode()
    start: HTTPResponseStartEvent = {
        "type": "http.response.start",
        "status": status,
        "headers": [
            (b"content-type", b"text/plain; charset=utf-8"),
            (b"content-length", str(len(data)).encode()),
            (b"x-content-type-options", b"nosniff"),
        ],
    }
    body: HTTPResponseBodyEvent = {"type": "http.response.body", "body": data, "more_body": False}
    await send(start)
    await send(body)
