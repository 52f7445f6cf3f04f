"""Signing test clients in without the login form (argon2 is slow on purpose)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from quart_auth import QuartAuth

from core.db.models import ApiToken, Membership, Role, User
from core.services import api_tokens, sessions, users
from tests.actors import acting

CSRF = "test-csrf-token"


def csrf_of(page: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert match, "no CSRF token in the page"
    return match.group(1)


async def sign_in_as(client: Any, user: User | None, workspace_id: int | None = None) -> None:
    """Give ``client`` the auth cookie of a new session of ``user`` and a known CSRF token."""
    extension: QuartAuth = client.app.extensions["QUART_AUTH"][0]
    if user is not None:
        session_token = await sessions.start(user, datetime.now(UTC))
        token = extension.dump_token(session_token, app=client.app)
        client.set_cookie(
            extension.cookie_domain or "localhost", extension.cookie_name, token, path="/"
        )
    async with client.session_transaction() as session:
        session["csrf_token"] = CSRF
        if workspace_id is not None:
            session["workspace_id"] = workspace_id


async def team_of_four() -> dict[Role, Membership]:
    """An owner (the install's instance admin, as at first run), admin, editor and viewer of
    one workspace."""
    owner_user, workspace = await users.create_owner(
        "owner@example.com", "long enough pw", instance_admin=True
    )
    members = {Role.OWNER: await Membership.get(user=owner_user, workspace=workspace)}
    for role in (Role.ADMIN, Role.EDITOR, Role.VIEWER):
        user = await users.create_user(f"{role.value}@example.com", "long enough pw")
        members[role] = await Membership.create(workspace=workspace, user=user, role=role)
    return members


async def token_for(owner: Membership, role: Role) -> tuple[ApiToken, str]:
    made = await api_tokens.create_token(await acting(owner), f"{role.value} token", role)
    return made.token, made.secret
