from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from core.errors import SettingsError
from core.settings import Settings, load_settings


def test_defaults_are_embedded(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_settings()
    assert settings.resolved_database_url == "sqlite://var/reelay.sqlite3"
    assert settings.redis_url == ""
    assert settings.sandbox is True
    assert settings.worker_poll_delay == 0.05
    assert settings.base_url == "http://127.0.0.1:8000"


def test_settings_are_frozen(tmp_path: Path) -> None:
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    with pytest.raises(Exception, match="frozen"):
        settings.panel_port = 1  # type: ignore[misc]


def test_bad_value_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORKER_POLL_DELAY", "soon")
    with pytest.raises(SettingsError, match="WORKER_POLL_DELAY"):
        load_settings()


def test_env_file_is_read(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("META_APP_ID=123\nGRAPH_VERSION=v22.0\n")
    settings = load_settings()
    assert settings.meta_app_id == "123"
    assert settings.graph_version == "v22.0"
    assert settings.sandbox is False


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("WORKER_POLL_DELAY", "abc"),
        ("PANEL_PORT", "99999"),
        ("PUBLIC_BASE_URL", "not a url"),
        ("GRAPH_VERSION", "21"),
        ("LOG_LEVEL", "LOUD"),
    ],
)
def test_cli_refuses_bad_setting_with_one_line(tmp_path: Path, name: str, value: str) -> None:
    env = {**os.environ, name: value}
    result = subprocess.run(
        [sys.executable, "-m", "reelay", "migrate"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert name in lines[0]
    assert "Traceback" not in result.stderr


def test_env_example_documents_every_setting() -> None:
    example = (Path(__file__).parents[2] / ".env.example").read_text()
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    for name in Settings.model_fields:
        assert f"{name.upper()}=" in example, f"{name.upper()} missing from .env.example"
        assert f"`{name.upper()}`" in readme, f"{name.upper()} missing from README"


def test_panel_port_moves_the_default_public_address(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PANEL_PORT", "8123")
    assert load_settings().base_url == "http://127.0.0.1:8123"
    monkeypatch.setenv("PUBLIC_BASE_URL", "https://reelay.example.com/")
    assert load_settings().base_url == "https://reelay.example.com"
