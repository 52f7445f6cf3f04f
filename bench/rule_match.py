"""Rule matching cost per event with 10 and with 10 000 rules on one account.

Rules mix the four match modes, several keywords each, media scopes and priorities; events
are realistic comments (most match nothing, some match one or two rules).
Last line: {"ratio": us_10000 / us_10, "us_10", "us_10000"}. Target: ratio ≤ 3.
"""

from __future__ import annotations

import json
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from core.domain.rules import RuleIndex, RuleSpec  # noqa: E402

WORDS = [
    "price",
    "link",
    "guide",
    "info",
    "size",
    "colour",
    "shipping",
    "discount",
    "ebook",
    "menu",
    "booking",
    "café",
    "promo",
    "deal",
    "free",
    "join",
    "waitlist",
    "catalogue",
]
MODES = ["whole_word", "whole_word", "contains", "exact", "any"]
EVENTS = 20_000


def rules(count: int, rng: random.Random) -> list[RuleSpec]:
    made = []
    for n in range(count):
        mode = MODES[n % len(MODES)] if n % 50 == 0 else MODES[n % 4]
        keywords = (f"{rng.choice(WORDS)}{n}", f"kw{n}", rng.choice(WORDS) + f" code{n}")
        media = frozenset({f"media{n % 300}"}) if n % 3 == 0 else frozenset()
        made.append(
            RuleSpec(n, "comment", keywords, mode, priority=rng.randint(0, 5), media_ids=media)
        )
    return made


def texts(count: int, rules_count: int, rng: random.Random) -> list[tuple[str, str]]:
    out = []
    for _ in range(count):
        words = [rng.choice(WORDS) for _ in range(rng.randint(2, 12))]
        if rng.random() < 0.3:
            words.insert(rng.randrange(len(words)), f"kw{rng.randrange(rules_count)}")
        out.append((" ".join(words).capitalize() + "?", f"media{rng.randrange(300)}"))
    return out


def cost_us(count: int) -> float:
    rng = random.Random(count)
    index = RuleIndex(rules(count, rng))
    events = texts(EVENTS, count, random.Random(1))
    for text, media in events[:1000]:  # warm up
        index.match("comment", text, media)
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        for text, media in events:
            index.match("comment", text, media)
        best = min(best, (time.perf_counter() - start) / len(events) * 1e6)
    return best


def main() -> dict[str, float]:
    small = cost_us(10)
    large = cost_us(10_000)
    print(f"10 rules: {small:.2f} us/event, 10000 rules: {large:.2f} us/event")
    return {"ratio": round(large / small, 3), "us_10": round(small, 3), "us_10000": round(large, 3)}


if __name__ == "__main__":
    print(json.dumps(main()))
