"""docker-compose.yml cannot run here (no Docker engine), so check it against the code."""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

import yaml

from core.settings import Settings

ROOT = Path(__file__).parents[1]


def _compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_services_run_real_cli_commands() -> None:
    services = _compose()["services"]
    assert {"postgres", "redis", "panel", "worker", "bot"} <= set(services)
    for name in ("panel", "worker", "bot"):
        command = services[name]["command"]
        argv = shlex.split(command) if isinstance(command, str) else list(command)
        assert argv[0] == "reelay"
        result = subprocess.run(
            [sys.executable, "-m", "reelay", *argv[1:], "--help"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, f"{name}: {result.stderr}"
        assert services[name]["build"]
        assert "healthcheck" in services[name] or name != "panel"


def test_compose_variables_exist_in_settings() -> None:
    known = {name.upper() for name in Settings.model_fields}
    for name, service in _compose()["services"].items():
        if name in {"postgres", "redis"}:
            continue
        env = service.get("environment", {})
        keys = env.keys() if isinstance(env, dict) else [item.split("=")[0] for item in env]
        for key in keys:
            assert key in known, f"{name} sets {key}, which Reelay does not read"


def test_compose_env_file_is_the_documented_example() -> None:
    for name in ("panel", "worker", "bot"):
        assert _compose()["services"][name]["env_file"] in (".env", [".env"])


def test_caddy_alone_faces_the_internet_with_https_for_the_public_address() -> None:
    services = _compose()["services"]
    assert "ports" not in services["panel"], "the panel must not be published directly"
    caddy = services["caddy"]
    assert caddy["image"].startswith("caddy:")
    assert {"80:80", "443:443"} <= set(caddy["ports"])
    assert caddy["env_file"] in (".env", [".env"])  # PUBLIC_BASE_URL names the site
    assert any(v.startswith("./Caddyfile:/etc/caddy/Caddyfile") for v in caddy["volumes"])
    caddyfile = (ROOT / "Caddyfile").read_text()
    assert "{$PUBLIC_BASE_URL} {" in caddyfile
    assert "reverse_proxy panel:8000" in caddyfile
    for timeout in ("read_header", "read_body", "idle"):
        assert timeout in caddyfile
    for name in ("panel", "worker", "bot", "caddy"):
        assert all(not str(port).startswith("0.0.0.0") for port in services[name].get("ports", []))
