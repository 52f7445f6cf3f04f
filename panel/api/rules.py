"""API: automation rules (list with stats, read, create, replace, switch on/off, delete).

A body validates straight into the rule's one shape, :class:`RuleDefinition`, and is checked
and stored by the same code as the panel's rule editor (``core.services.rule_editor``), so the
API and the panel accept and refuse the same rules; problems are named by their path in the
body (``buttons.0.title``, ``lead_flow.2.options``). Stored rules are read back through the
same model, so what a GET returns can be sent back with a PUT unchanged.

The lead webhook secret is write-only: answers only say whether one is set, and a replace
that leaves it out (null) keeps the stored one.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field
from quart import Blueprint
from quart_schema import validate_querystring, validate_request, validate_response
from redis.asyncio import Redis

from core.db.models import AutomationRule, Role
from core.domain.rule_definition import MAX_ID, RuleDefinition, RuleFields
from core.services import rule_editor, variants
from panel.api.auth import api_requires, current_actor
from panel.api.schemas import CursorQuery, cursor_int, decode_cursor, encode_cursor
from panel.services import services

blueprint = Blueprint("api_rules", __name__, url_prefix="/api/v1/rules")


class LeadSettingsOut(BaseModel):
    webhook_url: str
    webhook_secret_set: bool
    phone_region: str


class RuleCounters(BaseModel):
    total_triggers: int
    total_dms_sent: int
    total_comments_replied: int
    total_leads_captured: int
    last_triggered_at: datetime | None
    last_lead_captured_at: datetime | None


class FunnelOut(BaseModel):
    triggered: int
    replied: int
    dm_opened: int | None = Field(
        description="Messages Instagram reported read; null until it reports one."
    )
    clicked: int = Field(description="People who opened at least one tracked link.")
    clicks: int = Field(description="Every counted click (link previews are not counted).")
    leads: int


class VariantOut(BaseModel):
    step: str = Field(description="reply (public reply), dm or follow_up.")
    variant: str = Field(description="v1 for the step's first variation, v2 …")
    text: str
    sent: int = Field(description="Times it went out.")
    replied: int = Field(description="People who wrote to the account after it reached them.")
    clicked: int = Field(description="People who opened one of its tracked links.")
    clicks: int
    leads: int = Field(description="People who got it and became a lead of the rule.")
    leading: bool = Field(description="The best rate of its step (after 10 sends).")


class VariantsOut(BaseModel):
    data: list[VariantOut]


class RuleOut(RuleFields):
    id: int
    account_username: str
    lead_settings: LeadSettingsOut
    does: str = Field(description="A few words about what the rule does.")
    ig_me_link: str = Field(
        description="A ref-link rule's https://ig.me/m/<username>?ref=<ref_code> (else empty)."
    )
    stats: RuleCounters
    created_at: datetime
    updated_at: datetime


class RuleList(BaseModel):
    items: list[RuleOut]
    has_next: bool
    next_cursor: str | None = Field(description="Pass as `cursor` for the next items.")


class RuleQuery(CursorQuery):
    account_id: int | None = Field(None, ge=1, le=MAX_ID)
    limit: int = Field(200, ge=1, le=200, description="Items per answer.")


def _out(row: rule_editor.RuleRow) -> RuleOut:
    rule = RuleDefinition.from_stored(row.rule)
    stats = row.stats
    return RuleOut.model_validate(
        {
            **rule.model_dump(exclude={"lead_settings"}),
            "id": row.rule.id,
            "account_username": row.account.username,
            "lead_settings": LeadSettingsOut(
                webhook_url=rule.lead_settings.webhook_url,
                webhook_secret_set=bool(rule.lead_settings.webhook_secret),
                phone_region=rule.lead_settings.phone_region,
            ),
            "does": str(rule_editor.rule_summary(row.rule)["does"]),
            "ig_me_link": rule.ig_me_link(row.account.username),
            "stats": RuleCounters(
                total_triggers=stats.total_triggers if stats else 0,
                total_dms_sent=stats.total_dms_sent if stats else 0,
                total_comments_replied=stats.total_comments_replied if stats else 0,
                total_leads_captured=stats.total_leads_captured if stats else 0,
                last_triggered_at=stats.last_triggered_at if stats else None,
                last_lead_captured_at=stats.last_lead_captured_at if stats else None,
            ),
            "created_at": row.rule.created_at,
            "updated_at": row.rule.updated_at,
        }
    )


# ---------------------------------------------------------------- endpoints


async def _row(rule: AutomationRule) -> rule_editor.RuleRow:
    return await rule_editor.rule_row(current_actor(), rule)


async def _save(body: RuleDefinition, rule_id: int | None = None) -> AutomationRule:
    return await rule_editor.save_rule(
        current_actor(),
        body,
        redis=_redis(),
        rule_id=rule_id,
        secrets=services().container.secrets,
    )


@blueprint.get("")
@api_requires(Role.VIEWER)
@validate_querystring(RuleQuery)
@validate_response(RuleList)
async def list_rules(query_args: RuleQuery) -> RuleList:
    """The rules, highest priority first, with their counters: ``limit`` (200) after
    ``cursor``, or page ``page``."""
    rows = await rule_editor.list_rules(current_actor(), query_args.account_id)
    limit = query_args.limit
    start = (query_args.page - 1) * limit
    if query_args.cursor:
        position = decode_cursor("rules", query_args.cursor)
        priority, after = cursor_int(position, "priority"), cursor_int(position, "after")
        # The order is (priority descending, id ascending): start behind that rule.
        start = sum(1 for row in rows if (-row.rule.priority, row.rule.id) <= (-priority, after))
    shown = rows[start : start + limit]
    more = len(rows) > start + limit
    next_cursor = None
    if more:
        last = shown[-1].rule
        next_cursor = encode_cursor("rules", {"priority": last.priority, "after": last.id})
    return RuleList(items=[_out(row) for row in shown], has_next=more, next_cursor=next_cursor)


@blueprint.get("/<int:rule_id>")
@api_requires(Role.VIEWER)
@validate_response(RuleOut)
async def get_rule(rule_id: int) -> RuleOut:
    """One rule with its counters."""
    return _out(await _row(await rule_editor.get_rule(current_actor(), rule_id)))


@blueprint.get("/<int:rule_id>/funnel")
@api_requires(Role.VIEWER)
@validate_response(FunnelOut)
async def rule_funnel(rule_id: int) -> FunnelOut:
    """The rule's funnel: triggered → replied → DM opened → clicked → lead."""
    funnel = await services().links.funnel(current_actor(), rule_id)
    return FunnelOut(
        triggered=funnel.triggered,
        replied=funnel.replied,
        dm_opened=funnel.opened,
        clicked=funnel.clicked,
        clicks=funnel.clicks,
        leads=funnel.leads,
    )


