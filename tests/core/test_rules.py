"""Rule matching: modes, accents, priority, media scope, many rules; seed-shaped configs."""

from __future__ import annotations

import time

from core.domain.rules import RuleIndex, RuleSpec, normalize, spec_of


def ids(rules: list[RuleSpec]) -> list[int]:
    return [r.id for r in rules]


def test_normalize_folds_case_accents_and_spaces() -> None:
    assert normalize("  Ça   VA  Crème ") == "ca va creme"
    assert normalize("PRÉCIO") == normalize("precio")


def test_match_modes() -> None:
    index = RuleIndex(
        [
            RuleSpec(1, "comment", ("price",), "whole_word"),
            RuleSpec(2, "comment", ("info",), "contains"),
            RuleSpec(3, "comment", ("send me the link",), "exact"),
            RuleSpec(4, "dm", (), "any"),
        ]
    )
    assert ids(index.match("comment", "What's the PRICE?")) == [1]
    assert ids(index.match("comment", "priceless")) == []
    assert ids(index.match("comment", "more information")) == [2]
    assert ids(index.match("comment", "Send me the link!")) == [3]
    assert ids(index.match("comment", "please send me the link")) == []
    assert ids(index.match("dm", "anything at all")) == [4]
    assert ids(index.match("story_reply", "price")) == []


def test_accents_several_keywords_and_multi_word_keywords() -> None:
    index = RuleIndex([RuleSpec(1, "dm", ("précio", "cost", "how much"), "whole_word")])
    assert ids(index.match("dm", "PRECIO por favor")) == [1]
    assert ids(index.match("dm", "the Cost?")) == [1]
    assert ids(index.match("dm", "How   much is it")) == [1]
    assert ids(index.match("dm", "howmuch")) == []


def test_priority_then_age_and_media_scope_and_active_flag() -> None:
    index = RuleIndex(
        [
            RuleSpec(1, "comment", ("guide",), priority=0),
            RuleSpec(2, "comment", ("guide",), priority=5, media_ids=frozenset({"m2"})),
            RuleSpec(3, "comment", ("guide",), priority=0),
            RuleSpec(4, "comment", ("guide",), priority=9, active=False),
        ]
    )
    assert ids(index.match("comment", "guide please", "m2")) == [2, 1, 3]
    assert ids(index.match("comment", "guide please", "m1")) == [1, 3]
    assert index.size == 3


def test_match_keywords_leaves_out_catch_all_rules() -> None:
    index = RuleIndex([RuleSpec(1, "dm", (), "any"), RuleSpec(2, "dm", ("menu",), "exact")])
    assert ids(index.match_keywords("dm", "hello")) == []
    assert ids(index.match_keywords("dm", "Menu")) == [2]


def test_old_rules_with_keywords_only_in_config_still_match() -> None:
    spec = spec_of(id=1, trigger="comment", keywords=[], config={"keywords": ["Link"]})
    assert ids(RuleIndex([spec]).match("comment", "link pls")) == [1]


def test_ten_thousand_rules_match_about_as_fast_as_ten() -> None:
    def build(n: int) -> RuleIndex:
        return RuleIndex(RuleSpec(i, "comment", (f"kw{i}", f"alt{i}")) for i in range(n))

    small, large = build(10), build(10_000)
    text = "I'd love the kw7 guide and more details please " * 3

    def cost(index: RuleIndex) -> float:
        start = time.perf_counter()
        for _ in range(300):
            index.match("comment", text)
        return time.perf_counter() - start

    assert ids(large.match("comment", "kw9999 please")) == [9999]
    # Generous bound: a loop over rules would be ~1000x slower.
    assert cost(large) < 20 * cost(small) + 0.05
