"""A Live rule tried in the sandbox: the editor's test sends a comment on the account's Live
broadcast (Meta's ``live_comments`` webhook), which the rule answers."""

from __future__ import annotations

import re
from typing import Any

import pytest

from core.db.models import AutomationRule
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


async def test_a_live_rule_answers_a_sample_live_comment(
    client: Any, container: Any, world: World
) -> None:
    form = {
        "csrf_token": CSRF,
        "name": "Live price",
        "account_id": str(world.account.id),
        "trigger": "live_comment",
        "keywords": "price",
        "match_mode": "whole_word",
        "active": "on",
        "comment_reply": "Price is in your DMs!",
        "dm_type": "text",
        "dm_variation": "Here is the price list.",
    }
    assert (await client.post("/rules/new", form=form)).status_code == 302
    rule = await AutomationRule.get(name="Live price")
    async with webhooks_into(client, world.sandbox):
        sent = await client.post(
            f"/rules/{rule.id}/test",
            form={"csrf_token": CSRF, "kind": "comment", "sample": "price?", "person_id": "77001"},
        )
        key = re.search(r"key=([^&\"]+)", await sent.get_data(as_text=True))
        assert key
        assert await run_pending_events(container) == 1
        result = await client.get(f"/rules/{rule.id}/test/result?key={key.group(1)}")
        shown = await result.get_data(as_text=True)
    assert 'class="matched-rule">Live price</span> (this rule)' in shown
    assert "Price is in your DMs!" in shown
    fields = [d.payload["entry"][0] for d in world.sandbox.deliveries]
    assert fields[-1]["changes"][0]["field"] == "live_comments"


async def test_the_sandbox_page_comments_on_a_live_and_on_an_ad(
    client: Any, container: Any, world: World
) -> None:
    base = {"csrf_token": CSRF, "account_id": str(world.account.id), "active": "on"}
    for name, trigger, ads, reply in (
        ("On ads", "comment", "only", "Ad answer"),
        ("On Live", "live_comment", "also", "Live answer"),
    ):
        rule = {
            **base,
            "name": name,
            "trigger": trigger,
            "keywords": "deal",
            "ad_comments": ads,
            "comment_reply": reply,
            "dm_type": "none",
        }
        assert (await client.post("/rules/new", form=rule)).status_code == 302
    post = world.sandbox.state.feed(world.account.ig_id)[0]
    async with webhooks_into(client, world.sandbox):
        for place in ("ad", "live", "post"):
            sent = await client.post(
                "/sandbox/comment",
                form={
                    **base,
                    "username": "bob",
                    "media_id": post.id,
                    "text": "deal?",
                    "place": place,
                },
            )
            assert sent.status_code == 302
        assert await run_pending_events(container) == 3
    replies = [s.payload["message"] for s in world.sandbox.state.sent if s.kind == "comment_reply"]
    assert replies == ["Ad answer", "Live answer"]  # the plain comment is neither
    refused = await client.post(
        "/sandbox/comment", form={**base, "username": "bob", "text": "x", "place": "moon"}
    )
    assert refused.status_code == 422
