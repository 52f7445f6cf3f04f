"""The sandbox page's growth controls: open a rule's ig.me link, follow and unfollow, and tap
a card's button."""

from __future__ import annotations

import html
from typing import Any

import pytest

from core.db.models import AutomationRule, MatchMode, Trigger
from core.domain.rule_definition import RuleDefinition
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


async def test_opening_an_ig_me_link_and_following_from_the_sandbox_page(
    client: Any, container: Any, world: World
) -> None:
    columns = RuleDefinition.model_validate(
        {
            "name": "Poster",
            "account_id": world.account.id,
            "trigger": "ref_link",
            "ref_code": "poster",
            "dm_type": "cards",
            "cards": [{"title": "Runner", "buttons": [{"title": "Guide", "target": "GUIDE"}]}],
        }
    ).stored_columns()
    await AutomationRule.create(
        workspace_id=world.account.workspace_id,  # type: ignore[attr-defined]
        account=world.account,
        name="Poster",
        trigger=Trigger.REF_LINK,
        keywords=columns["keywords"],
        match_mode=MatchMode.EXACT,
        config=columns["config"],
    )
    form = {"csrf_token": CSRF, "account_id": str(world.account.id), "username": "ana"}
    async with webhooks_into(client, world.sandbox):
        bad = await client.post("/sandbox/ig-me", form={**form, "link": "https://ig.me/m/x"})
        assert bad.status_code == 422
        link = f"https://ig.me/m/{world.account.username}?ref=poster"
        opened = await client.post("/sandbox/ig-me", form={**form, "link": link})
        assert opened.status_code == 302
        assert await run_pending_events(container) == 1
        page = await client.get(f"/sandbox?account_id={world.account.id}&username=ana")
        shown = html.unescape(await page.get_data(as_text=True))
        assert 'name="payload" value="GUIDE"' in shown  # the card's button can be tapped

    state, igsid = world.sandbox.state, follower_id("ana")
    assert (await client.post("/sandbox/follow", form=form)).status_code == 302
    assert igsid in state.followers[world.account.ig_id]
    assert (await client.post("/sandbox/unfollow", form=form)).status_code == 302
    assert igsid not in state.followers[world.account.ig_id]
