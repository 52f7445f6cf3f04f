"""The rule editor's form: read, check and turn into a rule (pure), and preview it.

A form is a mapping of field name to the list of values sent (an HTML form's multi-dict).
:func:`read_rule_form` returns a :class:`RuleDraft` (the ``AutomationRule`` columns and its
seed-shaped ``config``, see shared/seeds/004) together with every problem found, keyed by the
form field it belongs to, so the editor can show each message next to its field. Lead-flow
steps are ``flow-<n>-<name>`` fields numbered in the order shown; each has a stable ``id``
(``s1``, ``s2`` …) that branches point to.

:func:`preview` plays the draft as a person would receive it: the public reply, the DM (with
its buttons or quick replies), and the lead flow answered with sample answers, first option
of every choice.
"""

from __future__ import annotations

import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from core.domain import lead_flow
from core.domain.ai_replies import ApprovalMode, check_ai_config
from core.domain.ids import row_id
from core.domain.messages import (
    MAX_BUTTONS,
    MAX_QUICK_REPLIES,
    TEXT_MAX_BYTES,
    TITLE_MAX_CHARS,
    Person,
    comment_reply,
    dm_message,
)
from core.domain.rules import MATCH_MODES, TRIGGERS, RuleActions, normalize
from core.errors import ValidationFailed

Form = Mapping[str, Sequence[str]]

DM_TYPES = ("none", "text", "text_button", "quick_replies", "lead_capture", "ai")
ANSWER_KINDS = ("email", "phone", "name", "custom")
STEP_KINDS = ("ask", "send", "branch", "save")
MAX_VARIATIONS = 10
MAX_KEYWORDS = 50
KEYWORD_MAX_CHARS = 100
NAME_MAX_CHARS = 120
MAX_STEPS = 20
MAX_MEDIA = 50
PRIORITY_RANGE = (-1000, 1000)
COOLDOWN_MAX_MINUTES = 30 * 24 * 60
DELAY_MAX_MINUTES = 60.0
EDITOR_BUTTONS = MAX_BUTTONS  # rows the editor offers for buttons and for quick replies
VARIATION_BREAK = "---"
_KEY = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
_STEP_ID = re.compile(r"^[A-Za-z0-9_-]{1,20}$")
_REGION = re.compile(r"^[A-Z]{2}$")
_URL = re.compile(r"^https?://[^\s]+$", re.IGNORECASE)
SAMPLE_ANSWERS = {
    "email": "ana@example.com",
    "phone": "+14155552671",
    "name": "Ana",
    "custom": "Sample answer",
}


@dataclass(frozen=True)
class RuleDraft:
    """What the editor would store: ``AutomationRule`` columns and ``config``."""

    account_id: int | None
    name: str
    trigger: str
    media_ids: tuple[str, ...]
    keywords: tuple[str, ...]
    match_mode: str
    priority: int
    cooldown_s: int
    first_comment_only: bool
    active: bool
    config: dict[str, Any]

    def columns(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "trigger": self.trigger,
            "media_ids": list(self.media_ids),
            "keywords": list(self.keywords),
            "match_mode": self.match_mode,
            "priority": self.priority,
            "cooldown_s": self.cooldown_s,
            "first_comment_only": self.first_comment_only,
            "active": self.active,
            "config": self.config,
        }


@dataclass
class _Reader:
    form: Form
    errors: dict[str, str] = field(default_factory=dict)

    def all(self, name: str) -> list[str]:
        values = self.form.get(name) or []
        return [v for v in values if isinstance(v, str)]

    def one(self, name: str) -> str:
        values = self.all(name)
        return values[0].strip() if values else ""

    def texts(self, name: str) -> list[str]:
        return [v.replace("\r\n", "\n").strip() for v in self.all(name) if v.strip()]

    def flag(self, name: str) -> bool:
        return self.one(name).lower() in {"1", "on", "true", "yes"}

    def number(self, name: str, low: float, high: float, default: float, *, whole: bool) -> float:
        raw = self.one(name)
        if not raw:
            return default
        try:
            value = float(raw)
        except ValueError:
            self.errors[name] = "Enter a number."
            return default
        if whole and not value.is_integer():
            self.errors[name] = "Enter a whole number."
            return default
        if not low <= value <= high:
            self.errors[name] = f"Use a number from {low:g} to {high:g}."
            return default
        return value

    def message(self, name: str, text: str) -> None:
        if len(text.encode("utf-8")) > TEXT_MAX_BYTES:
            self.errors.setdefault(
                name,
                f"Instagram messages are at most {TEXT_MAX_BYTES} bytes; this one has "
                f"{len(text.encode('utf-8'))}.",
            )


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


