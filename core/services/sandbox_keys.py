"""What Reelay and its sandbox Instagram agree on, derived from Reelay's own settings.

The sandbox (top-level ``sandbox`` package) knows only Meta's wire format and imports nothing
from Reelay; the runner hands it ``token_secret`` and ``signing_secret`` as plain strings. With
them any Reelay process can check the sandbox's webhooks and connect a workspace's demo account
with a pre-issued token the sandbox accepts without having seen it (``sandbox.state``
checks the same ``SBX.<ig_id>.<generation>.<mac>`` shape).
"""

from __future__ import annotations

import hashlib
import hmac

from core.settings import Settings


def token_secret(secret_key: str) -> str:
    """The key that makes and checks sandbox tokens (derived from Reelay's SECRET_KEY)."""
    return hmac.new(secret_key.encode(), b"reelay-sandbox-tokens", hashlib.sha256).hexdigest()


def signing_secret(settings: Settings, secret_key: str) -> str:
    """The app secret the sandbox signs webhooks with: META_APP_SECRET, else one derived
    from SECRET_KEY (so the webhook endpoint can check sandbox events without a Meta app)."""
    if settings.meta_app_secret is not None and settings.meta_app_secret.get_secret_value():
        return settings.meta_app_secret.get_secret_value()
    return hmac.new(secret_key.encode(), b"reelay-sandbox-app-secret", hashlib.sha256).hexdigest()


def sandbox_token(secret: str, ig_id: str, *, generation: int = 0) -> str:
    """A token the sandbox accepts for ``ig_id`` without having seen it before."""
    mac = hmac.new(secret.encode(), f"{ig_id}:{generation}".encode(), hashlib.sha256)
    return f"SBX.{ig_id}.{generation}.{mac.hexdigest()[:32]}"


def demo_ig_id(workspace_id: int) -> str:
    """The sandbox account id of a workspace's demo account."""
    return f"1784140{workspace_id:010d}"
