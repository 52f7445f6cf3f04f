"""The webhook inbox's stream: Meta's deliveries answered as soon as Redis holds them.

When Redis keeps an append-only file (the embedded Redis does; ``WEBHOOK_INBOX``) the
webhook endpoint appends each verified delivery's body to a Redis stream and answers 200 at
once; one writer task in the worker drains the stream into the database in batches (one
``INSERT … ON CONFLICT`` for the batch, through :class:`InboxWriter`) and queues the new
events. The panel then never waits for SQLite's write lock, and the worker is the only
process that writes events, so its writes queue in order instead of polling for the lock;
on PostgreSQL the panel is spared an insert and a queued job per delivery.
The new events go straight to the engine of the same process (no job per group of events):
one that dies before it handles them leaves them ``pending``, and the ``recover_automations``
cron queues them again (``Automations.requeue_stuck``).

An entry leaves the stream only once its events are stored (``XACK`` and ``XDEL`` after the
write): a writer that dies mid-batch leaves its entries pending, and any writer takes them
over once they have been idle for ``RECLAIM_IDLE_MS``. Writing an entry twice stores nothing
twice (the dedupe key is unique). Entries are written in the order they arrived.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import socket
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from core.db.bulk import GroupCommit
from core.domain.scope import instance_level
from core.domain.webhooks import InboundEvent, parse_body
from core.ports.queue import JobQueue
from core.services.inbox import EVENTS_PER_JOB, InboxWriter

logger = logging.getLogger(__name__)

STREAM_KEY = "reelay:inbox"
GROUP = "inbox-writers"
BODY = b"body"
# Entries one write takes at most (each a delivery of one or more events).
BATCH = 500
# Deliveries stored and handled in one transaction of the engine's, at most (on SQLite).
TOGETHER = 100
# How long a read waits for new entries (and so how long a stop may wait for it).
BLOCK_MS = 250
# A pending entry idle this long belonged to a writer that died: another takes it over.
RECLAIM_IDLE_MS = 60_000
RECLAIM_EVERY_S = 30.0
RETRY_AFTER_S = 1.0
# Events handed to the engine and not handled yet past which the writer waits.
MAX_HANDLING = 1000
# How long a stopping writer lets the engine finish the events it was handed.
STOP_WAIT_S = 10.0

Entry = tuple[bytes, dict[bytes, bytes]]


def consumer_name() -> str:
    """This process among the stream's writers."""
    return f"{socket.gethostname()}:{os.getpid()}"