def read_rule_form(form: Form) -> tuple[RuleDraft, dict[str, str]]:
    """The draft the form describes and every problem with it (empty when it can be saved)."""
    r = _Reader(form)
    name = r.one("name")
    if not name:
        r.errors["name"] = "Give the rule a name your team recognises."
    elif len(name) > NAME_MAX_CHARS:
        r.errors["name"] = f"Keep the name under {NAME_MAX_CHARS} characters."
    account_raw = r.one("account_id")
    account_id = row_id(account_raw)
    if account_id is None:
        r.errors["account_id"] = "Choose the Instagram account this rule answers for."
    trigger = r.one("trigger")
    if trigger not in TRIGGERS:
        r.errors["trigger"] = "Choose what starts the rule."
        trigger = "comment"
    media_ids = tuple(dict.fromkeys(m.strip() for m in r.all("media_ids") if m.strip()))
    if len(media_ids) > MAX_MEDIA:
        r.errors["media_ids"] = f"Pick at most {MAX_MEDIA} posts."
    if any(not m.isdigit() and not m.isalnum() for m in media_ids):
        r.errors["media_ids"] = "A post id is not valid."
    match_mode = r.one("match_mode") or "whole_word"
    if match_mode not in MATCH_MODES:
        r.errors["match_mode"] = "Choose how keywords match."
        match_mode = "whole_word"
    keywords = split_keywords(r.one("keywords"))
    if match_mode == "any":
        keywords = []
    elif not keywords and trigger != "story_mention":
        r.errors["keywords"] = (
            'Add at least one keyword, or choose "any message" to answer everything.'
        )
    if len(keywords) > MAX_KEYWORDS:
        r.errors["keywords"] = f"Use at most {MAX_KEYWORDS} keywords."
    elif any(len(k) > KEYWORD_MAX_CHARS for k in keywords):
        r.errors["keywords"] = f"A keyword is at most {KEYWORD_MAX_CHARS} characters."
    elif blank := next((k for k in keywords if not normalize(k)), None):
        # Matching ignores case and accents: a keyword of accent marks alone matches nothing.
        r.errors["keywords"] = f"The keyword {blank!r} is only accent marks; it matches nothing."
    low, high = PRIORITY_RANGE
    priority = int(r.number("priority", low, high, 0, whole=True))
    cooldown = r.number("cooldown_minutes", 0, COOLDOWN_MAX_MINUTES, 0, whole=True)
    delay = r.number("delay_minutes", 0, DELAY_MAX_MINUTES, 0, whole=False)

    config: dict[str, Any] = {}
    replies = r.texts("comment_reply")
    if replies and trigger != "comment":
        r.errors["comment_reply"] = "Public replies answer comments; this rule is not for comments."
    if len(replies) > MAX_VARIATIONS:
        r.errors["comment_reply"] = f"Use at most {MAX_VARIATIONS} variations."
    for text in replies:
        r.message("comment_reply", text)
    config["auto_reply_to_comments"] = bool(replies)
    config["comment_replies"] = replies

    dm_type = r.one("dm_type") or "text"
    if dm_type not in DM_TYPES:
        r.errors["dm_type"] = "Choose what the DM is."
        dm_type = "none"
    variations = r.texts("dm_variation")
    if dm_type in {"text", "text_button", "quick_replies"}:
        if not variations:
            r.errors["dm_variation"] = "Write the message (add variations to vary it)."
        if len(variations) > MAX_VARIATIONS:
            r.errors["dm_variation"] = f"Use at most {MAX_VARIATIONS} variations."
        for text in variations:
            r.message("dm_variation", text)
    else:
        variations = []
    config["message_variations"] = variations
    config["dmType"] = dm_type
    config["buttons"] = _buttons(r) if dm_type == "text_button" else []
    if dm_type == "text_button" and not config["buttons"] and "button-0-title" not in r.errors:
        r.errors["button-0-title"] = "Add at least one button, or choose a plain text DM."
    config["quick_replies"] = _quick_replies(r) if dm_type == "quick_replies" else []
    if dm_type == "quick_replies" and not config["quick_replies"]:
        r.errors.setdefault("quick-0-title", "Add at least one quick reply.")
    config["delay_minutes"] = delay
    link = r.one("link")
    if link and not _URL.match(link):
        r.errors["link"] = "The link must start with http:// or https://."
    config["link"] = link

    flow = _flow(r) if dm_type == "lead_capture" else []
    config["is_lead_capture"] = dm_type == "lead_capture"
    config["lead_capture_flow"] = flow
    config["lead_capture_settings"] = _lead_settings(r, dm_type == "lead_capture")

    if dm_type == "ai":
        raw = {
            "prompt": r.one("ai_prompt"),
            "tone": r.one("ai_tone"),
            "knowledge": r.one("ai_knowledge"),
            "approval": r.one("ai_approval") or ApprovalMode.AUTO.value,
            "fallback_reply": r.one("ai_fallback"),
            "continue_conversation": r.flag("ai_continue"),
        }
        try:
            check_ai_config(raw)
        except ValidationFailed as exc:
            for key, text in exc.fields.items():
                r.errors[f"ai_{key}"] = text
        config["ai"] = raw
    elif "ai" in config:
        del config["ai"]

    if dm_type == "none" and not replies:
        r.errors["dm_type"] = "The rule does nothing: add a public reply or a DM."
    draft = RuleDraft(
        account_id=account_id,
        name=name,
        trigger=trigger,
        media_ids=media_ids,
        keywords=tuple(keywords),
        match_mode=match_mode,
        priority=priority,
        cooldown_s=int(cooldown) * 60,
        first_comment_only=r.flag("first_comment_only") and trigger == "comment",
        active=r.flag("active"),
        config=config,
    )
    return draft, r.errors


