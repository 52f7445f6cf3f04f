"""Meta message payloads (text, button template, quick replies, generic template cards),
placeholders, variations.

Meta's limits (ARCHITECTURE.md, "Meta's Graph API"): text ≤ 1000 bytes UTF-8; button template
≤ 3 buttons (``web_url`` or ``postback``); quick replies ≤ 13 with titles ≤ 20 characters;
generic template ≤ 10 cards, title and subtitle ≤ 80 characters, ≤ 3 buttons per card.
Text that is too long is cut at a character boundary with an ellipsis; lists that are too long
raise ValidationFailed when a rule is saved (:func:`check_rule_messages`) and are cut when
sending an old rule.
"""

from __future__ import annotations

import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from core.domain.rules import Button
from core.errors import ValidationFailed

if TYPE_CHECKING:
    from core.domain.rule_definition import RuleDefinition

TEXT_MAX_BYTES = 1000
BUTTON_TEXT_MAX_BYTES = 640
MAX_BUTTONS = 3
MAX_QUICK_REPLIES = 13
TITLE_MAX_CHARS = 20
PAYLOAD_MAX_CHARS = 1000
ELLIPSIS = "…"
MAX_CARDS = 10
CARD_TEXT_MAX_CHARS = 80

_PLACEHOLDER = re.compile(r"\{(username|first_name|link)\}|\[(LINK|USERNAME|FIRST_NAME)\]")


@dataclass(frozen=True)
class Person:
    """What placeholders may say about the person and the rule."""

    username: str = ""
    first_name: str = ""
    link: str = ""


def render(template: str, person: Person) -> str:
    """Fill ``{username}``, ``{first_name}`` and ``{link}`` (also ``[LINK]`` from old configs).

    ``{first_name}`` falls back to the username when the name is unknown; an unknown value
    leaves no stray spaces ("Hi {first_name}!" → "Hi!").
    """

    def value(match: re.Match[str]) -> str:
        name = (match.group(1) or match.group(2)).lower()
        if name == "username":
            return person.username
        if name == "first_name":
            return person.first_name or person.username
        return person.link

    filled = _PLACEHOLDER.sub(value, template)
    filled = re.sub(r"[ \t]{2,}", " ", filled)
    return re.sub(r" ([!?.,;:])", r"\1", filled).strip()


def choose(variations: Sequence[str], rng: random.Random) -> str:
    """One variation picked with ``rng`` (seeded in tests)."""
    return variations[pick(variations, rng)]


def pick(variations: Sequence[str], rng: random.Random) -> int:
    """The index of one variation, picked with ``rng`` (as :func:`choose` picks it)."""
    if not variations:
        raise ValueError("no variations to choose from")
    return rng.randrange(len(variations))


def variant_label(index: int | None) -> str:
    """How a variation is named in results: ``v1`` for the first, '' when there is none."""
    return f"v{index + 1}" if index is not None else ""


def dm_variant(rule: RuleDefinition, rng: random.Random) -> int | None:
    """Which of the rule's DM variations :func:`dm_message` sends (None: it has none)."""
    if (rule.dm_type == "cards" and rule.cards) or not rule.dm_variations:
        return None
    return pick(rule.dm_variations, rng)


def fit_bytes(text: str, limit: int = TEXT_MAX_BYTES) -> str:
    """``text`` cut to at most ``limit`` UTF-8 bytes, on a character boundary."""
    data = text.encode("utf-8")
    if len(data) <= limit:
        return text
    room = limit - len(ELLIPSIS.encode("utf-8"))
    return data[:room].decode("utf-8", "ignore").rstrip() + ELLIPSIS


def fit_title(title: str) -> str:
    return title if len(title) <= TITLE_MAX_CHARS else title[: TITLE_MAX_CHARS - 1] + ELLIPSIS


def text_message(text: str) -> dict[str, Any]:
    return {"text": fit_bytes(text)}


def _buttons(buttons: Sequence[Button]) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    for button in buttons[:MAX_BUTTONS]:
        if button.url:
            items.append({"type": "web_url", "url": button.url, "title": fit_title(button.title)})
        else:
            items.append(
                {
                    "type": "postback",
                    "title": fit_title(button.title),
                    "payload": (button.payload or button.title)[:PAYLOAD_MAX_CHARS],
                }
            )
    return items


def button_message(text: str, buttons: Sequence[Button]) -> dict[str, Any]:
    """A button template: text with up to 3 URL or postback buttons."""
    items = _buttons(buttons)
    if not items:
        return text_message(text)
    return {
        "attachment": {
            "type": "template",
            "payload": {
                "template_type": "button",
                "text": fit_bytes(text, BUTTON_TEXT_MAX_BYTES),
                "buttons": items,
            },
        }
    }


@dataclass(frozen=True)
class CardSpec:
    """One card of a generic template, placeholders filled."""

    title: str
    subtitle: str = ""
    image_url: str = ""
    url: str = ""
    buttons: tuple[Button, ...] = ()


def _fit_card_text(text: str) -> str:
    if len(text) <= CARD_TEXT_MAX_CHARS:
        return text
    return text[: CARD_TEXT_MAX_CHARS - 1] + ELLIPSIS


