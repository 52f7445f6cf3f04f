"""A rule's variant results: which variation of its reply, DM and follow-up went out, and the
replies, clicks and leads each brought (``core.domain.variants``), read in four queries
scoped to the actor's workspace; and keeping the winner (the rule left with that one)."""

from __future__ import annotations

from redis.asyncio import Redis

from core.db.models import (
    AutomationRule,
    Conversation,
    Lead,
    OutboundAction,
    OutboundStatus,
    TrackedLink,
)
from core.domain.rule_definition import RuleDefinition
from core.domain.scope import Actor
from core.domain.variants import STEPS, Tally, VariantResult, results, variations
from core.errors import NotFound, ValidationFailed
from core.ports.secrets import SecretStore
from core.services import rule_editor


async def variant_results(actor: Actor, rule_id: int) -> list[VariantResult]:
    """The rule's variations with what each brought (NotFound outside the workspace)."""
    rule = await AutomationRule.get_or_none(id=rule_id, workspace_id=actor.workspace_id)
    if rule is None:
        raise NotFound("rule not found")
    sends = await OutboundAction.filter(
        rule_id=rule.id,
        account_id=rule.account_id,
        status=OutboundStatus.SENT,
        step__in=STEPS,
    ).values("step", "variant", "conversation_id", "sent_at")
    people = {s["conversation_id"] for s in sends if s["conversation_id"]}
    last_in = dict(
        await Conversation.filter(id__in=people, account_id=rule.account_id).values_list(
            "id", "last_inbound_at"
        )
    )
    leads = set(
        await Lead.filter(
            rule_id=rule.id, workspace_id=actor.workspace_id, conversation_id__in=people
        ).values_list("conversation_id", flat=True)
    )
    tallies: dict[tuple[str, str], Tally] = {}
    for send in sends:
        tally = tallies.setdefault((send["step"], send["variant"]), Tally())
        tally.sent += 1
        person = send["conversation_id"]
        answered = last_in.get(person)
        if person and answered is not None and send["sent_at"] and answered > send["sent_at"]:
            tally.replied.add(person)
        if person in leads:
            tally.leads.add(person)
    links = await TrackedLink.filter(
        rule_id=rule.id, workspace_id=actor.workspace_id, step__in=STEPS, clicks__gt=0
    ).values("step", "variant", "igsid", "conversation_id", "clicks")
    for link in links:
        tally = tallies.setdefault((link["step"], link["variant"]), Tally())
        tally.clicks += link["clicks"]
        tally.clicked.add(link["igsid"] or f"c{link['conversation_id']}")
    return results(RuleDefinition.from_stored(rule), tallies)


async def keep_variant(
    actor: Actor, rule_id: int, step: str, variant: str, *, redis: Redis, secrets: SecretStore
) -> AutomationRule:
    """Leave the rule's ``step`` with its variation ``variant`` alone (the winner kept)."""
    rule = await rule_editor.get_rule(actor, rule_id)
    definition = RuleDefinition.from_stored(rule)
    texts = variations(definition).get(step, [])
    n = int(variant[1:]) - 1 if variant[:1] == "v" and variant[1:].isdigit() else -1
    if not 0 <= n < len(texts):
        raise ValidationFailed("That variation is not in the rule.", {"variant": "Not found."})
    kept = [texts[n]]
    update: dict[str, object] = {"comment_replies": kept} if step == "reply" else {}
    if step == "dm":
        update = {"dm_variations": kept}
    elif step == "follow_up" and definition.follow_up is not None:
        update = {"follow_up": definition.follow_up.model_copy(update={"messages": kept})}
    # The stored secret and address stay as they are (None keeps them).
    lead_settings = definition.lead_settings.model_copy(update={"webhook_secret": None})
    edited = definition.model_copy(
        update={**update, "lead_settings": lead_settings, "notification_email": None}
    )
    return await rule_editor.save_rule(actor, edited, redis=redis, rule_id=rule.id, secrets=secrets)
