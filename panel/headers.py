"""Security headers on every panel response.

The Content-Security-Policy allows scripts and styles only from the panel's own static
files: no inline script, no inline event handlers, no eval (behaviour that used inline
attributes lives in static/reelay.js). The one exception is a per-response style nonce,
offered to libraries that inject a <style> element (FullCalendar reads it from the
``csp-nonce`` meta tag). JSON data blocks (``<script type="application/json">``)
are not executed, so the policy does not concern them. Images and video may come from
Instagram's CDN, hence ``https:`` there. Pages are never stored by browsers or proxies
(``no-store``): they show API tokens just made, leads' contact details and the like.
"""

from __future__ import annotations

import secrets

from quart import Response, g

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "img-src 'self' data: blob: https:",
        "media-src 'self' blob: https:",
        "font-src 'self' data:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)

PERMISSIONS_POLICY = ", ".join(
    f"{feature}=()"
    for feature in (
        "camera",
        "microphone",
        "geolocation",
        "payment",
        "usb",
        "serial",
        "bluetooth",
        "midi",
        "magnetometer",
        "gyroscope",
        "accelerometer",
    )
)

HSTS = "max-age=31536000"


def style_nonce() -> str:
    """This response's nonce for injected <style> elements (made on first use)."""
    if "style_nonce" not in g:
        g.style_nonce = secrets.token_urlsafe(18)
    nonce: str = g.style_nonce
    return nonce


def _policy() -> str:
    nonce = g.get("style_nonce")
    styles = f"style-src 'self' 'nonce-{nonce}'" if nonce else "style-src 'self'"
    return f"{CONTENT_SECURITY_POLICY}; {styles}"


def harden(response: Response, *, https: bool, endpoint: str | None) -> Response:
    """Add the security headers (a view's own choice of any of them is kept)."""
    headers = response.headers
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("Referrer-Policy", "same-origin")
    headers.setdefault("Content-Security-Policy", _policy())
    headers.setdefault("Permissions-Policy", PERMISSIONS_POLICY)
    if https:
        headers.setdefault("Strict-Transport-Security", HSTS)
    if endpoint != "static":
        headers.setdefault("Cache-Control", "no-store")
    return response
