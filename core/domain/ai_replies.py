"""Smart replies, the pure part: a rule's AI settings, the prompt, and the answer's clean-up.

A rule's AI action lives in ``AutomationRule.config["ai"]`` (the seed's "smart AI listener"):

    {"prompt": "You answer for Lumen Studio…",  # the team's instructions (or "instructions")
     "tone": "friendly",                         # free words, e.g. "warm, concise"
     "max_sentences": 2,                         # default two sentences (the seed's rule)
     "max_chars": 1000,                          # never more than Instagram's 1000 bytes
     "knowledge": "Prices: … Links: …",          # FAQ, prices, links the answer may use
     "approval": "auto" | "approve",             # send at once, or hold a draft for a teammate
     "fallback_reply": "A teammate will answer you shortly.",  # optional, for "reject"
     "continue_conversation": true,              # keep answering un-keyworded DMs (24 h)
     "history_messages": 10}                     # how much of the conversation the model sees

``dm_type: "ai"`` (or ``"smart_ai"``) with a top-level ``ai_prompt`` is read too.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from core.domain.ai import AiError, AiErrorKind, ChatMessage, Role
from core.errors import ValidationFailed

INSTAGRAM_TEXT_MAX_BYTES = 1000
DEFAULT_MAX_SENTENCES = 2
DEFAULT_TONE = "friendly and helpful"
DEFAULT_HISTORY_MESSAGES = 10
MAX_HISTORY_MESSAGES = 40
HISTORY_MAX_CHARS = 8000  # the whole history handed to the model, newest kept first
PROMPT_MAX_CHARS = 4000
KNOWLEDGE_MAX_CHARS = 20000
TONE_MAX_CHARS = 80
ELLIPSIS = "…"

DM_WINDOW = timedelta(hours=24)
PRIVATE_REPLY_WINDOW = timedelta(days=7)


class Channel(StrEnum):
    """How the answer reaches the person: a DM, or a private reply anchored to a comment."""

    DM = "dm"
    PRIVATE_REPLY = "private_reply"


class ApprovalMode(StrEnum):
    AUTO = "auto"  # send at once
    APPROVE = "approve"  # hold a draft until a teammate decides


@dataclass(frozen=True)
class AiReplyConfig:
    prompt: str
    tone: str = DEFAULT_TONE
    max_sentences: int = DEFAULT_MAX_SENTENCES
    max_chars: int = INSTAGRAM_TEXT_MAX_BYTES
    knowledge: str = ""
    approval: ApprovalMode = ApprovalMode.AUTO
    fallback_reply: str = ""
    continue_conversation: bool = True
    history_messages: int = DEFAULT_HISTORY_MESSAGES


@dataclass(frozen=True)
class HistoryEntry:
    """One message of the conversation: ``direction`` is "in" (the person) or "out" (us)."""

    direction: str
    text: str
    at: datetime
    id: int = 0


def window_closes_at(channel: Channel, inbound_at: datetime) -> datetime:
    """When Meta stops accepting the reply: 24 h after a DM, 7 days after a comment."""
    return inbound_at + (PRIVATE_REPLY_WINDOW if channel is Channel.PRIVATE_REPLY else DM_WINDOW)


# ---------------------------------------------------------------- reading a rule's config


def ai_config_of(config: Mapping[str, Any] | None) -> AiReplyConfig | None:
    """The rule's AI action, or None when the rule has none. Lenient: values are clamped."""
    if not isinstance(config, Mapping):
        return None
    raw = config.get("ai")
    dm_type = str(config.get("dm_type") or config.get("dmType") or "").lower()
    if not isinstance(raw, Mapping):
        if dm_type not in {"ai", "smart_ai", "smartai"}:
            return None
        raw = {"prompt": config.get("ai_prompt") or config.get("prompt")}
    if raw.get("enabled") is False:
        return None
    prompt = _text(raw.get("prompt") or raw.get("instructions") or raw.get("system_prompt"))
    if not prompt:
        return None
    return AiReplyConfig(
        prompt=prompt[:PROMPT_MAX_CHARS],
        tone=_text(raw.get("tone"))[:TONE_MAX_CHARS] or DEFAULT_TONE,
        max_sentences=_clamp(raw.get("max_sentences"), 1, 10, DEFAULT_MAX_SENTENCES),
        max_chars=_clamp(raw.get("max_chars"), 20, INSTAGRAM_TEXT_MAX_BYTES, 1000),
        knowledge=_text(raw.get("knowledge"))[:KNOWLEDGE_MAX_CHARS],
        approval=_approval(raw),
        fallback_reply=_text(raw.get("fallback_reply")),
        continue_conversation=raw.get("continue_conversation") is not False,
        history_messages=_clamp(
            raw.get("history_messages"), 0, MAX_HISTORY_MESSAGES, DEFAULT_HISTORY_MESSAGES
        ),
    )


