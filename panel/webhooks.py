"""Meta's webhook endpoint: verification handshake and signed event deliveries."""

from __future__ import annotations

import hashlib
import hmac
import logging

from quart import Blueprint, Response, current_app, request

from core.domain.webhooks import parse_body
from core.services.inbox import record_events
from core.settings import Settings
from panel.security import csrf_exempt, public

logger = logging.getLogger(__name__)

blueprint = Blueprint("webhooks", __name__)

SIGNATURE_HEADER = "X-Hub-Signature-256"


def _secrets(settings: Settings) -> list[bytes]:
    found = [settings.meta_app_secret, settings.facebook_app_secret]
    return [s.get_secret_value().encode() for s in found if s is not None and s.get_secret_value()]


def signature_valid(body: bytes, header: str | None, secrets: list[bytes]) -> bool:
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
    settings: Settings = current_app.extensions["reelay.settings"]
    expected = settings.meta_verify_token
    token = request.args.get("hub.verify_token", "")
    challenge = request.args.get("hub.challenge", "")
    if (
        expected is None
        or not expected.get_secret_value()
        or request.args.get("hub.mode", "subscribe") != "subscribe"
        or not hmac.compare_digest(token.encode(), expected.get_secret_value().encode())
    ):
        return Response("forbidden", status=403, content_type="text/plain")
    return Response(challenge, status=200, content_type="text/plain")


@blueprint.post("/webhooks/meta")
@public
@csrf_exempt
async def receive() -> Response:
    """Verify the signature over the raw body, record new events, queue them, answer 200."""
    settings: Settings = current_app.extensions["reelay.settings"]
    body = await request.get_data(cache=False, as_text=False)
    if not signature_valid(body, request.headers.get(SIGNATURE_HEADER), _secrets(settings)):
        logger.warning("webhook refused: missing or invalid %s", SIGNATURE_HEADER)
        return Response("invalid signature", status=403, content_type="text/plain")
    container = current_app.extensions["reelay.container"]
    events = parse_body(body)
    if events:
        await record_events(events, container.queue, container.clock.now())
    return Response("ok", status=200, content_type="text/plain")