def check_rule_form(form: Form) -> RuleDraft:
    """The draft, or ``ValidationFailed`` whose ``fields`` name every problem."""
    draft, errors = read_rule_form(form)
    if errors:
        count = len(errors)
        fields_need = f"{count} fields need" if count > 1 else "1 field needs"
        raise ValidationFailed(f"The rule was not saved: {fields_need} attention.", errors)
    return draft


def _title(r: _Reader, name: str) -> str:
    title = r.one(name)
    if len(title) > TITLE_MAX_CHARS:
        r.errors[name] = f"Titles are at most {TITLE_MAX_CHARS} characters ({len(title)} now)."
    return title


def _buttons(r: _Reader) -> list[dict[str, str]]:
    buttons: list[dict[str, str]] = []
    for n in range(EDITOR_BUTTONS):
        title = _title(r, f"button-{n}-title")
        target = r.one(f"button-{n}-target")
        if not title and not target:
            continue
        if not title:
            r.errors[f"button-{n}-title"] = "Give the button a title."
            continue
        if target.lower().startswith(("http://", "https://")):
            if not _URL.match(target):
                r.errors[f"button-{n}-target"] = "The link has spaces or is incomplete."
            buttons.append({"text": title, "url": target})
        elif target and "://" in target:
            r.errors[f"button-{n}-target"] = "Links must start with http:// or https://."
        else:
            buttons.append({"text": title, "payload": target or title})
    return buttons


def _quick_replies(r: _Reader) -> list[dict[str, str]]:
    found: list[dict[str, str]] = []
    for n in range(EDITOR_BUTTONS):
        title = _title(r, f"quick-{n}-title")
        payload = r.one(f"quick-{n}-payload")
        if not title and not payload:
            continue
        if not title:
            r.errors[f"quick-{n}-title"] = "Give the quick reply a title."
            continue
        found.append({"title": title, "payload": payload or title})
    return found


def _lead_settings(r: _Reader, used: bool) -> dict[str, Any]:
    webhook_url = r.one("webhook_url")
    region = r.one("phone_region").upper()
    if used and webhook_url and not _URL.match(webhook_url):
        r.errors["webhook_url"] = "The webhook must be an http:// or https:// address."
    if used and region and not _REGION.match(region):
        r.errors["phone_region"] = 'Use a two-letter country code, like "US" or "DE".'
    settings: dict[str, Any] = {"save_to_database": True}
    if webhook_url:
        settings["webhook_url"] = webhook_url
    secret = r.one("webhook_secret")
    if secret:
        settings["webhook_secret"] = secret
    if region:
        settings["phone_region"] = region
    return settings


