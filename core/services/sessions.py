"""Server-side sign-in sessions.

The browser's signed cookie carries a random token; the database keeps only its SHA-256,
the user and an expiry. A session ends when its row goes: signing out deletes it, a
password change deletes the user's other sessions, a reset deletes all of them. The
database (not Redis) holds them so that an embedded Redis losing its data signs no one
out and a copied cookie cannot outlive the row.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from core.db.models import User, UserSession

SESSION_TTL = timedelta(days=14)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def start(user: User, now: datetime) -> str:
    """A new session for ``user``; returns the token for the cookie (stored hashed)."""
    await UserSession.filter(user=user, expires_at__lte=now).delete()
    token = secrets.token_urlsafe(32)
    await UserSession.create(
        user=user, token_hash=token_digest(token), expires_at=now + SESSION_TTL
    )
    return token


async def user_of(token: str, now: datetime) -> User | None:
    """The active user signed in with ``token``, or None when the session is gone or expired."""
    found = await UserSession.get_or_none(
        token_hash=token_digest(token), expires_at__gt=now
    ).prefetch_related("user")
    if found is None or not found.user.is_active:
        return None
    return found.user


async def end(token: str) -> None:
    await UserSession.filter(token_hash=token_digest(token)).delete()


async def end_all(user: User, *, keep: str | None = None) -> int:
    """End every session of ``user`` except the one with token ``keep``; how many ended."""
    query = UserSession.filter(user=user)
    if keep is not None:
        query = query.exclude(token_hash=token_digest(keep))
    return await query.delete()
