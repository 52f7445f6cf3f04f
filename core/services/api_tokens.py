"""API tokens: one role each, hashed at rest, shown once, revocable."""

from __future__ import annotations

import hashlib
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from core.db.models import ApiToken, Role
from core.domain.scope import Actor, instance_level
from core.errors import Forbidden, NotFound, ValidationFailed
from core.services import audit

logger = logging.getLogger(__name__)

PREFIX = "rly_"
# Writing last_used_at on every call would make each API request a write.
LAST_USED_GRANULARITY = timedelta(minutes=1)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class NewToken:
    token: ApiToken
    secret: str  # the bearer value, shown once


async def list_tokens(actor: Actor) -> list[ApiToken]:
    return await ApiToken.filter(workspace_id=actor.workspace_id).order_by("-id")


async def create_token(actor: Actor, name: str, role: Role) -> NewToken:
    """A new token acting with ``role`` (never above the creator's own role)."""
    name = name.strip()
    if not name or len(name) > 80:
        raise ValidationFailed("Invalid name", {"name": "Give the token a name (1-80 characters)."})
    if not actor.allows(Role.ADMIN):
        raise Forbidden("Only owners and admins create API tokens.")
    if not actor.allows(role):
        raise ValidationFailed("Role too high", {"role": "A token cannot outrank its creator."})
    secret = PREFIX + secrets.token_urlsafe(32)
    token = await ApiToken.create(
        workspace_id=actor.workspace_id,
        name=name,
        token_hash=token_digest(secret),
        role=role,
        created_by_id=actor.user_id,
    )
    await audit.record(
        "api_token.created",
        actor=actor.label,
        workspace_id=actor.workspace_id,
        target_type="api_token",
        target_id=token.id,
        name=name,
        role=role.value,
    )
    return NewToken(token=token, secret=secret)


async def revoke_token(actor: Actor, token_id: int, now: datetime) -> None:
    if not actor.allows(Role.ADMIN):
        raise Forbidden("Only owners and admins revoke API tokens.")
    updated = await ApiToken.filter(
        id=token_id, workspace_id=actor.workspace_id, revoked_at__isnull=True
    ).update(revoked_at=now)
    if not updated:
        raise NotFound("No such active token.")
    await audit.record(
        "api_token.revoked",
        actor=actor.label,
        workspace_id=actor.workspace_id,
        target_type="api_token",
        target_id=token_id,
    )


@instance_level("a bearer secret names its own workspace")
async def authenticate(secret: str, now: datetime) -> ApiToken | None:
    """The live token for this bearer value, or None."""
    if not secret.startswith(PREFIX):
        return None
    token = await ApiToken.get_or_none(token_hash=token_digest(secret), revoked_at__isnull=True)
    if token is None:
        return None
    if token.last_used_at is None or now - token.last_used_at > LAST_USED_GRANULARITY:
        token.last_used_at = now
        await token.save(update_fields=["last_used_at"])
    return token
