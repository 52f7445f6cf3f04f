"""Shared fixtures: a real database (SQLite, and PostgreSQL when reachable), a real Redis
(REDIS_URL or the embedded one), the services (and their container) and the panel app."""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
from cryptography.fernet import Fernet
from redis.asyncio import Redis
from tortoise.backends.base.executor import EXECUTOR_CACHE

from core.adapters.redis_server import RedisLocation, locate_redis
from core.bootstrap import Container
from core.db import close_database, migrate_database, open_database
from core.settings import Settings
from core.wiring import Services
from reelay.cli import open_services

DEFAULT_PG = "postgres://postgres@127.0.0.1:5432/test"


# ---------------------------------------------------------------- Redis


def _own_database(url: str) -> str:
    """Each test process (pytest -n) on its own numbered database of a shared REDIS_URL:
    the tests empty their database between tests."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    if not url or not worker.startswith("gw"):
        return url
    parts = urlsplit(url)
    first = int(parts.path.strip("/") or 0)
    return urlunsplit(parts._replace(path=f"/{first + int(worker[2:])}"))


@pytest.fixture(scope="session")
def redis_location(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisLocation]:
    """REDIS_URL when set, otherwise an embedded Redis for the whole run (never skipped)."""
    url = _own_database(os.environ.get("REDIS_URL", ""))
    location = locate_redis(url, tmp_path_factory.mktemp("redis"))
    yield location
    location.stop()


@pytest.fixture
async def redis(redis_location: RedisLocation) -> AsyncIterator[Redis]:
    client: Redis = Redis(**redis_location.connection_kwargs())
    await client.flushdb()
    yield client
    await client.flushdb()
    await client.aclose()


# ---------------------------------------------------------------- databases


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file, copied for each test (migrating once keeps tests fast)."""
    path = tmp_path_factory.mktemp("db") / "template.sqlite3"
    asyncio.run(migrate_database(f"sqlite://{path}"))
    return path


def _pg_admin_url() -> str:
    return os.environ.get("TEST_DATABASE_URL", DEFAULT_PG)


async def _pg_reachable(url: str) -> str | None:
    try:
        conn = await asyncio.wait_for(
            asyncpg.connect(url.replace("postgres://", "postgresql://")), 3
        )
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        return str(exc) or type(exc).__name__
    await conn.close()
    return None


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this run; skipped (with the reason) when no server."""
    admin = _pg_admin_url()
    problem = asyncio.run(_pg_reachable(admin))
    if problem:
        pytest.skip(f"no PostgreSQL server at {admin} ({problem}); set TEST_DATABASE_URL")
    name = f"reelay_test_{uuid.uuid4().hex[:10]}"

    async def admin_sql(sql: str) -> None:
        conn = await asyncpg.connect(admin.replace("postgres://", "postgresql://"))
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin_sql(f'CREATE DATABASE "{name}"'))
    base = admin.rsplit("/", 1)[0]
    url = f"{base}/{name}"
    asyncio.run(migrate_database(url))
    yield url
    asyncio.run(admin_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _truncate_postgres(url: str) -> None:
    conn = await asyncpg.connect(url.replace("postgres://", "postgresql://"))
    try:
        tables = await conn.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
            "AND tablename NOT LIKE 'tortoise%'"
        )
        names = ", ".join(f'"{row["tablename"]}"' for row in tables)
        if names:
            await conn.execute(f"TRUNCATE {names} RESTART IDENTITY CASCADE")
    finally:
        await conn.close()


@pytest.fixture
def sqlite_url(tmp_path: Path, sqlite_template: Path) -> str:
    path = tmp_path / "reelay.sqlite3"
    shutil.copy(sqlite_template, path)
    return f"sqlite://{path}"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def any_database_url(request: pytest.FixtureRequest) -> str:
    """Data-layer tests take this to run on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        url: str = request.getfixturevalue("sqlite_url")
        return url
    pg: str = request.getfixturevalue("postgres_url")
    return pg


