"""Database writes of the automation hot path: one-statement inserts
(``INSERT … ON CONFLICT … RETURNING``).

Each such insert replaces a read, a savepoint, an insert and a release (four round trips to the
database, each a hop to SQLite's thread) with one, on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from enum import Enum
from typing import Any, TypeVar

from tortoise import connections
from tortoise.fields.data import JSONField
from tortoise.models import Model

M = TypeVar("M", bound=Model)


def _db_value(field: Any, value: Any) -> tuple[Any, bool]:
    """(value for the driver, whether it is JSON text)."""
    if isinstance(field, JSONField):
        return (None if value is None else json.dumps(value, separators=(",", ":"))), True
    if isinstance(value, Enum):
        return value.value, False
    return value, False


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
    conn = connections.get("default")
    postgres = conn.capabilities.dialect == "postgres"
    meta = model._meta
    by_column = {meta.fields_db_projection[name]: meta.fields_map[name] for name in meta.db_fields}
    columns = list(rows[0])
    args: list[Any] = []
    groups: list[str] = []
    for row in rows:
        slots: list[str] = []
        for column in columns:
            value, is_json = _db_value(by_column[column], row[column])
            args.append(value)
            n = len(args)
            slots.append((f"${n}::jsonb" if is_json else f"${n}") if postgres else "?")
        groups.append(f"({', '.join(slots)})")
    target = ", ".join(conflict)
    # A no-op update makes RETURNING give the existing row (DO NOTHING returns none).
    action = f"DO UPDATE SET {conflict[0]} = excluded.{conflict[0]}" if keep else "DO NOTHING"
    sql = (
        f"INSERT INTO {meta.db_table} ({', '.join(columns)}) "  # noqa: S608
        f"VALUES {', '.join(groups)} ON CONFLICT ({target}) {action} RETURNING *"
    )
    return [model._init_from_db(**row) for row in await conn.execute_query_dict(sql, args)]
