""" "Any comment on my next post": a comment rule bound to the account's next post.

The rule is created in one click, waiting (``next_post`` set, no post yet): it answers
nothing until then (``RuleDefinition.waiting_for_post``). When the publisher records a feed
post or reel of the account as published, :func:`bind_next_post` limits every waiting rule
of the account to that post's media id, and the rule answers its comments from then on.
"""

from __future__ import annotations

import logging
from datetime import datetime

from redis.asyncio import Redis
from tortoise.transactions import in_transaction

from core.db.models import AutomationRule, Trigger
from core.domain.rule_definition import RuleDefinition
from core.domain.scope import Actor, instance_level
from core.ports.secrets import SecretStore
from core.services import audit, rule_changes, rule_editor

logger = logging.getLogger(__name__)

NAME = "Any comment on my next post"


def next_post_rule(account_id: int | None) -> RuleDefinition:
    """The one-click rule: answers any comment on the next post, publicly and by DM."""
    return RuleDefinition(
        name=NAME,
        account_id=account_id,
        trigger="comment",
        match_mode="any",
        next_post=True,
        comment_replies=["Thanks {first_name}! I sent you a DM 📩"],
        dm_type="text",
        dm_variations=["Thanks for commenting on my new post, {first_name}! 💛"],
    )


async def create_next_post_rule(
    actor: Actor, account_id: int | None, *, redis: Redis, secrets: SecretStore
) -> AutomationRule:
    """Create the account's "any comment on my next post" rule, waiting for that post."""
    return await rule_editor.save_rule(
        actor, next_post_rule(account_id), redis=redis, secrets=secrets
    )


@instance_level("the publisher: a post of an account it just published")
async def bind_next_post(
    account_id: int, media_id: str, now: datetime, *, redis: Redis | None
) -> list[int]:
    """Limit the account's rules waiting for its next post to ``media_id``; their ids."""
    bound: list[int] = []
    async with in_transaction():
        rules = await AutomationRule.filter(
            account_id=account_id, trigger=Trigger.COMMENT
        ).select_for_update()
        for rule in rules:
            if not RuleDefinition.from_stored(rule).waiting_for_post:
                continue
            config = {**rule.config, "next_post_bound_at": now.isoformat()}
            await AutomationRule.filter(id=rule.id).update(
                media_ids=[media_id], config=config, updated_at=now
            )
            await audit.record(
                "rule.bound_to_post",
                actor="worker",
                workspace_id=rule.workspace_id,
                account_id=account_id,
                target_type="rule",
                target_id=rule.id,
                media_id=media_id,
            )
            bound.append(rule.id)
    if bound:
        logger.info("rules %s bound to post %s (account %s)", bound, media_id, account_id)
        if redis is not None:
            await rule_changes.announce(redis)
    return bound
