"""The durable webhook inbox: record each new event once, then queue it for the worker.

The webhook endpoint's hot path: one multi-row ``INSERT … ON CONFLICT (dedupe_key) DO NOTHING
RETURNING`` tells new events from Meta's retries in a single round trip; only new, actionable
events are queued (job id ``event:<id>``, so a second enqueue of a live job is a no-op).
Each row keeps the parsed event beside Meta's payload: the worker reads it back as it was
parsed here, never parsing the payload a second time.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from core.db import bulk
from core.db.bulk import GroupCommit, insert_events
from core.db.models import EventStatus
from core.domain.scope import instance_level
from core.domain.webhooks import (
    TRIGGER_OF,
    EventKind,
    InboundEvent,
    from_stored,
    parse_payload,
    stored_fields,
)
from core.ports.queue import JobQueue

logger = logging.getLogger(__name__)

HANDLE_EVENT = "handle_event"
# Kinds recorded for the record but never acted on.
IGNORED_REASONS: dict[EventKind, str] = {
    EventKind.ECHO: "echo of a message the account sent",
    EventKind.REACTION: "reactions trigger nothing",
    EventKind.EDIT: "edits trigger nothing",
    EventKind.OTHER: "field not handled",
}
# Kinds that trigger no rule but are acted on: a read receipt counts in a rule's funnel.
COUNTED_KINDS = frozenset({EventKind.READ})
# SQLite's default limit is 32766 bound variables: 8 per row.
ROWS_PER_STATEMENT = 1000
# Events one handle_event job may take (the worker handles up to this many together).
EVENTS_PER_JOB = 50


@dataclass(frozen=True)
class Recorded:
    new: int
    duplicates: int
    queued: int
    new_keys: set[str] = field(default_factory=set, repr=False)


@runtime_checkable
class BulkQueue(Protocol):
    """A queue that can take many jobs in one go (the arq adapter can)."""

    async def enqueue_many(self, function: str, jobs: Sequence[tuple[tuple[Any, ...], str]]) -> int:
        """Queue ``(args, job_id)`` jobs now; live job ids are left alone."""
        ...


def event_job_id(event_id: int) -> str:
    return f"event:{event_id}"


def _status(event: InboundEvent) -> tuple[EventStatus, str]:
    if event.kind is EventKind.MALFORMED:
        return EventStatus.FAILED, event.error or "malformed event"
    if event.kind in TRIGGER_OF or event.kind in COUNTED_KINDS:
        return EventStatus.PENDING, ""
    if event.kind is EventKind.OTHER and event.field == "standby":
        return EventStatus.IGNORED, "another app controls this conversation (standby)"
    if event.kind is EventKind.OTHER and event.field not in {"", "messages"}:
        return EventStatus.IGNORED, f"field {event.field[:60]!r} not handled"
    return EventStatus.IGNORED, IGNORED_REASONS.get(event.kind, "not handled")


@instance_level("the webhook inbox: Meta's events name accounts, not workspaces")
async def record_events(events: Sequence[InboundEvent], queue: JobQueue, now: datetime) -> Recorded:
    """Store the events not seen before and queue the actionable ones."""
    unique: dict[str, InboundEvent] = {}
    for event in events:
        unique.setdefault(event.dedupe_key, event)
    rows = list(unique.values())
    new: list[tuple[int, str]] = []
    for start in range(0, len(rows), ROWS_PER_STATEMENT):
        new.extend(
            await insert_events([_row(e) for e in rows[start : start + ROWS_PER_STATEMENT]], now)
        )
    pending = [event_id for event_id, key in new if _status(unique[key])[0] is EventStatus.PENDING]
    if pending:
        if isinstance(queue, BulkQueue):
            # A job per group of events (named after its first): the worker handles a job's
            # events together, and pays a job's own costs once for them.
            groups = [
                tuple(pending[start : start + EVENTS_PER_JOB])
                for start in range(0, len(pending), EVENTS_PER_JOB)
            ]
            await queue.enqueue_many(HANDLE_EVENT, [(g, event_job_id(g[0])) for g in groups])
        else:
            await asyncio.gather(
                *(queue.enqueue(HANDLE_EVENT, i, job_id=event_job_id(i)) for i in pending)
            )
    malformed = [unique[key] for _, key in new if unique[key].kind is EventKind.MALFORMED]
    for event in malformed:
        logger.warning("recorded a malformed webhook event %s: %s", event.dedupe_key, event.error)
    return Recorded(
        new=len(new),
        duplicates=len(events) - len(new),
        queued=len(pending),
        new_keys={key for _, key in new},
    )


def _row(event: InboundEvent) -> tuple[str, str, str, str, str, str, str]:
    status, error = _status(event)
    return (
        event.dedupe_key,
        event.account_id[:64],
        event.kind.value,
        _json(event.raw),
        _json(stored_fields(event)),
        status.value,
        error,
    )


def _json(value: Any) -> str:
    text = json.dumps(value, separators=(",", ":"))
    if "\\u0000" in text:
        # PostgreSQL text and jsonb cannot hold NUL: store U+FFFD instead.
        text = json.dumps(_without_nul(value), separators=(",", ":"))
    return text


def _without_nul(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, dict):
        return {_without_nul(k): _without_nul(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_without_nul(v) for v in value]
    return value


class InboxWriter:
    """Group commit for the webhook endpoint: events of concurrent requests are written in one
    statement (one transaction) and queued together; each request still waits until its
    events are stored before it is answered."""

    def __init__(self, queue: JobQueue) -> None:
        self._queue = queue
        self._writes: GroupCommit[tuple[Sequence[InboundEvent], datetime], Recorded] = GroupCommit(
            self._write
        )

    @instance_level("the webhook inbox: Meta's events name accounts, not workspaces")
    async def record(self, events: Sequence[InboundEvent], now: datetime) -> Recorded:
        return await self._writes.submit((events, now))

    @instance_level("closes the inbox writer the process owns")
    async def close(self) -> None:
        await self._writes.close()

    async def _write(self, batch: list[tuple[Sequence[InboundEvent], datetime]]) -> list[Recorded]:
        combined = [event for events, _ in batch for event in events]
        new_keys = (await record_events(combined, self._queue, batch[0][1])).new_keys
        recorded = []
        for events, _ in batch:
            mine = {e.dedupe_key for e in events} & new_keys
            new_keys -= mine
            recorded.append(Recorded(new=len(mine), duplicates=len(events) - len(mine), queued=0))
        return recorded


@instance_level("a job: claims webhook events, by id, from the queue")
async def claim_events(event_ids: Sequence[int], now: datetime) -> dict[int, InboundEvent | None]:
    """Claim the pending ones of ``event_ids`` (:func:`core.db.bulk.claim_events`), each with
    the event stored when it was parsed; None when a row holds no readable event."""
    claimed = await bulk.claim_events(event_ids, now)
    return {
        event_id: from_stored(fields) if payload is None else _parsed(payload)
        for event_id, (fields, payload) in claimed.items()
    }


def _parsed(payload: dict[str, Any]) -> InboundEvent | None:
    """A row recorded before parsed events were stored: its payload parsed."""
    events = parse_payload(payload)
    return events[0] if len(events) == 1 else None
