"""A rule's variant results (pure): for each variation of its public reply, its DM and its
follow-up, how often it went out and what the people who got it did next.

- **sent**: the outbox's sends of that variation (recorded with the step and variant);
- **replied**: people who wrote to the account after it reached them;
- **clicked** / **clicks**: people who opened one of its tracked links, and all opens;
- **leads**: people who got it and became a lead of the rule.

The leader is the variation with the best rate (leads, then clicks, then replies per send)
among those sent at least ``MIN_SENT`` times: a user keeps it and drops the others.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from core.domain.rule_definition import RuleDefinition

STEPS = ("reply", "dm", "follow_up")
STEP_WORDS = {"reply": "Public reply", "dm": "DM", "follow_up": "Follow-up"}
MIN_SENT = 10


@dataclass(frozen=True)
class VariantResult:
    step: str
    variant: str  # "v1", "v2" …
    text: str
    sent: int = 0
    replied: int = 0
    clicked: int = 0
    clicks: int = 0
    leads: int = 0
    leading: bool = False

    @property
    def score(self) -> tuple[float, float, float]:
        if not self.sent:
            return (0.0, 0.0, 0.0)
        return (self.leads / self.sent, self.clicked / self.sent, self.replied / self.sent)

    def rate(self, count: int) -> str:
        """``count`` as a share of the sends ("25 %"), or a dash before any send."""
        return f"{round(100 * count / self.sent)} %" if self.sent else "-"

    def as_json(self) -> dict[str, object]:
        return {
            "step": self.step,
            "variant": self.variant,
            "text": self.text,
            "sent": self.sent,
            "replied": self.replied,
            "clicked": self.clicked,
            "clicks": self.clicks,
            "leads": self.leads,
            "leading": self.leading,
        }


def variations(definition: RuleDefinition) -> dict[str, list[str]]:
    """The rule's variations by step, as it stands now."""
    follow_up = definition.follow_up.messages if definition.follow_up else []
    dms = (
        definition.dm_variations
        if definition.dm_type in {"text", "text_button", "quick_replies"}
        else []
    )
    return {
        "reply": list(definition.comment_replies),
        "dm": list(dms),
        "follow_up": list(follow_up),
    }


@dataclass
class Tally:
    """What was counted for one (step, variant)."""

    sent: int = 0
    replied: set[int] = field(default_factory=set)
    clicked: set[str] = field(default_factory=set)
    clicks: int = 0
    leads: set[int] = field(default_factory=set)


def results(
    definition: RuleDefinition, tallies: Mapping[tuple[str, str], Tally]
) -> list[VariantResult]:
    """One row per variation the rule has now or had when it sent (step order, then v1, v2 …),
    the leader marked in each step."""
    rows: list[VariantResult] = []
    current = variations(definition)
    for step in STEPS:
        texts = current[step]
        labels = [f"v{n + 1}" for n in range(len(texts))]
        labels += sorted((v for s, v in tallies if s == step and v and v not in labels), key=_order)
        found = []
        for label in labels:
            tally = tallies.get((step, label), Tally())
            n = _order(label) - 1
            found.append(
                VariantResult(
                    step=step,
                    variant=label,
                    text=texts[n] if 0 <= n < len(texts) else "(no longer in the rule)",
                    sent=tally.sent,
                    replied=len(tally.replied),
                    clicked=len(tally.clicked),
                    clicks=tally.clicks,
                    leads=len(tally.leads),
                )
            )
        rows.extend(_with_leader(found))
    return rows


def _with_leader(rows: list[VariantResult]) -> list[VariantResult]:
    ranked = [r for r in rows if r.sent >= MIN_SENT]
    if len(rows) < 2 or not ranked:
        return rows
    best = max(ranked, key=lambda r: r.score)
    if best.score == (0.0, 0.0, 0.0):
        return rows
    return [replace(r, leading=r is best) for r in rows]


def _order(label: str) -> int:
    digits = label[1:]
    return int(digits) if label.startswith("v") and digits.isdigit() else 10**6
