"""Card carousels: the rule's cards, the generic template, its limits, the sandbox's check."""

from __future__ import annotations

import random
from typing import Any

import pytest

from core.domain.messages import Person, dm_message
from core.domain.rule_checks import review
from core.domain.rule_definition import RuleDefinition
from sandbox.errors import SandboxError
from sandbox.message_shapes import check_generic


def _cards_rule(cards: list[dict[str, Any]]) -> RuleDefinition:
    return RuleDefinition.model_validate(
        {
            "name": "Catalog",
            "account_id": 1,
            "trigger": "comment",
            "keywords": ["shoes"],
            "dm_type": "cards",
            "cards": cards,
            "link": "https://shop.example/all",
        }
    )


SHOE = {
    "title": "Runner for {first_name}",
    "subtitle": "Light and fast",
    "image_url": "https://cdn.example/runner.jpg",
    "url": "https://shop.example/runner",
    "buttons": [
        {"title": "Buy", "target": "https://shop.example/runner/buy"},
        {"title": "Get the guide", "target": "GUIDE"},
    ],
}


def test_cards_become_a_generic_template_and_survive_storage() -> None:
    tidy, problems = review(_cards_rule([SHOE, {"title": "Sandal"}, {"title": ""}]))
    assert problems == {} and len(tidy.cards) == 2
    back = RuleDefinition.from_stored({**tidy.stored_columns(), "account_id": 1})
    assert back.dm_type == "cards" and back.cards == tidy.cards
    message = dm_message(back, Person(username="ann", first_name="Ann"), random.Random(1))
    assert message is not None
    payload = message["attachment"]["payload"]
    assert payload["template_type"] == "generic"
    first, second = payload["elements"]
    assert first == {
        "title": "Runner for Ann",
        "subtitle": "Light and fast",
        "image_url": "https://cdn.example/runner.jpg",
        "default_action": {"type": "web_url", "url": "https://shop.example/runner"},
        "buttons": [
            {"type": "web_url", "url": "https://shop.example/runner/buy", "title": "Buy"},
            {"type": "postback", "title": "Get the guide", "payload": "GUIDE"},
        ],
    }
    assert second == {"title": "Sandal"}
    check_generic(payload)  # what the sandbox accepts, as Meta does


@pytest.mark.parametrize(
    ("cards", "path"),
    [
        ([], "cards.0.title"),
        ([{"subtitle": "no title"}], "cards.0.title"),
        ([{"title": "x" * 81}], "cards.0.title"),
        ([{"title": "ok", "subtitle": "y" * 81}], "cards.0.subtitle"),
        ([{"title": "ok", "image_url": "ftp://cdn.example/a.jpg"}], "cards.0.image_url"),
        ([{"title": f"card {n}"} for n in range(11)], "cards"),
        ([{"title": "ok", "buttons": [{"title": "t", "target": "P"}] * 4}], "cards.0.buttons"),
        (
            [{"title": "ok", "buttons": [{"title": "a" * 21, "target": "P"}]}],
            "cards.0.buttons.0.title",
        ),
    ],
)
def test_cards_beyond_metas_limits_are_refused(cards: list[dict[str, Any]], path: str) -> None:
    assert path in review(_cards_rule(cards))[1]


@pytest.mark.parametrize(
    "payload",
    [
        {"template_type": "generic", "elements": []},
        {"template_type": "generic", "elements": [{"title": str(n)} for n in range(11)]},
        {"template_type": "generic", "elements": [{"subtitle": "no title"}]},
        {"template_type": "generic", "elements": [{"title": "t" * 81}]},
        {"template_type": "generic", "elements": [{"title": "t", "buttons": [{"type": "call"}]}]},
        {
            "template_type": "generic",
            "elements": [{"title": "t", "buttons": [{"type": "web_url", "title": "x"}]}],
        },
    ],
)
def test_the_sandbox_refuses_a_generic_template_meta_would_refuse(payload: dict[str, Any]) -> None:
    with pytest.raises(SandboxError):
        check_generic(payload)