def _step_numbers(form: Form) -> list[int]:
    numbers: set[int] = set()
    for key in form:
        match = re.match(r"^flow-(\d+)-type$", key)
        if match:
            numbers.add(int(match.group(1)))
    return sorted(numbers)


def _options(r: _Reader, name: str) -> list[dict[str, str]]:
    """Lines ``Title`` or ``Title -> step id`` (``end`` ends the flow)."""
    options: list[dict[str, str]] = []
    for line in r.one(name).splitlines():
        title, _, goto = line.partition("->")
        title, goto = title.strip(), goto.strip()
        if not title:
            continue
        if len(title) > TITLE_MAX_CHARS:
            r.errors[name] = f'"{title}" is longer than {TITLE_MAX_CHARS} characters.'
        option = {"title": title, "payload": title}
        if goto:
            option["goto"] = goto
        options.append(option)
    if len(options) > MAX_QUICK_REPLIES:
        r.errors[name] = f"At most {MAX_QUICK_REPLIES} choices."
    return options


def _flow(r: _Reader) -> list[dict[str, Any]]:
    numbers = _step_numbers(r.form)
    if not numbers:
        r.errors["flow"] = "Add at least one step that asks for something."
        return []
    if len(numbers) > MAX_STEPS:
        r.errors["flow"] = f"A flow has at most {MAX_STEPS} steps."
    steps: list[dict[str, Any]] = []
    numbered: list[tuple[int, dict[str, Any]]] = []
    ids: list[str] = []
    keys: dict[str, str] = {}
    for position, n in enumerate(numbers):
        p = f"flow-{n}-"
        kind = r.one(p + "type")
        ident = r.one(p + "id") or f"s{position + 1}"
        if not _STEP_ID.match(ident) or ident in ids or ident == "end":
            r.errors[p + "id"] = "Each step needs its own short id (letters, digits, - and _)."
        ids.append(ident)
        text = r.one(p + "text").replace("\r\n", "\n")
        step: dict[str, Any] = {"step": position + 1, "id": ident, "type": kind}
        if kind not in STEP_KINDS:
            r.errors[p + "type"] = "Choose what this step does."
            continue
        if kind == "ask":
            answer = r.one(p + "field") or "custom"
            if answer not in ANSWER_KINDS:
                r.errors[p + "field"] = "Choose what the answer is."
                answer = "custom"
            if not text:
                r.errors[p + "text"] = "Write the question."
            r.message(p + "text", text)
            step.update(
                text=text,
                field_type=answer,
                validation=answer if answer != "custom" else "none",
            )
            if answer == "custom":
                key = r.one(p + "key").lower()
                if not _KEY.match(key) or key in lead_flow.STANDARD_FIELDS:
                    r.errors[p + "key"] = (
                        "Name the answer in lower case letters, digits and _ (like company)."
                    )
                step["field"] = key
                step["key"] = key
                name = key
            else:
                step["field"] = answer
                name = answer
            if name in keys:
                r.errors.setdefault(
                    p + "key" if answer == "custom" else p + "field",
                    (f"Step {keys[name]} already saves this answer."),
                )
            keys.setdefault(name, str(position + 1))
            retry = r.one(p + "retry")
            r.message(p + "retry", retry)
            if retry:
                step["retry_message"] = retry
            attempts = r.number(p + "attempts", 1, 10, lead_flow.DEFAULT_MAX_ATTEMPTS, whole=True)
            step["max_attempts"] = int(attempts)
            options = _options(r, p + "options")
            if options:
                step["quick_replies"] = options
        elif kind == "send":
            variations = [v.strip() for v in text.split(f"\n{VARIATION_BREAK}\n") if v.strip()]
            if not variations:
                r.errors[p + "text"] = "Write the message."
            for variation in variations:
                r.message(p + "text", variation)
            step["message"] = variations[0] if variations else ""
            step["message_variations"] = variations
        elif kind == "branch":
            if not text:
                r.errors[p + "text"] = "Write the question the choices answer."
            r.message(p + "text", text)
            options = _options(r, p + "options")
            if not options:
                r.errors.setdefault(p + "options", "Add the choices, one per line.")
            step.update(text=text, options=options)
        goto = r.one(p + "goto")
        if goto:
            step["goto"] = goto
        steps.append(step)
        numbered.append((n, step))
    if steps and not any(s["type"] in {"ask", "branch"} for s in steps):
        r.errors.setdefault("flow", "Add at least one step that asks for something.")
    known = set(ids) | {"end"}
    for n, step in numbered:
        p = f"flow-{n}-"
        if step.get("goto") and step["goto"] not in known:
            r.errors[p + "goto"] = f'There is no step "{step["goto"]}".'
        for option in step.get("options") or step.get("quick_replies") or []:
            if option.get("goto") and option["goto"] not in known:
                r.errors[p + "options"] = (
                    f'"{option["title"]}" goes to step "{option["goto"]}", which does not exist.'
                )
    return steps


