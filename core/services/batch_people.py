"""The people of a batch of webhook events, as the engine handles it (ARCHITECTURE.md, "Data
path 1").

Their conversations are found or created together, in one statement, before the events are
handled; what their messages change (the ``Message`` row and its domain event, the
conversation's last message, status and 24-hour window, their follow-ups cancelled) is
written together before the batch's transaction commits: a statement per kind of write, not
one per event. A person met twice in a batch is read again after the writes so far, so every
reader of the database sees each event's writes before the next event of the same person.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from core.db.bulk import insert_many_returning, insert_returning, update_many
from core.db.models import Conversation, InstagramAccount
from core.domain.followers import profile_due
from core.domain.scope import instance_level
from core.domain.webhooks import EventKind, InboundEvent
from core.errors import ReelayError
from core.ports.clock import Clock
from core.services import conversation_log
from core.services.follow_ups import FollowUps

Person = tuple[int, str]  # (account id, IGSID)


def conversation_row(
    account: InstagramAccount, event: InboundEvent, now: datetime
) -> dict[str, Any]:
    """A new person's conversation row (their message opens the 24 h window at once)."""
    # Meta's retries carry the old time; a comment or a read receipt opens no window.
    opens = event.kind not in {EventKind.COMMENT, EventKind.READ}
    at = min(event.timestamp or now, now) if opens else None
    return {
        "account_id": account.id,
        "igsid": event.sender_id,
        "username": event.sender_username[:64],
        "first_name": "",
        "last_inbound_at": at,
        "created_at": now,
    }


class BatchPeople:
    """One batch's people: :meth:`read` them, then :meth:`conversation` for each event, then
    :meth:`write` inside the batch's transaction."""

    def __init__(self, clock: Clock, follow_ups: FollowUps, profiles_due: set[int]) -> None:
        """``profiles_due``: where the conversations whose profile is due are added."""
        self._clock = clock
        self._follow_ups = follow_ups
        self._profiles_due = profiles_due
        self._read: dict[Person, Conversation] = {}
        self._messages: list[tuple[InstagramAccount, dict[str, Any]]] = []
        self._changes: dict[int, dict[str, Any]] = {}  # conversation id -> its changes
        self._answered: dict[int, datetime] = {}  # conversation id -> their latest message

    @instance_level("the engine, for people of webhook events of accounts it already holds")
    async def read(self, events: Iterable[tuple[InboundEvent, InstagramAccount]]) -> None:
        """Find or create the conversations of ``events``' people, in one statement (an echo's
        sender is the account itself: left out)."""
        rows: dict[Person, dict[str, Any]] = {}
        now = self._clock.now()
        for event, account in events:
            if event.kind is EventKind.ECHO:
                continue
            rows.setdefault((account.id, event.sender_id), conversation_row(account, event, now))
        if rows:
            stored = await insert_many_returning(
                Conversation, list(rows.values()), conflict=("account_id", "igsid"), keep=True
            )
            self._read = {(c.account_id, c.igsid): c for c in stored}

    @instance_level("the engine, for people of webhook events of accounts it already holds")
    async def conversation(self, account: InstagramAccount, event: InboundEvent) -> Conversation:
        """The person's conversation, with what ``event`` changes in it (written by
        :meth:`write`; the object returned has them already)."""
        now = self._clock.now()
        row = conversation_row(account, event, now)
        at = row["last_inbound_at"]
        conversation = self._read.pop((account.id, event.sender_id), None)
        if conversation is None:  # not read with the batch, or met before: read it again
            await self.write()
            conversation = await insert_returning(
                Conversation, row, conflict=("account_id", "igsid"), keep=True
            )
        if conversation is None:  # pragma: no cover - keep=True always returns the row
            raise ReelayError(f"conversation of {event.sender_id} not stored")
        changes: dict[str, Any] = {}
        if event.sender_username and event.sender_username != conversation.username:
            changes["username"] = event.sender_username[:64]
        if at is not None:
            if conversation.last_inbound_at is None or conversation.last_inbound_at < at:
                changes["last_inbound_at"] = at
            if profile_due(conversation.profile_fetched_at, conversation.profile_failed_at, now):
                self._profiles_due.add(conversation.id)
            message, received = conversation_log.received(conversation, event, at)
            self._messages.append((account, message))
            changes |= received
            self._answered[conversation.id] = max(at, self._answered.get(conversation.id, at))
        if changes:
            self._changes.setdefault(conversation.id, {}).update(changes)
            for name, value in changes.items():
                setattr(conversation, name, value)
        return conversation

    @instance_level("the engine, for people of webhook events of accounts it already holds")
    async def write(self) -> None:
        """Write what the events so far changed: their messages and events, their
        conversations, their follow-ups cancelled."""
        messages, self._messages = self._messages, []
        changes, self._changes = self._changes, {}
        answered, self._answered = self._answered, {}
        await conversation_log.record_received(messages)
        await update_many(Conversation, changes)
        await self._follow_ups.cancel_for(answered)
