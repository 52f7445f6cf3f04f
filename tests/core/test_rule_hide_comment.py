"""The rule action "hide comment", end to end: a spam comment on the sandbox Instagram comes in
as Meta's webhook, the rule matches, and the comment is hidden through the outbox, once."""

from __future__ import annotations

from typing import Any

import pytest

from core.db.models import (
    AutomationRule,
    InstagramAccount,
    LoginKind,
    OutboundAction,
    RuleStats,
    WebhookEvent,
    Workspace,
)
from core.domain.rule_definition import RuleDefinition
from core.domain.webhooks import parse_payload
from core.services.inbox import record_events
from core.settings import Settings
from core.wiring import Services

IG_ID = "17841400000000077"


@pytest.fixture
def settings(settings_factory: Any, sandbox: Any) -> Settings:
    made: Settings = settings_factory(sandbox_url=sandbox.url)
    return made


def comment_payload(comment_id: str, media_id: str, text: str) -> dict[str, Any]:
    value = {
        "id": comment_id,
        "from": {"id": "555", "username": "spam_bot"},
        "text": text,
        "media": {"id": media_id, "media_product_type": "FEED"},
    }
    return {
        "object": "instagram",
        "entry": [{"id": IG_ID, "time": 1_741_165_200, "field": "comments", "value": value}],
    }


async def test_a_rule_hides_a_spam_comment_and_leaves_the_others(
    services: Services, sandbox: Any
) -> None:
    container = services.container
    sandbox.state.add_account(IG_ID, "shop")
    workspace = await Workspace.create(name="Shop")
    account = await InstagramAccount.create(
        workspace=workspace,
        ig_id=IG_ID,
        username="shop",
        login_kind=LoginKind.SANDBOX,
        token_encrypted=container.secrets.encrypt(sandbox.state.issue_token(IG_ID)),
    )
    definition = RuleDefinition(
        name="Hide competitors' links",
        account_id=account.id,
        trigger="comment",
        keywords=["rival-shop.example", "cheap followers"],
        match_mode="contains",
        dm_type="none",
        hide_comment=True,
    )
    rule = await AutomationRule.create(
        workspace=workspace, account=account, **definition.stored_columns()
    )
    media = sandbox.state.add_media(IG_ID, caption="New drop")
    spam = sandbox.state.add_comment(
        media.id, from_id="555", username="spam_bot", text="Better prices at rival-shop.example"
    )
    fan = sandbox.state.add_comment(media.id, from_id="556", username="fan", text="Love it")
    events = [
        *parse_payload(comment_payload(spam.id, media.id, spam.text)),
        *parse_payload(comment_payload(fan.id, media.id, fan.text)),
    ]
    now = container.clock.now()
    await record_events(events, container.queue, now)
    # Meta delivers the same webhook again: still one hide.
    await record_events(events, container.queue, now)
    ids = await WebhookEvent.filter(kind="comment").values_list("id", flat=True)
    await services.automations.handle_events(list(ids))
    assert sandbox.state.comments[spam.id].hidden is True
    assert sandbox.state.comments[fan.id].hidden is False
    [hide] = await OutboundAction.filter(kind="hide_comment")
    assert (hide.target, hide.status.value) == (spam.id, "sent")
    assert hide.dedupe_key == f"{rule.id}:{IG_ID}:comment:{spam.id}:hide_comment"
    stats = await RuleStats.get(rule_id=rule.id)
    assert (stats.total_triggers, stats.total_dms_sent, stats.total_comments_replied) == (1, 0, 0)
