"""API: automation rules (list with stats, read, create, replace, switch on/off, delete).

A rule travels as JSON here but is checked and stored by the rule editor's own code
(``core.domain.rule_form`` through ``core.services.rule_editor``): the body becomes the
editor's form, and the editor's field names in errors become paths into the body
(``buttons.0.title``, ``lead_flow.2.options``), so the API and the panel accept and refuse
the same rules. Stored rules are read back through ``rule_form.form_from_rule``, the way the
editor shows them, so what a GET returns can be sent back with a PUT unchanged.

The lead webhook secret is write-only: answers only say whether one is set, and a replace
that leaves it out (null) keeps the stored one.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field
from quart import Blueprint
from quart_schema import validate_querystring, validate_request, validate_response

from core.db.models import AutomationRule, InstagramAccount, Role, RuleStats
from core.domain import rule_form
from core.domain.ai_replies import ApprovalMode
from core.domain.rules import MATCH_MODES, TRIGGERS, RuleActions
from core.errors import ValidationFailed
from core.services import rule_editor
from panel.api.auth import api_requires, current_token

blueprint = Blueprint("api_rules", __name__, url_prefix="/api/v1/rules")

MAX_ID = 2**31 - 1
VARIATION_BREAK = f"\n{rule_form.VARIATION_BREAK}\n"


def _one_of(values: tuple[str, ...] | list[str]) -> dict[str, Any]:
    return {"enum": list(values)}


class Button(BaseModel):
    title: str
    target: str = Field(
        "", description="An http(s) link to open, or the payload sent back (the title if empty)."
    )


class QuickReply(BaseModel):
    title: str
    payload: str = Field("", description="Sent back when tapped (the title if empty).")


class Choice(BaseModel):
    title: str
    goto: str = Field(
        "", description="The id of the step this choice leads to (`end` ends the flow)."
    )


class FlowStep(BaseModel):
    type: str = Field(json_schema_extra=_one_of(rule_form.STEP_KINDS))
    id: str = Field("", description="Short id that branches point to (s1, s2 … if empty).")
    text: str = Field("", description="The question (ask and branch steps).")
    messages: list[str] = Field(
        default_factory=list, description="What a send step says; one variation is picked."
    )
    field: str = Field(
        "",
        description="What an ask step's answer is: "
        + ", ".join(rule_form.ANSWER_KINDS)
        + " (custom if empty).",
    )
    key: str = Field("", description="The name a custom answer is saved under.")
    retry: str = Field("", description="Said when an answer is not valid.")
    attempts: int | None = Field(None, description="How often an answer may be retried.")
    options: list[Choice] = Field(default_factory=list)
    goto: str = Field("", description="The step after this one (the next one if empty).")


class LeadSettings(BaseModel):
    webhook_url: str = ""
    webhook_secret: str | None = Field(
        None, description="Signs the lead webhook; null keeps the stored one, empty clears it."
    )
    phone_region: str = Field("", description='Two-letter region for phone numbers ("US").')


class LeadSettingsOut(BaseModel):
    webhook_url: str
    webhook_secret_set: bool
    phone_region: str


class AiSettings(BaseModel):
    prompt: str = ""
    tone: str = ""
    knowledge: str = ""
    approval: str = Field(
        ApprovalMode.AUTO.value, json_schema_extra=_one_of([m.value for m in ApprovalMode])
    )
    fallback_reply: str = ""
    continue_conversation: bool = True


class RuleFields(BaseModel):
    name: str
    account_id: int = Field(ge=1, le=MAX_ID)
    trigger: str = Field(json_schema_extra=_one_of(TRIGGERS))
    keywords: list[str] = Field(default_factory=list)
    match_mode: str = Field("whole_word", json_schema_extra=_one_of(MATCH_MODES))
    media_ids: list[str] = Field(
        default_factory=list,
        description="Instagram post ids the rule is limited to (all if empty).",
    )
    priority: int = 0
    cooldown_minutes: int = 0
    delay_minutes: float = 0
    first_comment_only: bool = False
    active: bool = True
    comment_replies: list[str] = Field(
        default_factory=list, description="Public replies to a comment; one is picked."
    )
    dm_type: str = Field("text", json_schema_extra=_one_of(rule_form.DM_TYPES))
    dm_variations: list[str] = Field(
        default_factory=list, description="The DM's text; one variation is picked."
    )
    buttons: list[Button] = Field(default_factory=list)
    quick_replies: list[QuickReply] = Field(default_factory=list)
    link: str = ""
    lead_flow: list[FlowStep] = Field(default_factory=list)
    ai: AiSettings | None = None


class RuleBody(RuleFields):
    """A whole rule, as the rule editor saves it."""

    lead_settings: LeadSettings = Field(default_factory=lambda: LeadSettings.model_validate({}))


class RuleCounters(BaseModel):
    total_triggers: int
    total_dms_sent: int
    total_comments_replied: int
    total_leads_captured: int
    last_triggered_at: datetime | None
    last_lead_captured_at: datetime | None


class RuleOut(RuleFields):
    id: int
    account_username: str
    lead_settings: LeadSettingsOut
    does: str = Field(description="A few words about what the rule does.")
    stats: RuleCounters
    created_at: datetime
    updated_at: datetime


class RuleList(BaseModel):
    items: list[RuleOut]


class RuleQuery(BaseModel):
    account_id: int | None = Field(None, ge=1, le=MAX_ID)


# ---------------------------------------------------------------- body <-> editor form


def _form_of(body: RuleBody) -> tuple[dict[str, list[str]], dict[str, str]]:
    """The editor's form for ``body`` and what the form cannot carry (by body path)."""
    problems: dict[str, str] = {}
    form: dict[str, list[str]] = {
        "name": [body.name],
        "account_id": [str(body.account_id)],
        "trigger": [body.trigger],
        "media_ids": list(body.media_ids),
        "keywords": ["\n".join(body.keywords)],
        "match_mode": [body.match_mode],
        "priority": [str(body.priority)],
        "cooldown_minutes": [str(body.cooldown_minutes)],
        "delay_minutes": [str(body.delay_minutes)],
        "comment_reply": list(body.comment_replies),
        "dm_type": [body.dm_type],
        "dm_variation": list(body.dm_variations),
        "link": [body.link],
        "webhook_url": [body.lead_settings.webhook_url],
        "webhook_secret": [body.lead_settings.webhook_secret or ""],
        "phone_region": [body.lead_settings.phone_region],
    }
    if any("," in k or "\n" in k for k in body.keywords):
        problems["keywords"] = "A keyword cannot contain a comma or a line break."
    if body.first_comment_only:
        form["first_comment_only"] = ["on"]
    if body.active:
        form["active"] = ["on"]
    limit = rule_form.EDITOR_BUTTONS
    if len(body.buttons) > limit:
        problems["buttons"] = f"At most {limit} buttons."
    for n, button in enumerate(body.buttons[:limit]):
        form[f"button-{n}-title"] = [button.title]
        form[f"button-{n}-target"] = [button.target]
    if len(body.quick_replies) > limit:
        problems["quick_replies"] = f"At most {limit} quick replies."
    for n, quick in enumerate(body.quick_replies[:limit]):
        form[f"quick-{n}-title"] = [quick.title]
        form[f"quick-{n}-payload"] = [quick.payload]
    for n, step in enumerate(body.lead_flow):
        form.update(_step_form(n, step, problems))
    if body.ai is not None:
        form.update(
            {
                "ai_prompt": [body.ai.prompt],
                "ai_tone": [body.ai.tone],
                "ai_knowledge": [body.ai.knowledge],
                "ai_approval": [body.ai.approval],
                "ai_fallback": [body.ai.fallback_reply],
            }
        )
        if body.ai.continue_conversation:
            form["ai_continue"] = ["on"]
    return form, problems


