"""Each conversation's messages as they happen, and whether a teammate has the conversation.

Kept by the engine and the outbox (instance level: they already hold the account), read by
the inbox (:mod:`core.services.conversations`):

- every message in or out is a ``Message`` row saying who wrote it (``MessageSource``), and
  moves the conversation's last message (the inbox lists by it) and status (a person's
  message makes it ``waiting`` on the team);
- each one records a domain event, so the live inbox and the chat mirrors can follow:
  ``conversation.message_received`` (an inbound message) and ``conversation.message_sent``
  (an outgoing one, whoever wrote it), both with the facts ``conversation_id``,
  ``message_id``, ``account_id``, ``direction``, ``source`` and ``text`` (and ``author_id``
  for a teammate's message);
- a conversation is **taken over** while ``paused_until`` is ahead: every automation stays
  silent for the person (the engine records the skip as :data:`TEAMMATE_HAS_IT`). A reply
  from the inbox or from chat takes it over; so does one sent in the Instagram app (an echo
  Reelay did not send, :func:`app_echo`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from core.db.bulk import insert_many, insert_many_ids, insert_returning, update_many
from core.db.conversations import ConversationStatus, MessageSource
from core.db.models import Conversation, DomainEvent, InstagramAccount, Message
from core.domain import alerts
from core.domain.scope import instance_level
from core.domain.webhooks import InboundEvent
from core.errors import ReelayError

logger = logging.getLogger(__name__)

TEAMMATE_HAS_IT = "a teammate has this conversation"
TAKE_OVER_FOR = timedelta(hours=24)
PREVIEW_CHARS = 200


def paused(conversation: Conversation, now: datetime) -> bool:
    """Whether a teammate has ``conversation`` at ``now`` (automations stay silent)."""
    return conversation.paused_until is not None and conversation.paused_until > now


@instance_level("the engine and the outbox, for a person of an account they already hold")
async def paused_for(account_id: int, igsid: str, now: datetime) -> bool:
    """Whether a teammate has the conversation of ``igsid`` on account ``account_id``."""
    return await Conversation.filter(
        account_id=account_id, igsid=igsid, paused_until__gt=now
    ).exists()


def inbound_text(event: InboundEvent) -> str:
    """What the inbox shows of an inbound message: its text, else what it carried."""
    if event.text:
        return event.text
    if event.attachment_types:
        return f"[{', '.join(event.attachment_types)}]"
    return f"[{event.kind.value}]"


def _preview(text: str) -> str:
    return " ".join(text.split())[:PREVIEW_CHARS]


def _facts(account: InstagramAccount | None, message: Mapping[str, Any]) -> dict[str, Any]:
    """A message's facts for its domain event (``message``: its ``Message`` columns and id)."""
    facts: dict[str, Any] = {
        "conversation_id": message["conversation_id"],
        "message_id": message["id"],
        "direction": message["direction"],
        "source": message["source"],
        "text": message["text"][:1000],
    }
    if account is not None:
        facts["account_id"] = account.id
        facts["username"] = account.username
    if message.get("author_id") is not None:
        facts["author_id"] = message["author_id"]
    return facts


def _event_row(workspace_id: int, kind: str, facts: dict[str, Any]) -> dict[str, Any]:
    """A ``DomainEvent`` row, written with the batch's others in one statement."""
    return {
        "workspace_id": workspace_id,
        "kind": kind,
        "payload": facts,
        "created_at": datetime.now(UTC),
        "delivered_at": None,
    }


