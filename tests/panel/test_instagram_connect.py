"""Connecting an account from the panel: admin only, through the dialog and back."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pytest

from core.bootstrap import Container
from core.db.models import InstagramAccount, LoginKind, Membership, Role, Workspace
from core.services.sandbox_keys import signing_secret, token_secret
from core.settings import Settings
from tests.panel.helpers import sign_in_as, team_of_four

IG_ID = "17841400000000055"


@pytest.fixture
def settings(settings_factory: Any, sandbox: Any) -> Settings:
    made: Settings = settings_factory(sandbox_url=sandbox.url)
    return made


@pytest.fixture
def brand(sandbox: Any, container: Container, settings: Settings) -> str:
    sandbox.state.app_secret = signing_secret(settings, container.secret_key)
    sandbox.state.secret = token_secret(container.secret_key)
    sandbox.state.add_account(IG_ID, "sandbox_brand")
    sandbox.state.authorize_as = IG_ID
    return IG_ID


async def dialog(url: str) -> str:
    async with (
        aiohttp.ClientSession() as http,
        http.get(url, allow_redirects=False) as response,
    ):
        assert response.status == 302
        return response.headers["Location"]


async def test_admin_connects_an_account(client: Any, brand: str) -> None:
    team = await team_of_four()
    await sign_in_as(client, await team[Role.ADMIN].user)
    response = await client.get("/instagram/connect")
    assert response.status_code == 302
    back = await dialog(response.headers["Location"])
    parts = urlsplit(back)
    assert parts.path == "/instagram/callback"
    response = await client.get(f"{parts.path}?{parts.query}")
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/accounts")
    account = await InstagramAccount.get(ig_id=brand)
    assert account.login_kind is LoginKind.SANDBOX and account.username == "sandbox_brand"
    page = await (await client.get("/accounts")).get_data(as_text=True)
    assert "Connected @sandbox_brand" in page


async def test_editor_and_viewer_cannot_connect(client: Any, brand: str) -> None:
    team = await team_of_four()
    for role in (Role.EDITOR, Role.VIEWER):
        await sign_in_as(client, await team[role].user)
        assert (await client.get("/instagram/connect")).status_code == 403
        assert (await client.get("/instagram/callback?code=x&state=y")).status_code == 403


async def test_cancelled_dialog_and_forged_state_connect_nothing(client: Any, brand: str) -> None:
    team = await team_of_four()
    await sign_in_as(client, await team[Role.ADMIN].user)
    response = await client.get(
        "/instagram/callback?error=access_denied&error_reason=user_denied"
        "&error_description=Permissions+error"
    )
    assert response.status_code == 302
    response = await client.get("/instagram/callback?code=AQx%23_&state=forged.state")
    assert response.status_code == 302
    page = await (await client.get("/accounts")).get_data(as_text=True)
    assert "Permissions error" in page and "invalid or has expired" in page
    assert not await InstagramAccount.filter(ig_id=brand).exists()


async def test_a_connection_lands_only_where_the_user_is_still_an_admin(
    client: Any, brand: str
) -> None:
    team = await team_of_four()
    admin = await team[Role.ADMIN].user
    other = await Workspace.create(name="Second shop")
    there = await Membership.create(workspace=other, user=admin, role=Role.ADMIN)
    await sign_in_as(client, admin, other.id)
    response = await client.get("/instagram/connect")
    back = await dialog(response.headers["Location"])
    # Removed from the second workspace while in Meta's dialog; still an admin of the first.
    await there.delete()
    parts = urlsplit(back)
    response = await client.get(f"{parts.path}?{parts.query}")
    assert response.status_code == 302
    page = await (await client.get("/accounts")).get_data(as_text=True)
    assert "invalid or has expired" in page
    assert not await InstagramAccount.filter(ig_id=brand).exists()


async def test_an_account_active_in_another_workspace_is_not_connected_twice(
    client: Any, brand: str, container: Container
) -> None:
    other = await Workspace.create(name="Second shop")
    await InstagramAccount.create(
        workspace=other,
        ig_id=brand,
        username="sandbox_brand",
        login_kind=LoginKind.SANDBOX,
        token_encrypted=container.secrets.encrypt("token"),
    )
    team = await team_of_four()
    await sign_in_as(client, await team[Role.ADMIN].user)
    response = await client.get("/instagram/connect")
    parts = urlsplit(await dialog(response.headers["Location"]))
    response = await client.get(f"{parts.path}?{parts.query}")
    assert response.status_code == 302
    page = await (await client.get("/accounts")).get_data(as_text=True)
    assert "already connected in another workspace" in page and "Second shop" not in page
    assert await InstagramAccount.filter(ig_id=brand).count() == 1
