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
from collections.abc import Callable, Sequence, Set
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from redis.asyncio import Redis

from core.db.bulk import GroupCommit, insert_events
from core.db.models import EventStatus
from core.domain.scope import instance_level
from core.domain.webhooks import (
    TRIGGER_OF,
    EventKind,
    InboundEvent,
    stored_fields,
)
from core.ports.queue import JobQueue
from core.services import echoes

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
# Batches of deliveries written at the same time on a database with a pool of connections
# (PostgreSQL): deliveries arriving while one batch is written do not wait for it.
POOLED_WRITERS = 3


@dataclass(frozen=True)
class Recorded:
    new: int
    duplicates: int
    new_keys: set[str] = field(default_factory=set, repr=False)
    # The new events to act on (queued, unless the caller hands them on itself).
    pending: tuple[int, ...] = ()


@runtime_checkable
class BulkQueue(Protocol):
    """A queue that can take many jobs in one go (the arq adapter can)."""

    async def enqueue_many(self, function: str, jobs: Sequence[tuple[tuple[Any, ...], str]]) -> int:
        """Queue ``(args, job_id)`` jobs now; live job ids are left alone."""
        ...


def event_job_id(event_id: int) -> str:
    return f"event:{event_id}"


def _status(event: InboundEvent, awaited: Set[str] = frozenset()) -> tuple[EventStatus, str]:
    """``awaited``: the dedupe keys of echoes a send whose answer was lost waits for."""
    if event.kind is EventKind.MALFORMED:
        return EventStatus.FAILED, event.error or "malformed event"
    if event.kind in TRIGGER_OF or event.kind in COUNTED_KINDS or event.dedupe_key in awaited:
        return EventStatus.PENDING, ""
    if event.kind is EventKind.OTHER and event.field == "standby":
        return EventStatus.IGNORED, "another app controls this conversation (standby)"
    if event.kind is EventKind.OTHER and event.field not in {"", "messages"}:
        return EventStatus.IGNORED, f"field {event.field[:60]!r} not handled"
    return EventStatus.IGNORED, IGNORED_REASONS.get(event.kind, "not handled")


class InboxWriter(GroupCommit[Sequence[InboundEvent], Recorded]):
    """The webhook endpoint's group commit: the events of concurrent requests are written in
    one statement (one transaction) and queued together; each request, by :meth:`submit`,
    waits until its events are stored before it is answered.

    ``redis``: where echoes are noted (:mod:`core.services.echoes`); an echo that a send
    whose answer was lost waits for is queued for the engine to settle that send.
    ``writers``: batches written at the same time (``POOLED_WRITERS`` on PostgreSQL)."""

    def __init__(
        self,
        queue: JobQueue,
        now: Callable[[], datetime],
        *,
        source: str = "webhook",
        redis: Redis | None = None,
        writers: int = 1,
    ) -> None:
        super().__init__(self._record, flushers=writers)
        self._queue = queue
        self._now = now
        self._source = source
        self._redis = redis

    @instance_level("the webhook inbox: Meta's deliveries name accounts, not workspaces")
    async def record_batch(self, requests: list[Sequence[InboundEvent]]) -> list[int]:
        """Store many deliveries' events as one batch now, without waiting for other callers,
        and queue nothing: the ids of the new events to act on, for the caller to hand to the
        engine itself (the inbox stream's writer, which batches deliveries itself)."""
        recorded = await self._record(requests, queue=False)
        return [event_id for one in recorded for event_id in one.pending]

    async def _record(
        self, requests: list[Sequence[InboundEvent]], *, queue: bool = True
    ) -> list[Recorded]:
        """Store the requests' events not seen before, queue the actionable ones (and the
        echoes a send waits for) unless ``queue`` is off, and tell each request what became
        of its own."""
        now = self._now()
        unique: dict[str, InboundEvent] = {}
        for events in requests:
            for event in events:
                unique.setdefault(event.dedupe_key, event)
        rows = list(unique.values())
        echoed = [e for e in rows if e.kind is EventKind.ECHO]
        awaited: Set[str] = (
            await echoes.note(self._redis, echoed, now)
            if self._redis is not None and echoed
            else frozenset()
        )
        new: list[tuple[int, str]] = []
        for start in range(0, len(rows), ROWS_PER_STATEMENT):
            chunk = rows[start : start + ROWS_PER_STATEMENT]
            new.extend(await insert_events([_row(e, awaited) for e in chunk], now, self._source))
        pending = [i for i, key in new if _status(unique[key], awaited)[0] is EventStatus.PENDING]
        if pending and queue:
            if isinstance(self._queue, BulkQueue):
                # A job per group of events (named after its first): the worker handles a
                # job's events together, and pays a job's own costs once for them.
                groups = [
                    tuple(pending[start : start + EVENTS_PER_JOB])
                    for start in range(0, len(pending), EVENTS_PER_JOB)
                ]
                await self._queue.enqueue_many(
                    HANDLE_EVENT, [(g, event_job_id(g[0])) for g in groups]
                )
            else:
                await asyncio.gather(
                    *(self._queue.enqueue(HANDLE_EVENT, i, job_id=event_job_id(i)) for i in pending)
                )
        for event in (unique[key] for _, key in new):
            if event.kind is EventKind.MALFORMED:
                logger.warning(
                    "recorded a malformed webhook event %s: %s", event.dedupe_key, event.error
                )
        new_keys = {key: event_id for event_id, key in new}
        acted_on = set(pending)
        recorded = []
        for events in requests:
            mine = {e.dedupe_key for e in events} & new_keys.keys()
            to_act = tuple(new_keys[key] for key in mine if new_keys[key] in acted_on)
            recorded.append(
                Recorded(
                    new=len(mine),
                    duplicates=len(events) - len(mine),
                    new_keys=mine,
                    pending=tuple(sorted(to_act)),
                )
            )
            for key in mine:  # a key repeated by a later request is not new to it
                del new_keys[key]
        return recorded


@instance_level("the webhook inbox: Meta's events name accounts, not workspaces")
async def record_events(
    events: Sequence[InboundEvent],
    queue: JobQueue,
    now: datetime,
    *,
    source: str = "webhook",
    redis: Redis | None = None,
) -> Recorded:
    """Store one request's events not seen before and queue the actionable ones, at ``now``
    and on their own (the comment sweep, scripts and tests; the endpoint goes through an
    :class:`InboxWriter`). ``source`` is how they came: ``webhook``, or ``sweep`` for comments
    the comment sweep read; ``redis``: where echoes are noted, as by :class:`InboxWriter`."""
    writer = InboxWriter(queue, lambda: now, source=source, redis=redis)
    (recorded,) = await writer._record([events])
    return recorded


def _row(event: InboundEvent, awaited: Set[str]) -> tuple[str, str, str, str, str, str, str]:
    status, error = _status(event, awaited)
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
