"""Hand-made bad input to the JSON API: each gets a 4xx with a JSON error, none a 500."""

from __future__ import annotations

from typing import Any

from core.db.models import Role
from tests.panel.helpers import sign_in_as, team_of_four, token_for


def _bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


async def _error(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, await response.get_data(as_text=True)
    body: dict[str, Any] = (await response.get_json())["error"]
    assert body["status"] == status and body["message"]
    return body


async def test_a_write_to_no_route_is_not_found_rather_than_a_csrf_error(
    client: Any, sqlite_db: str
) -> None:
    members = await team_of_four()
    _, secret = await token_for(members[Role.OWNER], Role.OWNER)
    for method, path in [
        ("PUT", "/api/v1/rules/null,null"),
        ("POST", "/api/v1/posts/abc/cancel"),
        ("DELETE", "/api/v1/nothing-here"),
    ]:
        response = await client.open(path, method=method, json={}, headers=_bearer(secret))
        error = await _error(response, 404)
        assert "CSRF" not in error["message"]
    # A panel form posted to no page is a 404 too, signed in or not.
    owner = members[Role.OWNER]
    await sign_in_as(client, await owner.user, owner.workspace_id)
    assert (await client.post("/posts/abc/cancel")).status_code == 404
    # Whatever takes a route still needs its CSRF token.
    assert (await client.post("/logout")).status_code == 400
