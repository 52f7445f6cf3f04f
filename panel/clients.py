"""Who is signing in: the client's address behind trusted proxies, and known devices.

A browser that signed in to an account gets a long-lived signed cookie naming that
account and a random device id. Its later sign-in attempts for that account are throttled
per device instead of per address and account, so someone guessing the password from
elsewhere (or from behind the same proxy) cannot lock the owner out.
"""

from __future__ import annotations

import secrets

from itsdangerous import BadSignature, URLSafeTimedSerializer
from quart import Quart, current_app, request
from quart.wrappers import Response
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware
from werkzeug.wrappers import Response as WerkzeugResponse

from core.settings import Settings
from panel.login_throttle import account_tag

DEVICE_COOKIE = "reelay_device"
DEVICE_MAX_AGE_S = 365 * 24 * 3600


def trust_proxies(app: Quart, settings: Settings) -> None:
    """Take the client address and scheme from X-Forwarded-For/-Proto, but only when the
    connection comes from one of TRUSTED_PROXIES (the nearest untrusted hop wins)."""
    trusted = [entry for entry in settings.trusted_proxies.split(",") if entry]
    app.asgi_app = ProxyHeadersMiddleware(app.asgi_app, trusted_hosts=trusted)  # type: ignore[method-assign,assignment,arg-type]


def client_address() -> str:
    return request.remote_addr or "unknown"


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(str(current_app.secret_key), salt="reelay-known-device")


def known_device(email: str) -> str | None:
    """This browser's device id when it signed in to ``email``'s account before."""
    raw = request.cookies.get(DEVICE_COOKIE)
    if not raw:
        return None
    try:
        tag, device = _serializer().loads(raw, max_age=DEVICE_MAX_AGE_S)
    except (BadSignature, ValueError, TypeError):
        return None
    return str(device) if tag == account_tag(email) else None


def remember_device(response: Response | WerkzeugResponse, email: str, device: str | None) -> None:
    """Mark this browser as one that signed in to ``email``'s account."""
    value = _serializer().dumps([account_tag(email), device or secrets.token_urlsafe(16)])
    response.set_cookie(
        DEVICE_COOKIE,
        value,
        max_age=DEVICE_MAX_AGE_S,
        httponly=True,
        secure=bool(current_app.config["SESSION_COOKIE_SECURE"]),
        samesite="Lax",
    )
