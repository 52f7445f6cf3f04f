"""SQLite connection settings: every process (panel, workers) writes one file."""

from __future__ import annotations

from tortoise import connections
from tortoise.backends.base.executor import EXECUTOR_CACHE

from core.db import close_database, open_database, tortoise_config


async def _pragma(name: str) -> object:
    rows = await connections.get("default").execute_query_dict(f"PRAGMA {name}")
    return next(iter(rows[0].values()))


async def test_sqlite_connections_use_wal_with_normal_sync_and_wait_for_locks(
    sqlite_db: str,
) -> None:
    assert str(await _pragma("journal_mode")).lower() == "wal"
    assert await _pragma("synchronous") == 1  # NORMAL
    assert await _pragma("busy_timeout") == 10_000


async def test_a_setting_in_the_database_url_wins(sqlite_url: str) -> None:
    EXECUTOR_CACHE.clear()
    await open_database(f"{sqlite_url}?synchronous=FULL", run_migrations=False)
    try:
        assert await _pragma("synchronous") == 2  # FULL
        assert await _pragma("busy_timeout") == 10_000
    finally:
        await close_database()


def test_postgres_urls_are_left_alone() -> None:
    config = tortoise_config("postgresql://reelay:secret@db:5432/reelay")
    assert config["connections"]["default"] == "postgres://reelay:secret@db:5432/reelay"
