"""Exactly once, end to end: the scenario shared by ``tests/e2e/test_exactly_once.py`` and
``bench/exactly_once.py``.

Followers comment a keyword on the accounts' posts; the rule answers each with a public
reply and a private reply carrying a button; a follower who got it taps the button and the
postback rule sends a DM follow-up. Meanwhile the sandbox Instagram loses the answer of a
share of every write after acting on it (a dropped connection, a gateway's 502 or 504) and
never delivers a share of the comment webhooks, which the comment sweep finds. In the end
each follower must have exactly one public reply, one private reply and one DM follow-up
on the sandbox's side.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from core.db.models import (
    AutomationRule,
    EventStatus,
    InstagramAccount,
    MatchMode,
    OutboundAction,
    OutboundStatus,
    Trigger,
    WebhookEvent,
)
from core.ports.clock import Clock
from core.services.comment_sweep import GRACE, CommentSweep

KEYWORD = "price"
BUTTON = "MORE"
PUBLIC_REPLY = "Sent you the price in a DM!"
PRIVATE_REPLY = "Here is the price: 25 EUR. Want more?"
FOLLOW_UP = "Here is everything about it."
WRITES = r"/(replies|messages)$"


async def make_rules(account: InstagramAccount) -> None:
    """A keyword rule (public reply + private reply with a button) and the button's rule,
    on an account connected an hour ago (the sweep reads no comment from before that)."""
    connected = account.created_at - timedelta(hours=1)
    await InstagramAccount.filter(id=account.id).update(created_at=connected)
    common: dict[str, Any] = {"workspace_id": account.workspace_id, "account": account}
    await AutomationRule.create(
        **common,
        trigger=Trigger.COMMENT,
        keywords=[KEYWORD],
        match_mode=MatchMode.WHOLE_WORD,
        config={
            "comment_replies": [PUBLIC_REPLY],
            "message_variations": [PRIVATE_REPLY],
            "dmType": "text_button",
            "buttons": [{"text": "Tell me more", "payload": BUTTON}],
        },
    )
    await AutomationRule.create(
        **common,
        trigger=Trigger.POSTBACK,
        keywords=[BUTTON],
        match_mode=MatchMode.EXACT,
        config={"message_variations": [FOLLOW_UP]},
    )


def lose_answers(sandbox: Any, share: float) -> list[Any]:
    """Lose the answer of ``share`` of the writes after Instagram acted: a third each by a
    dropped connection, a bare 502 and a bare 504."""
    faults = []
    left = 1.0
    for how in ("drop", "502", "504"):
        chance = (share / 3) / left
        faults.append(sandbox.faults.lost_answer(how, path=WRITES, times=None, chance=chance))
        left -= share / 3
    return faults


@dataclass
class Followers:
    """Who commented (IGSID → (account, comment id)) and whose webhook went missing."""

    comments: dict[str, tuple[str, str]] = field(default_factory=dict)
    missing_webhooks: int = 0


async def comment(
    sandbox: Any, ig_ids: list[str], count: int, *, missing: float, rng: random.Random
) -> Followers:
    """``count`` followers comment the keyword, spread over the accounts; ``missing`` of the
    webhooks are never delivered."""
    followers = Followers()
    gate = asyncio.Semaphore(16)

    loss = sandbox.faults.lose_webhooks("comments", share=missing, seed=rng.randrange(1 << 30))

    async def one(n: int) -> None:
        ig_id = ig_ids[n % len(ig_ids)]
        igsid = f"77{n:08d}"
        async with gate:
            made, delivery = await sandbox.comment(
                ig_id, f"What's the {KEYWORD}?", from_id=igsid, username=f"follower{n}"
            )
        followers.comments[igsid] = (ig_id, made.id)
        if delivery in sandbox.lost:
            followers.missing_webhooks += 1
        elif delivery.status != 200:
            raise AssertionError(f"webhook refused: {delivery.status} {delivery.error}")

    await asyncio.gather(*(one(n) for n in range(count)))
    sandbox.faults.webhook_losses.remove(loss)
    return followers


async def tap_buttons(sandbox: Any, followers: Followers) -> int:
    """Every follower who received the private reply taps its button (once)."""
    replied = {s.target for s in sandbox.state.sent if s.kind == "private_reply"}
    gate = asyncio.Semaphore(16)
    tapped = 0

    async def one(igsid: str, ig_id: str) -> None:
        async with gate:
            await sandbox.postback(ig_id, BUTTON, title="Tell me more", from_id=igsid)

    taps = []
    for igsid, (ig_id, comment_id) in followers.comments.items():
        if comment_id in replied:
            taps.append(one(igsid, ig_id))
            tapped += 1
    await asyncio.gather(*taps)
    return tapped


async def settled() -> bool:
    """Nothing left to do: no event waiting to be handled, no send pending."""
    busy = await WebhookEvent.filter(
        status__in=(EventStatus.PENDING, EventStatus.PROCESSING)
    ).count()
    return busy == 0 and await OutboundAction.filter(status=OutboundStatus.PENDING).count() == 0


class Later:
    """Reelay's clock some minutes on: the comment sweep runs after the grace it gives a
    webhook (``comment_sweep.GRACE``), as the cron would a few minutes later."""

    def __init__(self, clock: Clock, by: timedelta = GRACE + timedelta(minutes=1)) -> None:
        self.clock = clock
        self.by = by

    def now(self) -> datetime:
        return self.clock.now() + self.by


async def sweep_later(sweep: CommentSweep) -> int:
    """Run the comment sweep over every account as it would run minutes later; how many
    comments it caught."""
    clock = sweep.clock
    sweep.clock = Later(clock)
    try:
        return sum((await sweep.sweep_all()).values())
    finally:
        sweep.clock = clock


async def run(
    sandbox: Any,
    ig_ids: list[str],
    *,
    comments: int,
    drain: Callable[[], Awaitable[None]],
    sweep: CommentSweep,
    lost_share: float = 0.2,
    missing_share: float = 0.3,
    seed: int = 15,
) -> dict[str, Any]:
    """Play the scenario; the counts (``duplicates`` and ``missing`` must be 0).

    ``drain``: returns once the workers have handled everything queued so far.
    ``sweep``: the comment sweep (its queue must reach the workers ``drain`` waits for).
    """
    started = time.monotonic()
    rng = random.Random(seed)
    sandbox.echoes = True
    faults = lose_answers(sandbox, lost_share)
    followers = await comment(sandbox, ig_ids, comments, missing=missing_share, rng=rng)
    await drain()
    caught = await sweep_later(sweep)
    await drain()
    tapped = await tap_buttons(sandbox, followers)
    await drain()
    for fault in faults:
        sandbox.faults.active.remove(fault)
    counts = tally(sandbox, followers)
    confirmed = Counter(
        str((row or {}).get("confirmed_by") or "answer")
        for row in await OutboundAction.filter(status=OutboundStatus.SENT).values_list(
            "response", flat=True
        )
    )
    statuses = Counter(str(s) for s in await OutboundAction.all().values_list("status", flat=True))
    return {
        **counts,
        "webhooks_missing": followers.missing_webhooks,
        "caught_by_sweep": caught,
        "buttons_tapped": tapped,
        "answers_lost": sum(f.struck for f in faults),
        "confirmed_by": dict(sorted(confirmed.items())),
        "actions": dict(sorted(statuses.items())),
        "seconds": round(time.monotonic() - started, 1),
    }


def tally(sandbox: Any, followers: Followers) -> dict[str, int]:
    """What each follower got on the sandbox's side: how many had exactly one of each."""
    public: Counter[str] = Counter()
    private: Counter[str] = Counter()
    dms: Counter[str] = Counter()
    for sent in sandbox.state.sent:
        if sent.kind == "comment_reply":
            public[sent.target] += 1
        elif sent.kind == "private_reply":
            private[sent.target] += 1
        elif sent.kind == "message" and sent.payload["message"].get("text") == FOLLOW_UP:
            dms[sent.target] += 1
    got = [
        (public[comment_id], private[comment_id], dms[igsid])
        for igsid, (_, comment_id) in followers.comments.items()
    ]
    return {
        "comments": len(got),
        "public_replies_once": sum(1 for p, _, _ in got if p == 1),
        "private_replies_once": sum(1 for _, r, _ in got if r == 1),
        "dms_once": sum(1 for _, _, d in got if d == 1),
        "duplicates": sum(1 for each in got for n in each if n > 1),
        "missing": sum(1 for each in got for n in each if n == 0),
    }
