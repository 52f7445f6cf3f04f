"""The rule editor's form and live preview for the growth tools (follow step, cards, links)."""

from __future__ import annotations

from core.domain.rule_checks import review
from core.domain.rule_definition import RuleDefinition
from panel import rule_form, rule_preview


def _gate_rule(trigger: str) -> RuleDefinition:
    return RuleDefinition.model_validate(
        {
            "name": "Gate",
            "account_id": 1,
            "trigger": trigger,
            "keywords": ["guide"],
            "dm_type": "lead_capture",
            "lead_flow": [
                {"type": "follow", "text": "Follow @shop, then tap Done"},
                {"type": "ask", "text": "Your email?", "field": "email"},
                {"type": "send", "messages": [rule_preview.CLOSING_MESSAGE]},
            ],
        }
    )


def test_the_follow_step_survives_the_form_and_is_previewed() -> None:
    form = rule_form.form_of_definition(_gate_rule("dm"))
    assert form["flow-0-type"] == ["follow"]
    read, problems = rule_form.read_form(form)
    tidy, found = review(read)
    assert problems == {} and found == {}
    assert tidy.lead_flow[0].type == "follow"
    assert tidy.lead_flow[0].text == "Follow @shop, then tap Done"

    bubbles = rule_preview.preview(tidy)
    said = [(b.who, b.text, b.buttons) for b in bubbles]
    assert said[1][0] == "note" and "not yet" in said[1][1]
    assert ("dm", "Follow @shop, then tap Done", ("Done",)) in said
    assert ("dm", "Your email?", ()) in said and said[-1][1].startswith("Lead saved")
    assert said[-2][0] == "dm" and said[-2][1].startswith("Thank you")  # the closing step
    assert any(who == "note" and "follow you now" in text for who, text, _ in said)


def test_from_a_comment_the_preview_sends_the_gate_without_a_check() -> None:
    bubbles = rule_preview.preview(review(_gate_rule("comment"))[0])
    assert [b.who for b in bubbles][:2] == ["person", "dm"]
    assert bubbles[1].buttons == ("Done",)


def test_cards_survive_the_form_are_previewed_and_problems_sit_by_their_field() -> None:
    rule = RuleDefinition.model_validate(
        {
            "name": "Catalog",
            "account_id": 1,
            "trigger": "comment",
            "keywords": ["shoes"],
            "dm_type": "cards",
            "cards": [
                {
                    "title": "Runner",
                    "subtitle": "Light",
                    "image_url": "https://cdn.example/r.jpg",
                    "buttons": [{"title": "Get the guide", "target": "GUIDE"}],
                },
                {"title": "Sandal"},
            ],
        }
    )
    form = rule_form.form_of_definition(rule)
    assert form["card-1-title"] == ["Sandal"]
    read, problems = rule_form.read_form(form)
    tidy, found = review(read)
    assert problems == {} and found == {} and tidy.cards == rule.cards

    (said, bubble) = rule_preview.preview(tidy, "shoes")
    assert said.who == "person" and bubble.who == "dm"
    assert [c.title for c in bubble.cards] == ["Runner", "Sandal"]
    assert bubble.cards[0].buttons == ("Get the guide",) and bubble.cards[0].subtitle == "Light"

    form["card-0-subtitle"] = ["s" * 81]
    form["card-1-button-0-title"] = ["t" * 21]
    form["card-1-button-0-target"] = ["X"]
    _, problems = review(rule_form.read_form(form)[0])
    errors = rule_form.form_errors(problems, form)
    assert "card-0-subtitle" in errors and "card-1-button-0-title" in errors
