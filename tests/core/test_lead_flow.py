"""Stepping lead-capture flows: ask, validate, re-ask, give up, save, send, branch."""

from __future__ import annotations

import random

from core.domain import lead_flow
from core.domain.lead_flow import LeadFlow, validate
from core.domain.messages import Person

SEED_FLOW = [
    {
        "step": 1,
        "type": "ask",
        "text": "What's your email?",
        "field_type": "email",
        "validation": "email",
        "retry_message": "Hmm, {first_name}, that email looks off.",
        "max_attempts": 2,
    },
    {"step": 2, "type": "wait", "wait_for": "user_reply"},
    {"step": 3, "type": "save", "field": "email", "save_to": "lead_data"},
    {"step": 4, "type": "send", "message": "Thanks! Here's your reward: [LINK]"},
]
PERSON = Person(username="alice", first_name="Alice", link="https://gift.example")


def rng() -> random.Random:
    return random.Random(1)


def test_validation() -> None:
    assert validate("email", " Bob@Example.COM ") == "Bob@example.com"
    assert validate("email", "bob@") is None
    assert validate("phone", "+44 20 7946 0958") == "+442079460958"
    assert validate("phone", "020 7946 0958", region="GB") == "+442079460958"
    assert validate("phone", "12345") is None
    assert validate("phone", "call me") is None
    assert validate("name", "  Ana   Lúcia ") == "Ana Lúcia"
    assert validate("name", "1234") is None
    assert validate("custom", "anything") == "anything"
    assert validate("custom", "   ") is None


def test_seed_flow_asks_saves_and_sends() -> None:
    flow = LeadFlow.from_config(SEED_FLOW)
    turn = lead_flow.start(flow, 9, PERSON, rng())
    assert turn.status == "waiting" and turn.message() == {"text": "What's your email?"}
    assert turn.state is not None and turn.state["rule_id"] == 9
    done = lead_flow.answer(flow, turn.state, "alice@example.com", PERSON, rng())
    assert done.status == "completed" and done.state is None
    assert done.lead == {"email": "alice@example.com"}
    assert done.message() == {"text": "Thanks! Here's your reward: https://gift.example"}


def test_bad_answers_are_asked_again_then_given_up() -> None:
    flow = LeadFlow.from_config(SEED_FLOW)
    state = lead_flow.start(flow, 1, PERSON, rng()).state
    assert state is not None
    again = lead_flow.answer(flow, state, "not an email", PERSON, rng())
    assert again.status == "invalid" and again.lead is None
    assert again.message() == {"text": "Hmm, Alice, that email looks off."}
    assert again.state is not None
    fixed = lead_flow.answer(flow, again.state, "a@b.co", PERSON, rng())
    assert fixed.status == "completed" and fixed.lead == {"email": "a@b.co"}
    twice = lead_flow.answer(flow, again.state, "still bad", PERSON, rng())
    assert twice.status == "gave_up" and twice.state is None and twice.lead is None
    assert twice.message() is not None


def test_several_fields_branch_on_quick_replies_and_custom_fields() -> None:
    flow = LeadFlow.from_config(
        [
            {"type": "send", "message_variations": ["Hi {first_name}!"]},
            {"type": "ask", "text": "Your phone?", "field_type": "phone"},
            {
                "id": "kind",
                "type": "branch",
                "text": "Buying for?",
                "key": "audience",
                "options": [
                    {"title": "Me", "payload": "ME", "goto": "size"},
                    {"title": "A gift", "payload": "GIFT", "goto": "wrap"},
                ],
            },
            {"id": "size", "type": "ask", "text": "Your size?", "field": "size", "goto": "done"},
            {"id": "wrap", "type": "send", "message": "We'll gift-wrap it."},
            {"id": "done", "type": "save"},
            {"type": "send", "message": "Saved!"},
        ],
        {"phone_region": "us"},
    )
    first = lead_flow.start(flow, 1, PERSON, rng())
    assert first.message() == {"text": "Hi Alice!\n\nYour phone?"}
    assert first.state is not None
    branch = lead_flow.answer(flow, first.state, "(415) 555-2671", PERSON, rng())
    assert branch.status == "waiting" and branch.state is not None
    message = branch.message()
    assert message is not None and message["text"] == "Buying for?"
    assert [q["payload"] for q in message["quick_replies"]] == ["ME", "GIFT"]
    wrong = lead_flow.answer(flow, branch.state, "dunno", PERSON, rng())
    assert wrong.status == "invalid"
    gift = lead_flow.answer(flow, branch.state, "A gift", PERSON, rng(), payload="GIFT")
    assert gift.status == "completed"
    assert gift.lead == {"phone": "+14155552671", "audience": "GIFT"}
    assert gift.message() == {"text": "We'll gift-wrap it.\n\nSaved!"}
    me = lead_flow.answer(flow, branch.state, "me", PERSON, rng())  # typed title works too
    assert me.state is not None and me.texts == ("Your size?",)
    sized = lead_flow.answer(flow, me.state, "M", PERSON, rng())
    assert sized.lead == {"phone": "+14155552671", "audience": "ME", "size": "M"}
    assert sized.message() == {"text": "Saved!"}
    standard, custom = lead_flow.lead_fields(sized.lead)
    assert standard == {"phone": "+14155552671"} and custom == {"audience": "ME", "size": "M"}


def test_a_flow_without_save_step_saves_at_its_end() -> None:
    flow = LeadFlow.from_config([{"type": "ask", "text": "Name?", "field_type": "name"}])
    state = lead_flow.start(flow, 1, PERSON, rng()).state
    assert state is not None
    done = lead_flow.answer(flow, state, "Alice", PERSON, rng())
    assert done.lead == {"name": "Alice"} and done.message() is None


def test_goto_loops_stop() -> None:
    flow = LeadFlow.from_config([{"id": "a", "type": "send", "message": "x", "goto": "a"}])
    turn = lead_flow.start(flow, 1, PERSON, rng())
    assert turn.status == "completed" and len(turn.texts) == lead_flow.MAX_STEPS_PER_TURN


def test_email_and_phone_are_asked_as_typed_text() -> None:
    # Meta disabled the user_email / user_phone_number quick replies on 2026-10-05: a step
    # stored with them still asks in plain text and reads what the person types.
    flow = LeadFlow.from_config(
        [
            {
                "type": "ask",
                "text": "Your email?",
                "field_type": "email",
                "quick_replies": [{"content_type": "user_email"}],
            },
            {
                "type": "ask",
                "text": "Your phone?",
                "field_type": "phone",
                "quick_replies": [{"content_type": "user_phone_number"}],
            },
        ]
    )
    turn = lead_flow.start(flow, 1, PERSON, rng())
    assert turn.message() == {"text": "Your email?"}
    assert turn.state is not None
    turn = lead_flow.answer(flow, turn.state, "alice@example.com", PERSON, rng())
    assert turn.message() == {"text": "Your phone?"}
    assert turn.state is not None
    done = lead_flow.answer(flow, turn.state, "+44 20 7946 0958", PERSON, rng())
    assert done.lead == {"email": "alice@example.com", "phone": "+442079460958"}
