"""Growth tools through the sandbox: its follower opens an ig.me link (a signed referral
webhook reaches the real endpoint), an arq worker answers through the Graph client."""

from __future__ import annotations

from typing import Any

from core.db.models import InstagramAccount, MatchMode, Trigger
from core.domain.rule_definition import RuleDefinition
from core.domain.scope import Actor
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


async def test_a_followers_journey_from_a_comment_to_a_clicked_link(
    stack: Stack,  # noqa: F811
) -> None:
    """Comment → private reply with a card carousel → follow gate → lead flow → a click on a
    tracked link; each rule's funnel counts every stage."""
    account = await InstagramAccount.get(ig_id=IG_ID)
    catalog = await _rule(
        account,
        Trigger.COMMENT,
        {
            "keywords": ["shoes"],
            "dm_type": "cards",
            "track_links": True,
            "cards": [
                {
                    "title": "Runner",
                    "subtitle": "Light and fast",
                    "image_url": "https://cdn.example/runner.jpg",
                    "url": "https://shop.example/runner",
                    "buttons": [{"title": "Get the guide", "target": "GUIDE"}],
                },
                {"title": "Sandal", "url": "https://shop.example/sandal"},
            ],
        },
    )
    guide = await _rule(
        account,
        Trigger.POSTBACK,
        {
            "keywords": ["GUIDE"],
            "match_mode": "exact",
            "dm_type": "lead_capture",
            "track_links": True,
            "link": "https://gift.example/guide",
            "lead_flow": [
                {"type": "follow"},
                {"type": "ask", "text": "Your email?", "field": "email"},
                {"type": "save"},
                {"type": "send", "messages": ["Your guide: {link}"]},
            ],
        },
    )
    sandbox, person = stack.sandbox, "9990031"
    comment, _ = await sandbox.comment(IG_ID, "shoes?", username="ana", from_id=person)
    await stack.drain()
    (private,) = stack.sent("private_reply")
    assert private.target == comment.id
    cards = private.payload["message"]["attachment"]["payload"]["elements"]
    assert [c["title"] for c in cards] == ["Runner", "Sandal"]
    card_link = cards[0]["default_action"]["url"]
    assert "/l/" in card_link

    await sandbox.postback(IG_ID, "GUIDE", title="Get the guide", from_id=person)
    await stack.drain()
    done = stack.sent("message")[-1].payload["message"]["attachment"]["payload"]["buttons"][0]
    sandbox.state.set_following(IG_ID, person, True)
    await sandbox.postback(IG_ID, done["payload"], title="Done", from_id=person)
    await stack.drain()
    assert stack.sent("message")[-1].payload["message"] == {"text": "Your email?"}
    await sandbox.dm(IG_ID, "ana@example.com", from_id=person)
    await stack.drain()
    last = stack.sent("message")[-1].payload["message"]["text"]
    assert last.startswith("Your guide: ") and "/l/" in last

    _, seen = await sandbox.read(IG_ID, private.id, from_id=person)  # the carousel was read
    assert seen.status == 200
    await stack.drain()

    links = stack.services.links
    now = stack.services.container.clock.now()
    browser = "Mozilla/5.0 (iPhone) Instagram 300.0"
    for link in (card_link, last.removeprefix("Your guide: ")):
        await links.click(link.rsplit("/", 1)[1], user_agent="facebookexternalhit/1.1", now=now)
        assert await links.click(link.rsplit("/", 1)[1], user_agent=browser, now=now)
    actor = Actor.system(account.workspace_id)
    shown = await links.funnel(actor, catalog.id)
    assert dict(shown.stages()) == {
        "Triggered": 1,
        "Replied": 1,
        "DM opened": 1,
        "Clicked": 1,
        "Lead": 0,
    }
    shown = await links.funnel(actor, guide.id)
    assert dict(shown.stages()) == {"Triggered": 1, "Replied": 1, "Clicked": 1, "Lead": 1}
