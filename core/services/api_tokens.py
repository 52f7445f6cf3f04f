"""API tokens: one role each, hashed at rest, shown once, revocable.

A token never acts above its creator: it acts with the lower of its own role and the role its
creator holds in the workspace at the time of the request, and it stops working when the creator
is no longer a member (removal also revokes it, see :func:`revoke_members_tokens`).
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from core.db.models import ApiToken, Membership, Role
from core.domain.scope import Actor, instance_level, role_allows
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
    """The workspace's tokens, newest first, each with its creator loaded."""
    return await (
        ApiToken.filter(workspace_id=actor.workspace_id)
        .order_by("-id")
        .prefetch_related("created_by")
    )


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


async def revoke_members_tokens(actor: Actor, user_id: int, now: datetime) -> int:
    """Revoke every live token ``user_id`` made in the workspace (they left it); how many."""
    live = await ApiToken.filter(
        workspace_id=actor.workspace_id, created_by_id=user_id, revoked_at__isnull=True
    ).values_list("id", flat=True)
    if not live:
        return 0
    await ApiToken.filter(id__in=live).update(revoked_at=now)
    for token_id in live:
        await audit.record(
            "api_token.revoked",
            actor=actor.label,
            workspace_id=actor.workspace_id,
            target_type="api_token",
            target_id=token_id,
            reason="creator removed",
        )
    return len(live)


@instance_level("a bearer secret names its own workspace")
async def authenticate(secret: str, now: datetime) -> ApiToken | None:
    """The live token for this bearer value, or None.

    The returned token's ``role`` is the one it acts with for this request: the lower of its
    stored role and its creator's current role (never saved back). A token whose creator is no
    longer a member of its workspace is refused.
    """
    if not secret.startswith(PREFIX):
        return None
    token = await ApiToken.get_or_none(token_hash=token_digest(secret), revoked_at__isnull=True)
    if token is None or token.created_by_id is None:
        return None
    creator = await Membership.get_or_none(
        workspace_id=token.workspace_id, user_id=token.created_by_id
    )
    if creator is None:
        return None
    if not role_allows(creator.role, token.role):
        token.role = creator.role
    if token.last_used_at is None or now - token.last_used_at > LAST_USED_GRANULARITY:
        token.last_used_at = now
        await token.save(update_fields=["last_used_at"])
    return token
