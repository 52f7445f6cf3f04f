"""Database lifecycle: Tortoise config, connect, migrate, close."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tortoise import Tortoise, connections
from tortoise.backends.base.config_generator import expand_db_url
from tortoise.exceptions import DBConnectionError
from tortoise.migrations.api.migrate import migrate

from core.adapters.private_files import private_file
from core.errors import InfrastructureError

logger = logging.getLogger(__name__)

MODELS_MODULE = "core.db.models"
MIGRATIONS_MODULE = "core.db.migrations"

# Applied to every SQLite connection (a value in the URL's query string wins). Workers and
# the panel are separate processes writing one file: WAL lets readers go on while one writes,
# NORMAL syncs at checkpoints instead of at every commit (a crash of the machine, not of a
# process, may lose the last commits, never corrupt the file), and a writer waits for the
# lock instead of failing.
SQLITE_PRAGMAS: dict[str, Any] = {
    "journal_mode": "WAL",
    "synchronous": "NORMAL",
    "busy_timeout": 10_000,
}


async def keep_session(connection: object) -> None:
    """How a pooled PostgreSQL connection is made ready for its next user: as it is.

    asyncpg's default runs ``SELECT pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *;
    RESET ALL`` on every release, a round trip after each query outside a transaction and
    after each commit. Reelay never changes a session (no ``SET``, ``LISTEN``, advisory lock
    or cursor kept past its transaction), and the pool rolls back a transaction left open
    before it calls this, so there is nothing to undo.
    """


def tortoise_config(database_url: str) -> dict[str, Any]:
    """Tortoise's config dict for ``database_url`` with Reelay's one app, ``models``."""
    url = database_url
    if url.startswith("postgresql://"):
        url = "postgres://" + url.removeprefix("postgresql://")
    connection: str | dict[str, Any] = url
    if url.startswith("postgres://"):
        connection = expand_db_url(url)
        connection["credentials"]["reset"] = keep_session
    if url.startswith("sqlite://"):
        connection = expand_db_url(url)
        given = parse_qs(urlsplit(url).query)
        for pragma, value in SQLITE_PRAGMAS.items():
            if pragma not in given:
                connection["credentials"][pragma] = value
    return {
        "connections": {"default": connection},
        "apps": {
            "models": {
                "models": [MODELS_MODULE],
                "default_connection": "default",
                "migrations": MIGRATIONS_MODULE,
            }
        },
        "use_tz": True,
        "timezone": "UTC",
    }


async def migrate_database(database_url: str) -> None:
    """Apply every pending migration."""
    _private_sqlite_file(database_url)
    try:
        await migrate(config=tortoise_config(database_url))
    except (OSError, DBConnectionError) as exc:
        raise InfrastructureError(f"cannot reach the database: {exc}") from exc
    finally:
        await Tortoise.close_connections()


async def open_database(database_url: str, *, run_migrations: bool = True) -> None:
    """Migrate (when asked) and connect; queries from any task then use this connection."""
    if run_migrations:
        await migrate_database(database_url)
    _private_sqlite_file(database_url)
    try:
        await Tortoise.init(config=tortoise_config(database_url), _enable_global_fallback=True)
        await ping_database()
    except (OSError, DBConnectionError) as exc:
        raise InfrastructureError(f"cannot reach the database: {exc}") from exc


def _private_sqlite_file(database_url: str) -> None:
    if database_url.startswith("sqlite://"):
        path = str(expand_db_url(database_url)["credentials"]["file_path"])
        if path != ":memory:":
            private_file(Path(path))


async def ping_database() -> None:
    conn = connections.get("default")
    await conn.execute_query("SELECT 1")


async def close_database() -> None:
    await Tortoise.close_connections()
