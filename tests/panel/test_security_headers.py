"""Security headers: CSP without inline script, HSTS under https, Permissions-Policy,
no-store on pages; and templates free of inline script and inline event handlers."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from core.db.models import Role, User
from tests.panel.helpers import sign_in_as, team_of_four

TEMPLATES = Path(__file__).resolve().parents[2] / "panel" / "templates"


def _directives(policy: str) -> dict[str, list[str]]:
    found = {}
    for part in policy.split(";"):
        name, *values = part.split()
        found[name] = values
    return found


async def test_pages_carry_a_csp_without_inline_script(client: Any, sqlite_db: str) -> None:
    response = await client.get("/login")
    csp = _directives(response.headers["Content-Security-Policy"])
    assert csp["script-src"] == ["'self'"]
    assert "'unsafe-inline'" not in csp["style-src"] and "'unsafe-eval'" not in csp["script-src"]
    assert csp["frame-ancestors"] == ["'none'"] and csp["object-src"] == ["'none'"]
    assert "camera=()" in response.headers["Permissions-Policy"]
    assert "Strict-Transport-Security" not in response.headers


async def test_hsts_only_when_the_public_address_is_https(
    settings_factory: Any, container: Any, sqlite_db: str
) -> None:
    from panel.app import create_app

    https = create_app(
        settings_factory(public_base_url="https://reelay.example.com"), container=container
    )
    async with https.test_app() as app:
        response = await app.test_client().get("/login", scheme="https")
    assert response.headers["Strict-Transport-Security"].startswith("max-age=")


async def test_sensitive_pages_are_not_stored(app: Any, sqlite_db: str) -> None:
    members = await team_of_four()
    client = app.test_client()
    owner = await User.get(id=members[Role.OWNER].user_id)
    await sign_in_as(client, owner, members[Role.OWNER].workspace_id)
    for path in ("/settings/api-tokens", "/leads", "/account"):
        response = await client.get(path)
        assert response.status_code == 200, path
        assert response.headers["Cache-Control"] == "no-store", path
    static = await client.get("/static/reelay.css")
    assert static.headers.get("Cache-Control") != "no-store"


def test_templates_hold_no_inline_script_or_handlers() -> None:
    offenders = []
    for template in TEMPLATES.rglob("*.html"):
        text = template.read_text()
        for tag in re.findall(r"<script\b[^>]*>", text):
            if "src=" not in tag and 'type="application/json"' not in tag:
                offenders.append(f"{template.name}: {tag}")
        for handler in re.findall(r"\son[a-z]+\s*=", text):
            offenders.append(f"{template.name}: {handler.strip()}")
        for style in re.findall(r"\sstyle\s*=", text):
            offenders.append(f"{template.name}: {style.strip()}")
    assert offenders == []