class InboxStream:
    """Appends verified deliveries (the endpoint) and writes them to the database (the worker)."""

    def __init__(
        self,
        redis: Redis,
        queue: JobQueue,
        now: Callable[[], datetime],
        *,
        engine: Callable[[Sequence[int]], Awaitable[object]],
        consumer: str | None = None,
        clock: Callable[[], float] = time.monotonic,
        together: Callable[[Callable[[], Awaitable[list[int]]]], Awaitable[object]] | None = None,
        sends: Callable[[], Awaitable[object]] | None = None,
    ) -> None:
        """``engine``: handles recorded events by id (``Automations.handle_events``).
        ``sends``: waits for the sends the engine started, when the engine returns before
        them (``Automations.finish_sends``).
        ``together``: for a database with one connection (SQLite), where the writer's insert
        and the engine's transaction would otherwise each wait for a turn: the writer's store
        of a batch, handed to it (``Automations.store_and_handle``), runs inside the engine's
        transaction, and the writer reads the next batch once that one is handled. The sends
        (Graph calls) go on meanwhile: a slow answer from Meta holds no one's turn."""
        self._redis = redis
        # Deliveries arriving together go to Redis together: one pipeline, one round trip.
        self._appends: GroupCommit[bytes, object] = GroupCommit(self._append_many)
        self._writer = InboxWriter(queue, now, redis=redis)
        self._engine = engine
        self._together = together
        self._sends = sends
        self._consumer = consumer or consumer_name()
        self._clock = clock
        self._handling: dict[asyncio.Task[None], int] = {}
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    @instance_level("the webhook inbox: Meta's deliveries name accounts, not workspaces")
    async def append(self, body: bytes) -> None:
        """Keep one verified delivery for the writer: once this returns, Redis holds it."""
        await self._appends.submit(body)

    async def _append_many(self, bodies: list[bytes]) -> list[object]:
        async with self._redis.pipeline(transaction=False) as pipe:
            for body in bodies:
                pipe.xadd(STREAM_KEY, {BODY: body})
            return list(await pipe.execute())

    def start(self) -> None:
        """Start writing the stream to the database (the worker's writer task)."""
        self._stopping = False
        self._task = asyncio.create_task(self._run())

    @instance_level("the webhook inbox: Meta's deliveries name accounts, not workspaces")
    async def stop(self) -> None:
        """Finish the batch under way, let the engine handle what it was handed, and stop.

        Never cut short while reading: entries Redis handed over would wait for a reclaim.
        """
        self._stopping = True
        task, self._task = self._task, None
        if task is not None:
            done, _ = await asyncio.wait([task], timeout=STOP_WAIT_S)
            if not done:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if self._handling:  # stored already: let the engine finish what it was given
            await asyncio.wait(list(self._handling), timeout=STOP_WAIT_S)
        if self._sends is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._sends(), STOP_WAIT_S)

    async def _run(self) -> None:
        """Write until stopped: first what this writer read before and left pending (a
        restart in the same process), then new entries, and every ``RECLAIM_EVERY_S`` those
        other writers left. A failed write is logged and its entries stay pending; they are
        written again once reclaimed, so nothing leaves the stream before it is stored."""
        reclaim_at = 0.0
        own = True
        while not self._stopping:
            try:
                if own:
                    await self._ensure_group()
                    while entries := await self._read(None, new=False):
                        await self.write(entries)
                    own = False
                if self._clock() >= reclaim_at:
                    reclaim_at = self._clock() + RECLAIM_EVERY_S
                    await self.reclaim()
                await self.write(await self._read(BLOCK_MS))
            except Exception:
                logger.exception("writing webhook deliveries from the inbox stream failed")
                own = True
                await asyncio.sleep(RETRY_AFTER_S)
        try:  # what is waiting already is written too (a batch), not left for a reclaim
            await self.write(await self._read(None))
        except Exception:
            logger.exception("writing webhook deliveries from the inbox stream failed")

    @instance_level("the webhook inbox: Meta's deliveries name accounts, not workspaces")
    async def handled(self) -> None:
        """Wait until the events handed to the engine so far are handled, and sent."""
        if self._handling:
            await asyncio.wait(list(self._handling))
        if self._sends is not None:
            await self._sends()

    @instance_level("the webhook inbox: Meta's deliveries name accounts, not workspaces")
    async def drain(self) -> int:
        """Write every delivery waiting now, without blocking: how many were written."""
        written = await self.reclaim(idle_ms=0)
        while entries := await self._read(None):
            written += await self.write(entries)
        return written

    @instance_level("the webhook inbox: Meta's deliveries name accounts, not workspaces")
    async def waiting(self) -> int:
        """How many deliveries the stream holds that are not yet stored (a backlog grows while
        no worker writes them)."""
        return int(await self._redis.xlen(STREAM_KEY))

    @instance_level("the webhook inbox: Meta's deliveries name accounts, not workspaces")
    async def write_leftovers(self) -> int:
        """Deliveries the stream kept from when they went through it (``WEBHOOK_INBOX``, or
        Redis's append-only file, has changed since), written and handled now: a worker whose
        panel writes deliveries itself still owes Meta these. How many were written."""
        if not await self.waiting():
            return 0
        written = await self.drain()
        await self.handled()
        if written:
            logger.warning(
                "webhook deliveries kept in the inbox stream from an earlier setting: %d written",
                written,
            )
        return written

    @instance_level("the webhook inbox: Meta's deliveries name accounts, not workspaces")
    async def reclaim(self, idle_ms: int = RECLAIM_IDLE_MS) -> int:
        """Take over and write the entries left pending by a writer (idle ``idle_ms``)."""
        await self._ensure_group()
        written = 0
        start = "0-0"
        while True:
            reply: Any = await self._redis.xautoclaim(
                STREAM_KEY, GROUP, self._consumer, idle_ms, start_id=start, count=BATCH
            )
            start, entries = reply[0], [e for e in reply[1] if e[1]]
            if entries:
                logger.warning("writing %d webhook deliveries left pending", len(entries))
                written += await self.write(entries)
            if start in (b"0-0", "0-0"):
                return written

    @instance_level("the webhook inbox: Meta's deliveries name accounts, not workspaces")
    async def write(self, entries: Sequence[Entry]) -> int:
        """Store the entries' events in one batch, then take the entries off the stream."""
        if not entries:
            return 0
        while sum(self._handling.values()) >= MAX_HANDLING:  # the engine is behind: wait
            await asyncio.wait(list(self._handling), return_when=asyncio.FIRST_COMPLETED)
        parsed = (parse_body(fields.get(BODY, b"")) for _, fields in entries)
        batch: list[Sequence[InboundEvent]] = [events for events in parsed if events]
        if self._together is not None:
            for start in range(0, len(batch), TOGETHER):
                chunk = batch[start : start + TOGETHER]
                await self._together(functools.partial(self._writer.record_batch, chunk))
        elif batch:
            self._hand_off(await self._writer.record_batch(batch))
        ids = [entry_id for entry_id, _ in entries]
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.xack(STREAM_KEY, GROUP, *ids)
            pipe.xdel(STREAM_KEY, *ids)
            await pipe.execute()
        return len(entries)

    def _hand_off(self, event_ids: list[int]) -> None:
        """The engine handles the new events in groups, while the writer goes on."""
        for start in range(0, len(event_ids), EVENTS_PER_JOB):
            group = event_ids[start : start + EVENTS_PER_JOB]
            task = asyncio.create_task(self._handle(group))
            self._handling[task] = len(group)
            task.add_done_callback(self._handling.pop)

    async def _handle(self, event_ids: list[int]) -> None:
        try:
            await self._engine(event_ids)
        except Exception:
            # Still pending (or processing) in the database: requeue_stuck queues them again.
            logger.exception("handling webhook events %s… failed", event_ids[0])

    async def _read(self, block_ms: int | None, *, new: bool = True) -> list[Entry]:
        """New entries (waiting up to ``block_ms``), or with ``new=False`` those this writer
        read before and has not written."""
        try:
            reply: Any = await self._redis.xreadgroup(
                GROUP,
                self._consumer,
                {STREAM_KEY: ">" if new else "0"},
                count=BATCH,
                block=block_ms,
            )
        except ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            await self._ensure_group()  # the stream was lost (Redis flushed): start again
            return []
        # A pending entry deleted meanwhile comes back without fields: nothing to write.
        return [entry for _, entries in reply or [] for entry in entries if entry[1]]

    async def _ensure_group(self) -> None:
        try:
            await self._redis.xgroup_create(STREAM_KEY, GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
