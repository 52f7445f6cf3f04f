"""A saved, switched or deleted rule is what every worker answers with from the next event."""

from __future__ import annotations

import asyncio
from typing import Any

from core.db.models import EventStatus, InstagramAccount
from core.domain.rule_definition import RuleDefinition
from core.domain.scope import Actor, Role
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
