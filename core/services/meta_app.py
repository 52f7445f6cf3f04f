"""The Meta app Reelay talks to: from the environment, or entered in the setup wizard.

A value set in the environment wins over the one stored by the wizard; the
wizard's secrets are stored encrypted in ``KeyValue``. With no app id at all
Reelay stays on its built-in sandbox.

The app serves every workspace of the install (its secret signs every account's webhooks), so
only an instance admin (``User.is_instance_admin``) changes it; workspace owners read it.
"""

from __future__ import annotations

import logging
import re
import secrets
from dataclasses import dataclass

from pydantic import SecretStr

from core.db.models import KeyValue, User
from core.domain.scope import instance_level
from core.errors import Forbidden, ValidationFailed
from core.ports.secrets import SecretStore
from core.services import audit
from core.settings import Settings

logger = logging.getLogger(__name__)

APP_ID_KEY = "meta.app_id"
APP_SECRET_KEY = "meta.app_secret"
FACEBOOK_SECRET_KEY = "meta.facebook_app_secret"
VERIFY_TOKEN_KEY = "meta.verify_token"
WEBHOOK_PATH = "/webhooks/meta"


@dataclass(frozen=True)
class MetaApp:
    """The effective Meta app settings; ``source`` says where the app id came from."""

    app_id: str
    app_secret: str | None
    facebook_app_secret: str | None
    verify_token: str | None
    source: str  # "environment", "panel" or "sandbox"

    @property
    def sandbox(self) -> bool:
        return not self.app_id

    @property
    def webhook_secrets(self) -> list[str]:
        """Secrets that may sign a webhook POST (Instagram's or Facebook's app secret)."""
        return [s for s in (self.app_secret, self.facebook_app_secret) if s]


async def _stored(box: SecretStore) -> dict[str, str]:
    rows = await KeyValue.filter(
        key__in=[APP_ID_KEY, APP_SECRET_KEY, FACEBOOK_SECRET_KEY, VERIFY_TOKEN_KEY]
    )
    values: dict[str, str] = {}
    for row in rows:
        values[row.key] = row.value if row.key == APP_ID_KEY else box.decrypt(row.value)
    return values


def _secret(value: SecretStr | None) -> str | None:
    return value.get_secret_value() or None if value is not None else None


@instance_level("instance settings: the one Meta app every workspace uses")
async def load(settings: Settings, box: SecretStore) -> MetaApp:
    """The Meta app in force: environment first, then what the wizard stored."""
    stored = await _stored(box)
    if settings.meta_app_id:
        app_id, source = settings.meta_app_id, "environment"
    elif stored.get(APP_ID_KEY):
        app_id, source = stored[APP_ID_KEY], "panel"
    else:
        app_id, source = "", "sandbox"
    return MetaApp(
        app_id=app_id,
        app_secret=_secret(settings.meta_app_secret) or stored.get(APP_SECRET_KEY),
        facebook_app_secret=_secret(settings.facebook_app_secret)
        or stored.get(FACEBOOK_SECRET_KEY),
        verify_token=_secret(settings.meta_verify_token) or stored.get(VERIFY_TOKEN_KEY),
        source=source,
    )


def _check_instance_admin(by: User) -> None:
    if not by.is_instance_admin:
        raise Forbidden("Only an instance admin changes the Meta app; it serves every workspace.")


async def _put(key: str, value: str) -> None:
    await KeyValue.update_or_create(defaults={"value": value}, key=key)


@instance_level("instance settings: the one Meta app every workspace uses")
async def save_app(
    box: SecretStore,
    *,
    app_id: str,
    app_secret: str,
    facebook_app_secret: str = "",
    by: User,
    workspace_id: int | None,
) -> None:
    """Store the app entered in the wizard (secrets encrypted). Empty secrets keep the old ones.

    ``by`` must be an instance admin; ``workspace_id`` is where they acted (for the audit log).
    """
    _check_instance_admin(by)
    app_id = app_id.strip()
    errors: dict[str, str] = {}
    if not re.fullmatch(r"\d{5,20}", app_id):
        errors["app_id"] = "The app id is the number shown at the top of Meta's app dashboard."
    stored = await _stored(box)
    if not app_secret.strip() and not stored.get(APP_SECRET_KEY):
        errors["app_secret"] = "Paste the app secret (App settings → Basic)."
    if errors:
        raise ValidationFailed("Check the Meta app details", errors)
    await _put(APP_ID_KEY, app_id)
    if app_secret.strip():
        await _put(APP_SECRET_KEY, box.encrypt(app_secret.strip()))
    if facebook_app_secret.strip():
        await _put(FACEBOOK_SECRET_KEY, box.encrypt(facebook_app_secret.strip()))
    await audit.record(
        "setup.meta_app_saved",
        actor=by.email,
        workspace_id=workspace_id,
        target_type="meta_app",
        app_id=app_id,
    )


@instance_level("instance settings: the one Meta app every workspace uses")
async def use_sandbox(*, by: User, workspace_id: int | None) -> None:
    """Forget the wizard's Meta app: Reelay goes back to the sandbox (unless set in the env)."""
    _check_instance_admin(by)
    await KeyValue.filter(key__in=[APP_ID_KEY, APP_SECRET_KEY, FACEBOOK_SECRET_KEY]).delete()
    await audit.record(
        "setup.sandbox_chosen", actor=by.email, workspace_id=workspace_id, target_type="meta_app"
    )


@instance_level("instance settings: the one Meta app every workspace uses")
async def ensure_verify_token(settings: Settings, box: SecretStore) -> str:
    """The webhook verify token, generated and stored on first need."""
    app = await load(settings, box)
    if app.verify_token:
        return app.verify_token
    token = secrets.token_urlsafe(24)
    await _put(VERIFY_TOKEN_KEY, box.encrypt(token))
    return token


@instance_level("instance settings: the one Meta app every workspace uses")
async def rotate_verify_token(box: SecretStore, *, by: User, workspace_id: int | None) -> str:
    _check_instance_admin(by)
    token = secrets.token_urlsafe(24)
    await _put(VERIFY_TOKEN_KEY, box.encrypt(token))
    await audit.record(
        "setup.verify_token_rotated",
        actor=by.email,
        workspace_id=workspace_id,
        target_type="meta_app",
    )
    return token


def webhook_url(settings: Settings) -> str:
    return settings.base_url + WEBHOOK_PATH
