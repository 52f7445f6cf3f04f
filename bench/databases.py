"""The database a benchmark runs on: a temporary SQLite file (the embedded default), or, with
``DATABASE_URL`` set to a PostgreSQL server, a database of its own on that server, made for
the run and dropped at its end (the server's other databases are not touched)."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg

DEFAULT_PG = "postgres://postgres@127.0.0.1:5432/test"


def engine_of(url: str) -> str:
    """``sqlite`` or ``postgresql``: the name a benchmark prints with its figures."""
    return "postgresql" if url.startswith("postgres") else "sqlite"


async def admin(url: str, sql: str) -> None:
    """Run ``sql`` on the server of ``url`` (outside a transaction: CREATE/DROP DATABASE)."""
    conn = await asyncpg.connect(url.replace("postgres://", "postgresql://"), timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@asynccontextmanager
async def bench_database(
    var_dir: Path, *, postgres_only: bool = False, server: str | None = None
) -> AsyncIterator[str]:
    """The database URL to run on (not yet migrated). ``server``: a PostgreSQL server URL,
    default ``DATABASE_URL`` (``postgres_only``: the local server when that is unset)."""
    server = server or os.environ.get("DATABASE_URL", "") or (DEFAULT_PG if postgres_only else "")
    if not server.startswith("postgres"):
        if postgres_only:
            raise SystemExit("this benchmark needs PostgreSQL: set DATABASE_URL=postgres://…")
        yield f"sqlite://{var_dir / 'bench.sqlite3'}"
        return
    name = f"reelay_bench_{uuid.uuid4().hex[:8]}"
    try:
        await admin(server, f'CREATE DATABASE "{name}"')
    except (OSError, asyncpg.PostgresError) as problem:
        raise SystemExit(f"no PostgreSQL at {server} ({problem}); set DATABASE_URL") from None
    try:
        yield server.rsplit("/", 1)[0] + f"/{name}"
    finally:
        await admin(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
