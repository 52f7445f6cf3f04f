"""Echoes settle the messages whose answer was lost.

Meta sends an echo (``message_echoes``: ``is_echo``, the person as ``recipient``, the text and
the ``mid``) for every message the account sends. A DM or private reply whose answer was lost
may have reached the person; its echo says it did:

- when an answer is lost, the outbox **expects** an echo of that text to that person
  (:func:`expect`: a Redis set per (account, person, text), kept ``EXPECT_FOR``);
- the webhook inbox **notes** each echo as it arrives (:func:`note`: remembered for
  ``SEEN_FOR``) and queues for the engine only those a send waits for: other echoes cost
  one Redis round trip per webhook, no job;
- the engine hands such an echo to :func:`awaiting`, which gives back the actions expecting
  it; the engine records them ``sent`` (still ``pending`` or ``unconfirmed``: a later echo
  settles an unconfirmed one too);
- before checking Instagram for an earlier send, the outbox asks :func:`seen` whether the
  echo came already (it may come before the answer was found lost);
- before each DM or private reply, the outbox marks it Reelay's (:meth:`Marks.sending`): an echo
  without such a mark was written in the Instagram app, and the inbox queues it too (the
  engine stores it and a teammate has the conversation, ``core.services.conversation_log``).

An echo made before the action existed is not its echo. The database stays the authority:
an action is recorded sent by a conditional update, so its echo and its answer count once.
Without Redis (flushed) the outbox falls back to reading the conversation.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from datetime import datetime, timedelta

from redis.asyncio import Redis

from core.db.bulk import GroupCommit
from core.db.models import Conversation, InstagramAccount, OutboundAction, OutboundStatus
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


def _key(kind: str, entry_id: str, igsid: str, text: str) -> str:
    """Per webhook entry id (the account's IG id, or its Page's under Facebook Login)."""
    digest = hashlib.sha256(text.strip().encode()).hexdigest()[:24]
    return f"reelay:echo:{kind}:{entry_id}:{igsid}:{digest}"


async def _entries(account_id: int) -> list[str]:
    """The ids Meta's webhook entries name the account by."""
    rows = await InstagramAccount.filter(id=account_id).values_list("ig_id", "page_id")
    return [i for row in rows for i in row if i]


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
    async with redis.pipeline(transaction=False) as pipe:
        for entry_id in await _entries(action.account_id):
            key = _key("wanted", entry_id, igsid, text)
            pipe.sadd(key, action.id)
            pipe.expire(key, _seconds(EXPECT_FOR))
        await pipe.execute()


class Marks:
    """Marks the outbox's DMs and private replies as Reelay's before they go (see
    :meth:`sending`); sends starting together are marked together, in one pipeline."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._marks: GroupCommit[tuple[list[str], int], None] = GroupCommit(self._mark_many)

    @instance_level("the outbox, for a DM or private reply it is about to send")
    async def sending(
        self,
        account: InstagramAccount,
        action: OutboundAction,
        conversation: Conversation | None = None,
    ) -> None:
        """Mark ``action`` as Reelay's before it goes: its echo is then not taken for a message
        written in the Instagram app (by its text, and by its person for an echo without
        text). ``conversation``: the person's, as the caller read it (saves a query)."""
        if conversation is not None and conversation.id == action.payload.get("conversation_id"):
            igsid = conversation.igsid if action.kind != "public_reply" else ""
        else:
            igsid = await recipient_of(action)
        if not igsid:
            return
        text = message_text(action.payload.get("message") or {})
        keys = {
            key
            for entry_id in (i for i in (account.ig_id, account.page_id) if i)
            for key in (_key("mine", entry_id, igsid, text), _key("mine", entry_id, igsid, ""))
        }
        await self._marks.submit((sorted(keys), action.id))

    async def _mark_many(self, marks: list[tuple[list[str], int]]) -> list[None]:
        async with self._redis.pipeline(transaction=False) as pipe:
            for keys, action_id in marks:
                for key in keys:
                    pipe.set(key, action_id, ex=_seconds(EXPECT_FOR))
            await pipe.execute()
        return [None] * len(marks)


def _mine(echo: InboundEvent) -> str:
    """The mark :func:`sending` left for ``echo`` (by person when the echo has no text)."""
    return _key("mine", echo.account_id, echo.recipient_id, echo.text)


@instance_level("the engine, for an echo of an account it already resolved")
async def sent_by_reelay(redis: Redis, echo: InboundEvent) -> bool:
    """Whether Reelay sent the message ``echo`` echoes (else it was written in the app)."""
    return bool(await redis.exists(_mine(echo)))


@instance_level("the webhook inbox: Meta's echoes name accounts, not workspaces")
async def note(redis: Redis, echoes: Sequence[InboundEvent], now: datetime) -> set[str]:
    """Remember ``echoes`` as they arrive; the dedupe keys of those the engine must see: a
    send whose answer was lost waits for it (the engine settles it: :func:`awaiting`), or
    Reelay did not send it (written in the Instagram app: a teammate has the conversation)."""
    keyed = [e for e in echoes if e.recipient_id]
    if not keyed:
        return set()
    async with redis.pipeline(transaction=False) as pipe:
        for echo in keyed:
            at = int((echo.timestamp or now).timestamp() * 1000)
            seen = _key("seen", echo.account_id, echo.recipient_id, echo.text)
            pipe.set(seen, f"{at}:{echo.mid}", ex=_seconds(SEEN_FOR))
            pipe.exists(_key("wanted", echo.account_id, echo.recipient_id, echo.text))
            pipe.exists(_mine(echo))
        answers = await pipe.execute()
    wanted, mine = answers[1::3], answers[2::3]
    return {
        echo.dedupe_key
        for echo, awaited, ours in zip(keyed, wanted, mine, strict=True)
        if (awaited and echo.text.strip()) or not ours
    }


@instance_level("an echo of the account the engine already resolved")
async def awaiting(
    redis: Redis, account_id: int, echo: InboundEvent, now: datetime
) -> list[OutboundAction]:
    """The DMs and private replies of account ``account_id`` still open (pending or
    unconfirmed) that expected ``echo``, oldest first: the caller records them sent."""
    if not echo.recipient_id or not echo.text.strip():
        return []
    at = echo.timestamp or now
    wanted = _key("wanted", echo.account_id, echo.recipient_id, echo.text)
    members: set[bytes] = await redis.smembers(wanted)  # type: ignore[misc]
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
    keys = [_key("seen", e, igsid, text) for e in await _entries(action.account_id)]
    for value in await redis.mget(keys) if keys else []:
        if value is None:
            continue
        stamp, _, mid = value.decode().partition(":")
        made = datetime.fromtimestamp(int(stamp) / 1000, action.created_at.tzinfo)
        if made >= action.created_at - CLOCK_SLACK:
            return str(mid)
    return None
