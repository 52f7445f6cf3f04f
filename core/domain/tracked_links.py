"""Tracked links and a rule's funnel (pure).

A rule that tracks its links has every http(s) URL in what it sends (text, button template,
generic template cards) rewritten to ``PUBLIC_BASE_URL/l/<code>``: one short, unguessable code
per (rule, step, variant, person, target URL). Opening it answers a redirect to the target and
counts the click, unless the visitor is a link-preview bot (Instagram and Facebook fetch every
link a DM carries to draw its preview: those fetches are not a person clicking).

With UTM tags on, the target gets ``utm_source=instagram``, ``utm_medium`` (``dm`` for
messages, ``comment`` for public replies) and ``utm_campaign=<rule slug>``, unless the link
already names them.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

CODE_BYTES = 12  # 16 URL-safe characters: 96 random bits
CODE_PATTERN = re.compile(r"^[A-Za-z0-9_-]{16}$")
URL_MAX_CHARS = 2000
_URL = re.compile(r"https?://[^\s<>\"']+", re.IGNORECASE)
_TRAILING = ".,;:!?)]}"

# Fetchers that draw link previews or index pages; a person's browser never names them.
# Instagram's in-app browser says "Instagram …" too, so only its preview fetcher
# (facebookexternalhit / meta-externalagent) is matched, never the word "Instagram" alone.
_PREVIEW_BOTS = re.compile(
    r"facebookexternalhit|facebookcatalog|meta-externalagent|meta-externalfetcher|"
    r"Slackbot|Slack-ImgProxy|Twitterbot|Googlebot|bingbot|LinkedInBot|Discordbot|"
    r"TelegramBot|WhatsApp/|Applebot|redditbot|Pinterestbot|SkypeUriPreview|"
    r"Embedly|vkShare|Iframely",
    re.IGNORECASE,
)

MEDIUM_DM = "dm"
MEDIUM_COMMENT = "comment"


def new_code() -> str:
    """A fresh link code (16 URL-safe characters)."""
    return secrets.token_urlsafe(CODE_BYTES)


def is_code(text: str) -> bool:
    return bool(CODE_PATTERN.match(text))


def link_key(rule_id: int, step: str, variant: str, person: str, target: str) -> str:
    """What makes a tracked link one: a person gets the same code for the same link again."""
    raw = "\x1f".join((str(rule_id), step, variant, person, target))
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


def is_preview_bot(user_agent: str) -> bool:
    """True for link-preview and crawler fetches, which are not counted as clicks."""
    return bool(_PREVIEW_BOTS.search(user_agent or ""))


def rule_slug(name: str, rule_id: int) -> str:
    """The rule's name as a campaign tag (``spring-sale``), ``rule-<id>`` if nothing is left."""
    plain = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", plain.lower()).strip("-")[:60].strip("-")
    return slug or f"rule-{rule_id}"


def with_utm(url: str, *, campaign: str, medium: str) -> str:
    """``url`` with UTM tags added (those it already has are kept as they are)."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    present = {name for name, _ in query}
    wanted = {"utm_source": "instagram", "utm_medium": medium, "utm_campaign": campaign}
    query += [(name, value) for name, value in wanted.items() if name not in present]
    return urlunsplit(parts._replace(query=urlencode(query)))


def urls_in(message: Mapping[str, Any]) -> list[str]:
    """Every link in a message payload, in order, once each."""
    found: list[str] = []

    def keep(url: str) -> str:
        found.append(url)
        return url

    rewrite_message(message, keep)
    return list(dict.fromkeys(found))


def rewrite_message(message: Mapping[str, Any], swap: Callable[[str], str]) -> dict[str, Any]:
    """A copy of ``message`` with each link replaced by ``swap(link)``: links in text, the
    URL buttons of a button template, and each card's buttons and default action."""
    out = dict(message)
    if isinstance(out.get("text"), str):
        out["text"] = rewrite_text(out["text"], swap)
    attachment = out.get("attachment")
    if isinstance(attachment, Mapping) and isinstance(attachment.get("payload"), Mapping):
        payload = dict(attachment["payload"])
        if isinstance(payload.get("text"), str):
            payload["text"] = rewrite_text(payload["text"], swap)
        if isinstance(payload.get("buttons"), list):
            payload["buttons"] = [_button(b, swap) for b in payload["buttons"]]
        if isinstance(payload.get("elements"), list):
            payload["elements"] = [_card(e, swap) for e in payload["elements"]]
        out["attachment"] = {**attachment, "payload": payload}
    return out


def rewrite_text(text: str, swap: Callable[[str], str]) -> str:
    def one(match: re.Match[str]) -> str:
        url = match.group(0)
        tail = ""
        while url and url[-1] in _TRAILING:
            url, tail = url[:-1], url[-1] + tail
        return swap(url) + tail if url else match.group(0)

    return _URL.sub(one, text)


def _button(button: Any, swap: Callable[[str], str]) -> Any:
    if isinstance(button, Mapping) and button.get("type") == "web_url" and button.get("url"):
        return {**button, "url": swap(str(button["url"]))}
    return button


def _card(card: Any, swap: Callable[[str], str]) -> Any:
    if not isinstance(card, Mapping):
        return card
    out = dict(card)
    if isinstance(out.get("buttons"), list):
        out["buttons"] = [_button(b, swap) for b in out["buttons"]]
    action = out.get("default_action")
    if isinstance(action, Mapping) and action.get("url"):
        out["default_action"] = {**action, "url": swap(str(action["url"]))}
    return out


def variant_of(variations: list[str], sent: str, render: Callable[[str], str]) -> str:
    """Which variation (``v1``, ``v2`` …) produced the text ``sent``; ``v1`` when unknown."""
    for n, template in enumerate(variations):
        if render(template) == sent:
            return f"v{n + 1}"
    return "v1"


@dataclass(frozen=True)
class Funnel:
    """A rule's stages: how many times it was triggered, answered, read, clicked, and leads.

    ``opened`` is None when Meta reported no reads for the rule's messages (reads come only
    for DMs the person opened in an app that reports them).
    """

    triggered: int
    replied: int
    opened: int | None
    clicked: int
    clicks: int
    leads: int

    def stages(self) -> list[tuple[str, int]]:
        """The stages to show, in order (DM opened only where Meta reported reads)."""
        shown = [("Triggered", self.triggered), ("Replied", self.replied)]
        if self.opened is not None:
            shown.append(("DM opened", self.opened))
        return [*shown, ("Clicked", self.clicked), ("Lead", self.leads)]