def check_ai_config(raw: Mapping[str, Any]) -> AiReplyConfig:
    """Validate an AI action as a rule editor submits it; ValidationFailed names each field."""
    errors: dict[str, str] = {}
    prompt = _text(raw.get("prompt"))
    if not prompt:
        errors["prompt"] = "Write the instructions the AI follows."
    elif len(prompt) > PROMPT_MAX_CHARS:
        errors["prompt"] = f"Keep the instructions under {PROMPT_MAX_CHARS} characters."
    if len(_text(raw.get("tone"))) > TONE_MAX_CHARS:
        errors["tone"] = f"Describe the tone in at most {TONE_MAX_CHARS} characters."
    if len(_text(raw.get("knowledge"))) > KNOWLEDGE_MAX_CHARS:
        errors["knowledge"] = f"Keep the knowledge text under {KNOWLEDGE_MAX_CHARS} characters."
    limits = (
        ("max_sentences", 1, 10),
        ("max_chars", 20, 1000),
        ("history_messages", 0, MAX_HISTORY_MESSAGES),
    )
    for name, low, high in limits:
        value = raw.get(name)
        if value in (None, ""):
            continue
        number = _int(value)
        if number is None or not low <= number <= high:
            errors[name] = f"Use a whole number from {low} to {high}."
    approval = _text(raw.get("approval")) or ApprovalMode.AUTO.value
    if approval not in {m.value for m in ApprovalMode}:
        errors["approval"] = "Choose auto (send at once) or approve (hold for a teammate)."
    fallback = _text(raw.get("fallback_reply"))
    if len(fallback.encode("utf-8")) > INSTAGRAM_TEXT_MAX_BYTES:
        errors["fallback_reply"] = "Instagram messages are limited to 1000 bytes."
    if errors:
        raise ValidationFailed("The AI reply settings need attention", errors)
    config = ai_config_of({"ai": raw})
    assert config is not None  # the prompt was checked above
    return config


def _approval(raw: Mapping[str, Any]) -> ApprovalMode:
    if raw.get("require_approval") is True:
        return ApprovalMode.APPROVE
    value = _text(raw.get("approval") or raw.get("approval_mode")).lower()
    return ApprovalMode.APPROVE if value == ApprovalMode.APPROVE.value else ApprovalMode.AUTO


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def _clamp(value: Any, low: int, high: int, default: int) -> int:
    number = _int(value)
    if number is None:
        return default
    return max(low, min(high, number))


# ---------------------------------------------------------------- the prompt


def build_reply_prompt(
    config: AiReplyConfig,
    history: Sequence[HistoryEntry],
    new_message: str,
    *,
    channel: Channel = Channel.DM,
    account_name: str = "",
) -> list[ChatMessage]:
    """System prompt (instructions, tone, limits, knowledge), history oldest→newest, new message."""
    messages = [ChatMessage("system", system_prompt(config, channel, account_name))]
    for entry in recent_history(history, config.history_messages):
        role: Role = "user" if entry.direction == "in" else "assistant"
        messages.append(ChatMessage(role, entry.text))
    messages.append(ChatMessage("user", new_message.strip() or "(no text)"))
    return messages


