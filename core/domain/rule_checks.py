"""Checking a rule before it is saved (pure): what would be stored, and every problem found.

:func:`review` tidies a :class:`RuleDefinition` the way it is stored (texts trimmed, blank
entries dropped, what the chosen DM type does not use cleared) and names each problem by its
path in the definition (``buttons.0.title``, ``lead_flow.2.options``), so the JSON API can
answer with those paths and the panel's form can show each message next to its field.
"""

from __future__ import annotations

import re

from core.domain import lead_flow
from core.domain.ai_replies import ApprovalMode, check_ai_config
from core.domain.messages import (
    CARD_TEXT_MAX_CHARS,
    MAX_BUTTONS,
    MAX_CARDS,
    MAX_QUICK_REPLIES,
    TEXT_MAX_BYTES,
    TITLE_MAX_CHARS,
)
from core.domain.rule_definition import (
    ANSWER_KINDS,
    DM_TYPES,
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
from core.domain.rules import AD_COMMENT_MODES, COMMENT_TRIGGERS, MATCH_MODES, TRIGGERS, normalize
from core.errors import ValidationFailed

MAX_VARIATIONS = 10
MAX_KEYWORDS = 50
KEYWORD_MAX_CHARS = 100
NAME_MAX_CHARS = 120
MAX_STEPS = 20
MAX_MEDIA = 50
PRIORITY_RANGE = (-1000, 1000)
COOLDOWN_MAX_MINUTES = 30 * 24 * 60
DELAY_MAX_MINUTES = 60.0
# A follow-up due later than 23 h after the DM would fall outside Meta's 24-hour window.
FOLLOW_UP_MINUTES = (1, 23 * 60)
ATTEMPTS_RANGE = (1, 10)
EDITOR_BUTTONS = MAX_BUTTONS  # rows the editor offers for buttons and for quick replies
VARIATION_BREAK = "---"
_KEY = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
# Lowercase, and no edge punctuation: keyword matching would drop it.
REF_CODE = re.compile(r"^[a-z0-9](?:[a-z0-9_-]{0,38}[a-z0-9])?$")
_REGION = re.compile(r"^[A-Z]{2}$")
_URL = re.compile(r"^https?://[^\s]+$", re.IGNORECASE)
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
EMAIL_MAX_CHARS = 254
_NOT_IN_LINE = ("->", "\n", "\r")

Problems = dict[str, str]


def check(definition: RuleDefinition, found: Problems | None = None) -> RuleDefinition:
    """The definition as it is stored, or ``ValidationFailed`` whose ``fields`` name every
    problem (with ``found``, the problems the caller's edge already found, by path)."""
    tidy, problems = review(definition)
    problems = {**problems, **(found or {})}
    if problems:
        raise ValidationFailed(not_saved(problems), problems)
    return tidy


def not_saved(problems: Problems) -> str:
    count = len(problems)
    fields_need = f"{count} fields need" if count > 1 else "1 field needs"
    return f"The rule was not saved: {fields_need} attention."


def number_problem(value: float, low: float, high: float) -> str | None:
    if not low <= value <= high:
        return f"Use a number from {low:g} to {high:g}."
    return None


def review(d: RuleDefinition) -> tuple[RuleDefinition, Problems]:
    """The definition as it would be stored, and every problem with it (empty: it can be)."""
    p: Problems = {}
    name = d.name.strip()
    if not name:
        p["name"] = "Give the rule a name your team recognises."
    elif len(name) > NAME_MAX_CHARS:
        p["name"] = f"Keep the name under {NAME_MAX_CHARS} characters."
    if d.account_id is None or not 1 <= d.account_id <= MAX_ID:
        p["account_id"] = "Choose the Instagram account this rule answers for."
    trigger = d.trigger.strip()
    if trigger not in TRIGGERS:
        p["trigger"] = "Choose what starts the rule."
        trigger = "comment"
    media_ids = list(dict.fromkeys(m.strip() for m in d.media_ids if m.strip()))
    if len(media_ids) > MAX_MEDIA:
        p["media_ids"] = f"Pick at most {MAX_MEDIA} posts."
    if any(not m.isdigit() and not m.isalnum() for m in media_ids):
        p["media_ids"] = "A post id is not valid."
    match_mode = d.match_mode.strip() or "whole_word"
    if match_mode not in MATCH_MODES:
        p["match_mode"] = "Choose how keywords match."
        match_mode = "whole_word"
    ref_code = d.ref_code.strip().lower() if trigger == "ref_link" else ""
    if trigger == "ref_link":
        match_mode = "exact"
        if not REF_CODE.match(ref_code):
            p["ref_code"] = (
                "Give the link a ref of letters, digits, - or _ (up to 40), "
                "starting and ending with a letter or digit."
            )
    keywords = _keywords(d, match_mode, trigger, p) if trigger != "ref_link" else []
    for path, value, (low, high) in (
        ("priority", d.priority, PRIORITY_RANGE),
        ("cooldown_minutes", d.cooldown_minutes, (0, COOLDOWN_MAX_MINUTES)),
        ("delay_minutes", d.delay_minutes, (0, DELAY_MAX_MINUTES)),
    ):
        if problem := number_problem(value, low, high):
            p[path] = problem

    replies = _texts(d.comment_replies)
    if replies and trigger not in COMMENT_TRIGGERS:
        p["comment_replies"] = "Public replies answer comments; this rule is not for comments."
    if len(replies) > MAX_VARIATIONS:
        p["comment_replies"] = f"Use at most {MAX_VARIATIONS} variations."
    for text in replies:
        _message(p, "comment_replies", text)
    if d.hide_comment and trigger != "comment":
        p["hide_comment"] = "Only a comment can be hidden; this rule is not for comments."

    dm_type = d.dm_type.strip() or "text"
    if dm_type not in DM_TYPES:
        p["dm_type"] = "Choose what the DM is."
        dm_type = "none"
    variations = _texts(d.dm_variations)
    if dm_type in {"text", "text_button", "quick_replies"}:
        if not variations:
            p["dm_variations"] = "Write the message (add variations to vary it)."
        if len(variations) > MAX_VARIATIONS:
            p["dm_variations"] = f"Use at most {MAX_VARIATIONS} variations."
        for text in variations:
            _message(p, "dm_variations", text)
    else:
        variations = []
    buttons = _buttons(d.buttons, p) if dm_type == "text_button" else []
    if dm_type == "text_button" and not buttons and "buttons.0.title" not in p:
        p["buttons.0.title"] = "Add at least one button, or choose a plain text DM."
    quick = _quick_replies(d.quick_replies, p) if dm_type == "quick_replies" else []
    cards = _cards(d.cards, p) if dm_type == "cards" else []
    if dm_type == "quick_replies" and not quick:
        p.setdefault("quick_replies.0.title", "Add at least one quick reply.")
    link = d.link.strip()
    if link and not _URL.match(link):
        p["link"] = "The link must start with http:// or https://."

    flow = _flow(d.lead_flow, p) if dm_type == "lead_capture" else []
    settings = _lead_settings(d.lead_settings, dm_type == "lead_capture", p)
    ai = _ai(d.ai, p) if dm_type == "ai" else None
    email = d.notification_email.strip() if d.notification_email is not None else None
    if email and (len(email) > EMAIL_MAX_CHARS or not _EMAIL.match(email)):
        p["notification_email"] = "Enter an email address, like sales@example.com."
    follow_up = _follow_up(d.follow_up, dm_type, p)
    ad_comments = d.ad_comments.strip() or "also"
    if ad_comments not in AD_COMMENT_MODES:
        p["ad_comments"] = "Choose whether the rule answers comments on ads."
        ad_comments = "also"
    next_post = d.next_post and trigger == "comment"
    if d.next_post and trigger != "comment":
        p["next_post"] = "Only a comment rule can wait for the next post."
    if dm_type == "none" and not replies and not d.hide_comment:
        p["dm_type"] = "The rule does nothing: add a public reply, a DM or hide the comment."
    if any("," in k or "\n" in k for k in d.keywords):
        p["keywords"] = "A keyword cannot contain a comma or a line break."
    if len(d.buttons) > EDITOR_BUTTONS and dm_type == "text_button":
        p["buttons"] = f"At most {EDITOR_BUTTONS} buttons."
    if len(d.quick_replies) > EDITOR_BUTTONS and dm_type == "quick_replies":
        p["quick_replies"] = f"At most {EDITOR_BUTTONS} quick replies."
    tidy = RuleDefinition(
        name=name,
        account_id=d.account_id,
        trigger=trigger,
        ref_code=ref_code,
        keywords=keywords,
        match_mode=match_mode,
        media_ids=media_ids,
        next_post=next_post,
        ad_comments=ad_comments if trigger == "comment" else "also",
        priority=d.priority,
        cooldown_minutes=d.cooldown_minutes,
        delay_minutes=d.delay_minutes,
        first_comment_only=d.first_comment_only and trigger in COMMENT_TRIGGERS,
        active=d.active,
        comment_replies=replies,
        hide_comment=d.hide_comment and trigger == "comment",
        dm_type=dm_type,
        dm_variations=variations,
        buttons=buttons,
        quick_replies=quick,
        cards=cards,
        link=link,
        track_links=d.track_links,
        utm_tags=d.utm_tags and d.track_links,
        lead_flow=flow,
        follow_up=follow_up,
        lead_settings=settings,
        ai=ai,
        notification_email=email or None,
    )
    return tidy, p


def _follow_up(given: FollowUpStep | None, dm_type: str, p: Problems) -> FollowUpStep | None:
    """The follow-up as stored (None when it says nothing), checked against Meta's window."""
    if given is None:
        return None
    messages = _texts(given.messages)
    if not messages:
        return None
    if dm_type in {"none", "ai"}:
        p["follow_up.messages"] = "A follow-up comes after the rule's DM: give the rule a DM."
    if len(messages) > MAX_VARIATIONS:
        p["follow_up.messages"] = f"Use at most {MAX_VARIATIONS} variations."
    for text in messages:
        _message(p, "follow_up.messages", text)
    low, high = FOLLOW_UP_MINUTES
    if not low <= given.wait_minutes <= high:
        p["follow_up.wait_minutes"] = (
            f"Wait from {low} minute to {high // 60} hours: Meta lets Reelay write only within "
            "24 hours of the person's last message."
        )
    return FollowUpStep(wait_minutes=given.wait_minutes, messages=messages)


def _keywords(d: RuleDefinition, match_mode: str, trigger: str, p: Problems) -> list[str]:
    keywords = list(dict.fromkeys(k.strip() for k in d.keywords if k.strip()))
    if match_mode == "any":
        keywords = []
    elif not keywords and trigger != "story_mention":
        p["keywords"] = 'Add at least one keyword, or choose "any message" to answer everything.'
    if len(keywords) > MAX_KEYWORDS:
        p["keywords"] = f"Use at most {MAX_KEYWORDS} keywords."
    elif any(len(k) > KEYWORD_MAX_CHARS for k in keywords):
        p["keywords"] = f"A keyword is at most {KEYWORD_MAX_CHARS} characters."
    elif blank := next((k for k in keywords if not normalize(k)), None):
        # Matching ignores case and accents: a keyword of accent marks alone matches nothing.
        p["keywords"] = f"The keyword {blank!r} is only accent marks; it matches nothing."
    return keywords


def _texts(values: list[str]) -> list[str]:
    return [v.replace("\r\n", "\n").strip() for v in values if v.strip()]


def _message(p: Problems, path: str, text: str) -> None:
    size = len(text.encode("utf-8"))
    if size > TEXT_MAX_BYTES:
        p.setdefault(
            path, f"Instagram messages are at most {TEXT_MAX_BYTES} bytes; this one has {size}."
        )


def _title(p: Problems, path: str, title: str) -> str:
    title = title.strip()
    if len(title) > TITLE_MAX_CHARS:
        p[path] = f"Titles are at most {TITLE_MAX_CHARS} characters ({len(title)} now)."
    return title


def _buttons(given: list[DmButton], p: Problems, path: str = "buttons") -> list[DmButton]:
    buttons: list[DmButton] = []
    for n, button in enumerate(given[:EDITOR_BUTTONS]):
        title = _title(p, f"{path}.{n}.title", button.title)
        target = button.target.strip()
        if not title and not target:
            continue
        if not title:
            p[f"{path}.{n}.title"] = "Give the button a title."
            continue
        if target.lower().startswith(("http://", "https://")):
            if not _URL.match(target):
                p[f"{path}.{n}.target"] = "The link has spaces or is incomplete."
            buttons.append(DmButton(title=title, target=target))
        elif target and "://" in target:
            p[f"{path}.{n}.target"] = "Links must start with http:// or https://."
        else:
            buttons.append(DmButton(title=title, target=target or title))
    return buttons


def _cards(given: list[Card], p: Problems) -> list[Card]:
    """The carousel's cards (blank ones dropped), within Meta's generic-template limits."""
    cards: list[Card] = []
    for n, card in enumerate(given):
        at = f"cards.{n}."
        title, subtitle = card.title.strip(), card.subtitle.strip()
        image, url = card.image_url.strip(), card.url.strip()
        buttons = _buttons(card.buttons, p, at + "buttons")
        if not (title or subtitle or image or url or buttons):
            continue
        if not title:
            p[at + "title"] = "Give the card a title."
        for name, text in (("title", title), ("subtitle", subtitle)):
            if len(text) > CARD_TEXT_MAX_CHARS:
                p[at + name] = f"At most {CARD_TEXT_MAX_CHARS} characters on a card."
        for name, link in (("image_url", image), ("url", url)):
            if link and not _URL.match(link):
                p[at + name] = "The link must start with http:// or https://."
        if len(card.buttons) > MAX_BUTTONS:
            p[at + "buttons"] = f"At most {MAX_BUTTONS} buttons on a card."
        cards.append(
            Card(title=title, subtitle=subtitle, image_url=image, url=url, buttons=buttons)
        )
    if not cards:
        p.setdefault("cards.0.title", "Add at least one card.")
    if len(cards) > MAX_CARDS:
        p["cards"] = f"At most {MAX_CARDS} cards."
    return cards


def _quick_replies(given: list[QuickReply], p: Problems) -> list[QuickReply]:
    found: list[QuickReply] = []
    for n, quick in enumerate(given[:EDITOR_BUTTONS]):
        title = _title(p, f"quick_replies.{n}.title", quick.title)
        payload = quick.payload.strip()
        if not title and not payload:
            continue
        if not title:
            p[f"quick_replies.{n}.title"] = "Give the quick reply a title."
            continue
        found.append(QuickReply(title=title, payload=payload or title))
    return found


def _lead_settings(given: LeadSettings, used: bool, p: Problems) -> LeadSettings:
    webhook_url = given.webhook_url.strip()
    region = given.phone_region.strip().upper()
    if used and webhook_url and not _URL.match(webhook_url):
        p["lead_settings.webhook_url"] = "The webhook must be an http:// or https:// address."
    if used and region and not _REGION.match(region):
        p["lead_settings.phone_region"] = 'Use a two-letter country code, like "US" or "DE".'
    return LeadSettings(
        webhook_url=webhook_url,
        webhook_secret=(given.webhook_secret or "").strip(),
        phone_region=region,
    )


def _ai(given: AiSettings | None, p: Problems) -> AiSettings:
    ai = given or AiSettings()
    tidy = AiSettings(
        prompt=ai.prompt.strip(),
        tone=ai.tone.strip(),
        knowledge=ai.knowledge.strip(),
        approval=ai.approval.strip() or ApprovalMode.AUTO.value,
        fallback_reply=ai.fallback_reply.strip(),
        continue_conversation=ai.continue_conversation,
        max_sentences=ai.max_sentences,
        max_chars=ai.max_chars,
        history_messages=ai.history_messages,
    )
    try:
        check_ai_config(tidy.model_dump())
    except ValidationFailed as exc:
        for key, text in exc.fields.items():
            p[f"ai.{key}"] = text
    return tidy


def _choices(at: str, given: list[Choice], p: Problems) -> list[Choice]:
    """A step's choices; ``at`` is the step's path."""
    choices: list[Choice] = []
    for choice in given:
        title, goto = choice.title.strip(), choice.goto.strip()
        if title and not any(bad in title for bad in _NOT_IN_LINE):
            if len(title) > TITLE_MAX_CHARS:
                p[at + "options"] = f'"{title}" is longer than {TITLE_MAX_CHARS} characters.'
            choices.append(Choice(title=title, goto=goto))
    if len(choices) > MAX_QUICK_REPLIES:
        p[at + "options"] = f"At most {MAX_QUICK_REPLIES} choices."
    return choices


def _choice_problems(at: str, given: list[Choice], p: Problems) -> None:
    """What a choice cannot say (the editor writes choices as ``Title -> step`` lines)."""
    for m, choice in enumerate(given):
        if not choice.title.strip():
            p[f"{at}options.{m}.title"] = "Give the choice a title."
        elif any(bad in choice.title for bad in _NOT_IN_LINE):
            p[f"{at}options.{m}.title"] = "A choice's title cannot contain -> or a line break."
        if any(bad in choice.goto for bad in _NOT_IN_LINE):
            p[f"{at}options.{m}.goto"] = "Name a step id (letters, digits, - and _) or end."


def _flow(given: list[FlowStep], p: Problems) -> list[FlowStep]:
    if not given:
        p["lead_flow"] = "Add at least one step that asks for something."
        return []
    if len(given) > MAX_STEPS:
        p["lead_flow"] = f"A flow has at most {MAX_STEPS} steps."
    steps: list[tuple[int, FlowStep]] = []
    ids: list[str] = []
    keys: dict[str, str] = {}
    for position, raw in enumerate(given):
        at = f"lead_flow.{position}."
        kind = raw.type.strip()
        ident = raw.id.strip() or f"s{position + 1}"
        if not lead_flow.STEP_ID.match(ident) or ident in ids or ident == "end":
            p[at + "id"] = "Each step needs its own short id (letters, digits, - and _)."
        ids.append(ident)
        text = raw.text.replace("\r\n", "\n").strip()
        if kind not in STEP_KINDS:
            p[at + "type"] = "Choose what this step does."
            continue
        step = FlowStep(type=kind, id=ident, goto=raw.goto.strip())
        if kind == "ask":
            step = _ask(at, raw, step, text, keys, str(position + 1), p)
        elif kind == "send":
            variations = _texts(raw.messages)
            if not variations:
                p[at + "messages"] = "Write the message."
            for variation in variations:
                _message(p, at + "messages", variation)
            if any(VARIATION_BREAK in m.split("\n") for m in raw.messages):
                p[at + "messages"] = f"A message cannot have a line with only {VARIATION_BREAK}."
            step.messages = variations
        elif kind == "branch":
            if not text:
                p[at + "text"] = "Write the question the choices answer."
            _message(p, at + "text", text)
            step.text = text
            step.options = _choices(at, raw.options, p)
            if not step.options:
                p.setdefault(at + "options", "Add the choices, one per line.")
        elif kind == "follow":
            _message(p, at + "text", text)
            step.text = text
        _choice_problems(at, raw.options, p)
        steps.append((position, step))
    if steps and not any(s.type in {"ask", "branch"} for _, s in steps):
        p.setdefault("lead_flow", "Add at least one step that asks for something.")
    known = set(ids) | {"end"}
    for position, step in steps:
        at = f"lead_flow.{position}."
        if step.goto and step.goto not in known:
            p[at + "goto"] = f'There is no step "{step.goto}".'
        for option in step.options:
            if option.goto and option.goto not in known:
                p[at + "options"] = (
                    f'"{option.title}" goes to step "{option.goto}", which does not exist.'
                )
    return [step for _, step in steps]


def _ask(
    at: str,
    raw: FlowStep,
    step: FlowStep,
    text: str,
    keys: dict[str, str],
    number: str,
    p: Problems,
) -> FlowStep:
    answer = raw.field.strip() or "custom"
    if answer not in ANSWER_KINDS:
        p[at + "field"] = "Choose what the answer is."
        answer = "custom"
    if not text:
        p[at + "text"] = "Write the question."
    _message(p, at + "text", text)
    step.text, step.field = text, answer
    if answer == "custom":
        key = raw.key.strip().lower()
        if not _KEY.match(key) or key in lead_flow.STANDARD_FIELDS:
            p[at + "key"] = "Name the answer in lower case letters, digits and _ (like company)."
        step.key = key
        name = key
    else:
        name = answer
    if name in keys:
        p.setdefault(
            at + ("key" if answer == "custom" else "field"),
            f"Step {keys[name]} already saves this answer.",
        )
    keys.setdefault(name, number)
    step.retry = raw.retry.strip()
    _message(p, at + "retry", step.retry)
    attempts = raw.attempts if raw.attempts is not None else lead_flow.DEFAULT_MAX_ATTEMPTS
    if problem := number_problem(attempts, *ATTEMPTS_RANGE):
        p[at + "attempts"] = problem
        attempts = lead_flow.DEFAULT_MAX_ATTEMPTS
    step.attempts = attempts
    step.options = _choices(at, raw.options, p)
    return step
