"""Smart replies, the pure part: config, prompt and the clean-up of the model's answer."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from core.domain.ai import AiError, AiErrorKind
from core.domain.ai_replies import (
    AiReplyConfig,
    ApprovalMode,
    Channel,
    HistoryEntry,
    ai_config_of,
    build_reply_prompt,
    check_ai_config,
    check_edited_text,
    finalize_reply,
    window_closes_at,
)
from core.errors import ValidationFailed

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def test_config_is_read_leniently_with_defaults() -> None:
    config = ai_config_of({"ai": {"prompt": "  Sell candles.  "}})
    assert config == AiReplyConfig(prompt="Sell candles.")
    assert config.max_sentences == 2
    assert config.approval is ApprovalMode.AUTO
    clamped = ai_config_of(
        {"ai": {"prompt": "p", "max_chars": 5000, "max_sentences": "0", "approval": "approve"}}
    )
    assert clamped is not None
    assert (clamped.max_chars, clamped.max_sentences) == (1000, 1)
    assert clamped.approval is ApprovalMode.APPROVE
    assert ai_config_of({"ai": {"prompt": "p", "require_approval": True}}).approval == "approve"  # type: ignore[union-attr]


def test_rules_without_an_ai_action_have_no_config() -> None:
    assert ai_config_of({"message_variations": ["hi"]}) is None
    assert ai_config_of({"ai": {"prompt": ""}}) is None
    assert ai_config_of({"ai": {"prompt": "p", "enabled": False}}) is None
    seed_style = ai_config_of({"dm_type": "smart_ai", "ai_prompt": "Answer about yoga."})
    assert seed_style is not None and seed_style.prompt == "Answer about yoga."


def test_rule_editor_validation_names_fields() -> None:
    with pytest.raises(ValidationFailed) as caught:
        check_ai_config({"prompt": "", "max_chars": 2000, "approval": "maybe"})
    assert set(caught.value.fields) == {"prompt", "max_chars", "approval"}
    assert check_ai_config({"prompt": "ok", "approval": "approve"}).approval == "approve"


def test_prompt_has_instructions_tone_knowledge_history_in_order_and_new_message() -> None:
    config = AiReplyConfig(
        prompt="You work for Lumen Studio.", tone="warm", knowledge="Candles cost 12 EUR."
    )
    history = [
        HistoryEntry("out", "Hi! How can I help?", T0 + timedelta(minutes=1), 2),
        HistoryEntry("in", "Do you ship to Spain?", T0, 1),
        HistoryEntry("in", "And the price?", T0 + timedelta(minutes=2), 3),
        HistoryEntry("in", "   ", T0 + timedelta(minutes=3), 4),
    ]
    messages = build_reply_prompt(config, history, "Thanks!", account_name="lumen")
    system = messages[0]
    assert system.role == "system"
    assert "You work for Lumen Studio." in system.content
    assert "Tone: warm." in system.content
    assert "Candles cost 12 EUR." in system.content
    assert "2 sentences" in system.content and "1000 characters" in system.content
    assert "@lumen" in system.content
    assert [(m.role, m.content) for m in messages[1:]] == [
        ("user", "Do you ship to Spain?"),
        ("assistant", "Hi! How can I help?"),
        ("user", "And the price?"),
        ("user", "Thanks!"),
    ]


def test_history_is_limited_to_the_newest_messages() -> None:
    config = AiReplyConfig(prompt="p", history_messages=2)
    history = [HistoryEntry("in", f"m{i}", T0 + timedelta(minutes=i), i) for i in range(5)]
    messages = build_reply_prompt(config, history, "now")
    assert [m.content for m in messages[1:]] == ["m3", "m4", "now"]


def test_windows() -> None:
    assert window_closes_at(Channel.DM, T0) == T0 + timedelta(hours=24)
    assert window_closes_at(Channel.PRIVATE_REPLY, T0) == T0 + timedelta(days=7)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (
            "Hi! Our candles cost 12 EUR. We ship to Spain. Anything else?",
            "Hi! Our candles cost 12 EUR.",
        ),
        ('"Sure thing, {first_name}!"', "Sure thing, Ana!"),
        ("Hi [Customer Name], the link is {link}.", "Hi, the link is https://x.test/shop."),
        ("Hello {{ name }}! Best, [Your Name]", "Hello! Best"),
        (
            "**Yes!** See [our shop](https://x.test/s) now.",
            "Yes! See our shop: https://x.test/s now.",
        ),
        ("Assistant: Of course.", "Of course."),
        (
            "Price: 12.50 EUR at example.com today! Next one.",
            "Price: 12.50 EUR at example.com today! Next one.",
        ),
    ],
)
def test_answers_are_cleaned(raw: str, expected: str) -> None:
    values = {"first_name": "Ana", "username": "ana.k", "link": "https://x.test/shop"}
    assert finalize_reply(raw, values=values) == expected


def test_unknown_link_placeholder_is_removed_not_sent() -> None:
    text = finalize_reply("Grab it here: {link}. Thanks!", values={})
    assert "{" not in text and "link" not in text


def test_long_answers_fit_instagram_bytes_on_a_utf8_boundary() -> None:
    raw = "Привет " * 400  # 2 bytes per Cyrillic letter: far beyond 1000 bytes, no sentence end
    text = finalize_reply(raw, max_sentences=10)
    assert len(text.encode("utf-8")) <= 1000
    assert text.endswith("…")
    text.encode("utf-8").decode("utf-8")  # whole characters only
    emoji = "🎉" * 400
    cut = finalize_reply(emoji, max_sentences=10)
    assert len(cut.encode("utf-8")) <= 1000 and set(cut) <= {"🎉", "…"}


def test_max_chars_cuts_at_a_sentence_end_when_possible() -> None:
    raw = "First sentence is here. Second one is quite a bit longer than the first one."
    assert finalize_reply(raw, max_chars=40, max_sentences=5) == "First sentence is here."
    no_stop = finalize_reply("word " * 30, max_chars=30)
    assert len(no_stop) <= 30 and no_stop.endswith("…") and "  " not in no_stop


@pytest.mark.parametrize("raw", ["", "   ", "{name}", "[Your Name]", "...", '""'])
def test_nothing_left_is_an_error_not_an_empty_message(raw: str) -> None:
    with pytest.raises(AiError) as caught:
        finalize_reply(raw)
    assert caught.value.kind is AiErrorKind.EMPTY


def test_edited_text_is_checked_not_cut() -> None:
    assert check_edited_text("Hi {first_name}!", {"first_name": "Ana"}) == "Hi Ana!"
    with pytest.raises(ValidationFailed, match="too long"):
        check_edited_text("é" * 501)
    with pytest.raises(ValidationFailed, match="placeholder"):
        check_edited_text("Hi [NAME], here: {link}")
    with pytest.raises(ValidationFailed, match="empty"):
        check_edited_text("  ")
