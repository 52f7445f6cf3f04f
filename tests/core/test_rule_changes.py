"""A saved, switched or deleted rule is what every worker answers with from the next event."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from core.db.models import AutomationRule, EventStatus, InstagramAccount
from core.domain.rule_definition import AiSettings, RuleDefinition
from core.domain.scope import Actor, Role
from core.errors import ValidationFailed
from core.services import rule_editor
from tests.automation_world import comment_payload, make_account
from tests.core.test_automations import World


def _definition(account: InstagramAccount, keyword: str) -> RuleDefinition:
    return RuleDefinition(
        name=f"Answer {keyword}",
        account_id=account.id,
        trigger="comment",
        keywords=[keyword],
        dm_variations=[f"About {keyword}"],
    )


async def test_a_comment_10_ms_after_a_rule_is_saved_gets_the_new_rule(container: Any) -> None:
    account = await make_account(container)
    workers = [World(container), World(container)]
    for n, worker in enumerate(workers):  # both have read (and cached) the account's rules
        (before,) = await worker.deliver(comment_payload(f"warm-{n}", "price", sender=f"w{n}"))
        assert before.status is EventStatus.IGNORED

    actor = Actor(account.workspace_id, Role.ADMIN, "a@x")
    rule = await rule_editor.save_rule(
        actor, _definition(account, "price"), redis=container.redis, secrets=container.secrets
    )
    await asyncio.sleep(0.01)
    (outcome,) = await workers[1].deliver(comment_payload("c1", "price"))

    assert outcome.status is EventStatus.DONE and outcome.rule_id == rule.id


async def test_switching_off_and_deleting_apply_at_once(container: Any) -> None:
    account = await make_account(container)
    worker = World(container)
    actor = Actor(account.workspace_id, Role.ADMIN, "a@x")
    rule = await rule_editor.save_rule(
        actor, _definition(account, "price"), redis=container.redis, secrets=container.secrets
    )
    (on,) = await worker.deliver(comment_payload("c1", "price", sender="p1"))
    assert on.rule_id == rule.id

    await rule_editor.set_active(actor, rule.id, False, redis=container.redis)
    (off,) = await worker.deliver(comment_payload("c2", "price", sender="p2"))
    assert off.status is EventStatus.IGNORED

    await rule_editor.set_active(actor, rule.id, True, redis=container.redis)
    (again,) = await worker.deliver(comment_payload("c3", "price", sender="p3"))
    assert again.rule_id == rule.id

    await rule_editor.delete_rule(actor, rule.id, redis=container.redis)
    (gone,) = await worker.deliver(comment_payload("c4", "price", sender="p4"))
    assert gone.status is EventStatus.IGNORED


async def test_an_edit_keeps_the_address_and_ai_limits_it_does_not_show(container: Any) -> None:
    account = await make_account(container)
    actor = Actor(account.workspace_id, Role.ADMIN, "a@x")
    first = _definition(account, "price").model_copy(
        update={
            "dm_type": "ai",
            "dm_variations": [],
            "ai": AiSettings(prompt="Sell candles.", max_sentences=4, history_messages=3),
            "notification_email": " sales@example.com ",
        }
    )
    saved = {"redis": container.redis, "secrets": container.secrets}
    rule = await rule_editor.save_rule(actor, first, **saved)
    # As the form saves it: neither the address nor the limits are among its fields.
    edited = first.model_copy(
        update={"name": "Candles", "ai": AiSettings(prompt="Sell more candles.")}
    )
    edited.notification_email = None
    await rule_editor.save_rule(actor, edited, rule_id=rule.id, **saved)
    stored = RuleDefinition.from_stored(await AutomationRule.get(id=rule.id))
    reply = stored.ai_reply()
    assert stored.name == "Candles" and stored.notification_email == "sales@example.com"
    assert reply is not None and reply.prompt == "Sell more candles."
    assert (reply.max_sentences, reply.history_messages) == (4, 3)
    cleared = edited.model_copy(update={"notification_email": ""})
    await rule_editor.save_rule(actor, cleared, rule_id=rule.id, **saved)
    stored = RuleDefinition.from_stored(await AutomationRule.get(id=rule.id))
    assert stored.notification_email is None
    bad = edited.model_copy(update={"notification_email": "not an address"})
    with pytest.raises(ValidationFailed) as refused:
        await rule_editor.save_rule(actor, bad, rule_id=rule.id, **saved)
    assert "notification_email" in refused.value.fields
