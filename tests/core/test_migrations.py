"""Migrations upgrade a database made by an earlier release without losing its rows."""

from __future__ import annotations

import uuid
from pathlib import Path

import asyncpg
import pytest
from tortoise import Tortoise, connections
from tortoise.cli.cli import tortoise_cli_context
from tortoise.exceptions import OperationalError
from tortoise.migrations.api import migrate
from tortoise.migrations.autodetector import MigrationAutodetector

from core.db import migrate_database, tortoise_config
from tests.conftest import _pg_admin_url, _pg_reachable

# Each upgrade replays every migration: about 10 s on a quiet 2-core machine, several times
# that on a busy one.
pytestmark = pytest.mark.timeout(240)


async def _upgrade_keeps_events(url: str) -> list[dict[str, object]]:
    """A row stored by the first release, read after upgrading: its parsed event is None
    (the worker parses its payload)."""
    await migrate(config=tortoise_config(url), target="models.0001_initial")
    await Tortoise.init(config=tortoise_config(url))
    try:
        with pytest.raises(OperationalError):  # the first release had no rule columns
            await connections.get("default").execute_query("SELECT rule_id FROM webhookevent")
        await connections.get("default").execute_query(
            "INSERT INTO webhookevent (dedupe_key, account_ig_id, kind, payload, status, error,"
            " received_at) VALUES ('e1', '1784', 'comment', '{}', 'done', '', CURRENT_TIMESTAMP)"
        )
    finally:
        await Tortoise.close_connections()
    await migrate_database(url)
    await Tortoise.init(config=tortoise_config(url))
    try:
        _, rows = await connections.get("default").execute_query(
            "SELECT dedupe_key, rule_id, rule_name, event FROM webhookevent"
        )
        return [dict(row) for row in rows]
    finally:
        await Tortoise.close_connections()


async def test_sqlite_database_from_the_first_release_is_upgraded(tmp_path: Path) -> None:
    rows = await _upgrade_keeps_events(f"sqlite://{tmp_path / 'old.sqlite3'}")
    assert rows == [{"dedupe_key": "e1", "rule_id": None, "rule_name": None, "event": None}]


@pytest.mark.postgres
async def test_postgres_database_from_the_first_release_is_upgraded() -> None:
    admin = _pg_admin_url()
    problem = await _pg_reachable(admin)
    if problem:
        pytest.skip(f"no PostgreSQL server at {admin} ({problem}); set TEST_DATABASE_URL")
    name = f"reelay_upgrade_{uuid.uuid4().hex[:10]}"
    raw = admin.replace("postgres://", "postgresql://")
    conn = await asyncpg.connect(raw)
    await conn.execute(f'CREATE DATABASE "{name}"')
    await conn.close()
    try:
        rows = await _upgrade_keeps_events(f"{admin.rsplit('/', 1)[0]}/{name}")
    finally:
        conn = await asyncpg.connect(raw)
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.close()
    assert rows == [{"dedupe_key": "e1", "rule_id": None, "rule_name": None, "event": None}]


async def _upgrade_to(url: str, target: str) -> None:
    """Apply the migrations up to ``target``: a data step is checked right after its migration
    (the two tests above carry a database from the first release through every one)."""
    try:
        await migrate(config=tortoise_config(url), target=f"models.{target}")
    finally:
        await Tortoise.close_connections()


async def test_the_migrations_describe_the_models_exactly() -> None:
    """A model change without its migration would break every existing install."""
    config = tortoise_config("sqlite://:memory:")
    async with tortoise_cli_context(config) as context:
        assert context.apps is not None
        detector = MigrationAutodetector(context.apps, config["apps"])
        pending = await detector.changes()
    assert [writer.name for writer in pending] == []


async def test_upgrade_makes_the_first_owner_the_instance_admin(tmp_path: Path) -> None:
    url = f"sqlite://{tmp_path / 'old.sqlite3'}"
    await migrate(config=tortoise_config(url), target="models.0003_sessions_and_password_resets")
    await Tortoise.init(config=tortoise_config(url))
    try:
        db = connections.get("default")
        await db.execute_script(
            "INSERT INTO workspace (id, name, timezone, ai_enabled, ai_monthly_token_quota,"
            " created_at) VALUES (1, 'A', 'UTC', 0, 0, CURRENT_TIMESTAMP);"
            "INSERT INTO user (id, email, password_hash, name, is_active, created_at) VALUES"
            " (1, 'editor@x', 'h', '', 1, CURRENT_TIMESTAMP),"
            " (2, 'first@x', 'h', '', 1, CURRENT_TIMESTAMP),"
            " (3, 'later@x', 'h', '', 1, CURRENT_TIMESTAMP);"
            "INSERT INTO membership (workspace_id, user_id, role, created_at) VALUES"
            " (1, 1, 'editor', CURRENT_TIMESTAMP), (1, 2, 'owner', CURRENT_TIMESTAMP),"
            " (1, 3, 'owner', CURRENT_TIMESTAMP);"
        )
    finally:
        await Tortoise.close_connections()
    await _upgrade_to(url, "0007_instance_admin")
    await Tortoise.init(config=tortoise_config(url))
    try:
        _, rows = await connections.get("default").execute_query(
            "SELECT email FROM user WHERE is_instance_admin"
        )
    finally:
        await Tortoise.close_connections()
    assert [row["email"] for row in rows] == ["first@x"]


