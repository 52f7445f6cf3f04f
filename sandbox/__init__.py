"""The sandbox Instagram: a local Graph API lookalike for tests, demos and trying Reelay out.

``Sandbox`` (server) serves Meta's wire format over ``SandboxState`` (the simulated world);
``run_sandbox`` runs it inside ``reelay run`` / ``reelay panel`` when no Meta app is set.
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
