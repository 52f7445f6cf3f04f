"""Growth tools through the sandbox: its follower opens an ig.me link (a signed referral
webhook reaches the real endpoint), an arq worker answers through the Graph client."""

from __future__ import annotations

from typing import Any

from core.db.models import InstagramAccount, MatchMode, Trigger
from core.domain.rule_definition import RuleDefinition
from tests.automation_world import make_rule
from tests.e2e.test_automations_sandbox import IG_ID, Stack, stack  # noqa: F401


async def _rule(account: InstagramAccount, trigger: Trigger, body: dict[str, Any]) -> Any:
    definition = RuleDefinition.model_validate(
        {"name": "Growth", "account_id": account.id, "trigger": trigger.value, **body}
    )
    columns = definition.stored_columns()
    return await make_rule(
        account,
        trigger=trigger,
        keywords=columns["keywords"],
        match_mode=MatchMode(columns["match_mode"]),
        config=columns["config"],
    )


async def test_a_follower_opening_the_ig_me_link_gets_the_rules_dm(
    stack: Stack,  # noqa: F811
) -> None:
    account = await InstagramAccount.get(ig_id=IG_ID)
    await _rule(
        account,
        Trigger.REF_LINK,
        {"ref_code": "poster", "dm_variations": ["Hi from the poster!"]},
    )
    link = RuleDefinition.model_validate(
        {"name": "x", "account_id": 1, "trigger": "ref_link", "ref_code": "poster"}
    ).ig_me_link("sandbox_shop")
    ref = link.rsplit("=", 1)[1]
    _, delivery = await stack.sandbox.open_link(IG_ID, ref, from_id="9990011")
    assert delivery.status == 200
    assert delivery.payload["entry"][0]["messaging"][0]["referral"]["ref"] == "poster"
    await stack.drain()
    (sent,) = stack.sent("message")
    assert sent.target == "9990011" and sent.payload["message"] == {"text": "Hi from the poster!"}


async def test_the_follow_gate_asks_the_sandbox_who_follows(
    stack: Stack,  # noqa: F811
) -> None:
    account = await InstagramAccount.get(ig_id=IG_ID)
    await _rule(
        account,
        Trigger.POSTBACK,
        {
            "keywords": ["GUIDE"],
            "match_mode": "exact",
            "dm_type": "lead_capture",
            "lead_flow": [
                {"type": "follow"},
                {"type": "ask", "text": "Your email?", "field": "email"},
            ],
        },
    )
    sandbox = stack.sandbox
    await sandbox.postback(IG_ID, "GUIDE", title="Get the guide", from_id="9990021")
    await stack.drain()
    (gate,) = stack.sent("message")
    buttons = gate.payload["message"]["attachment"]["payload"]["buttons"]
    assert [b["title"] for b in buttons] == ["Done"]

    await sandbox.postback(IG_ID, buttons[0]["payload"], title="Done", from_id="9990021")
    await stack.drain()
    assert len(stack.sent("message")) == 2  # still not following: asked again
    sandbox.state.set_following(IG_ID, "9990021", True)
    await sandbox.postback(IG_ID, buttons[0]["payload"], title="Done", from_id="9990021")
    await stack.drain()
    assert stack.sent("message")[-1].payload["message"] == {"text": "Your email?"}
