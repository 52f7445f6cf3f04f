"""`reelay admin reset-password` and `reelay admin unlock`, as an operator runs them."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from core.adapters.redis_server import running_redis, start_embedded_redis
from core.db.models import User, UserSession
from core.services import password_resets, sessions, users
from panel import login_throttle
from reelay import cli
from tests.e2e.cli_in_process import Outcome, reelay

pytestmark = pytest.mark.timeout(120)

NOW = datetime(2026, 3, 1, tzinfo=UTC)


def _reelay(
    tmp_path: Path, database_url: str, *args: str, password: str = ""
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "REELAY_ADMIN_PASSWORD": password, "DATABASE_URL": database_url}
    env.pop("REDIS_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "reelay", *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_admin_commands_have_help(capsys: pytest.CaptureFixture[str]) -> None:
    for command in (["admin", "reset-password"], ["admin", "unlock"]):
        result = reelay(capsys, *command, "--help")
        assert result.returncode == 0, result.stderr
        assert "usage: reelay" in result.stdout


def test_reset_password_refuses_a_weak_password_and_an_unknown_email(
    tmp_path: Path,
    sqlite_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", sqlite_url)
    monkeypatch.delenv("REDIS_URL", raising=False)

    def admin(*args: str, password: str) -> Outcome:
        monkeypatch.setenv("REELAY_ADMIN_PASSWORD", password)
        return reelay(capsys, "admin", *args)

    made = admin("create", "--email", "boss@example.com", password="violet harbour kettle")
    assert made.returncode == 0, made.stderr
    weak = admin("reset-password", "boss@example.com", password="password12")
    assert weak.returncode == 1 and "Traceback" not in weak.stderr
    unknown = admin("reset-password", "who@example.com", password="x y z w q")
    assert unknown.returncode == 1 and "No account" in unknown.stderr
    # The password set by a real `reelay` process.
    done = _reelay(
        tmp_path,
        sqlite_url,
        "admin",
        "reset-password",
        "Boss@Example.com",
        password="amber quarry lantern",
    )
    assert done.returncode == 0, done.stderr
    assert "new password set for boss@example.com" in done.stdout


async def test_reset_password_ends_every_session(sqlite_db: str) -> None:
    user, _ = await users.create_owner("boss@example.com", "long enough pw")
    await sessions.start(user, NOW)
    await sessions.start(user, NOW)
    _, ended = await password_resets.reset_by_admin("boss@example.com", "amber quarry lantern")
    assert ended == 2
    assert await UserSession.all().count() == 0
    fresh = await User.get(id=user.id)
    assert users.password_matches(fresh, "amber quarry lantern")


async def test_unlock_reaches_a_running_embedded_redis(
    tmp_path: Path, settings_factory: Any
) -> None:
    var_dir = tmp_path / "var"
    location = start_embedded_redis(var_dir)
    redis = Redis(**location.connection_kwargs())
    try:
        for n in range(login_throttle.ACCOUNT_FREE):
            await login_throttle.reserve(redis, f"192.0.2.{n}", "boss@example.com", None, 1000.0)
        assert await login_throttle.reserve(redis, "192.0.2.99", "boss@example.com", None, 1000.0)
        assert running_redis("", var_dir) is not None
        await cli._admin_unlock(settings_factory(var_dir=var_dir), "Boss@Example.com")
        assert not await login_throttle.reserve(
            redis, "192.0.2.99", "boss@example.com", None, 1000.0
        )
    finally:
        await redis.aclose()
        location.stop()


async def test_unlock_without_a_running_reelay_says_so(
    tmp_path: Path, settings_factory: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    await cli._admin_unlock(settings_factory(var_dir=tmp_path / "empty"), "boss@example.com")
    assert "nothing to unlock" in capsys.readouterr().out
