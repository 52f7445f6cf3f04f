"""Conversation starters in the sandbox: saved in the panel, tapped on the sandbox page, answered
by the rule on their payload."""

from __future__ import annotations

from typing import Any

import pytest

from core.db.models import AutomationRule, MatchMode, Trigger
from core.services.sandbox_console import follower_id
from core.settings import Settings
from tests.panel.helpers import CSRF
from tests.panel.sandbox_world import World, run_pending_events, sandbox_world, webhooks_into


@pytest.fixture
def settings(settings_factory: Any, sandbox: Any) -> Settings:
    made: Settings = settings_factory(sandbox_url=sandbox.url)
    return made


@pytest.fixture
async def world(client: Any, container: Any, sandbox: Any) -> World:
    return await sandbox_world(client, container, sandbox)


async def test_a_follower_taps_a_saved_ice_breaker_and_its_rule_answers(
    client: Any, container: Any, world: World
) -> None:
    account = world.account
    await AutomationRule.create(
        workspace_id=account.workspace_id,  # type: ignore[attr-defined]
        account=account,
        name="Hours",
        trigger=Trigger.POSTBACK,
        keywords=["HOURS"],
        match_mode=MatchMode.EXACT,
        config={"message_variations": ["We open at 9."]},
    )
    page = await (await client.get(f"/sandbox?account_id={account.id}")).get_data(as_text=True)
    assert "has no ice breakers" in page
    saved = await client.post(
        f"/accounts/{account.id}/starters",
        form={"csrf_token": CSRF, "q0": "Opening hours?", "p0": "HOURS"},
    )
    assert saved.status_code == 302
    profile = world.sandbox.state.accounts[account.ig_id].messenger_profile
    assert profile["ice_breakers"][0]["call_to_actions"][0]["payload"] == "HOURS"

    form = {"csrf_token": CSRF, "account_id": str(account.id), "username": "ana"}
    page = await (await client.get(f"/sandbox?account_id={account.id}")).get_data(as_text=True)
    assert ">Opening hours?</button>" in page
    async with webhooks_into(client, world.sandbox):
        unknown = await client.post("/sandbox/ice-breaker", form={**form, "index": "3"})
        assert unknown.status_code == 422
        tapped = await client.post("/sandbox/ice-breaker", form={**form, "index": "0"})
        assert tapped.status_code == 302
        assert await run_pending_events(container) == 1
    sent = world.sandbox.state.direct_messages(account.ig_id, follower_id("ana"))
    assert [m.text for m in sent][-1] == "We open at 9."
