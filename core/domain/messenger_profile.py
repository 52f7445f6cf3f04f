"""An account's conversation starters: ice breakers and the persistent menu (pure, no I/O).

Meta's messenger profile API for Instagram (``POST /me/messenger_profile`` with
``platform=instagram``) replaces the whole ``ice_breakers`` and ``persistent_menu`` fields
each time, so a :class:`MessengerProfile` is always handled as one document: validated
here, stored as :meth:`MessengerProfile.as_json`, and sent as :meth:`wire_fields`.

Limits: META_API.md states at most 4 ice breakers and a menu of URL and postback buttons
only. Lengths it does not state follow Meta's public Messenger Platform reference: a
question up to 80 characters, a menu title up to 30, a payload up to 1000, at most 20 menu
items.
An ice breaker's payload arrives as a ``postback`` webhook, which rules with the
``postback`` trigger match (keyword = payload).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

MAX_ICE_BREAKERS = 4
MAX_MENU_ITEMS = 20
MAX_QUESTION = 80
MAX_MENU_TITLE = 30
MAX_PAYLOAD = 1000

ButtonKind = Literal["web_url", "postback"]


class ProfileError(ValueError):
    """The profile cannot be saved; ``problems`` lists every reason, in the order found."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class IceBreaker:
    question: str
    payload: str


@dataclass(frozen=True)
class MenuItem:
    kind: ButtonKind
    title: str
    url: str = ""
    payload: str = ""


@dataclass(frozen=True)
class MessengerProfile:
    ice_breakers: tuple[IceBreaker, ...] = ()
    menu: tuple[MenuItem, ...] = field(default=())

    @property
    def is_empty(self) -> bool:
        return not self.ice_breakers and not self.menu

    def as_json(self) -> dict[str, Any]:
        """The stored shape (and the JSON API's)."""
        return {
            "ice_breakers": [
                {"question": b.question, "payload": b.payload} for b in self.ice_breakers
            ],
            "menu": [_item_json(item) for item in self.menu],
        }

    def wire_fields(self) -> dict[str, Any]:
        """The body for Meta's messenger profile call; empty parts are left out (and deleted)."""
        body: dict[str, Any] = {"platform": "instagram"}
        if self.ice_breakers:
            body["ice_breakers"] = [
                {
                    "call_to_actions": [
                        {"question": b.question, "payload": b.payload} for b in self.ice_breakers
                    ],
                    "locale": "default",
                }
            ]
        if self.menu:
            body["persistent_menu"] = [
                {
                    "locale": "default",
                    "call_to_actions": [_item_json(item) for item in self.menu],
                }
            ]
        return body

    def absent_fields(self) -> list[str]:
        """The fields to delete at Meta: what this profile no longer has."""
        absent = []
        if not self.ice_breakers:
            absent.append("ice_breakers")
        if not self.menu:
            absent.append("persistent_menu")
        return absent

    def payloads(self) -> list[str]:
        """Every payload a tap may send back (ice breakers, then menu postbacks)."""
        return [b.payload for b in self.ice_breakers] + [
            item.payload for item in self.menu if item.kind == "postback"
        ]


def _item_json(item: MenuItem) -> dict[str, str]:
    if item.kind == "web_url":
        return {"type": "web_url", "title": item.title, "url": item.url}
    return {"type": "postback", "title": item.title, "payload": item.payload}


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def _check_title(label: str, value: str, most: int, problems: list[str]) -> None:
    if not value:
        problems.append(f"{label} is empty")
    elif len(value) > most:
        problems.append(f"{label} is {len(value)} characters; at most {most}")


def _check_payload(label: str, value: str, problems: list[str]) -> None:
    if not value:
        problems.append(f"{label} needs a payload")
    elif len(value) > MAX_PAYLOAD:
        problems.append(f"{label}'s payload is over {MAX_PAYLOAD} characters")


def parse_profile(document: Mapping[str, Any]) -> MessengerProfile:
    """A validated profile from the stored / JSON API shape; raises :class:`ProfileError`
    listing every problem at once, so a form can show them all."""
    problems: list[str] = []
    raw_breakers = document.get("ice_breakers") or []
    raw_menu = document.get("menu") or []
    if not isinstance(raw_breakers, list) or not isinstance(raw_menu, list):
        raise ProfileError(["ice_breakers and menu must be lists"])
    if len(raw_breakers) > MAX_ICE_BREAKERS:
        problems.append(
            f"{len(raw_breakers)} ice breakers; Instagram shows at most {MAX_ICE_BREAKERS}"
        )
    if len(raw_menu) > MAX_MENU_ITEMS:
        problems.append(f"{len(raw_menu)} menu items; at most {MAX_MENU_ITEMS}")
    breakers: list[IceBreaker] = []
    seen: set[str] = set()
    for n, raw in enumerate(raw_breakers, 1):
        entry = raw if isinstance(raw, Mapping) else {}
        question, payload = _text(entry.get("question")), _text(entry.get("payload"))
        _check_title(f"Ice breaker {n}'s question", question, MAX_QUESTION, problems)
        _check_payload(f"Ice breaker {n}", payload, problems)
        if question.casefold() in seen and question:
            problems.append(f"Ice breaker {n} repeats the question {question!r}")
        seen.add(question.casefold())
        breakers.append(IceBreaker(question, payload))
    items: list[MenuItem] = []
    for n, raw in enumerate(raw_menu, 1):
        entry = raw if isinstance(raw, Mapping) else {}
        kind, title = _text(entry.get("type")), _text(entry.get("title"))
        _check_title(f"Menu item {n}'s title", title, MAX_MENU_TITLE, problems)
        if kind == "web_url":
            url = _text(entry.get("url"))
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                problems.append(f"Menu item {n} needs an http(s) URL")
            items.append(MenuItem("web_url", title, url=url))
        elif kind == "postback":
            payload = _text(entry.get("payload"))
            _check_payload(f"Menu item {n}", payload, problems)
            items.append(MenuItem("postback", title, payload=payload))
        else:
            problems.append(f"Menu item {n} must be a web_url or postback button")
    if problems:
        raise ProfileError(problems)
    return MessengerProfile(tuple(breakers), tuple(items))