def received(
    conversation: Conversation, event: InboundEvent, at: datetime
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The person's message in ``conversation``: its ``Message`` row (for
    :func:`record_received`) and the conversation's changes (its last message, and 'waiting'
    on the team)."""
    text = inbound_text(event)
    row = {
        "conversation_id": conversation.id,
        "direction": "in",
        "source": MessageSource.FOLLOWER.value,
        "author_id": None,
        "mid": event.mid or None,
        "text": text,
        "media_url": event.shared_url,
        "rule_id": None,
        "variant": "",
        # Stamped as they arrive (``auto_now_add``): a thread reads in that order.
        "created_at": datetime.now(UTC),
    }
    changes = {
        "last_message_at": at,
        "last_message_text": _preview(text),
        "status": ConversationStatus.WAITING,
    }
    return row, changes


@instance_level("the engine, for people of accounts it already holds")
async def record_received(rows: Sequence[tuple[InstagramAccount, dict[str, Any]]]) -> None:
    """Store people's messages (``Message`` rows from :func:`received`, each with its
    account) in one statement, and their events in another."""
    if not rows:
        return
    ids = await insert_many_ids(Message, [row for _, row in rows])
    await insert_many(
        DomainEvent,
        [
            _event_row(
                account.workspace_id,
                alerts.CONVERSATION_MESSAGE_RECEIVED,
                _facts(account, {**row, "id": message_id}),
            )
            for (account, row), message_id in zip(rows, ids, strict=True)
        ],
    )


@instance_level("the outbox, for sends of actions it already holds")
async def sent(rows: Sequence[dict[str, Any]], now: datetime) -> list[int]:
    """Record outgoing messages (``rows``: Message columns with ``conversation_id``, and
    ``account_id`` or the ``account`` itself when the caller knows it) in one statement, move
    their conversations' last message, and record their events. The messages' ids, in the
    rows' order."""
    if not rows:
        return []
    columns = ("conversation_id", "direction", "source", "author_id", "mid", "text")
    # Stamped like the person's messages (``auto_now_add``): a thread reads in that order.
    stamped = datetime.now(UTC)
    full = [
        {
            **{name: row.get(name) for name in columns},
            "media_url": row.get("media_url") or "",
            "rule_id": row.get("rule_id"),
            "variant": row.get("variant") or "",
            "created_at": stamped,
        }
        for row in rows
    ]
    ids = await insert_many_ids(Message, full)
    messages: list[dict[str, Any]] = [
        {**row, "id": message_id} for message_id, row in zip(ids, full, strict=True)
    ]
    account_of: dict[int, int] = {
        row["conversation_id"]: row.get("account_id") or 0 for row in rows
    }
    unknown = [conversation_id for conversation_id, known in account_of.items() if not known]
    if unknown:
        account_of |= dict(
            await Conversation.filter(id__in=unknown).values_list("id", "account_id")
        )
    accounts: dict[int, InstagramAccount] = {
        row["account"].id: row["account"] for row in rows if row.get("account") is not None
    }
    missing = set(account_of.values()) - accounts.keys()
    if missing:
        accounts |= {a.id: a for a in await InstagramAccount.filter(id__in=missing)}
    # Each conversation's last message once (a batch may hold several of one person's), and
    # the batch's events in one statement: this runs on every send.
    last = {message["conversation_id"]: message for message in messages}
    await update_many(
        Conversation,
        {
            conversation_id: {
                "last_message_at": now,
                "last_message_text": _preview(message["text"]),
            }
            for conversation_id, message in last.items()
        },
    )
    await insert_many(
        DomainEvent,
        [
            _event_row(account.workspace_id, alerts.CONVERSATION_MESSAGE_SENT, _facts(account, m))
            for m in messages
            if (account := accounts.get(account_of[m["conversation_id"]])) is not None
        ],
    )
    return ids


@instance_level("the engine, for an echo of an account it already holds")
async def app_echo(account: InstagramAccount, event: InboundEvent, now: datetime) -> None:
    """A message the account sent from the Instagram app (an echo Reelay did not send):
    stored in the person's conversation, which a teammate now has (``TAKE_OVER_FOR``)."""
    at = min(event.timestamp or now, now)
    conversation = await insert_returning(
        Conversation,
        {
            "account_id": account.id,
            "igsid": event.recipient_id,
            "username": "",
            "first_name": "",
            "last_inbound_at": None,
            "created_at": now,
        },
        conflict=("account_id", "igsid"),
        keep=True,
    )
    if conversation is None:  # pragma: no cover - keep=True always returns the row
        raise ReelayError(f"conversation of {event.recipient_id} not stored")
    await sent(
        [
            {
                "conversation_id": conversation.id,
                "account_id": account.id,
                "direction": "out",
                "source": MessageSource.INSTAGRAM_APP.value,
                "author_id": None,
                "mid": event.mid or None,
                "text": event.text or inbound_text(event),
            }
        ],
        at,
    )
    until = max(now + TAKE_OVER_FOR, conversation.paused_until or now)
    await Conversation.filter(id=conversation.id).update(
        paused_until=until, paused_by_id=None, status=ConversationStatus.OPEN
    )
    logger.info(
        "conversation %s (account %s) taken over: replied from the Instagram app",
        conversation.id,
        account.id,
    )
