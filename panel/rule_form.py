"""The rule editor's HTML form, converted to and from a :class:`RuleDefinition`.

A form is a mapping of field name to the list of values sent (an HTML form's multi-dict).
:func:`read_form` turns it into the definition it describes, with the problems only a form
can have (a number that is not one), by definition path. :func:`form_errors` names problems
by the form field they belong to, so the editor shows each message next to its field. Lead-
flow steps are ``flow-<n>-<name>`` fields numbered in the order shown; buttons and quick
replies are the rows ``button-<n>-…`` and ``quick-<n>-…``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from core.domain import lead_flow
from core.domain.ids import row_id
from core.domain.messages import MAX_CARDS
from core.domain.rule_checks import EDITOR_BUTTONS, VARIATION_BREAK, Problems
from core.domain.rule_definition import (
    MAX_ID,
    STEP_KINDS,
    AiSettings,
    Card,
    Choice,
    DmButton,
    FlowStep,
    FollowUpStep,
    LeadSettings,
    QuickReply,
    RuleDefinition,
)

Form = Mapping[str, Sequence[str]]

_STEP_FIELD = re.compile(r"^flow-(\d+)-type$")
_VARIATIONS = f"\n{VARIATION_BREAK}\n"
_RENAMED = {
    "comment_replies": "comment_reply",
    "dm_variations": "dm_variation",
    "lead_flow": "flow",
    "lead_settings.webhook_url": "webhook_url",
    "lead_settings.webhook_secret": "webhook_secret",
    "lead_settings.phone_region": "phone_region",
    "ai.fallback_reply": "ai_fallback",
    "ai.continue_conversation": "ai_continue",
    "follow_up.messages": "follow_up_message",
    "follow_up.wait_minutes": "follow_up_wait",
}
FOLLOW_UP_UNITS = {"minutes": 1, "hours": 60}
_ROWS = {"buttons": "button", "quick_replies": "quick"}


def form_of(values: Mapping[str, Any]) -> dict[str, list[str]]:
    """A plain dict of lists from a multi-dict (``MultiDict.lists()``) or single values."""
    out: dict[str, list[str]] = {}
    lists = getattr(values, "lists", None)
    if callable(lists):
        for key, items in lists():
            out[str(key)] = [str(v) for v in items]
        return out
    for key, value in values.items():
        out[str(key)] = [str(v) for v in value] if isinstance(value, list) else [str(value)]
    return out


def split_keywords(text: str) -> list[str]:
    parts = re.split(r"[,\n]", text)
    return list(dict.fromkeys(p.strip() for p in parts if p.strip()))


def flow_step_numbers(form: Form) -> list[int]:
    """The step numbers present in ``form``, in order."""
    found = (_STEP_FIELD.match(key) for key in form)
    return sorted({int(match.group(1)) for match in found if match})


class _Reader:
    def __init__(self, form: Form) -> None:
        self.form = form
        self.problems: Problems = {}

    def all(self, name: str) -> list[str]:
        return [v for v in self.form.get(name) or [] if isinstance(v, str)]

    def one(self, name: str) -> str:
        values = self.all(name)
        return values[0].strip() if values else ""

    def flag(self, name: str) -> bool:
        return self.one(name).lower() in {"1", "on", "true", "yes"}

    def number(self, name: str, path: str, default: float, *, whole: bool) -> float:
        raw = self.one(name)
        if not raw:
            return default
        try:
            value = float(raw)
        except ValueError:
            self.problems[path] = "Enter a number."
            return default
        if whole and not value.is_integer():
            self.problems[path] = "Enter a whole number."
            return default
        return value


def read_form(form: Form) -> tuple[RuleDefinition, Problems]:
    """The definition ``form`` describes, and what the form itself got wrong (by path)."""
    r = _Reader(form)
    account_id = row_id(r.one("account_id"))
    dm_type = r.one("dm_type") or "text"
    ai = None
    if dm_type == "ai":
        ai = AiSettings(
            prompt=r.one("ai_prompt"),
            tone=r.one("ai_tone"),
            knowledge=r.one("ai_knowledge"),
            approval=r.one("ai_approval"),
            fallback_reply=r.one("ai_fallback"),
            continue_conversation=r.flag("ai_continue"),
        )
    rows = range(EDITOR_BUTTONS)
    definition = RuleDefinition(
        name=r.one("name"),
        account_id=account_id if account_id is not None and account_id <= MAX_ID else None,
        trigger=r.one("trigger"),
        ref_code=r.one("ref_code"),
        keywords=split_keywords(r.one("keywords")),
        match_mode=r.one("match_mode"),
        media_ids=r.all("media_ids"),
        next_post=r.flag("next_post"),
        ad_comments=r.one("ad_comments") or "also",
        priority=int(r.number("priority", "priority", 0, whole=True)),
        cooldown_minutes=int(r.number("cooldown_minutes", "cooldown_minutes", 0, whole=True)),
        delay_minutes=r.number("delay_minutes", "delay_minutes", 0, whole=False),
        first_comment_only=r.flag("first_comment_only"),
        active=r.flag("active"),
        comment_replies=r.all("comment_reply"),
        hide_comment=r.flag("hide_comment"),
        dm_type=dm_type,
        dm_variations=r.all("dm_variation"),
        buttons=[
            DmButton(title=r.one(f"button-{n}-title"), target=r.one(f"button-{n}-target"))
            for n in rows
        ],
        quick_replies=[
            QuickReply(title=r.one(f"quick-{n}-title"), payload=r.one(f"quick-{n}-payload"))
            for n in rows
        ],
        cards=[_card(r, n) for n in range(MAX_CARDS)],
        link=r.one("link"),
        track_links=r.flag("track_links"),
        utm_tags=r.flag("utm_tags"),
        lead_flow=[_step(r, n, position) for position, n in enumerate(flow_step_numbers(form))],
        follow_up=_follow_up(r),
        lead_settings=LeadSettings(
            webhook_url=r.one("webhook_url"),
            webhook_secret=_written_secret(r),
            phone_region=r.one("phone_region"),
        ),
        ai=ai,
    )
    return definition, r.problems


def _follow_up(r: _Reader) -> FollowUpStep | None:
    """The follow-up step: none unless it has a message; its wait in minutes or hours."""
    messages = [m for m in r.all("follow_up_message") if m.strip()]
    if not messages:
        return None
    wait = r.number("follow_up_wait", "follow_up.wait_minutes", 1, whole=True)
    unit = FOLLOW_UP_UNITS.get(r.one("follow_up_unit"), 1)
    return FollowUpStep(wait_minutes=int(wait) * unit, messages=messages)


def _card(r: _Reader, n: int) -> Card:
    p = f"card-{n}-"
    return Card(
        title=r.one(p + "title"),
        subtitle=r.one(p + "subtitle"),
        image_url=r.one(p + "image_url"),
        url=r.one(p + "url"),
        buttons=[
            DmButton(title=r.one(f"{p}button-{m}-title"), target=r.one(f"{p}button-{m}-target"))
            for m in range(EDITOR_BUTTONS)
        ],
    )


def _written_secret(r: _Reader) -> str | None:
    """The webhook secret is write-only: empty keeps the stored one, "clear" removes it."""
    if r.flag("webhook_secret_clear"):
        return ""
    return r.one("webhook_secret").strip() or None


def _step(r: _Reader, n: int, position: int) -> FlowStep:
    p = f"flow-{n}-"
    kind = r.one(p + "type")
    text = r.one(p + "text").replace("\r\n", "\n")
    options = []
    for line in r.one(p + "options").splitlines():
        title, _, goto = line.partition("->")
        if title.strip():
            options.append(Choice(title=title.strip(), goto=goto.strip()))
    attempts = r.number(
        p + "attempts",
        f"lead_flow.{position}.attempts",
        lead_flow.DEFAULT_MAX_ATTEMPTS,
        whole=True,
    )
    return FlowStep(
        type=kind,
        id=r.one(p + "id"),
        text="" if kind == "send" else text,
        messages=text.split(_VARIATIONS) if kind == "send" else [],
        field=r.one(p + "field"),
        key=r.one(p + "key"),
        retry=r.one(p + "retry"),
        attempts=int(attempts),
        options=options,
        goto=r.one(p + "goto"),
    )


def form_errors(problems: Mapping[str, str], form: Form) -> dict[str, str]:
    """``problems`` (by definition path) keyed by the form field each belongs to."""
    numbers = flow_step_numbers(form)
    found: dict[str, str] = {}
    for path, message in problems.items():
        found.setdefault(_form_field(path, numbers), message)
    return found


def _form_field(path: str, numbers: list[int]) -> str:
    if path in _RENAMED:
        return _RENAMED[path]
    head, _, rest = path.partition(".")
    if head == "ai":
        return "ai_" + rest
    row, _, name = rest.partition(".")
    if head in _ROWS and row.isdigit():
        return f"{_ROWS[head]}-{row}-{name}"
    if head == "cards" and row.isdigit():
        inner, _, rest = name.partition(".")
        if inner == "buttons" and rest:
            return f"card-{row}-button-{rest.replace('.', '-')}"
        return f"card-{row}-{name}"
    if head == "lead_flow" and row.isdigit() and int(row) < len(numbers):
        name = name.partition(".")[0]
        return f"flow-{numbers[int(row)]}-{'text' if name == 'messages' else name}"
    return path


def form_of_definition(rule: RuleDefinition) -> dict[str, list[str]]:
    """The form that shows ``rule``."""
    form: dict[str, list[str]] = {
        "name": [rule.name],
        "account_id": [str(rule.account_id or "")],
        "trigger": [rule.trigger],
        "ref_code": [rule.ref_code],
        "media_ids": list(rule.media_ids),
        "keywords": [", ".join(rule.keywords)],
        "match_mode": [rule.match_mode],
        "priority": [str(rule.priority)],
        "cooldown_minutes": [str(rule.cooldown_minutes)],
        "delay_minutes": [f"{rule.delay_minutes:g}"],
        "comment_reply": list(rule.comment_replies),
        "dm_type": [rule.dm_type],
        "dm_variation": list(rule.dm_variations),
        "link": [rule.link],
        "webhook_url": [rule.lead_settings.webhook_url],
        "webhook_secret_set": ["on"] if rule.lead_settings.webhook_secret else [],
        "phone_region": [rule.lead_settings.phone_region],
    }
    if rule.first_comment_only:
        form["first_comment_only"] = ["on"]
    if rule.hide_comment:
        form["hide_comment"] = ["on"]
    if rule.track_links:
        form["track_links"] = ["on"]
    if rule.utm_tags:
        form["utm_tags"] = ["on"]
    if rule.active:
        form["active"] = ["on"]
    if rule.next_post:
        form["next_post"] = ["on"]
    form["ad_comments"] = [rule.ad_comments]
    if rule.follow_up is not None:
        minutes = rule.follow_up.wait_minutes
        hours = minutes >= 60 and minutes % 60 == 0
        form["follow_up_wait"] = [str(minutes // 60 if hours else minutes)]
        form["follow_up_unit"] = ["hours" if hours else "minutes"]
        form["follow_up_message"] = list(rule.follow_up.messages)
    for n, button in enumerate(rule.buttons[:EDITOR_BUTTONS]):
        form[f"button-{n}-title"] = [button.title]
        form[f"button-{n}-target"] = [button.target]
    for n, card in enumerate(rule.cards[:MAX_CARDS]):
        p = f"card-{n}-"
        form.update(
            {
                p + "title": [card.title],
                p + "subtitle": [card.subtitle],
                p + "image_url": [card.image_url],
                p + "url": [card.url],
            }
        )
        for m, button in enumerate(card.buttons[:EDITOR_BUTTONS]):
            form[f"{p}button-{m}-title"] = [button.title]
            form[f"{p}button-{m}-target"] = [button.target]
    for n, quick in enumerate(rule.quick_replies[:EDITOR_BUTTONS]):
        form[f"quick-{n}-title"] = [quick.title]
        form[f"quick-{n}-payload"] = [quick.payload]
    if rule.ai is not None:
        form["ai_prompt"] = [rule.ai.prompt]
        form["ai_tone"] = [rule.ai.tone]
        form["ai_knowledge"] = [rule.ai.knowledge]
        form["ai_approval"] = [rule.ai.approval]
        form["ai_fallback"] = [rule.ai.fallback_reply]
        if rule.ai.continue_conversation:
            form["ai_continue"] = ["on"]
    for n, step in enumerate(rule.lead_flow):
        form.update(_step_form(n, step))
    return form


def _step_form(n: int, step: FlowStep) -> dict[str, list[str]]:
    p = f"flow-{n}-"
    kind = step.type if step.type in STEP_KINDS else "send"
    out = {p + "type": [kind], p + "id": [step.id], p + "goto": [step.goto]}
    options = "\n".join(o.title + (f" -> {o.goto}" if o.goto else "") for o in step.options)
    if kind == "ask":
        out.update(
            {
                p + "text": [step.text],
                p + "field": [step.field],
                p + "key": [step.key],
                p + "retry": [step.retry],
                p + "attempts": [str(step.attempts or lead_flow.DEFAULT_MAX_ATTEMPTS)],
                p + "options": [options],
            }
        )
    elif kind == "branch":
        out.update({p + "text": [step.text], p + "options": [options]})
    elif kind == "follow":
        out[p + "text"] = [step.text]
    elif kind == "send":
        out[p + "text"] = [_VARIATIONS.join(step.messages)]
    return out
