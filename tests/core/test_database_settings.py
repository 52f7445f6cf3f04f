"""Database connection settings: SQLite's (every process, panel and workers, writes one file)
and PostgreSQL's pool."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from asyncpg.connection import LoggedQuery
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


def test_postgres_urls_keep_what_they_say() -> None:
    config = tortoise_config("postgresql://reelay:secret@db:5432/reelay?maxsize=10")
    connection = config["connections"]["default"]
    assert connection["engine"] == "tortoise.backends.asyncpg"
    credentials = connection["credentials"]
    assert (credentials["host"], credentials["port"], credentials["database"]) == (
        "db",
        5432,
        "reelay",
    )
    assert (credentials["user"], credentials["password"]) == ("reelay", "secret")
    assert credentials["maxsize"] == "10"


@pytest.fixture
async def postgres_pool(postgres_url: str) -> AsyncIterator[Any]:
    """Reelay's PostgreSQL client, as configured for every process."""
    EXECUTOR_CACHE.clear()
    await open_database(postgres_url, run_migrations=False)
    yield connections.get("default")
    await close_database()


@pytest.mark.postgres
async def test_a_pooled_postgres_connection_goes_back_without_a_round_trip(
    postgres_pool: Any,
) -> None:
    sent: list[str] = []

    def log(record: LoggedQuery) -> None:
        sent.append(record.query)

    async with postgres_pool.acquire_connection() as raw:
        raw.add_query_logger(log)
        await raw.fetchval("SELECT 1")
        await asyncio.sleep(0)  # asyncpg calls loggers soon after the query
        assert sent == ["SELECT 1"]
    await asyncio.sleep(0)
    assert sent == ["SELECT 1"]  # nothing more when it went back to the pool


@pytest.mark.postgres
async def test_a_transaction_left_open_is_rolled_back_when_its_connection_goes_back(
    postgres_pool: Any,
) -> None:
    await postgres_pool.execute_script("CREATE TABLE left_open (n int)")
    try:
        async with postgres_pool.acquire_connection() as raw:
            await raw.execute("BEGIN")
            await raw.execute("INSERT INTO left_open VALUES (1)")
        async with postgres_pool.acquire_connection() as raw:
            assert not raw.is_in_transaction()
            assert await raw.fetchval("SELECT count(*) FROM left_open") == 0
    finally:
        await postgres_pool.execute_script("DROP TABLE IF EXISTS left_open")