# ---------------------------------------------------------------- the preview


@dataclass(frozen=True)
class Bubble:
    """One message in the preview: ``who`` is "person", "public" (a reply under the
    comment), "dm" or "note" (what happens without a message)."""

    who: str
    text: str
    buttons: tuple[str, ...] = ()
    quick_replies: tuple[str, ...] = ()


def preview(
    draft: RuleDraft, sample: str = "", *, username: str = "sample_follower"
) -> list[Bubble]:
    """What a person writing ``sample`` would receive from the rule (first variations)."""
    actions = RuleActions.from_config(draft.config)
    person = Person(username=username, first_name="", link=actions.link)
    rng = _FirstChoice()
    said = sample or (draft.keywords[0] if draft.keywords else "Hello!")
    bubbles = [Bubble("person", _said(draft.trigger, said))]
    if draft.trigger == "comment":
        reply = comment_reply(actions, person, rng)
        if reply:
            bubbles.append(Bubble("public", reply))
    if actions.delay_s:
        bubbles.append(Bubble("note", f"Sent after {actions.delay_s / 60:g} min"))
    ai = draft.config.get("ai")
    if isinstance(ai, Mapping) and draft.config.get("dmType") == "ai":
        held = ai.get("approval") == ApprovalMode.APPROVE.value
        bubbles.append(
            Bubble(
                "note",
                "An AI answer written from your instructions"
                + (", held until a teammate approves it" if held else ", sent at once"),
            )
        )
        return bubbles
    if actions.starts_flow:
        flow = lead_flow.LeadFlow.from_config(actions.lead_flow, actions.lead_settings)
        turn = lead_flow.start(flow, 0, person, rng)
        bubbles.extend(_turn_bubbles(turn))
        for _ in range(lead_flow.MAX_STEPS_PER_TURN):
            if turn.state is None:
                break
            step = flow.steps[turn.state["at"]]
            reply, payload = _sample_answer(step)
            bubbles.append(Bubble("person", reply))
            turn = lead_flow.answer(flow, turn.state, reply, person, rng, payload=payload)
            bubbles.extend(_turn_bubbles(turn))
            if turn.status != "waiting":
                break
        return bubbles
    message = dm_message(actions, person, rng)
    if message is not None:
        bubbles.append(_bubble(message))
    return bubbles


class _FirstChoice(random.Random):
    """Always the first variation: the preview is stable while typing."""

    def randrange(self, start: int, *args: Any, **kwargs: Any) -> int:
        return 0


def _said(trigger: str, text: str) -> str:
    if trigger == "story_mention":
        return "(mentions you in their story)"
    if trigger == "story_reply":
        return f"(replies to your story) {text}"
    if trigger == "postback":
        return f"(taps a button) {text}"
    return text


def _sample_answer(step: lead_flow.Step) -> tuple[str, str]:
    if step.options:
        return step.options[0].title, step.options[0].payload
    return SAMPLE_ANSWERS.get(step.field, SAMPLE_ANSWERS["custom"]), ""


def _turn_bubbles(turn: lead_flow.FlowTurn) -> list[Bubble]:
    found: list[Bubble] = []
    message = turn.message()
    if message is not None:
        found.append(_bubble(message))
    if turn.lead is not None:
        saved = ", ".join(f"{k}: {v}" for k, v in turn.lead.items())
        found.append(Bubble("note", f"Lead saved ({saved})"))
    return found


def _bubble(message: Mapping[str, Any]) -> Bubble:
    if "attachment" in message:
        payload = message["attachment"]["payload"]
        return Bubble(
            "dm",
            str(payload.get("text", "")),
            buttons=tuple(str(b.get("title", "")) for b in payload.get("buttons", [])),
        )
    return Bubble(
        "dm",
        str(message.get("text", "")),
        quick_replies=tuple(str(q.get("title", "")) for q in message.get("quick_replies", [])),
    )


