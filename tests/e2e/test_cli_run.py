"""The README's first command, as a user runs it: `reelay run` on embedded defaults."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import psutil
import pytest

from tests.e2e.cli_in_process import reelay

pytestmark = pytest.mark.timeout(120)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def _embedded_redis(var_dir: Path) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter(["name", "cwd"]):
        if process.info["name"] == "redis-server" and process.info["cwd"] == str(var_dir):
            found.append(process)
    return found


def test_run_serves_panel_and_worker_on_embedded_defaults(tmp_path: Path) -> None:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k not in {"REDIS_URL", "DATABASE_URL"}}
    env.update(PANEL_PORT=str(port), PUBLIC_BASE_URL=f"http://127.0.0.1:{port}")
    proc = subprocess.Popen(
        [sys.executable, "-m", "reelay", "run"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        status, body = 0, ""
        while time.monotonic() < deadline:
            try:
                status, body = _get(f"http://127.0.0.1:{port}/healthz")
                break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
                time.sleep(0.05)
        assert status == 200, body
        assert '"redis":"up"' in body and '"database":"up"' in body
        status, page = _get(f"http://127.0.0.1:{port}/setup/first-run")
        assert status == 200 and "Create owner" in page
        assert (tmp_path / "var" / "reelay.sqlite3").exists()
        assert (tmp_path / "var" / "encryption.key").exists()
        embedded = _embedded_redis(tmp_path / "var")
        assert embedded, "no embedded redis-server working in ./var"
    finally:
        proc.send_signal(signal.SIGINT)
        output, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, output
    assert "worker started" in output and "stopped" in output
    assert "Traceback" not in output
    deadline = time.monotonic() + 10
    while _embedded_redis(tmp_path / "var") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _embedded_redis(tmp_path / "var"), "the embedded redis outlived reelay"


def test_every_subcommand_has_help(capsys: pytest.CaptureFixture[str]) -> None:
    for command in (["run"], ["panel"], ["worker"], ["bot"], ["migrate"], ["admin", "create"]):
        result = reelay(capsys, *command, "--help")
        assert result.returncode == 0, result.stderr
        assert "usage: reelay" in result.stdout


def _migrated_var_dir(tmp_path: Path, sqlite_template: Path) -> None:
    """A ./var holding an up-to-date database (the first `reelay run` above migrates one)."""
    (tmp_path / "var").mkdir(mode=0o700)
    shutil.copy(sqlite_template, tmp_path / "var" / "reelay.sqlite3")


def test_admin_create_makes_an_owner(
    tmp_path: Path,
    sqlite_template: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _migrated_var_dir(tmp_path, sqlite_template)
    env = {**os.environ, "REELAY_ADMIN_PASSWORD": "a long password"}
    env.pop("DATABASE_URL", None)
    result = subprocess.run(
        [sys.executable, "-m", "reelay", "admin", "create", "--email", "Boss@Example.com"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "created owner boss@example.com" in result.stdout
    # The same command again, through the same entry point in this process.
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("REELAY_ADMIN_PASSWORD", "a long password")
    monkeypatch.delenv("DATABASE_URL", raising=False)
    again = reelay(capsys, "admin", "create", "--email", "boss@example.com")
    assert again.returncode == 1
    assert "Email taken" in again.stderr and "Traceback" not in again.stderr
    instance_admin = reelay(
        capsys, "admin", "create", "--instance-admin", "--email", "ops@example.com"
    )
    assert instance_admin.returncode == 0, instance_admin.stderr
    assert "created instance admin and owner ops@example.com" in instance_admin.stdout


def test_unreachable_redis_is_a_clear_error(tmp_path: Path, sqlite_template: Path) -> None:
    _migrated_var_dir(tmp_path, sqlite_template)
    env = {**os.environ, "REDIS_URL": "redis://127.0.0.1:1/0"}
    env.pop("DATABASE_URL", None)
    result = subprocess.run(
        [sys.executable, "-m", "reelay", "worker"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 3
    assert "cannot reach Redis at redis://127.0.0.1:1/0" in result.stderr
    assert "Traceback" not in result.stderr
