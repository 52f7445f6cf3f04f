"""An account's health at a glance: the figures of its last 24 hours and one plain verdict.

Pure: the service (``core/services/health.py``) gathers the figures; this module decides
what they mean. The verdict names the one thing to do first, in this order: a dead token
("Needs reconnect"), sends failing, webhooks missing, a token about to expire, else
"Working". Every problem found is listed too, with its likely cause.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

WINDOW = timedelta(hours=24)
# A token this close to expiring is worth a reconnect now.
TOKEN_WARNING = timedelta(days=7)
# Comments caught by the sweep: from this many, and this share of all comments, the
# comment webhooks are taken as broken.
SWEPT_BROKEN_MIN = 2
SWEPT_BROKEN_SHARE = 0.25
# Sends that failed or could not be confirmed: from this many, and this share of all ends.
FAILING_MIN = 3
FAILING_SHARE = 0.5
# Outcomes that count as a send gone wrong.
FAILED_OUTCOMES = ("failed", "unconfirmed")

WEBHOOKS_CAUSE = "comments webhook not subscribed or app lacks Advanced Access"
# Said above every account when no worker has beaten lately (core.services.heartbeat).
NO_WORKER = (
    "No worker is running: webhook events, replies and scheduled posts wait until one runs "
    "(reelay worker, or reelay run)."
)


class Level(StrEnum):
    WORKING = "working"
    WARNING = "warning"
    BROKEN = "broken"


@dataclass(frozen=True)
class Figures:
    """What an account did in the ``WINDOW`` before ``now``."""

    now: datetime
    active: bool  # the account is connected and its token accepted
    status_reason: str = ""
    webhook_subscribed: bool = True
    last_webhook_at: datetime | None = None
    # Webhook events received per hour, oldest hour first (24 values).
    events_per_hour: tuple[int, ...] = ()
    comments: int = 0  # comment events, whichever way they came
    swept: int = 0  # comments the sweep caught (their webhook never came)
    # Sends by outcome: sent, unconfirmed, skipped, failed, pending.
    sends: dict[str, int] = field(default_factory=dict)
    # Why sends did not go out (skipped, failed, unconfirmed): reason -> count.
    reasons: dict[str, int] = field(default_factory=dict)
    token_expires_at: datetime | None = None
    quota_used: int | None = None
    quota_total: int | None = None
    quota_error: str = ""

    @property
    def events(self) -> int:
        return sum(self.events_per_hour)

    @property
    def swept_share(self) -> float:
        return self.swept / self.comments if self.comments else 0.0

    @property
    def failing(self) -> int:
        return sum(self.sends.get(outcome, 0) for outcome in FAILED_OUTCOMES)

    @property
    def ended(self) -> int:
        return sum(count for outcome, count in self.sends.items() if outcome != "pending")

    @property
    def token_days_left(self) -> int | None:
        if self.token_expires_at is None:
            return None
        return max(0, (self.token_expires_at - self.now) // timedelta(days=1))


@dataclass(frozen=True)
class Verdict:
    level: Level
    text: str
    # Every problem found, the verdict's first.
    problems: tuple[str, ...] = ()


def webhooks_broken(figures: Figures) -> bool:
    """The sweep caught a high share of the comments: their webhooks do not come."""
    return figures.swept >= SWEPT_BROKEN_MIN and figures.swept_share >= SWEPT_BROKEN_SHARE


def sends_failing(figures: Figures) -> bool:
    ended = figures.ended
    return figures.failing >= FAILING_MIN and ended > 0 and figures.failing / ended >= FAILING_SHARE


def verdict(figures: Figures) -> Verdict:
    """The plain verdict on ``figures``, with every problem found."""
    found: list[tuple[Level, str, str]] = []
    expires = figures.token_expires_at
    if not figures.active or (expires is not None and expires <= figures.now):
        reason = figures.status_reason or "the token is no longer accepted"
        if figures.active:
            reason = "the token expired"
        found.append((Level.BROKEN, "Needs reconnect", f"Needs reconnect: {reason}."))
    if sends_failing(figures):
        top = max(figures.reasons.items(), key=lambda item: item[1], default=None)
        why = f" Most often: {top[0]}." if top else ""
        found.append(
            (
                Level.BROKEN,
                "Sends failing",
                f"Sends failing: {figures.failing} of {figures.ended} in 24 h failed or "
                f"could not be confirmed.{why}",
            )
        )
    if not figures.webhook_subscribed or webhooks_broken(figures):
        text = "Webhooks missing — check the Meta app's subscriptions"
        if figures.webhook_subscribed:
            detail = (
                f"{figures.swept} of {figures.comments} comments in 24 h were caught by the "
                f"sweep, not by a webhook: likely the {WEBHOOKS_CAUSE}."
            )
        else:
            detail = "The account is not subscribed to webhooks: comments and DMs do not arrive."
        found.append((Level.BROKEN, text, f"{text}. {detail}"))
    days = figures.token_days_left
    if (
        figures.active
        and expires is not None
        and figures.now < expires <= figures.now + TOKEN_WARNING
    ):
        text = f"Token expires in {days} day{'s' if days != 1 else ''} — reconnect"
        found.append((Level.WARNING, text, f"{text}."))
    if not found:
        return Verdict(Level.WORKING, "Working")
    level, text, _ = found[0]
    return Verdict(level, text, tuple(detail for _, _, detail in found))


def shown_time(moment: datetime | None, tz: ZoneInfo) -> str:
    """A time in the zone ``tz``, naming it; "never" when there is none."""
    if moment is None:
        return "never"
    return f"{moment.astimezone(tz):%Y-%m-%d %H:%M} ({tz.key})"


def chat_lines(username: str, figures: Figures, tz: ZoneInfo) -> list[str]:
    """One account's health as chat lines, times in the reader's zone ``tz``."""
    judged = verdict(figures)
    events = figures.events_per_hour
    lines = [
        f"@{username}: {judged.text}",
        f"Last webhook: {shown_time(figures.last_webhook_at, tz)}",
        f"Events: {figures.events} in 24 h, {events[-1] if events else 0} in the last hour",
        f"Comments caught by the sweep: {figures.swept} of {figures.comments}",
        "Sends in 24 h: "
        + (", ".join(f"{n} {outcome}" for outcome, n in sorted(figures.sends.items())) or "none"),
    ]
    for reason, count in sorted(figures.reasons.items(), key=lambda item: -item[1])[:3]:
        lines.append(f"  {count}x {reason}")
    token = figures.token_expires_at
    lines.append(f"Token expires: {shown_time(token, tz) if token else 'does not expire'}")
    if figures.quota_used is not None:
        lines.append(f"Publishing quota: {figures.quota_used} of {figures.quota_total} in 24 h")
    elif figures.quota_error:
        lines.append(f"Publishing quota: unknown ({figures.quota_error})")
    lines.extend(f"• {problem}" for problem in judged.problems)
    return lines
