"""Bulk database work of the hot paths: group commit, and the raw SQL statements.

:class:`GroupCommit` turns the writes of concurrent callers into one write: while one batch is
being written, new items wait and go together in the next; each caller gets its own item's
result (or the batch's error) once the batch is written.

The statements here do in one round trip what the ORM does in several (``INSERT … ON
CONFLICT … RETURNING``, a claim by ``UPDATE … RETURNING``, many rows' updates in one
``CASE``), on SQLite and PostgreSQL alike. This is the only module that writes SQL by hand;
:class:`Params` is the one place that knows how each dialect spells a placeholder.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime
from enum import Enum
from typing import Any, Generic, TypeVar

from tortoise import connections
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.fields.data import JSONField
from tortoise.models import Model

from core.db.models import EventStatus, OutboundAction, OutboundStatus, RuleStats, WebhookEvent

T = TypeVar("T")
R = TypeVar("R")
M = TypeVar("M", bound=Model)

STAT_TOTALS = ("total_triggers", "total_dms_sent", "total_comments_replied", "total_leads_captured")
STAT_TIMES = ("last_triggered_at", "last_lead_captured_at")


class GroupCommitClosed(RuntimeError):
    """An item was submitted after :meth:`GroupCommit.close`."""


class GroupCommit(Generic[T, R]):
    """Items of concurrent callers written together: a flusher writes the waiting items (at
    most ``limit`` a batch, all of them without one) and hands each caller its result.

    ``write`` gets a batch and returns one result per item, in order; when it raises, every
    caller of that batch gets the error. A lone item is written at once. With ``flushers``
    above 1, items arriving while every flusher is writing start another one, up to that many
    batches written at the same time (a database with a pool of connections).
    """

    def __init__(
        self,
        write: Callable[[list[T]], Awaitable[Sequence[R]]],
        *,
        limit: int | None = None,
        flushers: int = 1,
    ) -> None:
        self._write = write
        self._limit = limit
        self._most = max(1, flushers)
        self._waiting: list[tuple[T, asyncio.Future[R]]] = []
        self._flushers: set[asyncio.Task[None]] = set()
        self._idle = 0  # flushers between batches, about to take the waiting items
        self._closed = False

    async def submit(self, item: T) -> R:
        """Queue ``item`` for the next batch and return its result once written."""
        if self._closed:
            raise GroupCommitClosed("no more items: the group commit is closed")
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._waiting.append((item, future))
        writing = sum(not flusher.done() for flusher in self._flushers)
        if not self._idle and writing < self._most:
            # A task, not the caller: a caller cancelled must not cut a batch short.
            flusher = asyncio.create_task(self._flush())
            self._flushers.add(flusher)
            flusher.add_done_callback(self._flushers.discard)
            self._idle += 1
        return await asyncio.shield(future)

    async def close(self) -> None:
        """Refuse new items and wait until the waiting ones are written."""
        self._closed = True
        while self._flushers:
            await asyncio.wait(list(self._flushers))

    async def _flush(self) -> None:
        try:
            while self._waiting:
                size = self._limit or len(self._waiting)
                batch = self._waiting[:size]
                del self._waiting[:size]
                self._idle -= 1
                try:
                    results = await self._write([item for item, _ in batch])
                except BaseException as exc:
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    if not isinstance(exc, Exception):
                        raise
                    continue
                finally:
                    self._idle += 1
                for (_, future), result in zip(batch, results, strict=True):
                    if not future.done():
                        future.set_result(result)
        finally:
            self._idle -= 1


class Params:
    """A statement's bound values, taken in the order their placeholders appear in it (SQLite's
    ``?`` are positional): ``params(value)`` adds one and returns its placeholder."""

    def __init__(self, conn: BaseDBAsyncClient) -> None:
        self.postgres = conn.capabilities.dialect == "postgres"
        self.values: list[Any] = []

    def __call__(self, value: Any, cast: str = "") -> str:
        """``?`` on SQLite; ``$n`` with ``cast`` (e.g. ``::jsonb``) on PostgreSQL."""
        self.values.append(value)
        return f"${len(self.values)}{cast}" if self.postgres else "?"

    def time(self, value: datetime) -> str:
        """A timestamp: the driver's own type on PostgreSQL, UTC ISO text on SQLite.

        As :class:`core.db.fields.UtcDatetimeField` does for the ORM: SQLite compares text.
        """
        if self.postgres:
            return self(value)
        return self((value.astimezone(UTC) if value.tzinfo else value).isoformat(sep=" "))

    def values_of(self, values: Sequence[Any], casts: Sequence[str]) -> str:
        """``(…)`` with a placeholder for each of ``values`` (already the driver's), each
        with its ``casts`` on PostgreSQL."""
        start = len(self.values)
        self.values.extend(values)
        if not self.postgres:
            return f"({', '.join(['?'] * len(values))})"
        return f"({', '.join(f'${start + n}{cast}' for n, cast in enumerate(casts, 1))})"

    def row(self, values: Sequence[Any]) -> str:
        """``(…)`` with a placeholder for each of ``values``."""
        return self.values_of(values, [""] * len(values))


def _connection() -> tuple[BaseDBAsyncClient, Params]:
    conn = connections.get("default")
    return conn, Params(conn)


async def insert_events(
    rows: Sequence[tuple[str, str, str, str, str, str, str]],
    received_at: datetime,
    source: str = "webhook",
) -> list[tuple[int, str]]:
    """Insert webhook events (dedupe key, account, kind, payload JSON, parsed event JSON,
    status, error) not stored before, in one statement: (id, dedupe key) of the new ones.
    ``source`` says how they came: ``webhook``, or ``sweep`` for comments read by the sweep."""
    conn, params = _connection()
    groups = []
    for key, account, kind, payload, event, status, error in rows:
        slots = [params(key), params(account), params(kind), params(payload, "::jsonb")]
        slots += [params(event, "::jsonb"), params(status), params(error)]
        slots += [params.time(received_at), params(source)]
        groups.append(f"({', '.join(slots)})")
    sql = (
        f"INSERT INTO {WebhookEvent._meta.db_table} "  # noqa: S608
        "(dedupe_key, account_ig_id, kind, payload, event, status, error, received_at, source) "
        f"VALUES {', '.join(groups)} ON CONFLICT (dedupe_key) DO NOTHING RETURNING id, dedupe_key"
    )
    return [
        (int(row["id"]), str(row["dedupe_key"]))
        for row in await conn.execute_query_dict(sql, params.values)
    ]


# A claimed event: its stored parsed fields, or (None, payload) when stored without them.
Claimed = tuple[Any, dict[str, Any] | None]


async def claim_events(event_ids: Sequence[int], now: datetime) -> dict[int, Claimed]:
    """Move the pending ones of ``event_ids`` to ``processing`` in one statement: by id, the
    stored parsed event, or for rows stored without one the payload (events another worker
    has, or handled already, are left out)."""
    if not event_ids:
        return {}
    conn, params = _connection()
    head = f"UPDATE {WebhookEvent._meta.db_table} SET status = "  # noqa: S608
    head += f"{params(EventStatus.PROCESSING.value)}, processed_at = {params.time(now)} "
    sql = (
        f"{head}WHERE status = {params(EventStatus.PENDING.value)} "
        f"AND id IN {params.row(event_ids)} RETURNING id, event, payload"
    )
    claimed: dict[int, Claimed] = {}
    for row in await conn.execute_query_dict(sql, params.values):
        event = _loaded(row["event"])
        if event is not None:
            claimed[int(row["id"])] = (event, None)
            continue
        payload = _loaded(row["payload"])
        claimed[int(row["id"])] = (None, payload if isinstance(payload, dict) else {})
    return claimed


def _loaded(value: Any) -> Any:
    """A JSON column's value: text on SQLite (and from asyncpg without a codec), else as is."""
    return json.loads(value) if isinstance(value, str | bytes) else value


async def mark_sent(responses: Mapping[int, dict[str, Any]], sent_at: datetime) -> set[int]:
    """Mark outbound actions sent, each with its own Graph response, in one statement.

    Only actions not yet settled move (pending, or unconfirmed until an echo shows up): the
    ids returned are those this call marked, so a send recorded twice (its answer and its
    echo) is counted once."""
    conn, params = _connection()
    head = f"UPDATE {OutboundAction._meta.db_table} SET "  # noqa: S608
    head += f"status = {params(OutboundStatus.SENT.value)}, sent_at = {params(sent_at)}, "
    cases = " ".join(
        f"WHEN {params(action_id)} THEN {params(json.dumps(response), '::jsonb')}"
        for action_id, response in responses.items()
    )
    ids = params.row(list(responses))
    open_ = params.row([OutboundStatus.PENDING.value, OutboundStatus.UNCONFIRMED.value])
    sql = (
        f"{head}error = '', response = CASE id {cases} END "
        f"WHERE id IN {ids} AND status IN {open_} RETURNING id"
    )
    return {int(row["id"]) for row in await conn.execute_query_dict(sql, params.values)}


async def bump_many_stats(counts: Mapping[int, Mapping[str, Any]]) -> None:
    """Add to many rules' counters in one statement (an upsert: a rule's first counts create
    its row). Totals are added; times (``last_*``) replace the stored ones when given."""
    conn, params = _connection()
    columns = ("rule_id", *STAT_TOTALS, *STAT_TIMES)
    rows = []
    for rule_id, changes in sorted(counts.items()):  # rows locked in one order
        unknown = set(changes) - set(columns)
        if unknown:
            raise ValueError(f"not rule stats: {sorted(unknown)}")
        values = [rule_id, *(changes.get(n, 0) for n in STAT_TOTALS)]
        values += [changes.get(n) for n in STAT_TIMES]
        rows.append(params.row(values))
    table = RuleStats._meta.db_table
    updates = [f"{n} = {table}.{n} + excluded.{n}" for n in STAT_TOTALS]
    updates += [f"{n} = COALESCE(excluded.{n}, {table}.{n})" for n in STAT_TIMES]
    sql = (
        f"INSERT INTO {table} ({', '.join(columns)}) VALUES {', '.join(rows)} "  # noqa: S608
        f"ON CONFLICT (rule_id) DO UPDATE SET {', '.join(updates)}"
    )
    await conn.execute_query(sql, params.values)


def _db_value(field: Any, value: Any) -> tuple[Any, str]:
    """(value for the driver, its PostgreSQL cast)."""
    if isinstance(field, JSONField):
        return _json_value(value), "::jsonb"
    return _plain_value(value), ""


async def update_many(model: type[Model], changes: Mapping[int, Mapping[str, Any]]) -> None:
    """Update rows of ``model`` by primary key, each with its own fields and values, in one
    statement: a ``CASE`` per field, and a row that does not change a field keeps its value.
    ``changes``: primary key → {field name: new value}."""
    if not changes:
        return
    conn, params = _connection()
    meta = model._meta
    pk = meta.db_pk_column
    names = sorted({name for row in changes.values() for name in row})
    sets = []
    for name in names:
        field, column = meta.fields_map[name], meta.fields_db_projection[name]
        cases = " ".join(
            f"WHEN {params(key)} THEN {params(*_db_value(field, row[name]))}"
            for key, row in changes.items()
            if name in row
        )
        sets.append(f"{column} = CASE {pk} {cases} ELSE {column} END")
    sql = (
        f"UPDATE {meta.db_table} SET {', '.join(sets)} "  # noqa: S608
        f"WHERE {pk} IN {params.row(list(changes))}"
    )
    await conn.execute_query(sql, params.values)


async def insert_returning(
    model: type[M],
    values: Mapping[str, Any],
    *,
    conflict: Sequence[str],
    keep: bool = False,
) -> M | None:
    """Insert one row of ``model``; on a clash of ``conflict`` columns return the row already
    there when ``keep`` (unchanged), else None. ``values`` are keyed by column name."""
    rows = await insert_many_returning(model, [values], conflict=conflict, keep=keep)
    return rows[0] if rows else None


def _insert_sql(model: type[Model], rows: Sequence[Mapping[str, Any]], params: Params) -> str:
    """``INSERT INTO … (columns) VALUES (…), (…)`` for ``rows`` (the same columns each)."""
    meta = model._meta
    by_column = {meta.fields_db_projection[name]: meta.fields_map[name] for name in meta.db_fields}
    columns = list(rows[0])
    # Each column's conversion chosen once, not per value: this builds every bulk insert.
    json_columns = {c for c in columns if isinstance(by_column[c], JSONField)}
    casts = ["::jsonb" if column in json_columns else "" for column in columns]
    groups = [
        params.values_of(
            [
                _json_value(row[column]) if column in json_columns else _plain_value(row[column])
                for column in columns
            ],
            casts,
        )
        for row in rows
    ]
    values = ", ".join(groups)
    return f"INSERT INTO {meta.db_table} ({', '.join(columns)}) VALUES {values}"  # noqa: S608


def _json_value(value: Any) -> str | None:
    return None if value is None else json.dumps(value, separators=(",", ":"))


def _plain_value(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(UTC)  # as UtcDatetimeField writes it
    return value


async def insert_many(model: type[Model], rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert rows of ``model`` (same columns, every column the table needs) in one
    statement, building no row objects."""
    if not rows:
        return
    conn, params = _connection()
    await conn.execute_query(_insert_sql(model, rows, params), params.values)


async def insert_many_ids(model: type[Model], rows: Sequence[Mapping[str, Any]]) -> list[int]:
    """Insert rows of ``model`` (same columns) in one statement: their ids, in the rows'
    order (no row objects are built: for rows whose columns the caller already has)."""
    if not rows:
        return []
    conn, params = _connection()
    pk = model._meta.db_pk_column
    sql = f"{_insert_sql(model, rows, params)} RETURNING {pk}"
    # Ids are given in the order the rows are inserted, which is theirs.
    return sorted(int(row[pk]) for row in await conn.execute_query_dict(sql, params.values))


async def insert_many_returning(
    model: type[M],
    rows: Sequence[Mapping[str, Any]],
    *,
    conflict: Sequence[str],
    keep: bool = False,
) -> list[M]:
    """Insert rows of ``model`` (same columns, distinct ``conflict`` values) in one statement:
    the rows inserted, and with ``keep`` the rows already there too (unchanged)."""
    if not rows:
        return []
    conn, params = _connection()
    target = ", ".join(conflict)
    # A no-op update makes RETURNING give the existing row (DO NOTHING returns none).
    action = f"DO UPDATE SET {conflict[0]} = excluded.{conflict[0]}" if keep else "DO NOTHING"
    sql = f"{_insert_sql(model, rows, params)} ON CONFLICT ({target}) {action} RETURNING *"
    return [model._init_from_db(**row) for row in await conn.execute_query_dict(sql, params.values)]
