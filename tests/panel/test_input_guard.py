"""Text with NUL characters is refused up front (PostgreSQL cannot store it) and saves nothing."""

from __future__ import annotations

import re
from typing import Any

from core.services import users


async def test_form_with_nul_is_refused(client: Any) -> None:
    page = await (await client.get("/setup/first-run")).get_data(as_text=True)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert csrf
    response = await client.post(
        "/setup/first-run",
        form={
            "csrf_token": csrf.group(1),
            "workspace": "Shop\x00team",
            "email": "owner@example.com",
            "password": "long enough pw",
            "password_confirm": "long enough pw",
        },
    )
    assert response.status_code == 400
    assert "NUL" in await response.get_data(as_text=True)
    assert not await users.has_users()


async def test_json_with_escaped_nul_is_refused(client: Any) -> None:
    response = await client.post(
        "/api/v1/rules",
        data=b'{"name": "a\\u0000b"}',
        headers={"Content-Type": "application/json", "Authorization": "Bearer nope"},
    )
    assert response.status_code == 400


async def test_query_with_nul_is_refused(client: Any) -> None:
    response = await client.get("/login", query_string={"next": "/\x00"})
    assert response.status_code == 400