async def test_upgrade_keeps_who_each_chat_account_acts_as(tmp_path: Path) -> None:
    """Existing codes link chats, existing chat accounts keep their person, and unlinked
    members of linked chats read nothing until a workspace says so."""
    url = f"sqlite://{tmp_path / 'old.sqlite3'}"
    await migrate(config=tortoise_config(url), target="models.0007_instance_admin")
    await Tortoise.init(config=tortoise_config(url))
    try:
        await connections.get("default").execute_script(
            "INSERT INTO workspace (id, name, timezone, ai_enabled, ai_monthly_token_quota,"
            " created_at) VALUES (1, 'A', 'UTC', 0, 0, CURRENT_TIMESTAMP);"
            "INSERT INTO user (id, email, password_hash, name, is_active, is_instance_admin,"
            " created_at) VALUES (1, 'admin@x', 'h', '', 1, 0, CURRENT_TIMESTAMP);"
            "INSERT INTO linkcode (workspace_id, created_by_id, code_hash, expires_at) VALUES"
            " (1, 1, 'abc', CURRENT_TIMESTAMP);"
            "INSERT INTO chatidentity (user_id, platform, platform_user_id, created_at) VALUES"
            " (1, 'telegram', '42', CURRENT_TIMESTAMP);"
        )
    finally:
        await Tortoise.close_connections()
    await _upgrade_to(url, "0012_team_chatops")
    await Tortoise.init(config=tortoise_config(url))
    try:
        db = connections.get("default")
        _, codes = await db.execute_query("SELECT kind FROM linkcode")
        _, spaces = await db.execute_query("SELECT chat_readers_unlinked FROM workspace")
        _, people = await db.execute_query("SELECT user_id, platform_user_id FROM chatidentity")
    finally:
        await Tortoise.close_connections()
    assert [row["kind"] for row in codes] == ["chat"]
    assert [bool(row["chat_readers_unlinked"]) for row in spaces] == [False]
    assert [(row["user_id"], row["platform_user_id"]) for row in people] == [(1, "42")]


async def test_upgrade_lists_existing_conversations_by_their_last_message(tmp_path: Path) -> None:
    """Conversations from before the inbox get their last message and status, and their
    messages read as the person's or a rule's."""
    url = f"sqlite://{tmp_path / 'old.sqlite3'}"
    await migrate(config=tortoise_config(url), target="models.0014_messenger_profile")
    await Tortoise.init(config=tortoise_config(url))
    try:
        await connections.get("default").execute_script(
            "INSERT INTO workspace (id, name, timezone, ai_enabled, ai_monthly_token_quota,"
            " created_at) VALUES (1, 'A', 'UTC', 0, 0, CURRENT_TIMESTAMP);"
            "INSERT INTO instagramaccount (id, workspace_id, ig_id, username, account_type,"
            " login_kind, token_encrypted, status, status_reason, webhook_subscribed, usage,"
            " messenger_profile, created_at) VALUES (1, 1, '1784', 'shop', 'BUSINESS',"
            " 'sandbox', 't', 'active', '', 0, '{}', '{}', CURRENT_TIMESTAMP);"
            "INSERT INTO conversation (id, account_id, igsid, username, first_name, created_at)"
            " VALUES (1, 1, 'p1', 'ann', '', CURRENT_TIMESTAMP),"
            " (2, 1, 'p2', 'bob', '', CURRENT_TIMESTAMP);"
            "INSERT INTO message (conversation_id, direction, text, created_at) VALUES"
            " (1, 'out', 'Here you go', '2026-01-01 10:00:00'),"
            " (1, 'in', 'thanks!', '2026-01-01 10:05:00'),"
            " (2, 'in', 'price?', '2026-01-02 09:00:00'),"
            " (2, 'out', 'Prices inside', '2026-01-02 09:00:01');"
        )
    finally:
        await Tortoise.close_connections()
    await _upgrade_to(url, "0015_inbox")
    await Tortoise.init(config=tortoise_config(url))
    try:
        db = connections.get("default")
        _, rows = await db.execute_query(
            "SELECT id, status, last_message_text, last_message_at IS NOT NULL AS listed,"
            " paused_until, labels FROM conversation ORDER BY id"
        )
        _, sources = await db.execute_query("SELECT DISTINCT source FROM message")
    finally:
        await Tortoise.close_connections()
    assert [(r["id"], r["status"], r["last_message_text"]) for r in rows] == [
        (1, "waiting", "thanks!"),
        (2, "open", "Prices inside"),
    ]
    assert all(r["listed"] and r["paused_until"] is None and r["labels"] == "" for r in rows)
    assert [r["source"] for r in sources] == [""]  # read as follower/automation by direction
