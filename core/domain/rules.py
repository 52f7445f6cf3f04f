"""Automation rules: which rule answers an event (pure, indexed, fast with thousands of rules).

Text and keywords are compared after :func:`normalize` (case-folded, accents removed, runs of
white space collapsed). Match modes:

- ``whole_word``: the keyword appears bounded by non-word characters ("price" matches
  "Price?" but not "priceless"); a keyword may itself be several words.
- ``contains``: the keyword appears anywhere ("price" matches "priceless").
- ``exact``: the whole message equals the keyword (surrounding punctuation ignored).
- ``any``: every message matches (a rule with no keywords behaves the same).

Keywords of every ``whole_word``/``contains`` rule of a trigger live in one Aho-Corasick
automaton, ``exact`` keywords in a dict, so the cost of matching grows with the length of the
message and the number of hits, not with the number of rules.
"""

from __future__ import annotations

import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import ahocorasick

TRIGGERS = ("comment", "dm", "story_reply", "story_mention", "postback", "ref_link", "live_comment")
# Triggers whose events are comments (answered with a public and a private reply).
COMMENT_TRIGGERS = ("comment", "live_comment")
# How a comment rule treats comments on ads: also answers them, answers only them, or skips them.
AD_COMMENT_MODES = ("also", "only", "skip")
MATCH_MODES = ("whole_word", "contains", "exact", "any")

_SPACES = re.compile(r"\s+")
_EDGE_PUNCT = " \t\n\r.,!?;:'\"()[]{}¡¿…-_*~"


def normalize(text: str) -> str:
    """Case-fold, strip accents and collapse white space: "  Ça  VA " → "ca va"."""
    folded = unicodedata.normalize("NFKD", text.casefold())
    stripped = "".join(ch for ch in folded if not unicodedata.combining(ch))
    return _SPACES.sub(" ", stripped).strip()


def _is_word_char(ch: str) -> bool:
    return ch.isalnum() or ch == "_"


@dataclass(frozen=True)
class RuleSpec:
    """What matching needs to know about a rule."""

    id: int
    trigger: str
    keywords: tuple[str, ...] = ()
    match_mode: str = "whole_word"
    priority: int = 0
    media_ids: frozenset[str] = frozenset()
    cooldown_s: int = 0
    first_comment_only: bool = False
    active: bool = True
    ads: str = "also"

    @property
    def matches_anything(self) -> bool:
        return self.match_mode == "any" or not any(normalize(k) for k in self.keywords)

    def in_scope(self, media_id: str, *, is_ad: bool = False) -> bool:
        if (self.ads == "only" and not is_ad) or (self.ads == "skip" and is_ad):
            return False
        return not self.media_ids or media_id in self.media_ids


def _order(rule: RuleSpec) -> tuple[int, int]:
    return (-rule.priority, rule.id)


@dataclass
class _TriggerIndex:
    automaton: Any = None  # ahocorasick.Automaton: keyword → list[(rule, mode, length)]
    exact: dict[str, list[RuleSpec]] = field(default_factory=lambda: defaultdict(list))
    anything: list[RuleSpec] = field(default_factory=list)


