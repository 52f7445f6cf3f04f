"""The conversation starters page: preview, admin edits pushed to Instagram, clear refusals."""

from __future__ import annotations

import re
from typing import Any

from aioresponses import aioresponses

from core.db.models import (
    AutomationRule,
    InstagramAccount,
    LoginKind,
    MatchMode,
    Role,
    Trigger,
    User,
)
from tests.panel.helpers import CSRF, sign_in_as, team_of_four, token_for

PROFILE = re.compile(r"^https://graph\.instagram\.com/v[\d.]+/me/messenger_profile$")


async def _account(services: Any, role: Role, client: Any) -> InstagramAccount:
    members = await team_of_four()
    await sign_in_as(client, await User.get(id=members[role].user_id), members[role].workspace_id)
    return await InstagramAccount.create(
        workspace_id=members[role].workspace_id,
        ig_id="1784",
        username="shop",
        login_kind=LoginKind.INSTAGRAM,
        token_encrypted=services.container.secrets.encrypt("tok"),
    )


FORM = {
    "csrf_token": CSRF,
    "q0": "Opening hours?",
    "p0": "HOURS",
    "m0_type": "web_url",
    "m0_title": "Our shop",
    "m0_target": "https://shop.example",
    "m1_type": "postback",
    "m1_title": "Talk to us",
    "m1_target": "HUMAN",
}


async def test_an_admin_saves_starters_and_sees_them_as_instagram_shows_them(
    client: Any, services: Any, sqlite_db: str
) -> None:
    account = await _account(services, Role.ADMIN, client)
    listing = await (await client.get("/accounts")).get_data(as_text=True)
    assert f"/accounts/{account.id}/starters" in listing and "none set" in listing
    with aioresponses() as meta:
        meta.post(PROFILE, payload={"result": "success"})
        saved = await client.post(f"/accounts/{account.id}/starters", form=FORM)
        assert saved.status_code == 302
        ((_, _), calls), *_ = list(meta.requests.items())
    body = calls[0].kwargs["json"]
    assert body["platform"] == "instagram"
    assert body["ice_breakers"][0]["call_to_actions"] == [
        {"question": "Opening hours?", "payload": "HOURS"}
    ]
    page = await (await client.get(f"/accounts/{account.id}/starters")).get_data(as_text=True)
    assert '<span class="chip">Opening hours?</span>' in page
    assert "opens https://shop.example" in page and "sends HUMAN" in page
    assert 'name="q0" value="Opening hours?"' in page  # the form shows what is saved
    assert "no active rule answers it yet" in page
    await AutomationRule.create(
        workspace_id=account.workspace_id,  # type: ignore[attr-defined]
        account=account,
        name="Hours",
        trigger=Trigger.POSTBACK,
        keywords=["HOURS"],
        match_mode=MatchMode.EXACT,
    )
    page = await (await client.get(f"/accounts/{account.id}/starters")).get_data(as_text=True)
    assert "answered by the rule “Hours”" in page


async def test_bad_rows_and_refusals_keep_what_was_typed(
    client: Any, services: Any, sqlite_db: str
) -> None:
    account = await _account(services, Role.OWNER, client)
    path = f"/accounts/{account.id}/starters"
    missing = await client.post(path, form={**FORM, "p0": ""})
    assert missing.status_code == 422
    page = await missing.get_data(as_text=True)
    assert "Ice breaker 1 needs a payload" in page and 'value="Opening hours?"' in page
    with aioresponses() as meta:
        meta.post(
            PROFILE,
            status=400,
            payload={"error": {"message": "bad", "type": "OAuthException", "code": 100}},
        )
        refused = await client.post(path, form=FORM)
    assert refused.status_code == 502
    answer = await refused.get_data(as_text=True)
    assert "Instagram did not accept the conversation starters" in answer
    assert 'value="Opening hours?"' in answer
    assert (await InstagramAccount.get(id=account.id)).messenger_profile == {}


async def test_a_viewer_sees_the_preview_without_the_form(
    client: Any, services: Any, sqlite_db: str
) -> None:
    account = await _account(services, Role.VIEWER, client)
    page = await (await client.get(f"/accounts/{account.id}/starters")).get_data(as_text=True)
    assert "Nothing is set" in page and 'name="q0"' not in page
    denied = await client.post(f"/accounts/{account.id}/starters", form=FORM)
    assert denied.status_code == 403


async def test_the_api_reads_and_replaces_the_starters(
    client: Any, services: Any, sqlite_db: str
) -> None:
    members = await team_of_four()
    account = await InstagramAccount.create(
        workspace_id=members[Role.OWNER].workspace_id,
        ig_id="1784",
        username="shop",
        login_kind=LoginKind.INSTAGRAM,
        token_encrypted=services.container.secrets.encrypt("tok"),
    )
    _, admin = await token_for(members[Role.OWNER], Role.ADMIN)
    _, viewer = await token_for(members[Role.OWNER], Role.VIEWER)
    path = f"/api/v1/accounts/{account.id}/starters"
    body = {
        "ice_breakers": [{"question": "Opening hours?", "payload": "HOURS"}],
        "menu": [{"type": "postback", "title": "Talk to us", "payload": "HUMAN"}],
    }
    as_viewer = {"Authorization": f"Bearer {viewer}"}
    assert (await client.put(path, json=body, headers=as_viewer)).status_code == 403
    as_admin = {"Authorization": f"Bearer {admin}"}
    too_long = {"ice_breakers": [{"question": "x" * 81, "payload": "P"}]}
    refused = await client.put(path, json=too_long, headers=as_admin)
    assert refused.status_code == 422
    assert "at most 80" in (await refused.get_json())["error"]["message"]
    with aioresponses() as meta:
        meta.post(PROFILE, status=400, payload={"error": {"message": "no", "code": 100}})
        upstream = await client.put(path, json=body, headers=as_admin)
        assert upstream.status_code == 502
        meta.post(PROFILE, payload={"result": "success"})
        saved = await client.put(path, json=body, headers=as_admin)
    assert saved.status_code == 200
    read = await (await client.get(path, headers=as_viewer)).get_json()
    assert read["ice_breakers"] == body["ice_breakers"]
    assert read["menu"][0]["payload"] == "HUMAN"
