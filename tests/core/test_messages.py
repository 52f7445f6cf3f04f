"""Message payloads in Meta's format, placeholders and seeded variations."""

from __future__ import annotations

import random
from typing import Any

import pytest

from core.domain.messages import (
    Person,
    button_message,
    check_rule_messages,
    comment_reply,
    dm_message,
    fit_bytes,
    quick_reply_message,
    render,
)
from core.domain.rule_definition import DmButton, QuickReply, RuleDefinition
from core.domain.rules import Button
from core.errors import ValidationFailed


def test_placeholders() -> None:
    person = Person(username="alice", first_name="Alice", link="https://x.example")
    assert render("Hi {first_name} (@{username}): {link}", person) == (
        "Hi Alice (@alice): https://x.example"
    )
    assert render("Here: [LINK]", person) == "Here: https://x.example"
    assert render("Hi {first_name}!", Person(username="bob")) == "Hi bob!"
    assert render("Hi {first_name}!", Person()) == "Hi!"
    assert render("{unknown} stays", person) == "{unknown} stays"


def test_text_is_cut_to_1000_utf8_bytes_on_a_character_boundary() -> None:
    text = "é" * 800  # 1600 bytes
    cut = fit_bytes(text)
    assert len(cut.encode()) <= 1000 and cut.endswith("…")
    assert fit_bytes("short") == "short"


def test_button_template_has_at_most_three_buttons_of_both_kinds() -> None:
    buttons = [
        Button("Shop", url="https://shop.example"),
        Button("Talk to us", payload="TALK"),
        Button("A very long button title here", payload="X"),
        Button("Fourth", payload="4"),
    ]
    message = button_message("Pick one", buttons)
    payload = message["attachment"]["payload"]
    assert message["attachment"]["type"] == "template"
    assert payload["template_type"] == "button" and payload["text"] == "Pick one"
    assert payload["buttons"][0] == {
        "type": "web_url",
        "url": "https://shop.example",
        "title": "Shop",
    }
    assert payload["buttons"][1] == {"type": "postback", "title": "Talk to us", "payload": "TALK"}
    assert len(payload["buttons"]) == 3
    assert all(len(b["title"]) <= 20 for b in payload["buttons"])


def test_quick_replies_at_most_13_with_short_titles() -> None:
    options = [Button(f"Option number {i} longer", payload=f"P{i}") for i in range(20)]
    message = quick_reply_message("Choose", options)
    assert len(message["quick_replies"]) == 13
    assert message["quick_replies"][0] == {
        "content_type": "text",
        "title": "Option number 0 lon…",
        "payload": "P0",
    }
    assert all(len(q["title"]) <= 20 for q in message["quick_replies"])


def test_seeded_variations_are_reproducible_and_all_used() -> None:
    actions = _rule(comment_replies=["A", "B", "C"], dm_variations=["x {username}"])
    person = Person(username="alice")
    first = [comment_reply(actions, person, random.Random(3)) for _ in range(5)]
    assert len(set(first)) == 1
    rng = random.Random(3)
    seen = {comment_reply(actions, person, rng) for _ in range(60)}
    assert seen == {"A", "B", "C"}
    assert dm_message(actions, person, rng) == {"text": "x alice"}


def test_dm_types() -> None:
    person = Person(username="a")
    rng = random.Random(1)
    buttons = RuleDefinition.from_stored(
        {
            "name": "r",
            "trigger": "dm",
            "config": {
                "message_variations": ["Go {link}"],
                "dm_type": "text_button",
                "buttons": [{"text": "Open", "url": "https://u"}],
            },
        }
    )
    message = dm_message(buttons, person, rng)
    assert message is not None
    assert message["attachment"]["payload"]["text"] == "Go https://u"
    quick = _rule(
        dm_variations=["Pick"], dm_type="quick_replies", quick_replies=[QuickReply(title="Yes")]
    )
    assert dm_message(quick, person, rng) == {
        "text": "Pick",
        "quick_replies": [{"content_type": "text", "title": "Yes", "payload": "Yes"}],
    }
    assert dm_message(_rule(), person, rng) is None


def test_rule_editor_refuses_what_meta_would_reject() -> None:
    with pytest.raises(ValidationFailed) as caught:
        check_rule_messages(
            _rule(
                dm_variations=["x" * 1001],
                buttons=[DmButton(title=str(i), target="p") for i in range(4)],
            )
        )
    assert set(caught.value.fields) == {"text", "buttons"}


def _rule(**fields: Any) -> RuleDefinition:
    return RuleDefinition(name="r", account_id=1, trigger="comment", **fields)