def _step_form(n: int, step: FlowStep, problems: dict[str, str]) -> dict[str, list[str]]:
    p = f"flow-{n}-"
    lines = []
    for m, choice in enumerate(step.options):
        at = f"lead_flow.{n}.options.{m}."
        if not choice.title.strip():
            problems[at + "title"] = "Give the choice a title."
        elif any(bad in choice.title for bad in ("->", "\n", "\r")):
            problems[at + "title"] = "A choice's title cannot contain -> or a line break."
        if any(bad in choice.goto for bad in ("->", "\n", "\r")):
            problems[at + "goto"] = "Name a step id (letters, digits, - and _) or end."
        lines.append(choice.title + (f" -> {choice.goto}" if choice.goto else ""))
    if any(rule_form.VARIATION_BREAK in m.split("\n") for m in step.messages):
        problems[f"lead_flow.{n}.messages"] = (
            f"A message cannot have a line with only {rule_form.VARIATION_BREAK}."
        )
    text = VARIATION_BREAK.join(step.messages) if step.type == "send" else step.text
    form = {
        p + "type": [step.type],
        p + "id": [step.id],
        p + "text": [text],
        p + "field": [step.field],
        p + "key": [step.key],
        p + "retry": [step.retry],
        p + "options": ["\n".join(lines)],
        p + "goto": [step.goto],
    }
    if step.attempts is not None:
        form[p + "attempts"] = [str(step.attempts)]
    return form