# ---------------------------------------------------------------- editing a stored rule


def form_from_rule(account_id: int, columns: Mapping[str, Any]) -> dict[str, list[str]]:
    """The form that shows a stored rule (old configs are read the engine's way)."""
    config = columns.get("config") or {}
    actions = RuleActions.from_config(config)
    keywords = [str(k) for k in columns.get("keywords") or []] or [
        str(k) for k in (config.get("keywords") or []) if isinstance(k, str)
    ]
    dm_type = actions.dm_type
    if isinstance(config.get("ai"), Mapping) or str(config.get("dmType")) == "ai":
        dm_type = "ai"
    elif dm_type == "text" and not actions.dm_variations:
        dm_type = "none"
    form: dict[str, list[str]] = {
        "name": [str(columns.get("name") or "")],
        "account_id": [str(account_id)],
        "trigger": [str(columns.get("trigger") or "comment")],
        "media_ids": [str(m) for m in columns.get("media_ids") or []],
        "keywords": [", ".join(keywords)],
        "match_mode": [str(columns.get("match_mode") or "whole_word")],
        "priority": [str(columns.get("priority") or 0)],
        "cooldown_minutes": [str(int(columns.get("cooldown_s") or 0) // 60)],
        "delay_minutes": [f"{actions.delay_s / 60:g}"],
        "comment_reply": list(actions.comment_replies),
        "dm_type": [dm_type],
        "dm_variation": list(actions.dm_variations),
        "link": [str(config.get("link") or "")],
        "webhook_url": [str(actions.lead_settings.get("webhook_url") or "")],
        "webhook_secret": [str(actions.lead_settings.get("webhook_secret") or "")],
        "phone_region": [str(actions.lead_settings.get("phone_region") or "")],
    }
    if columns.get("first_comment_only"):
        form["first_comment_only"] = ["on"]
    if columns.get("active", True):
        form["active"] = ["on"]
    for n, button in enumerate(actions.buttons[:EDITOR_BUTTONS]):
        form[f"button-{n}-title"] = [button.title]
        form[f"button-{n}-target"] = [button.url or button.payload]
    for n, quick in enumerate(actions.quick_replies[:EDITOR_BUTTONS]):
        form[f"quick-{n}-title"] = [quick.title]
        form[f"quick-{n}-payload"] = [quick.payload]
    ai = config.get("ai")
    if isinstance(ai, Mapping):
        form["ai_prompt"] = [str(ai.get("prompt") or "")]
        form["ai_tone"] = [str(ai.get("tone") or "")]
        form["ai_knowledge"] = [str(ai.get("knowledge") or "")]
        form["ai_approval"] = [str(ai.get("approval") or "auto")]
        form["ai_fallback"] = [str(ai.get("fallback_reply") or "")]
        if ai.get("continue_conversation") is not False:
            form["ai_continue"] = ["on"]
    for n, raw in enumerate(actions.lead_flow):
        form.update(_step_form(n, raw))
    return form


def _step_form(n: int, raw: Mapping[str, Any]) -> dict[str, list[str]]:
    p = f"flow-{n}-"
    step = lead_flow.LeadFlow.from_config([raw]).steps[0]
    kind = step.kind if step.kind in STEP_KINDS else "send"
    ident = str(raw.get("id") or raw.get("step") or f"s{n + 1}")
    if not _STEP_ID.match(ident):
        ident = f"s{n + 1}"
    out = {p + "type": [kind], p + "id": [ident], p + "goto": [step.goto]}
    options = "\n".join(o.title + (f" -> {o.goto}" if o.goto else "") for o in step.options)
    if kind == "ask":
        out.update(
            {
                p + "text": [step.texts[0] if step.texts else ""],
                p + "field": [step.field],
                p + "key": [step.key if step.field == "custom" else ""],
                p + "retry": [step.retry_text],
                p + "attempts": [str(step.max_attempts)],
                p + "options": [options],
            }
        )
    elif kind == "branch":
        out.update({p + "text": [step.texts[0] if step.texts else ""], p + "options": [options]})
    elif kind == "send":
        out[p + "text"] = [f"\n{VARIATION_BREAK}\n".join(step.texts)]
    return out


def flow_step_numbers(form: Form) -> list[int]:
    """The step numbers present in ``form``, in order (for the editor's template)."""
    return _step_numbers(form)