@blueprint.get("/<int:rule_id>/variants")
@api_requires(Role.VIEWER)
@validate_response(VariantsOut)
async def rule_variants(rule_id: int) -> VariantsOut:
    """Each variation of the rule's public reply, DM and follow-up: sent, replies, clicks and
    leads."""
    found = await variants.variant_results(current_actor(), rule_id)
    return VariantsOut(data=[VariantOut.model_validate(v.as_json()) for v in found])


@blueprint.post("")
@api_requires(Role.EDITOR)
@validate_request(RuleDefinition)
@validate_response(RuleOut, 201)
async def create_rule(data: RuleDefinition) -> tuple[RuleOut, int]:
    """A new rule, checked like the panel's rule editor checks it (all or nothing)."""
    rule = await _save(data)
    return _out(await _row(rule)), 201


@blueprint.put("/<int:rule_id>")
@api_requires(Role.EDITOR)
@validate_request(RuleDefinition)
@validate_response(RuleOut)
async def replace_rule(rule_id: int, data: RuleDefinition) -> RuleOut:
    """Replace a rule whole (all or nothing); a null webhook secret keeps the stored one."""
    rule = await rule_editor.get_rule(current_actor(), rule_id)
    rule = await _save(data, rule_id=rule.id)
    return _out(await _row(rule))


async def _switch(rule_id: int, active: bool) -> RuleOut:
    actor = current_actor()
    await rule_editor.set_active(actor, rule_id, active, redis=_redis())
    return _out(await _row(await rule_editor.get_rule(actor, rule_id)))


@blueprint.post("/<int:rule_id>/activate")
@api_requires(Role.EDITOR)
@validate_response(RuleOut)
async def activate_rule(rule_id: int) -> RuleOut:
    """Switch a rule on (the engine sees it within a second)."""
    return await _switch(rule_id, True)


@blueprint.post("/<int:rule_id>/deactivate")
@api_requires(Role.EDITOR)
@validate_response(RuleOut)
async def deactivate_rule(rule_id: int) -> RuleOut:
    """Switch a rule off."""
    return await _switch(rule_id, False)


@blueprint.delete("/<int:rule_id>")
@api_requires(Role.EDITOR)
async def delete_rule(rule_id: int) -> tuple[str, int]:
    """Delete a rule (its leads stay)."""
    await rule_editor.delete_rule(current_actor(), rule_id, redis=_redis())
    return "", 204


def _redis() -> Redis:
    """Where rule changes are announced to the workers."""
    return services().container.redis