_RENAMED = {
    "comment_reply": "comment_replies",
    "dm_variation": "dm_variations",
    "flow": "lead_flow",
    "webhook_url": "lead_settings.webhook_url",
    "webhook_secret": "lead_settings.webhook_secret",
    "phone_region": "lead_settings.phone_region",
    "ai_fallback": "ai.fallback_reply",
    "ai_continue": "ai.continue_conversation",
}
_ROWS = re.compile(r"^(button|quick|flow)-(\d+)-(\w+)$")
_ROW_LISTS = {"button": "buttons", "quick": "quick_replies", "flow": "lead_flow"}


def _body_fields(errors: dict[str, str], body: RuleBody) -> dict[str, str]:
    """The editor's error keys as paths into the API body."""
    found: dict[str, str] = {}
    for key, message in errors.items():
        path = _RENAMED.get(key, key)
        row = _ROWS.match(key)
        if row is not None:
            kind, n, name = row.group(1), int(row.group(2)), row.group(3)
            if kind == "flow" and name == "text" and n < len(body.lead_flow):
                name = "messages" if body.lead_flow[n].type == "send" else "text"
            path = f"{_ROW_LISTS[kind]}.{n}.{name}"
        elif key.startswith("ai_") and key not in _RENAMED:
            path = "ai." + key.removeprefix("ai_")
        found.setdefault(path, message)
    return found


def _body_of(rule: AutomationRule) -> dict[str, Any]:
    """A stored rule in the body's shape, read the way the editor reads it."""
    form = rule_form.form_from_rule(
        rule.account_id,
        {
            "name": rule.name,
            "trigger": rule.trigger.value,
            "media_ids": rule.media_ids,
            "keywords": rule.keywords,
            "match_mode": rule.match_mode.value,
            "priority": rule.priority,
            "cooldown_s": rule.cooldown_s,
            "first_comment_only": rule.first_comment_only,
            "active": rule.active,
            "config": rule.config,
        },
    )

    def one(name: str) -> str:
        return (form.get(name) or [""])[0]

    rows = range(rule_form.EDITOR_BUTTONS)
    ai = None
    if "ai_prompt" in form:
        ai = AiSettings(
            prompt=one("ai_prompt"),
            tone=one("ai_tone"),
            knowledge=one("ai_knowledge"),
            approval=one("ai_approval"),
            fallback_reply=one("ai_fallback"),
            continue_conversation="ai_continue" in form,
        )
    return {
        "name": one("name"),
        "account_id": rule.account_id,
        "trigger": one("trigger"),
        "keywords": rule_form.split_keywords(one("keywords")),
        "match_mode": one("match_mode"),
        "media_ids": form.get("media_ids") or [],
        "priority": int(one("priority")),
        "cooldown_minutes": int(one("cooldown_minutes")),
        "delay_minutes": float(one("delay_minutes")),
        "first_comment_only": "first_comment_only" in form,
        "active": "active" in form,
        "comment_replies": form.get("comment_reply") or [],
        "dm_type": one("dm_type"),
        "dm_variations": form.get("dm_variation") or [],
        "buttons": [
            Button(title=one(f"button-{n}-title"), target=one(f"button-{n}-target"))
            for n in rows
            if f"button-{n}-title" in form
        ],
        "quick_replies": [
            QuickReply(title=one(f"quick-{n}-title"), payload=one(f"quick-{n}-payload"))
            for n in rows
            if f"quick-{n}-title" in form
        ],
        "link": one("link"),
        "lead_flow": [_step_of(form, n) for n in rule_form.flow_step_numbers(form)],
        "lead_settings": LeadSettingsOut(
            webhook_url=one("webhook_url"),
            webhook_secret_set=bool(one("webhook_secret")),
            phone_region=one("phone_region"),
        ),
        "ai": ai,
    }


def _step_of(form: dict[str, list[str]], n: int) -> FlowStep:
    p = f"flow-{n}-"

    def one(name: str) -> str:
        return (form.get(p + name) or [""])[0]

    kind = one("type")
    options = []
    for line in one("options").splitlines():
        title, _, goto = line.partition("->")
        if title.strip():
            options.append(Choice(title=title.strip(), goto=goto.strip()))
    attempts = one("attempts")
    return FlowStep(
        type=kind,
        id=one("id"),
        text="" if kind == "send" else one("text"),
        messages=one("text").split(VARIATION_BREAK) if kind == "send" else [],
        field=one("field"),
        key=one("key"),
        retry=one("retry"),
        attempts=int(attempts) if attempts.isdigit() else None,
        options=options,
        goto=one("goto"),
    )


