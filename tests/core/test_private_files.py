"""VAR_DIR holds the database, keys and media: readable by Reelay's user only."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

from tortoise import connections

from core.adapters.redis_server import RedisLocation
from core.settings import Settings
from reelay.cli import open_services


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_var_dir_database_keys_and_media_are_private(
    tmp_path: Path, redis_location: RedisLocation, redis: Any
) -> None:
    var_dir = tmp_path / "var"
    var_dir.mkdir(mode=0o755)
    os.chmod(var_dir, 0o755)
    settings = Settings(_env_file=None, var_dir=var_dir)  # type: ignore[call-arg]
    services = await open_services(settings, run_migrations=False, redis_location=redis_location)
    container = services.container
    # The session-wide Redis outlives this container.
    container.redis_location = RedisLocation(
        url=redis_location.url, unix_socket_path=redis_location.unix_socket_path
    )
    try:
        await connections.get("default").execute_script("CREATE TABLE probe (x INTEGER)")
        await services.storage.save("A" * 32 + ".jpg", b"x")
        database = var_dir / "reelay.sqlite3"
        assert (var_dir / "reelay.sqlite3-wal").exists()
        private = [
            database,
            var_dir / "reelay.sqlite3-wal",
            var_dir / "reelay.sqlite3-shm",
            var_dir / "secret.key",
            var_dir / "encryption.key",
            var_dir / "media" / "AA" / ("A" * 32 + ".jpg"),
        ]
        assert {path.name: _mode(path) for path in private} == {
            path.name: 0o600 for path in private
        }
        for directory in (var_dir, var_dir / "media", var_dir / "media" / "AA"):
            assert _mode(directory) == 0o700, directory
    finally:
        await container.close()


def test_an_existing_world_readable_database_is_tightened(tmp_path: Path) -> None:
    from core.db import _private_sqlite_file

    database = tmp_path / "old.sqlite3"
    database.write_bytes(b"")
    database.chmod(0o644)
    _private_sqlite_file(f"sqlite://{database}")
    assert _mode(database) == 0o600
