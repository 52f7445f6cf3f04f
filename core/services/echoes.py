"""Echoes settle the messages whose answer was lost.

Meta sends an echo (``message_echoes``: ``is_echo``, the person as ``recipient``, the text and
the ``mid``) for every message the account sends. A DM or private reply whose answer was lost
may have reached the person; its echo says it did:

- when an answer is lost, the outbox **expects** an echo of that text to that person
  (:func:`expect`: a Redis set per (account, person, text), kept ``EXPECT_FOR``);
- an echo that arrives (:func:`awaiting`, from the automations engine) is remembered for
  ``SEEN_FOR`` and hands back the actions expecting it, which the engine records ``sent``
  (still ``pending`` or ``unconfirmed``: a later echo settles an unconfirmed one too);
- before checking Instagram for an earlier send, the outbox asks :func:`seen` whether the
  echo came already (it may come before the answer was found lost).

An echo made before the action existed is not its echo. The database stays the authority:
an action is recorded sent by a conditional update, so its echo and its answer count once.
Without Redis (flushed) the outbox falls back to reading the conversation.
"""

from __future__ import annotations

import hashlib
import logging
from datetime import datetime, timedelta

from redis.asyncio import Redis

from core.db.models import Conversation, OutboundAction, OutboundStatus
from core.domain.messages import message_text
from core.domain.scope import instance_level
from core.domain.webhooks import InboundEvent

logger = logging.getLogger(__name__)

EXPECT_FOR = timedelta(hours=24)  # Meta delivers most webhooks at once, some hours late
SEEN_FOR = timedelta(hours=1)  # an outbox check follows its lost answer within minutes
# Meta's clock and Reelay's differ a little: an echo may be stamped this much before its action.
CLOCK_SLACK = timedelta(minutes=2)


def _seconds(span: timedelta) -> int:
    return int(span.total_seconds())


def _key(kind: str, account_id: int, igsid: str, text: str) -> str:
    digest = hashlib.sha256(text.strip().encode()).hexdigest()[:24]
    return f"reelay:echo:{kind}:{account_id}:{igsid}:{digest}"


@instance_level("the recipient of an action the outbox already holds")
async def recipient_of(action: OutboundAction) -> str:
    """The IGSID a DM or private reply goes to ('' for other actions or when unknown)."""
    if action.kind == "dm":
        return action.target
    if action.kind != "private_reply":
        return ""
    conversation_id = action.payload.get("conversation_id")
    if not conversation_id:
        return ""
    found = await Conversation.filter(id=conversation_id).first()
    return found.igsid if found else ""


@instance_level("an action the outbox already holds")
async def expect(redis: Redis, action: OutboundAction) -> None:
    """Let the echo of ``action`` (a DM or private reply whose answer was lost) settle it."""
    igsid = await recipient_of(action)
    text = message_text(action.payload.get("message") or {})
    if not igsid or not text.strip():
        return
    key = _key("wanted", action.account_id, igsid, text)
    async with redis.pipeline(transaction=False) as pipe:
        pipe.sadd(key, action.id)
        pipe.expire(key, _seconds(EXPECT_FOR))
        await pipe.execute()


@instance_level("an echo of the account the engine already resolved")
async def awaiting(
    redis: Redis, account_id: int, echo: InboundEvent, now: datetime
) -> list[OutboundAction]:
    """Remember ``echo`` (of a message sent to its recipient); the DMs and private replies
    still open (pending or unconfirmed) that expected it, oldest first: the caller records
    them sent."""
    if not echo.recipient_id or not echo.text.strip():
        return []
    at = echo.timestamp or now
    seen = _key("seen", account_id, echo.recipient_id, echo.text)
    wanted = _key("wanted", account_id, echo.recipient_id, echo.text)
    async with redis.pipeline(transaction=False) as pipe:
        pipe.set(seen, f"{int(at.timestamp() * 1000)}:{echo.mid}", ex=_seconds(SEEN_FOR))
        pipe.smembers(wanted)
        _, members = await pipe.execute()
    if not members:
        return []
    actions = await OutboundAction.filter(
        id__in=[int(m) for m in members],
        account_id=account_id,
        status__in=(OutboundStatus.PENDING, OutboundStatus.UNCONFIRMED),
    ).order_by("id")
    # An echo made before the action existed is an earlier message with the same text.
    found = [a for a in actions if a.created_at - CLOCK_SLACK <= at]
    if found:
        async with redis.pipeline(transaction=False) as pipe:
            pipe.srem(wanted, *(a.id for a in found))
            await pipe.execute()
    return found


@instance_level("checks for a send the outbox already holds")
async def seen(redis: Redis, action: OutboundAction) -> str | None:
    """The mid of the echo of ``action`` when it came already (not before the action was
    made), else None."""
    igsid = await recipient_of(action)
    text = message_text(action.payload.get("message") or {})
    if not igsid or not text.strip():
        return None
    value: bytes | None = await redis.get(_key("seen", action.account_id, igsid, text))
    if value is None:
        return None
    stamp, _, mid = value.decode().partition(":")
    made = datetime.fromtimestamp(int(stamp) / 1000, action.created_at.tzinfo)
    if made < action.created_at - CLOCK_SLACK:
        return None
    return mid
