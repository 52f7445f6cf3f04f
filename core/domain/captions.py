"""The caption writer, the pure part: the prompt, the JSON schema, and reading the answer.

The model is asked for ``{"caption": "…", "hashtags": ["#a", …]}`` (5 to 10 hashtags) by JSON
schema. The answer is checked and fitted to Instagram's post limits (caption ≤ 2200
characters, ≤ 30 hashtags, ≤ 20 @mentions, counted on the caption with its hashtags); an
answer that cannot be read raises ``AiError(MALFORMED)`` saying what was wrong. The limits and
counting rules are the publishing domain's (``core.domain.posts``), so a suggestion passes the
composer's validation.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from core.domain.ai import AiError, AiErrorKind, ChatMessage
from core.domain.posts import (
    CAPTION_MAX,
    HASHTAGS_MAX,
    MENTIONS_MAX,
    clean_text,
    count_hashtags,
    count_mentions,
)
from core.errors import ValidationFailed

HASHTAGS_MIN_WANTED = 5
HASHTAGS_MAX_WANTED = 10
TOPIC_MAX_CHARS = 300
CONTEXT_MAX_CHARS = 2000
HASHTAG_MAX_CHARS = 100
ELLIPSIS = "…"

_FENCE = re.compile(r"^```(?:json)?\s*(.*?)\s*```$", re.DOTALL)
_SENTENCE_END = re.compile(r"[.!?…]+(?=\s|$)")


class CaptionTone(StrEnum):
    PROFESSIONAL = "professional"
    WITTY = "witty"
    CASUAL = "casual"
    URGENT = "urgent"


# The strictest common subset of JSON Schema (every field required, no extra keys, no length
# constraints) so strict structured output works on every compatible server; the 5 to 10 count
# is asked for in the prompt and checked when reading the answer.
CAPTION_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "caption": {"type": "string"},
        "hashtags": {"type": "array", "items": {"type": "string"}},
    },
    "required": ["caption", "hashtags"],
    "additionalProperties": False,
}

SYSTEM_PROMPT = (
    "You are an expert social media manager. You write engaging Instagram captions.\n"
    "Tone options: Professional, Witty, Casual, Urgent.\n"
    'Output format: a JSON object {"caption": "...", "hashtags": ["#tag1", "#tag2"]} and '
    "nothing else. The caption has no hashtags of its own; put 5 to 10 relevant hashtags in "
    f"the list. Keep the caption under {CAPTION_MAX - 400} characters."
)


@dataclass(frozen=True)
class CaptionRequest:
    topic: str
    tone: CaptionTone
    context: str = ""


@dataclass(frozen=True)
class CaptionSuggestion:
    caption: str
    hashtags: tuple[str, ...]

    @property
    def text(self) -> str:
        """The caption as posted: text, a blank line, then the hashtags."""
        if not self.hashtags:
            return self.caption
        return f"{self.caption}\n\n{' '.join(self.hashtags)}"


def caption_request(topic: str, tone: str, context: str = "") -> CaptionRequest:
    """Check what a person asked for; ValidationFailed names each field."""
    errors: dict[str, str] = {}
    topic = topic.strip()
    context = context.strip()
    if not topic:
        errors["topic"] = "Say what the post is about."
    elif len(topic) > TOPIC_MAX_CHARS:
        errors["topic"] = f"Keep the topic under {TOPIC_MAX_CHARS} characters."
    tones = [t.value for t in CaptionTone]
    if tone.strip().lower() not in tones:
        errors["tone"] = f"Choose one of: {', '.join(tones)}."
    if len(context) > CONTEXT_MAX_CHARS:
        errors["context"] = f"Keep the context under {CONTEXT_MAX_CHARS} characters."
    if errors:
        raise ValidationFailed("The caption request needs attention", errors)
    return CaptionRequest(topic=topic, tone=CaptionTone(tone.strip().lower()), context=context)


def caption_prompt(request: CaptionRequest) -> list[ChatMessage]:
    lines = [
        f"Topic: {request.topic}",
        f"Tone: {request.tone.value.capitalize()}",
        "Platform: Instagram",
    ]
    if request.context:
        lines.append(f"Context: {request.context}")
    lines.append("Generate a caption with emojis and 5-10 relevant hashtags.")
    return [ChatMessage("system", SYSTEM_PROMPT), ChatMessage("user", "\n".join(lines))]


def parse_caption_answer(text: str) -> CaptionSuggestion:
    """The model's JSON answer, checked and fitted to Instagram's post limits."""
    raw = text.strip()
    fenced = _FENCE.match(raw)
    if fenced:
        raw = fenced.group(1)
    try:
        data = json.loads(raw)
    except ValueError:
        raise _malformed(f"the answer is not JSON: {_preview(text)}") from None
    if not isinstance(data, dict):
        raise _malformed("the answer is not a JSON object with caption and hashtags")
    caption = data.get("caption")
    if not isinstance(caption, str) or not caption.strip():
        raise _malformed('the answer has no "caption" text')
    tags = data.get("hashtags")
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise _malformed('"hashtags" is not a list of strings')
    hashtags = _clean_hashtags(tags)
    if len(hashtags) < HASHTAGS_MIN_WANTED:
        raise _malformed(
            f"it gave {len(hashtags)} usable hashtags; {HASHTAGS_MIN_WANTED} to "
            f"{HASHTAGS_MAX_WANTED} were asked for"
        )
    return fit_post_limits(clean_text(caption), hashtags[:HASHTAGS_MAX_WANTED])


def fit_post_limits(caption: str, hashtags: tuple[str, ...]) -> CaptionSuggestion:
    """Drop list hashtags past Instagram's 30 and shorten the caption to fit 2200 characters
    with its hashtags; too many @mentions cannot be fixed and raise ``AiError(MALFORMED)``."""
    own_tags = count_hashtags(caption)
    room_for_tags = max(0, HASHTAGS_MAX - own_tags)
    hashtags = hashtags[:room_for_tags]
    suggestion = CaptionSuggestion(caption, hashtags)
    if len(suggestion.text) > CAPTION_MAX:
        tail = len(suggestion.text) - len(caption)
        suggestion = CaptionSuggestion(_shorten(caption, CAPTION_MAX - tail), hashtags)
    text = suggestion.text
    if count_hashtags(text) > HASHTAGS_MAX:
        raise _malformed(f"the caption has more than {HASHTAGS_MAX} hashtags")
    mentions = count_mentions(text)
    if mentions > MENTIONS_MAX:
        raise _malformed(
            f"the caption mentions {mentions} accounts; Instagram allows {MENTIONS_MAX}"
        )
    return suggestion


def _clean_hashtags(tags: list[str]) -> tuple[str, ...]:
    seen: set[str] = set()
    cleaned: list[str] = []
    for tag in tags:
        word = "".join(ch for ch in tag.strip().lstrip("#") if ch.isalnum() or ch == "_")
        word = word[:HASHTAG_MAX_CHARS]
        if not word or word.isdigit() or word.lower() in seen:
            continue
        seen.add(word.lower())
        cleaned.append(f"#{word}")
    return tuple(cleaned)


def _shorten(caption: str, limit: int) -> str:
    if len(caption) <= limit:
        return caption
    head = caption[: max(0, limit - len(ELLIPSIS))]
    ends = [m.end() for m in _SENTENCE_END.finditer(head)]
    if ends and ends[-1] >= len(head) // 2:
        return head[: ends[-1]]
    space = head.rfind(" ")
    if space >= len(head) // 2:
        head = head[:space]
    return head.rstrip(" ,;:-\n") + ELLIPSIS


def _preview(text: str) -> str:
    flat = " ".join(text.split())
    return repr(flat[:80] + (ELLIPSIS if len(flat) > 80 else ""))


def _malformed(reason: str) -> AiError:
    return AiError(
        f"The AI caption could not be used: {reason}. Try again or write it yourself.",
        kind=AiErrorKind.MALFORMED,
    )