def generic_message(cards: Sequence[CardSpec]) -> dict[str, Any]:
    """A generic template: up to 10 cards, each with a title, subtitle, image, a tap target
    and up to 3 buttons."""
    elements: list[dict[str, Any]] = []
    for card in cards[:MAX_CARDS]:
        element: dict[str, Any] = {"title": _fit_card_text(card.title)}
        if card.subtitle:
            element["subtitle"] = _fit_card_text(card.subtitle)
        if card.image_url:
            element["image_url"] = card.image_url
        if card.url:
            element["default_action"] = {"type": "web_url", "url": card.url}
        if items := _buttons(card.buttons):
            element["buttons"] = items
        elements.append(element)
    return {
        "attachment": {
            "type": "template",
            "payload": {"template_type": "generic", "elements": elements},
        }
    }


def quick_reply_message(text: str, options: Sequence[Button]) -> dict[str, Any]:
    """Text with up to 13 quick replies (tap sends a message carrying the payload)."""
    message = text_message(text)
    replies = [
        {
            "content_type": "text",
            "title": fit_title(option.title),
            "payload": (option.payload or option.title)[:PAYLOAD_MAX_CHARS],
        }
        for option in options[:MAX_QUICK_REPLIES]
    ]
    if replies:
        message["quick_replies"] = replies
    return message


def message_text(message: Mapping[str, Any]) -> str:
    """The text a person reads in ``message`` (for conversation history)."""
    if isinstance(message.get("text"), str):
        return str(message["text"])
    payload = message.get("attachment", {}).get("payload", {})
    if not isinstance(payload, Mapping):
        return ""
    if isinstance(payload.get("elements"), list):
        titles = [str(e.get("title", "")) for e in payload["elements"] if isinstance(e, Mapping)]
        return " | ".join(t for t in titles if t)
    return str(payload.get("text", ""))


def message_media_url(message: Mapping[str, Any]) -> str:
    """The image or video ``message`` carries ('' for text and templates)."""
    attachment = message.get("attachment")
    if not isinstance(attachment, Mapping) or attachment.get("type") not in {"image", "video"}:
        return ""
    payload = attachment.get("payload")
    return str(payload.get("url") or "") if isinstance(payload, Mapping) else ""


def dm_message(
    rule: RuleDefinition, person: Person, rng: random.Random, *, variant: int | None = None
) -> dict[str, Any] | None:
    """The DM a rule sends (text, text with buttons, quick replies or cards); None when it has
    none. ``variant``: the variation to send (picked with ``rng`` when None)."""
    if rule.dm_type == "cards" and rule.cards:
        filled = _with_link(person, rule)
        return generic_message(
            [
                CardSpec(
                    title=render(c.title, filled),
                    subtitle=render(c.subtitle, filled),
                    image_url=c.image_url,
                    url=c.url,
                    buttons=tuple(
                        Button(title=b.title, url=b.url, payload=b.payload) for b in c.buttons
                    ),
                )
                for c in rule.cards
            ]
        )
    if not rule.dm_variations:
        return None
    chosen = rule.dm_variations[variant] if variant is not None else choose(rule.dm_variations, rng)
    text = render(chosen, _with_link(person, rule))
    if rule.dm_type == "text_button" and rule.buttons:
        return button_message(text, rule.dm_buttons)
    if rule.quick_replies:
        return quick_reply_message(text, rule.quick_reply_buttons)
    return text_message(text)


def comment_reply(
    rule: RuleDefinition, person: Person, rng: random.Random, *, variant: int | None = None
) -> str | None:
    """The public reply to a comment, or None when the rule has no comment replies.
    ``variant``: the variation to send (picked with ``rng`` when None)."""
    if not rule.comment_replies:
        return None
    replies = rule.comment_replies
    chosen = replies[variant] if variant is not None else choose(replies, rng)
    return fit_bytes(render(chosen, _with_link(person, rule)))


def follow_up_message(rule: RuleDefinition, person: Person, variant: int) -> dict[str, Any] | None:
    """The follow-up's text message, variation ``variant`` (None when the rule has none)."""
    if rule.follow_up is None or not rule.follow_up.messages:
        return None
    return text_message(render(rule.follow_up.messages[variant], _with_link(person, rule)))


def _with_link(person: Person, rule: RuleDefinition) -> Person:
    if person.link or not rule.reply_link:
        return person
    return Person(username=person.username, first_name=person.first_name, link=rule.reply_link)


def check_rule_messages(rule: RuleDefinition) -> None:
    """Refuse a rule whose messages Meta would reject (for the rule editor)."""
    problems: dict[str, str] = {}
    if len(rule.buttons) > MAX_BUTTONS:
        problems["buttons"] = f"at most {MAX_BUTTONS} buttons"
    if len(rule.quick_replies) > MAX_QUICK_REPLIES:
        problems["quick_replies"] = f"at most {MAX_QUICK_REPLIES} quick replies"
    for option in (*rule.dm_buttons, *rule.quick_reply_buttons):
        if len(option.title) > TITLE_MAX_CHARS:
            problems["titles"] = f"button and quick reply titles are at most {TITLE_MAX_CHARS}"
    for text in (*rule.dm_variations, *rule.comment_replies):
        if len(text.encode("utf-8")) > TEXT_MAX_BYTES:
            problems["text"] = f"messages are at most {TEXT_MAX_BYTES} bytes"
    if problems:
        raise ValidationFailed("the rule's messages break Instagram's limits", problems)
