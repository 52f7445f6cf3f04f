"""Idempotency keys of the JSON API: a POST retried with its key answers what the first did.

The first request with a key inserts its row (unique per workspace and key) before it runs,
so a second one arriving meanwhile finds the row without an answer and is refused
(``KeyInUse``) instead of running beside it. Once the first has answered, its status and body
are stored and every retry within ``KEEP`` gets them back unchanged; the same key with another
request (method, path or body) is refused (``KeyReused``). A request that ended in an
exception or a server error gives its key back, so a retry runs again: nothing was stored.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from tortoise.exceptions import IntegrityError

from core.db.models import IdempotentRequest
from core.domain.scope import Actor, instance_level
from core.errors import Conflict, ValidationFailed

KEEP = timedelta(hours=24)
MAX_KEY_LENGTH = 255


class KeyInUse(Conflict):
    """The first request with this key has not answered yet."""


class KeyReused(ValidationFailed):
    """The key was used for a different request."""


@dataclass(frozen=True)
class StoredAnswer:
    status: int
    content_type: str
    body: str


def fingerprint(method: str, path: str, query: bytes, body: bytes) -> str:
    """What makes two requests the same request."""
    digest = hashlib.sha256()
    for part in (method.upper().encode(), path.encode(), query, body):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


def check_key(key: str) -> str | None:
    """Why ``key`` cannot be an idempotency key, or None when it can."""
    if not key or len(key) > MAX_KEY_LENGTH:
        return f"An Idempotency-Key has 1 to {MAX_KEY_LENGTH} characters."
    if not key.isprintable() or not key.isascii():
        return "An Idempotency-Key is printable ASCII text (a UUID, say)."
    return None


async def begin(actor: Actor, key: str, print_: str, now: datetime) -> StoredAnswer | None:
    """Claim ``key`` for this request (None: run it), or the answer of the first request.

    Raises ``KeyInUse`` while the first request runs and ``KeyReused`` when the key was
    given with another request.
    """
    for _ in range(2):
        try:
            await IdempotentRequest.create(
                workspace_id=actor.workspace_id, key=key, fingerprint=print_, created_at=now
            )
            return None
        except IntegrityError:
            found = await IdempotentRequest.get_or_none(workspace_id=actor.workspace_id, key=key)
        if found is None:
            continue  # given back meanwhile
        if found.created_at <= now - KEEP:
            await IdempotentRequest.filter(id=found.id).delete()
            continue
        if found.fingerprint != print_:
            raise KeyReused(
                "This Idempotency-Key was used with a different request; "
                "use a new key for a new request.",
                {"Idempotency-Key": "used with a different request"},
            )
        if found.status is None:
            raise KeyInUse(
                "A request with this Idempotency-Key is still being processed; "
                "retry once it has answered."
            )
        return StoredAnswer(found.status, found.content_type, found.body)
    raise KeyInUse("A request with this Idempotency-Key is still being processed.")


async def finish(actor: Actor, key: str, answer: StoredAnswer) -> None:
    """Store the first request's answer for the retries."""
    await IdempotentRequest.filter(workspace_id=actor.workspace_id, key=key).update(
        status=answer.status, content_type=answer.content_type[:100], body=answer.body
    )


async def give_back(actor: Actor, key: str) -> None:
    """The request stored nothing (it failed): a retry with the key runs again."""
    await IdempotentRequest.filter(
        workspace_id=actor.workspace_id, key=key, status__isnull=True
    ).delete()


@instance_level("a cron forgetting every workspace's keys older than a day")
async def forget_old(now: datetime) -> int:
    """Delete the keys kept longer than ``KEEP``."""
    return await IdempotentRequest.filter(created_at__lte=now - KEEP).delete()