def system_prompt(config: AiReplyConfig, channel: Channel, account_name: str = "") -> str:
    where = "direct messages" if channel is Channel.DM else "comments, by private message"
    who = f" for the Instagram account @{account_name}" if account_name else ""
    sentences = "one sentence" if config.max_sentences == 1 else f"{config.max_sentences} sentences"
    parts = [
        f"You answer Instagram {where}{who}.",
        "Follow the team's instructions:",
        config.prompt,
        f"Tone: {config.tone}.",
        (
            f"Answer in at most {sentences} and {config.max_chars} characters, in the language "
            "of the customer's message, as plain text without markdown. Never invent prices, "
            "links or facts that are not in the instructions or the knowledge below. Never "
            "write placeholders such as [name] or {link}: write the real words or leave them "
            "out. If you cannot answer, say that a teammate will follow up."
        ),
    ]
    if config.knowledge:
        parts += ["Knowledge you may use (FAQ, prices, links):", config.knowledge]
    return "\n\n".join(parts)


def recent_history(history: Sequence[HistoryEntry], limit: int) -> list[HistoryEntry]:
    """The last ``limit`` non-empty entries, oldest first, within the history's size budget."""
    ordered = sorted((e for e in history if e.text.strip()), key=lambda e: (e.at, e.id))
    kept: list[HistoryEntry] = []
    budget = HISTORY_MAX_CHARS
    for entry in reversed(ordered[-limit:] if limit > 0 else []):
        text = entry.text.strip()[:INSTAGRAM_TEXT_MAX_BYTES]
        if len(text) > budget:
            break
        budget -= len(text)
        kept.append(HistoryEntry(entry.direction, text, entry.at, entry.id))
    kept.reverse()
    return kept


# ---------------------------------------------------------------- the answer's clean-up

_KNOWN_PLACEHOLDER = re.compile(
    r"\{\{?\s*(username|first_name|link)\s*\}?\}|\[(link|username|first_name)\]", re.IGNORECASE
)
_LEFTOVER_PLACEHOLDER = re.compile(
    r"\{\{?[^{}\n]{1,40}\}?\}"  # {name}, {{ name }}
    r"|\[(?![^\]]*://)[A-Za-z][^\[\]\n]{0,40}\](?!\()"  # [Your Name], [link] (not [x](url))
    r"|<(?!https?:)[A-Za-z][\w .'-]{0,40}>"  # <name>
)
_MARKDOWN_LINK = re.compile(r"\[([^\[\]\n]{1,80})\]\((https?://[^\s)]+)\)")
_MARKDOWN_EMPHASIS = re.compile(r"(\*\*|__)(.+?)\1|(?<![\w*])\*(?!\s)([^*\n]+?)\*(?![\w*])")
_ROLE_LABEL = re.compile(r"^(assistant|reply|answer|response)\s*:\s*", re.IGNORECASE)
_SENTENCE_END = re.compile(r"[.!?…]+[\"'\u201d\u2019)\]]*(?=\s|$)")
_TRAILING_JOINERS = "\u200d\ufe0f\ufe0e"


def fill_placeholders(text: str, values: Mapping[str, str]) -> str:
    """Fill ``{username}``, ``{first_name}`` and ``{link}`` where the value is known."""

    def value(match: re.Match[str]) -> str:
        name = (match.group(1) or match.group(2)).lower()
        if name == "first_name":
            return values.get("first_name") or values.get("username", "") or match.group(0)
        return values.get(name) or match.group(0)

    return _KNOWN_PLACEHOLDER.sub(value, text)


def leftover_placeholders(text: str) -> list[str]:
    return [m.group(0) for m in _LEFTOVER_PLACEHOLDER.finditer(text)]


def finalize_reply(
    text: str,
    *,
    max_sentences: int = DEFAULT_MAX_SENTENCES,
    max_chars: int = INSTAGRAM_TEXT_MAX_BYTES,
    values: Mapping[str, str] | None = None,
) -> str:
    """The model's answer made sendable: plain text, known placeholders filled, unknown ones
    removed, at most ``max_sentences`` sentences, ``max_chars`` characters and Instagram's
    1000 bytes (cut on a UTF-8 boundary). Raises ``AiError(EMPTY)`` when nothing is left.
    """
    cleaned = _unwrap(text)
    cleaned = _MARKDOWN_LINK.sub(r"\1: \2", cleaned)
    cleaned = _MARKDOWN_EMPHASIS.sub(lambda m: m.group(2) or m.group(3), cleaned)
    cleaned = re.sub(r"(?m)^\s*#{1,6}\s+", "", cleaned)
    cleaned = fill_placeholders(cleaned, values or {})
    cleaned = _LEFTOVER_PLACEHOLDER.sub("", cleaned)
    cleaned = _tidy(cleaned)
    cleaned = first_sentences(cleaned, max_sentences)
    cleaned = fit_reply(cleaned, min(max_chars, INSTAGRAM_TEXT_MAX_BYTES))
    if not any(ch.isalnum() or unicodedata.category(ch) == "So" for ch in cleaned):
        raise AiError("The AI answer was empty after clean-up", kind=AiErrorKind.EMPTY)
    return cleaned