def _out(row: rule_editor.RuleRow) -> RuleOut:
    stats = row.stats
    return RuleOut(
        id=row.rule.id,
        account_username=row.account.username,
        does=str(rule_editor.rule_summary(row.rule)["does"]),
        stats=RuleCounters(
            total_triggers=stats.total_triggers if stats else 0,
            total_dms_sent=stats.total_dms_sent if stats else 0,
            total_comments_replied=stats.total_comments_replied if stats else 0,
            total_leads_captured=stats.total_leads_captured if stats else 0,
            last_triggered_at=stats.last_triggered_at if stats else None,
            last_lead_captured_at=stats.last_lead_captured_at if stats else None,
        ),
        created_at=row.rule.created_at,
        updated_at=row.rule.updated_at,
        **_body_of(row.rule),
    )


# ---------------------------------------------------------------- endpoints


def _workspace() -> int:
    workspace_id: int = current_token().workspace_id
    return workspace_id


def _actor() -> str:
    return f"api:{current_token().name}"


async def _own(rule_id: int) -> AutomationRule:
    return await rule_editor.get_rule(_workspace(), rule_id)


async def _row(rule: AutomationRule) -> rule_editor.RuleRow:
    account = await InstagramAccount.get(id=rule.account_id)
    stats = await RuleStats.get_or_none(rule_id=rule.id)
    return rule_editor.RuleRow(rule, account, stats)


async def _save(body: RuleBody, rule_id: int | None = None) -> AutomationRule:
    form, problems = _form_of(body)
    if problems:
        # Refused before the editor sees it; its own findings are added so one answer
        # names every problem.
        _, errors = rule_form.read_rule_form(form)
        fields = {**_body_fields(errors, body), **problems}
        count = len(fields)
        needs = f"{count} fields need" if count > 1 else "1 field needs"
        raise ValidationFailed(
            f"The rule was not saved: {needs} attention.",
            fields,
        )
    try:
        return await rule_editor.save_rule(_workspace(), form, actor=_actor(), rule_id=rule_id)
    except ValidationFailed as exc:
        raise ValidationFailed(exc.message, _body_fields(exc.fields, body)) from exc


@blueprint.get("")
@api_requires(Role.VIEWER)
@validate_querystring(RuleQuery)
@validate_response(RuleList)
async def list_rules(query_args: RuleQuery) -> RuleList:
    """Every rule, highest priority first, with its counters."""
    rows = await rule_editor.list_rules(_workspace(), query_args.account_id)
    return RuleList(items=[_out(row) for row in rows])


@blueprint.get("/<int:rule_id>")
@api_requires(Role.VIEWER)
@validate_response(RuleOut)
async def get_rule(rule_id: int) -> RuleOut:
    """One rule with its counters."""
    return _out(await _row(await _own(rule_id)))


@blueprint.post("")
@api_requires(Role.EDITOR)
@validate_request(RuleBody)
@validate_response(RuleOut, 201)
async def create_rule(data: RuleBody) -> tuple[RuleOut, int]:
    """A new rule, checked like the panel's rule editor checks it (all or nothing)."""
    rule = await _save(data)
    return _out(await _row(rule)), 201


@blueprint.put("/<int:rule_id>")
@api_requires(Role.EDITOR)
@validate_request(RuleBody)
@validate_response(RuleOut)
async def replace_rule(rule_id: int, data: RuleBody) -> RuleOut:
    """Replace a rule whole (all or nothing); a null webhook secret keeps the stored one."""
    rule = await _own(rule_id)
    if data.lead_settings.webhook_secret is None:
        stored = RuleActions.from_config(rule.config).lead_settings.get("webhook_secret")
        data.lead_settings.webhook_secret = str(stored or "")
    rule = await _save(data, rule_id=rule.id)
    return _out(await _row(rule))


async def _switch(rule_id: int, active: bool) -> RuleOut:
    rule = await _own(rule_id)
    await rule_editor.set_active(_workspace(), rule.id, active, actor=_actor())
    return _out(await _row(await _own(rule_id)))


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
    rule = await _own(rule_id)
    await rule_editor.delete_rule(_workspace(), rule.id, actor=_actor())
    return "", 204
