"""ig.me ref links from the outside: the API and the editor, one ref per account, QR codes."""

from __future__ import annotations

from typing import Any

from tests.panel.helpers import sign_in_as
from tests.panel.test_api_rules import _account, _bearer, team  # noqa: F401


def _ref_rule(account_id: int, ref: str = "poster") -> dict[str, Any]:
    return {
        "name": "Poster",
        "account_id": account_id,
        "trigger": "ref_link",
        "ref_code": ref,
        "dm_type": "text",
        "dm_variations": ["Welcome!"],
    }


async def test_a_ref_link_rule_has_its_link_its_qr_codes_and_a_ref_of_its_own(
    client: Any,
    team: dict[str, Any],  # noqa: F811
    container: Any,
) -> None:
    account = team["account"]
    editor = _bearer(team["editor"])
    made = await client.post("/api/v1/rules", json=_ref_rule(account.id), headers=editor)
    assert made.status_code == 201
    rule = await made.get_json()
    assert rule["ig_me_link"] == f"https://ig.me/m/{account.username}?ref=poster"
    assert rule["ref_code"] == "poster" and rule["keywords"] == []

    again = await client.post("/api/v1/rules", json=_ref_rule(account.id), headers=editor)
    assert again.status_code == 422
    assert "already uses this ref" in (await again.get_json())["error"]["fields"]["ref_code"]
    other = await _account(account.workspace_id, container, ig_id="17841400000000002")
    elsewhere = await client.post("/api/v1/rules", json=_ref_rule(other.id), headers=editor)
    assert elsewhere.status_code == 201
    same = await client.put(
        f"/api/v1/rules/{rule['id']}", json=_ref_rule(account.id), headers=editor
    )
    assert same.status_code == 200

    await sign_in_as(client, await team["owner"].user)
    page = await (await client.get(f"/rules/{rule['id']}")).get_data(as_text=True)
    assert rule["ig_me_link"] in page and f"/rules/{rule['id']}/qr.svg" in page
    png = await client.get(f"/rules/{rule['id']}/qr.png")
    assert png.status_code == 200 and png.mimetype == "image/png"
    assert (await png.get_data()).startswith(b"\x89PNG")
    svg = await client.get(f"/rules/{rule['id']}/qr.svg")
    assert svg.mimetype == "image/svg+xml" and b"<svg" in await svg.get_data()
    assert (await client.get(f"/rules/{rule['id']}/qr.gif")).status_code == 404


async def test_a_comment_rule_has_no_qr_code(
    client: Any,
    team: dict[str, Any],  # noqa: F811
) -> None:
    body = {
        "name": "Price",
        "account_id": team["account"].id,
        "trigger": "comment",
        "keywords": ["price"],
        "dm_type": "text",
        "dm_variations": ["Hi"],
    }
    made = await client.post("/api/v1/rules", json=body, headers=_bearer(team["editor"]))
    rule = await made.get_json()
    assert rule["ig_me_link"] == ""
    await sign_in_as(client, await team["owner"].user)
    assert (await client.get(f"/rules/{rule['id']}/qr.png")).status_code == 404