class RuleIndex:
    """The active rules of one account, indexed by trigger and keyword."""

    def __init__(self, rules: Iterable[RuleSpec]) -> None:
        self._by_trigger: dict[str, _TriggerIndex] = {}
        self.size = 0
        words: dict[str, dict[str, list[tuple[RuleSpec, str]]]] = defaultdict(
            lambda: defaultdict(list)
        )
        for rule in rules:
            if not rule.active:
                continue
            self.size += 1
            index = self._by_trigger.setdefault(rule.trigger, _TriggerIndex())
            if rule.matches_anything:
                index.anything.append(rule)
                continue
            for keyword in {normalize(k) for k in rule.keywords} - {""}:
                if rule.match_mode == "exact":
                    index.exact[keyword.strip(_EDGE_PUNCT)].append(rule)
                else:
                    words[rule.trigger][keyword].append((rule, rule.match_mode))
        for trigger, by_word in words.items():
            automaton = ahocorasick.Automaton()
            for word, hits in by_word.items():
                automaton.add_word(word, (len(word), tuple(hits)))
            automaton.make_automaton()
            self._by_trigger[trigger].automaton = automaton
        for index in self._by_trigger.values():
            index.anything.sort(key=_order)

    def match(
        self, trigger: str, text: str, media_id: str = "", *, is_ad: bool = False
    ) -> list[RuleSpec]:
        """Rules of ``trigger`` whose keywords match ``text`` and whose scope covers
        ``media_id`` (a comment on an ad when ``is_ad``), best first (highest priority,
        then oldest)."""
        index = self._by_trigger.get(trigger)
        if index is None:
            return []
        found = self._keyword_hits(index, normalize(text))
        found.update((rule.id, rule) for rule in index.anything)
        hits = (rule for rule in found.values() if rule.in_scope(media_id, is_ad=is_ad))
        return sorted(hits, key=_order)

    def match_keywords(
        self, trigger: str, text: str, media_id: str = "", *, is_ad: bool = False
    ) -> list[RuleSpec]:
        """Like :meth:`match`, without the ``any`` rules: a message that names a keyword."""
        index = self._by_trigger.get(trigger)
        if index is None:
            return []
        found = self._keyword_hits(index, normalize(text))
        hits = (rule for rule in found.values() if rule.in_scope(media_id, is_ad=is_ad))
        return sorted(hits, key=_order)

    @staticmethod
    def _keyword_hits(index: _TriggerIndex, text: str) -> dict[int, RuleSpec]:
        found: dict[int, RuleSpec] = {}
        if not text:
            return found
        for rule in index.exact.get(text.strip(_EDGE_PUNCT), ()):
            found[rule.id] = rule
        if index.automaton is None:
            return found
        for end, (length, hits) in index.automaton.iter(text):
            start = end - length + 1
            bounded: bool | None = None
            for rule, mode in hits:
                if rule.id in found:
                    continue
                if mode == "contains":
                    found[rule.id] = rule
                    continue
                if bounded is None:
                    before = text[start - 1] if start > 0 else " "
                    after = text[end + 1] if end + 1 < len(text) else " "
                    bounded = not _is_word_char(before) and not _is_word_char(after)
                if bounded:
                    found[rule.id] = rule
        return found


# ---------------------------------------------------------------- what messages carry


@dataclass(frozen=True)
class Button:
    title: str
    url: str = ""
    payload: str = ""


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def _texts(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    return tuple(t for t in (_text(v) for v in _list(value)) if t)


def spec_of(
    *,
    id: int,
    trigger: str,
    keywords: Iterable[Any] | None = None,
    match_mode: str = "whole_word",
    priority: int = 0,
    media_ids: Iterable[Any] | None = None,
    cooldown_s: int = 0,
    first_comment_only: bool = False,
    active: bool = True,
    config: Mapping[str, Any] | None = None,
    ads: str = "also",
) -> RuleSpec:
    """A RuleSpec from stored columns; old rules kept their keywords in ``config``, and
    ``config`` says how the rule treats ads and whether it waits for the next post."""
    words = [k for k in (keywords or ()) if isinstance(k, str)]
    scope = frozenset(str(m) for m in (media_ids or ()) if m)
    if config:
        if not words:
            words = [k for k in _texts(config.get("keywords"))]
        ads = _text(config.get("ad_comments")) or ads
        if config.get("next_post") is True and not scope:
            active = False  # waits for the next post: answers nothing until it is published
    return RuleSpec(
        id=id,
        trigger=trigger,
        keywords=tuple(words),
        match_mode=match_mode if match_mode in MATCH_MODES else "whole_word",
        priority=priority,
        media_ids=scope,
        cooldown_s=max(0, cooldown_s),
        first_comment_only=first_comment_only,
        active=active,
        ads=ads if ads in AD_COMMENT_MODES else "also",
    )
