"""Each account's rule index, kept per worker process: rebuilt when the account's rules
change, forgotten at once when a change is announced (``core.services.rule_changes``)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from tortoise.functions import Count, Max

from core.db.models import AutomationRule
from core.domain.rule_definition import RuleDefinition
from core.domain.rules import RuleIndex, spec_of
from core.domain.scope import instance_level

# How long a worker trusts its index before checking the rules' signature again.
RULES_CHECK_S = 1.0


@dataclass
class _CachedIndex:
    signature: tuple[Any, ...]
    index: RuleIndex
    rules: dict[int, AutomationRule]
    checked_at: float = 0.0
    # Each rule's definition, read once per version of the index (as it is used).
    definitions: dict[int, RuleDefinition] = field(default_factory=dict)


@dataclass
class RuleCache:
    """Each account's rule index, rebuilt when its rules change.

    Changes made through the rule editor are announced (``core.services.rule_changes``) and
    seen by the next batch of events. Other writes are seen through (count, highest id,
    latest ``updated_at``), checked each second.
    """

    _cache: dict[int, _CachedIndex] = field(default_factory=dict)
    _version: int | None = None

    def follow(self, version: int) -> None:
        """Forget every index when a rule change was announced since the last batch."""
        if version != self._version:
            self._cache.clear()
            self._version = version

    def definition(self, rule: AutomationRule) -> RuleDefinition:
        """``rule`` as a :class:`RuleDefinition`: read once while ``rule`` is the cached row."""
        cached = self._cache.get(rule.account_id)
        if cached is None or cached.rules.get(rule.id) is not rule:
            return RuleDefinition.from_stored(rule)
        found = cached.definitions.get(rule.id)
        if found is None:
            found = cached.definitions[rule.id] = RuleDefinition.from_stored(rule)
        return found

    @instance_level("a cache of one account's rules, for webhook events of any account")
    async def get(self, account_id: int) -> _CachedIndex:
        cached = self._cache.get(account_id)
        now = time.monotonic()
        if cached is not None and now - cached.checked_at < RULES_CHECK_S:
            return cached
        row = (
            await AutomationRule.filter(account_id=account_id)
            .annotate(n=Count("id"), top=Max("id"), last=Max("updated_at"))
            .values("n", "top", "last")
        )
        first = row[0] if row else {}
        signature = (first.get("n"), first.get("top"), str(first.get("last")))
        if cached is not None and cached.signature == signature:
            cached.checked_at = now
            return cached
        rules = await AutomationRule.filter(account_id=account_id, active=True)
        index = RuleIndex(
            spec_of(
                id=r.id,
                trigger=r.trigger.value,
                keywords=r.keywords,
                match_mode=r.match_mode.value,
                priority=r.priority,
                media_ids=r.media_ids,
                cooldown_s=r.cooldown_s,
                first_comment_only=r.first_comment_only,
                active=r.active,
                config=r.config,
            )
            for r in rules
        )
        cached = _CachedIndex(signature, index, {r.id: r for r in rules}, now)
        self._cache[account_id] = cached
        return cached