@pytest.fixture
async def db(any_database_url: str) -> AsyncIterator[str]:
    """An open, migrated, empty database (SQLite and PostgreSQL)."""
    if any_database_url.startswith("postgres"):
        await _truncate_postgres(any_database_url)
    # Tortoise caches SQL per table, not per dialect: forget it when the backend changes.
    EXECUTOR_CACHE.clear()
    await open_database(any_database_url, run_migrations=False)
    yield any_database_url
    await close_database()


@pytest.fixture
async def sqlite_db(sqlite_url: str) -> AsyncIterator[str]:
    """An open, migrated, empty SQLite database (for tests not about the data layer)."""
    EXECUTOR_CACHE.clear()
    await open_database(sqlite_url, run_migrations=False)
    yield sqlite_url
    await close_database()


# ---------------------------------------------------------------- container and app


@pytest.fixture
def settings_factory(tmp_path: Path, sqlite_url: str) -> Any:
    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "var_dir": tmp_path / "var",
            "database_url": sqlite_url,
            "encryption_key": Fernet.generate_key().decode(),
            "secret_key": "test-secret-key-" + "x" * 32,
            "meta_verify_token": "verify-me",
            "meta_app_secret": "app-secret",
            # The panel stores deliveries itself, so a test reads them right after its POST;
            # the inbox stream has its own tests (tests/core/test_inbox_stream.py) and the
            # exactly-once test runs both ways.
            "webhook_inbox": "database",
            # A page's live-update stream ends at once: a test client reads whole answers.
            "inbox_stream_s": 0.2,
        }
        values.update(overrides)
        return Settings(_env_file=None, **values)  # type: ignore[call-arg]

    return make


@pytest.fixture
def settings(settings_factory: Any) -> Settings:
    made: Settings = settings_factory()
    return made


@pytest.fixture
async def services(
    settings: Settings, redis_location: RedisLocation, redis: Redis
) -> AsyncIterator[Services]:
    built = await open_services(settings, run_migrations=False, redis_location=redis_location)
    # The session-wide Redis outlives each test's services.
    built.container.redis_location = RedisLocation(
        url=redis_location.url, unix_socket_path=redis_location.unix_socket_path
    )
    yield built
    await built.close()


@pytest.fixture
def container(services: Services) -> Container:
    """The infrastructure of the test's services."""
    return services.container


@pytest.fixture
async def app(settings: Settings, services: Services) -> AsyncIterator[Any]:
    from panel.app import create_app

    quart_app = create_app(settings, services=services)
    async with quart_app.test_app() as test_app:
        yield test_app


@pytest.fixture
def client(app: Any) -> Any:
    return app.test_client()


# ---------------------------------------------------------------- HTTP stubs


@pytest.fixture(autouse=True, scope="session")
def _aioresponses_compat() -> None:
    """Let aioresponses build responses for the installed aiohttp (see tests/aiohttp_compat)."""
    from tests.aiohttp_compat import patch_aioresponses

    patch_aioresponses()


# ---------------------------------------------------------------- sandbox Instagram


@pytest.fixture
async def sandbox() -> AsyncIterator[Any]:
    """A running sandbox Instagram (sandbox.server.Sandbox) on a free localhost port.

    ``.url``, ``.state`` (accounts, feed, comments, ``sent``), ``.faults`` (fail, rate_limit,
    timeout, latency, usage), ``.deliveries``; follower actions ``comment``, ``dm``,
    ``postback``, ``story_reply``, ``story_mention`` send webhooks to ``state.webhook_url``
    signed with "app-secret" (the ``settings`` fixture's META_APP_SECRET).
    """
    from sandbox.server import Sandbox
    from sandbox.state import SandboxState

    server = Sandbox(
        SandboxState(secret="sandbox-secret", app_secret="app-secret"), fetch_timeout_s=5
    )
    await server.start()
    yield server
    await server.stop()
