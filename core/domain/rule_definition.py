"""A rule's one shape: what it answers and what it does, as the API, the editor and the engine
read it.

:class:`RuleDefinition` is the typed rule. The JSON API validates bodies straight into it, the
panel's form is converted to and from it, and the engine reads it. A stored
``AutomationRule`` (its columns and the ``config`` JSON of the first release) loads through
the same model: a row, or a mapping of columns with ``config``, is read leniently before
validation, so configs in older shapes (``dmType``, ``message``, ``delay_seconds``,
``is_lead_capture``, ``[LINK]`` placeholders, ``smart_ai`` …) keep working and loading never
fails on a stored value. :meth:`RuleDefinition.stored_columns` is the one place that writes
the stored shape back. Checking a definition before it is saved is
:func:`core.domain.rule_checks.review`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, Field, model_validator

from core.domain import lead_flow
from core.domain.ai_replies import AiReplyConfig, ApprovalMode, ai_config_of
from core.domain.rules import AD_COMMENT_MODES, MATCH_MODES, TRIGGERS, Button, RuleSpec, spec_of

DM_TYPES = ("none", "text", "text_button", "quick_replies", "cards", "lead_capture", "ai")
ANSWER_KINDS = ("email", "phone", "name", "custom")
STEP_KINDS = ("ask", "send", "branch", "save", "follow")
MAX_ID = 2**31 - 1
_AI_DM_TYPES = {"ai", "smart_ai", "smartai"}
_LINK_PREFIXES = ("http://", "https://")


def _one_of(values: tuple[str, ...] | list[str]) -> dict[str, Any]:
    return {"enum": list(values)}


class DmButton(BaseModel):
    title: str
    target: str = Field(
        default="",
        description="An http(s) link to open, or the payload sent back (the title if empty).",
    )

    @property
    def url(self) -> str:
        return self.target if self.target.lower().startswith(_LINK_PREFIXES) else ""

    @property
    def payload(self) -> str:
        return "" if self.url else (self.target or self.title)


class Card(BaseModel):
    """One card of a carousel (Meta's generic template element)."""

    title: str = Field(default="", description="Required, at most 80 characters.")
    subtitle: str = ""
    image_url: str = Field(default="", description="An http(s) image shown on the card.")
    url: str = Field(default="", description="The http(s) page a tap on the card opens.")
    buttons: list[DmButton] = Field(default_factory=list, description="At most 3.")


class QuickReply(BaseModel):
    title: str
    payload: str = Field(default="", description="Sent back when tapped (the title if empty).")


class Choice(BaseModel):
    title: str
    goto: str = Field(
        default="", description="The id of the step this choice leads to (`end` ends the flow)."
    )


class FlowStep(BaseModel):
    type: str = Field(json_schema_extra=_one_of(STEP_KINDS))
    id: str = Field(default="", description="Short id that branches point to (s1, s2 … if empty).")
    text: str = Field(
        default="",
        description="The question (ask and branch steps); a follow step's request to follow "
        '(default "Follow us, then tap Done to continue.").',
    )
    messages: list[str] = Field(
        default_factory=list, description="What a send step says; one variation is picked."
    )
    field: str = Field(
        default="",
        description="What an ask step's answer is: "
        + ", ".join(ANSWER_KINDS)
        + " (custom if empty).",
    )
    key: str = Field(default="", description="The name a custom answer is saved under.")
    retry: str = Field(default="", description="Said when an answer is not valid.")
    attempts: int | None = Field(default=None, description="How often an answer may be retried.")
    options: list[Choice] = Field(default_factory=list)
    goto: str = Field(default="", description="The step after this one (the next one if empty).")

    def stored(self, position: int) -> dict[str, Any]:
        """The step in the stored ``lead_capture_flow`` shape."""
        step: dict[str, Any] = {"step": position + 1, "id": self.id, "type": self.type}
        options = [_stored_option(o) for o in self.options]
        if self.type == "ask":
            answer = self.field or "custom"
            step.update(
                text=self.text,
                field_type=answer,
                validation=answer if answer != "custom" else "none",
            )
            if answer == "custom":
                step["field"] = self.key
                step["key"] = self.key
            else:
                step["field"] = answer
            if self.retry:
                step["retry_message"] = self.retry
            step["max_attempts"] = self.attempts or lead_flow.DEFAULT_MAX_ATTEMPTS
            if options:
                step["quick_replies"] = options
        elif self.type == "send":
            step["message"] = self.messages[0] if self.messages else ""
            step["message_variations"] = list(self.messages)
        elif self.type == "branch":
            step.update(text=self.text, options=options)
        elif self.type == "follow" and self.text:
            step["text"] = self.text
        if self.goto:
            step["goto"] = self.goto
        return step


class FollowUpStep(BaseModel):
    """A message sent a while after the rule's DM unless the person answered meanwhile."""

    wait_minutes: int = Field(
        default=60,
        description="How long to wait after the DM, in minutes (1 to 1380: Meta's 24-hour "
        "window must still be open when it is due).",
    )
    messages: list[str] = Field(
        default_factory=list, description="What the follow-up says; one variation is picked."
    )


class LeadSettings(BaseModel):
    webhook_url: str = ""
    webhook_secret: str | None = Field(
        default=None,
        description="Signs the lead webhook; null keeps the stored one, empty clears it.",
    )
    phone_region: str = Field(default="", description='Two-letter region for phone numbers ("US").')


class AiSettings(BaseModel):
    prompt: str = ""
    tone: str = ""
    knowledge: str = ""
    approval: str = Field(
        default=ApprovalMode.AUTO.value, json_schema_extra=_one_of([m.value for m in ApprovalMode])
    )
    fallback_reply: str = ""
    continue_conversation: bool = True
    max_sentences: int | None = Field(
        default=None, description="At most this many sentences (1-10; two if empty)."
    )
    max_chars: int | None = Field(
        default=None, description="At most this many characters (20-1000; 1000 if empty)."
    )
    history_messages: int | None = Field(
        default=None,
        description="How many earlier messages of the conversation the model sees (ten if empty).",
    )


class RuleFields(BaseModel):
    """A rule without its lead settings (which carry a write-only secret)."""

    name: str
    account_id: int | None = Field(ge=1, le=MAX_ID)
    trigger: str = Field(json_schema_extra=_one_of(TRIGGERS))
    ref_code: str = Field(
        default="",
        description="The ref of the rule's ig.me link (trigger ref_link): "
        "https://ig.me/m/<username>?ref=<ref_code>; unique per account.",
    )
    keywords: list[str] = Field(default_factory=list)
    match_mode: str = Field("whole_word", json_schema_extra=_one_of(MATCH_MODES))
    media_ids: list[str] = Field(
        default_factory=list,
        description="Instagram post ids the rule is limited to (all if empty).",
    )
    next_post: bool = Field(
        default=False,
        description="Limit the rule to the account's next post published through Reelay: it "
        "answers nothing until then, and media_ids is set when that post is published.",
    )
    ad_comments: str = Field(
        default="also",
        json_schema_extra=_one_of(AD_COMMENT_MODES),
        description="Comments on ads (Meta's webhook carries media.ad_id): also answered, "
        "only those (only), or none (skip).",
    )
    priority: int = 0
    cooldown_minutes: int = 0
    delay_minutes: float = 0
    first_comment_only: bool = False
    active: bool = True
    comment_replies: list[str] = Field(
        default_factory=list, description="Public replies to a comment; one is picked."
    )
    hide_comment: bool = Field(
        default=False,
        description="Hide the comment that triggered the rule (spam, competitors' links): "
        "the account's followers no longer see it.",
    )
    dm_type: str = Field("text", json_schema_extra=_one_of(DM_TYPES))
    dm_variations: list[str] = Field(
        default_factory=list, description="The DM's text; one variation is picked."
    )
    buttons: list[DmButton] = Field(default_factory=list)
    quick_replies: list[QuickReply] = Field(default_factory=list)
    cards: list[Card] = Field(
        default_factory=list, description="A carousel of up to 10 cards (dm_type cards)."
    )
    link: str = ""
    track_links: bool = Field(
        default=False,
        description="Rewrite each link the rule sends to PUBLIC_BASE_URL/l/<code>, counting "
        "clicks per step, variant and person.",
    )
    utm_tags: bool = Field(
        default=False,
        description="Add utm_source=instagram, utm_medium and utm_campaign=<rule slug> to "
        "tracked links.",
    )
    lead_flow: list[FlowStep] = Field(default_factory=list)
    follow_up: FollowUpStep | None = Field(
        default=None,
        description="Wait, then send unless the person answered (never after Meta's 24-hour "
        "window).",
    )
    ai: AiSettings | None = None
    notification_email: str | None = Field(
        default=None,
        description="Also told of this rule's leads, beside the workspace's address; null "
        "keeps the stored one, empty clears it.",
    )


class RuleDefinition(RuleFields):
    """A whole rule, as the rule editor saves it."""

    lead_settings: LeadSettings = Field(default_factory=lambda: LeadSettings.model_validate({}))

    @model_validator(mode="before")
    @classmethod
    def _read_stored(cls, data: Any) -> Any:
        if isinstance(data, Mapping):
            return _from_stored(data) if "config" in data else data
        if hasattr(data, "config"):
            return _from_stored(_columns_of(data))
        return data

    @classmethod
    def from_stored(cls, rule: object) -> RuleDefinition:
        """Read a stored rule (an ``AutomationRule`` or a mapping of its columns)."""
        return cls.model_validate(rule)

    # ------------------------------------------------------------ what the engine reads

    @property
    def cooldown_s(self) -> int:
        return max(0, self.cooldown_minutes) * 60

    @property
    def delay_s(self) -> float:
        return max(0.0, self.delay_minutes * 60)

    @property
    def reply_link(self) -> str:
        """What ``{link}`` says: the rule's link, else its first link button."""
        return self.link or next((b.url for b in self.buttons if b.url), "")

    @property
    def dm_buttons(self) -> tuple[Button, ...]:
        return tuple(Button(title=b.title, url=b.url, payload=b.payload) for b in self.buttons)

    @property
    def quick_reply_buttons(self) -> tuple[Button, ...]:
        return tuple(
            Button(title=q.title, payload=q.payload or q.title) for q in self.quick_replies
        )

    @property
    def waiting_for_post(self) -> bool:
        """Bound to the next post, which is not published yet: the rule answers nothing."""
        return self.next_post and not self.media_ids

    @property
    def starts_flow(self) -> bool:
        return self.dm_type == "lead_capture" and bool(self.lead_flow)

    def ig_me_link(self, username: str) -> str:
        """The rule's ig.me link (a ref-link rule's), or empty."""
        if self.trigger != "ref_link" or not self.ref_code or not username:
            return ""
        return f"https://ig.me/m/{username}?ref={self.ref_code}"

    @property
    def webhook_url(self) -> str:
        return self.lead_settings.webhook_url

    def flow(self) -> lead_flow.LeadFlow:
        """The lead flow as the engine steps through it."""
        return lead_flow.LeadFlow(
            steps=tuple(lead_flow.read_step(s.stored(i), i) for i, s in enumerate(self.lead_flow)),
            phone_region=self.lead_settings.phone_region.upper() or None,
        )

    def ai_reply(self) -> AiReplyConfig | None:
        """The AI action's settings, or None when the rule answers with static messages."""
        if self.ai is None:
            return None
        return ai_config_of({"ai": self.ai.model_dump(exclude_none=True)})

    def spec(self, rule_id: int) -> RuleSpec:
        """What matching needs to know."""
        return spec_of(
            id=rule_id,
            trigger=self.trigger,
            keywords=self.keywords,
            match_mode=self.match_mode,
            priority=self.priority,
            media_ids=self.media_ids,
            cooldown_s=self.cooldown_s,
            first_comment_only=self.first_comment_only,
            active=self.active and not self.waiting_for_post,
            ads=self.ad_comments,
        )

    # ------------------------------------------------------------ the stored shape

    def stored_columns(self) -> dict[str, Any]:
        """The ``AutomationRule`` columns (but the account) with the seed-shaped ``config``."""
        settings: dict[str, Any] = {"save_to_database": True}
        if self.lead_settings.webhook_url:
            settings["webhook_url"] = self.lead_settings.webhook_url
        if self.lead_settings.webhook_secret:
            settings["webhook_secret"] = self.lead_settings.webhook_secret
        if self.lead_settings.phone_region:
            settings["phone_region"] = self.lead_settings.phone_region
        config: dict[str, Any] = {
            "auto_reply_to_comments": bool(self.comment_replies),
            "comment_replies": list(self.comment_replies),
            "hide_comment": self.hide_comment,
            "message_variations": list(self.dm_variations),
            "dmType": self.dm_type,
            "buttons": [_stored_button(b) for b in self.buttons],
            "quick_replies": [
                {"title": q.title, "payload": q.payload or q.title} for q in self.quick_replies
            ],
            "cards": [_stored_card(c) for c in self.cards],
            "delay_minutes": self.delay_minutes,
            "link": self.link,
            "track_links": self.track_links,
            "utm_tags": self.utm_tags,
            "is_lead_capture": self.dm_type == "lead_capture",
            "lead_capture_flow": [s.stored(i) for i, s in enumerate(self.lead_flow)],
            "lead_capture_settings": settings,
        }
        if self.ai is not None:
            config["ai"] = self.ai.model_dump(exclude_none=True)
        if self.notification_email:
            config["notification_email"] = self.notification_email
        if self.next_post:
            config["next_post"] = True
        if self.ad_comments != "also":
            config["ad_comments"] = self.ad_comments
        if self.follow_up is not None:
            config["follow_up"] = self.follow_up.model_dump()
        keywords, match_mode = list(self.keywords), self.match_mode
        if self.trigger == "ref_link":
            # Matched as an exact keyword: the index finds the rule by its ref.
            config["ref_code"] = self.ref_code
            keywords, match_mode = [self.ref_code], "exact"
        return {
            "name": self.name,
            "trigger": self.trigger,
            "media_ids": list(self.media_ids),
            "keywords": keywords,
            "match_mode": match_mode,
            "priority": self.priority,
            "cooldown_s": self.cooldown_s,
            "first_comment_only": self.first_comment_only,
            "active": self.active,
            "config": config,
        }


def _stored_button(button: DmButton) -> dict[str, str]:
    if button.url:
        return {"text": button.title, "url": button.url}
    return {"text": button.title, "payload": button.payload}


def _stored_card(card: Card) -> dict[str, Any]:
    return {
        "title": card.title,
        "subtitle": card.subtitle,
        "image_url": card.image_url,
        "url": card.url,
        "buttons": [_stored_button(b) for b in card.buttons],
    }


def _stored_option(choice: Choice) -> dict[str, str]:
    option = {"title": choice.title, "payload": choice.title}
    if choice.goto:
        option["goto"] = choice.goto
    return option


# ---------------------------------------------------------------- reading stored rules

_COLUMNS = (
    "name",
    "account_id",
    "trigger",
    "media_ids",
    "keywords",
    "match_mode",
    "priority",
    "cooldown_s",
    "first_comment_only",
    "active",
    "config",
)


def _columns_of(row: object) -> dict[str, Any]:
    columns = {name: getattr(row, name, None) for name in _COLUMNS}
    for name in ("trigger", "match_mode"):
        columns[name] = getattr(columns[name], "value", columns[name])
    return columns


def _from_stored(columns: Mapping[str, Any]) -> dict[str, Any]:
    """The definition's fields from stored columns, read the engine's way (never raises)."""
    raw = columns.get("config")
    config: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
    replies = _texts(config.get("comment_replies"))
    if config.get("auto_reply_to_comments") is False:
        replies = []
    dms = _texts(config.get("message_variations")) or _texts(config.get("message"))
    dm_type = _text(config.get("dm_type") or config.get("dmType") or "text")
    flow = [s for s in _list(config.get("lead_capture_flow")) if isinstance(s, Mapping)]
    if config.get("is_lead_capture") is True and flow:
        dm_type = "lead_capture"
    if dm_type == "lead_capture" and not flow:
        dm_type = "text"  # seed: a missing flow falls back to the simple DM
    raw_settings = config.get("lead_capture_settings")
    settings: Mapping[str, Any] = raw_settings if isinstance(raw_settings, Mapping) else {}
    buttons = [b for b in (_button(x) for x in _list(config.get("buttons"))) if b]
    quick = [b for b in (_button(x) for x in _list(config.get("quick_replies"))) if b]
    if dm_type == "text" and quick:
        dm_type = "quick_replies"
    cards = [c for c in (_card(x) for x in _list(config.get("cards"))) if c]
    if dm_type == "cards" and not cards:
        dm_type = "text"
    delay = _number(config.get("delay_seconds"))
    if delay is None:
        delay = (_number(config.get("delay_minutes")) or 0) * 60
    ai = _ai(config, dm_type)
    if ai is not None:
        dm_type = "ai"
    elif dm_type.lower() in _AI_DM_TYPES or (dm_type == "text" and not dms and not cards):
        dm_type = "none"
    keywords = [k for k in _list(columns.get("keywords")) if isinstance(k, str)]
    keywords = keywords or _texts(config.get("keywords"))
    trigger = _text(columns.get("trigger")) or "comment"
    match_mode = _text(columns.get("match_mode")) or "whole_word"
    ref_code = ""
    if trigger == "ref_link":
        ref_code = _text(config.get("ref_code")) or (keywords[0] if keywords else "")
        keywords, match_mode = [], "exact"
    return {
        "name": _text(columns.get("name")),
        "account_id": columns.get("account_id"),
        "trigger": trigger,
        "ref_code": ref_code,
        "keywords": keywords,
        "match_mode": match_mode,
        "media_ids": [str(m) for m in _list(columns.get("media_ids")) if m],
        "priority": _whole(columns.get("priority")) or 0,
        "cooldown_minutes": (_whole(columns.get("cooldown_s")) or 0) // 60,
        "delay_minutes": max(0.0, delay) / 60,
        "first_comment_only": columns.get("first_comment_only") is True,
        "active": columns.get("active") is not False,
        "comment_replies": replies,
        "hide_comment": config.get("hide_comment") is True,
        "dm_type": dm_type,
        "dm_variations": dms,
        "buttons": [{"title": b.title, "target": b.url or b.payload} for b in buttons],
        "quick_replies": [{"title": q.title, "payload": q.payload} for q in quick],
        "cards": cards,
        "link": _text(config.get("link") or settings.get("link")),
        "track_links": config.get("track_links") is True,
        "utm_tags": config.get("utm_tags") is True,
        "lead_flow": [_flow_step(s, n) for n, s in enumerate(flow)],
        "lead_settings": {
            "webhook_url": _text(settings.get("webhook_url")),
            "webhook_secret": _text(settings.get("webhook_secret")),
            "phone_region": _text(settings.get("phone_region")).upper(),
        },
        "ai": ai,
        "notification_email": _text(config.get("notification_email")) or None,
        "next_post": config.get("next_post") is True,
        "ad_comments": _choice(config.get("ad_comments"), AD_COMMENT_MODES),
        "follow_up": _follow_up(config.get("follow_up")),
    }


def _choice(value: Any, allowed: tuple[str, ...]) -> str:
    text = _text(value)
    return text if text in allowed else allowed[0]


def _follow_up(value: Any) -> dict[str, Any] | None:
    if not isinstance(value, Mapping):
        return None
    messages = _texts(value.get("messages"))
    wait = _whole(value.get("wait_minutes"))
    if not messages or wait is None:
        return None
    return {"wait_minutes": wait, "messages": messages}


def _ai(config: Mapping[str, Any], dm_type: str) -> dict[str, Any] | None:
    raw = config.get("ai")
    if not isinstance(raw, Mapping):
        if dm_type.lower() not in _AI_DM_TYPES:
            return None
        raw = {"prompt": config.get("ai_prompt") or config.get("prompt")}
    if raw.get("enabled") is False:
        return None
    approval = _text(raw.get("approval") or raw.get("approval_mode")).lower()
    if raw.get("require_approval") is True:
        approval = ApprovalMode.APPROVE.value
    return {
        "prompt": _text(raw.get("prompt") or raw.get("instructions") or raw.get("system_prompt")),
        "tone": _text(raw.get("tone")),
        "knowledge": _text(raw.get("knowledge")),
        "approval": approval or ApprovalMode.AUTO.value,
        "fallback_reply": _text(raw.get("fallback_reply")),
        "continue_conversation": raw.get("continue_conversation") is not False,
        "max_sentences": _whole(raw.get("max_sentences")),
        "max_chars": _whole(raw.get("max_chars")),
        "history_messages": _whole(raw.get("history_messages")),
    }


def _flow_step(raw: Mapping[str, Any], n: int) -> dict[str, Any]:
    step = lead_flow.read_step(raw, n)
    ident = step.id if lead_flow.STEP_ID.match(step.id) else f"s{n + 1}"
    asks = step.kind in {"ask", "branch", "follow"}
    return {
        "type": step.kind,
        "id": ident,
        "text": step.texts[0] if asks and step.texts else "",
        "messages": list(step.texts) if step.kind == "send" else [],
        "field": step.field,
        "key": step.key if step.field == "custom" else "",
        "retry": step.retry_text,
        "attempts": step.max_attempts if step.kind == "ask" else None,
        "options": [{"title": o.title, "goto": o.goto} for o in step.options],
        "goto": step.goto,
    }


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def _texts(value: Any) -> list[str]:
    if isinstance(value, str):
        value = [value]
    return [t for t in (_text(v) for v in _list(value)) if t]


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _whole(value: Any) -> int | None:
    number = _number(value)
    return int(number) if number is not None else None


def _card(value: Any) -> dict[str, Any] | None:
    if not isinstance(value, Mapping) or not _text(value.get("title")):
        return None
    buttons = [b for b in (_button(x) for x in _list(value.get("buttons"))) if b]
    return {
        "title": _text(value.get("title")),
        "subtitle": _text(value.get("subtitle")),
        "image_url": _text(value.get("image_url")),
        "url": _text(value.get("url")),
        "buttons": [{"title": b.title, "target": b.url or b.payload} for b in buttons],
    }


def _button(value: Any) -> Button | None:
    if isinstance(value, str) and value.strip():
        return Button(title=value.strip(), payload=value.strip())
    if not isinstance(value, Mapping):
        return None
    title = _text(value.get("title") or value.get("text"))
    url = _text(value.get("url"))
    payload = _text(value.get("payload"))
    if not title:
        return None
    if not url and not payload:
        payload = title
    return Button(title=title, url=url, payload=payload)