def check_edited_text(text: str, values: Mapping[str, str] | None = None) -> str:
    """A teammate's edited reply: known placeholders filled; refused (not cut) when it breaks
    Instagram's limits or still holds a placeholder nobody can fill."""
    filled = _tidy(fill_placeholders(text.replace("\r\n", "\n"), values or {}))
    if not filled:
        raise ValidationFailed("The reply is empty", {"text": "Write the reply to send."})
    size = len(filled.encode("utf-8"))
    if size > INSTAGRAM_TEXT_MAX_BYTES:
        raise ValidationFailed(
            "The reply is too long",
            {"text": f"Instagram messages hold 1000 bytes; this one has {size}. Shorten it."},
        )
    leftovers = leftover_placeholders(filled)
    if leftovers:
        raise ValidationFailed(
            "The reply still holds a placeholder",
            {"text": f"Replace {', '.join(leftovers)} with the real words."},
        )
    return filled


def first_sentences(text: str, limit: int) -> str:
    """``text`` up to the end of its ``limit``-th sentence."""
    if limit <= 0:
        return text
    for count, match in enumerate(_SENTENCE_END.finditer(text), start=1):
        if count == limit:
            return text[: match.end()].rstrip()
    return text


def fit_reply(text: str, max_chars: int) -> str:
    """At most ``max_chars`` characters and 1000 UTF-8 bytes: cut at the last sentence end
    when that keeps most of the text, else at a word with an ellipsis."""
    if len(text) <= max_chars and len(text.encode("utf-8")) <= INSTAGRAM_TEXT_MAX_BYTES:
        return text
    room_chars = max_chars - len(ELLIPSIS)
    room_bytes = INSTAGRAM_TEXT_MAX_BYTES - len(ELLIPSIS.encode("utf-8"))
    head = text[:room_chars].encode("utf-8")[:room_bytes].decode("utf-8", "ignore")
    ends = [m.end() for m in _SENTENCE_END.finditer(head)]
    if ends and ends[-1] >= len(head) // 2:
        return head[: ends[-1]].rstrip(_TRAILING_JOINERS + " \n")
    space = head.rfind(" ")
    if space >= len(head) // 2:
        head = head[:space]
    head = head.rstrip(_TRAILING_JOINERS).rstrip(" \n,;:-\u2013\u2014")
    return head + ELLIPSIS


def _unwrap(text: str) -> str:
    text = text.replace("\r\n", "\n").strip()
    text = _ROLE_LABEL.sub("", text)
    for left, right in (('"', '"'), ("“", "”"), ("'", "'"), ("«", "»")):
        if len(text) > 1 and text.startswith(left) and text.endswith(right):
            inner = text[1:-1]
            if left not in inner and right not in inner:
                text = inner.strip()
    return text


def _tidy(text: str) -> str:
    text = text.replace("\t", " ")
    text = "".join(
        ch for ch in text if ch in "\n\u200d" or unicodedata.category(ch) not in {"Cc", "Cf"}
    )
    text = re.sub(r"[ \t]+", " ", text)
    text = re.sub(r" +([,.!?;:])", r"\1", text)
    text = re.sub(r"([,;:])(?=[.!?])", "", text)
    text = re.sub(r"\( *\)", "", text)
    text = re.sub(r" *\n *", "\n", text)
    text = re.sub(r"\n{3,}", "\n\n", text)
    text = re.sub(r"^[ ,;:]+", "", text)
    return text.strip().rstrip(",;:").strip()
