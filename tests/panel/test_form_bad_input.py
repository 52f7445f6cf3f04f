"""Hand-made bad input to the panel's forms: each is refused or ignored, none is a 500."""

from __future__ import annotations

from typing import Any

import pytest

from core.db.models import AutomationRule, InstagramAccount, LoginKind, Post, Role, Workspace
from tests.panel.helpers import CSRF, sign_in_as, team_of_four

# "²" passes str.isdigit() yet int() refuses it, as it refuses 5,000 digits; 20 digits are
# beyond any row id.
NOT_IDS = ["²", "99999999999999999999", "9" * 5_000]


@pytest.fixture
async def owner_client(client: Any, sqlite_db: str, container: Any) -> tuple[Any, int]:
    members = await team_of_four()
    owner = members[Role.OWNER]
    account = await InstagramAccount.create(
        workspace_id=owner.workspace_id,
        ig_id="17841400000000001",
        username="shop",
        login_kind=LoginKind.SANDBOX,
        token_encrypted=container.secrets.encrypt("token"),
    )
    await sign_in_as(client, await owner.user, owner.workspace_id)
    return client, account.id


@pytest.mark.parametrize("value", NOT_IDS)
async def test_a_rule_for_an_account_that_is_no_id_names_the_field(
    owner_client: tuple[Any, int], value: str
) -> None:
    client, _ = owner_client
    form = {
        "csrf_token": CSRF,
        "account_id": value,
        "name": "Price",
        "trigger": "dm",
        "keywords": "price",
        "dm_variation": "It is 10 EUR",
    }
    response = await client.post("/rules/new", form=form)
    assert response.status_code == 422
    assert "Instagram account" in await response.get_data(as_text=True)
    assert await AutomationRule.all().count() == 0
    preview = await client.post("/rules/preview", form=form)
    assert preview.status_code == 200


@pytest.mark.parametrize("value", NOT_IDS)
async def test_composing_with_ids_that_are_no_ids_is_refused(
    owner_client: tuple[Any, int], value: str
) -> None:
    client, _ = owner_client
    response = await client.post(
        "/compose",
        form={
            "csrf_token": CSRF,
            "accounts": value,
            "media": value,
            "cover_id": value,
            "kind": "image",
            "action": "draft",
        },
    )
    assert response.status_code == 422
    assert "Choose at least one account" in await response.get_data(as_text=True)
    assert await Post.all().count() == 0


async def test_a_pace_in_other_digits_is_refused(owner_client: tuple[Any, int]) -> None:
    client, account_id = owner_client
    response = await client.post(
        f"/accounts/{account_id}/pace", form={"csrf_token": CSRF, "dm_pace_per_hour": "²"}
    )
    assert response.status_code == 422
    assert (await InstagramAccount.get(id=account_id)).dm_pace_per_hour is None


@pytest.mark.parametrize("value", NOT_IDS)
async def test_switching_to_a_workspace_that_is_no_id_is_refused(
    owner_client: tuple[Any, int], value: str
) -> None:
    client, _ = owner_client
    response = await client.post(
        "/account/workspace", form={"csrf_token": CSRF, "workspace_id": value}
    )
    assert response.status_code == 302
    async with client.session_transaction() as session:
        assert "not a member" in str(session.get("_flashes"))


@pytest.mark.parametrize("body", [[1], "2030-01-01T09:00", None, 5])
async def test_a_calendar_drag_without_a_json_object_asks_for_a_time(
    owner_client: tuple[Any, int], body: Any
) -> None:
    client, _ = owner_client
    response = await client.post("/posts/1/reschedule", json=body, headers={"X-CSRF-Token": CSRF})
    assert response.status_code == 422
    assert "Enter a date and time" in (await response.get_json())["error"]


@pytest.mark.parametrize("status", ["nope", "[]", "DRAFT"])
async def test_the_calendar_feed_ignores_an_unknown_status_filter(
    owner_client: tuple[Any, int], status: str
) -> None:
    client, _ = owner_client
    response = await client.get("/posts/events", query_string={"status": status})
    assert response.status_code == 200
    assert await response.get_json() == []
    queue = await client.get("/posts/queue", query_string={"status": status})
    assert queue.status_code == 200


@pytest.mark.parametrize(
    "query",
    [
        {"since": "0001-01-01", "until": "9999-12-31"},
        {"account_id": "²", "rule_id": "99999999999999999999"},
    ],
)
async def test_lead_filters_at_the_ends_of_the_calendar_or_no_ids_are_ignored(
    owner_client: tuple[Any, int], query: dict[str, str]
) -> None:
    client, _ = owner_client
    await Workspace.filter().update(timezone="Pacific/Kiritimati")  # UTC+14
    page = await client.get("/leads", query_string=query)
    assert page.status_code == 200
    export = await client.get("/leads/export.csv", query_string=query)
    assert export.status_code == 200
    assert export.headers["Content-Type"].startswith("text/csv")


@pytest.mark.parametrize("value", ["²", "9" * 5_000, "99999999999999999999"])
@pytest.mark.parametrize(
    ("path", "name"),
    [
        ("/leads", "page"),
        ("/library", "page"),
        ("/logs/audit", "page"),
        ("/logs/events", "account"),
        ("/approvals/new", "after"),
        ("/analytics/", "account"),
        ("/analytics/export/account.csv", "account"),
    ],
)
async def test_a_page_or_id_in_the_address_that_is_no_number_is_ignored(
    owner_client: tuple[Any, int], path: str, name: str, value: str
) -> None:
    client, _ = owner_client
    response = await client.get(path, query_string={name: value})
    assert response.status_code == 200


@pytest.mark.parametrize("value", ["²", "9" * 5_000])
async def test_an_ai_quota_in_other_digits_is_refused(
    owner_client: tuple[Any, int], value: str
) -> None:
    client, _ = owner_client
    response = await client.post(
        "/setup/ai", form={"csrf_token": CSRF, "ai_monthly_token_quota": value}
    )
    assert response.status_code == 422
    assert "whole number of tokens" in await response.get_data(as_text=True)
