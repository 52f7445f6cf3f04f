"""Automations end to end: the sandbox Instagram sends signed webhooks to the real endpoint
(uvicorn), an arq worker answers through the Graph client, the sandbox records what was sent."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from core.adapters.redis_server import RedisLocation
from core.db.models import (
    InstagramAccount,
    Lead,
    LoginKind,
    MatchMode,
    RuleStats,
    Trigger,
    WebhookEvent,
    Workspace,
)
from panel.app import create_app
from reelay.cli import open_services
from tests.automation_world import make_rule
from tests.e2e.stack import Stack, free_port, serve

IG_ID = "17841400000000077"


@pytest.fixture
async def stack(
    sandbox: Any, settings_factory: Any, redis: Any, redis_location: RedisLocation
) -> AsyncIterator[Stack]:
    settings = settings_factory(sandbox_url=sandbox.url)
    services = await open_services(settings, run_migrations=False, redis_location=redis_location)
    container = services.container
    port = free_port()
    stop_panel = await serve(create_app(settings, services=services), port)
    sandbox.state.webhook_url = f"http://127.0.0.1:{port}/webhooks/meta"
    sandbox.state.add_account(IG_ID, "sandbox_shop")
    workspace = await Workspace.create(name="Shop")
    await InstagramAccount.create(
        workspace=workspace,
        ig_id=IG_ID,
        username="sandbox_shop",
        login_kind=LoginKind.SANDBOX,
        token_encrypted=container.secrets.encrypt(sandbox.state.issue_token(IG_ID)),
    )
    yield Stack(settings, services, sandbox)
    await stop_panel()
    container.redis_location = RedisLocation(
        url=redis_location.url, unix_socket_path=redis_location.unix_socket_path
    )
    await services.close()


async def test_comment_dm_postback_story_and_lead_flow_through_the_sandbox(stack: Stack) -> None:
    account = await InstagramAccount.get(ig_id=IG_ID)
    comment_rule = await make_rule(
        account,
        keywords=["price"],
        config={
            "comment_replies": ["Check your DMs, @{username}!"],
            "message_variations": ["Our prices: {link}"],
            "dmType": "text_button",
            "buttons": [
                {"text": "Shop", "url": "https://shop.example"},
                {"text": "Talk to us", "payload": "TALK"},
            ],
        },
    )
    await make_rule(
        account,
        trigger=Trigger.POSTBACK,
        keywords=["TALK"],
        match_mode=MatchMode.EXACT,
        config={"message_variations": ["A human will answer soon."], "quick_replies": ["OK"]},
    )
    await make_rule(
        account,
        trigger=Trigger.STORY_MENTION,
        keywords=[],
        match_mode=MatchMode.ANY,
        config={"message_variations": ["Thanks for the mention!"]},
    )
    await make_rule(
        account,
        trigger=Trigger.DM,
        keywords=["newsletter"],
        config={
            "dm_type": "lead_capture",
            "lead_capture_flow": [
                {"type": "ask", "text": "Your email?", "field_type": "email"},
                {"type": "save"},
                {"type": "send", "message": "Subscribed!"},
            ],
        },
    )
    sandbox = stack.sandbox

    comment, delivery = await sandbox.comment(IG_ID, "What's the price?", username="ana")
    assert delivery.status == 200
    _, again = await sandbox.comment(IG_ID, "price", username="ana", shape="changes")
    assert again.status == 200
    await sandbox.deliver(delivery.payload)  # Meta retries the first one
    await stack.drain()
    (public,) = [s for s in stack.sent("comment_reply") if s.target == comment.id]
    assert public.payload == {"message": "Check your DMs, @ana!"}
    private = [s for s in stack.sent("private_reply") if s.target == comment.id]
    assert len(private) == 1
    template = private[0].payload["message"]["attachment"]["payload"]
    assert template["text"] == "Our prices: https://shop.example"
    assert [b["type"] for b in template["buttons"]] == ["web_url", "postback"]
    assert len(stack.sent("private_reply")) == 2  # one per comment

    await sandbox.postback(IG_ID, "TALK", title="Talk to us", from_id="9990001")
    await sandbox.story_mention(IG_ID, from_id="9990002")
    await sandbox.dm(IG_ID, "newsletter please", from_id="9990003")
    await stack.drain()
    await sandbox.dm(IG_ID, "ana@example.com", from_id="9990003")
    await stack.drain()
    messages = {(s.target, str(s.payload["message"].get("text"))) for s in stack.sent("message")}
    assert ("9990001", "A human will answer soon.") in messages
    assert ("9990002", "Thanks for the mention!") in messages
    assert ("9990003", "Your email?") in messages
    assert ("9990003", "Subscribed!") in messages
    (lead,) = await Lead.all()
    assert lead.email == "ana@example.com" and lead.igsid == "9990003"
    stats = await RuleStats.get(rule_id=comment_rule.id)
    assert (stats.total_triggers, stats.total_dms_sent, stats.total_comments_replied) == (2, 2, 2)
    assert await WebhookEvent.filter(status="failed").count() == 0
