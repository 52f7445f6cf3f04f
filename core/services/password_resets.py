"""Password reset by emailed link.

A link is single use and expires after an hour; the database keeps only the token's
SHA-256. Asking for a link answers the same whether or not the email has an account.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from tortoise.transactions import in_transaction

from core.db.models import PasswordReset, User
from core.errors import NotFound, ValidationFailed
from core.services import audit, sessions, users

logger = logging.getLogger(__name__)

RESET_TTL = timedelta(hours=1)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class NewReset:
    user: User
    token: str  # sent once by email, never stored


async def request_reset(email: str, now: datetime) -> NewReset | None:
    """A reset link for the active account behind ``email``, or None when there is none."""
    try:
        address = users.normalise_email(email)
    except ValidationFailed:
        return None
    user = await User.get_or_none(email=address, is_active=True)
    if user is None:
        return None
    token = secrets.token_urlsafe(32)
    await PasswordReset.create(
        user=user, token_hash=token_digest(token), expires_at=now + RESET_TTL
    )
    await audit.record(
        "user.password_reset_requested", actor=user.email, target_type="user", target_id=user.id
    )
    return NewReset(user=user, token=token)


async def find(token: str, now: datetime) -> PasswordReset:
    """The open reset behind ``token``; NotFound when unknown, used or expired."""
    found = await PasswordReset.get_or_none(
        token_hash=token_digest(token), used_at__isnull=True, expires_at__gt=now
    ).prefetch_related("user")
    if found is None or not found.user.is_active:
        raise NotFound("This reset link is unknown, used or expired.")
    return found


async def complete(token: str, password: str, now: datetime) -> User:
    """Set a new password from a reset link; the link is used up and every session ends."""
    reset = await find(token, now)
    users.check_password(password, reset.user.email, reset.user.name)
    async with in_transaction():
        claimed = await PasswordReset.filter(id=reset.id, used_at__isnull=True).update(used_at=now)
        if not claimed:
            raise NotFound("This reset link was just used.")
        await PasswordReset.filter(user_id=reset.user_id, used_at__isnull=True).delete()
        await users.set_password(reset.user, password)
        await sessions.end_all(reset.user)
    await audit.record(
        "user.password_reset", actor=reset.user.email, target_type="user", target_id=reset.user_id
    )
    return reset.user


async def reset_by_admin(email: str, password: str) -> tuple[User, int]:
    """``reelay admin reset-password``: set a new password for ``email``'s account and end
    every session of it; returns the user and how many sessions ended."""
    user = await User.get_or_none(email=users.normalise_email(email))
    if user is None:
        raise NotFound(f"No account with the email {email.strip()!r}.")
    users.check_password(password, user.email, user.name)
    async with in_transaction():
        await users.set_password(user, password)
        ended = await sessions.end_all(user)
    await audit.record(
        "user.password_reset", actor="reelay admin", target_type="user", target_id=user.id
    )
    return user, ended
