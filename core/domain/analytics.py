"""Analytics arithmetic: engagement rate, period comparison, follower change, top posts.

Pure functions over plain numbers and dataclasses. Reelay's engagement rate is
*interactions ÷ reach*, in percent: for a post its lifetime interactions over its lifetime
reach, for a period the sum of daily interactions over the sum of daily reach (Meta gives
reach per day, and unique reach over a period is not additive, so the daily sum is the
honest base Reelay can compute).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from core.errors import ValidationFailed

# Daily account metrics Reelay asks Meta for (ARCHITECTURE.md, "Meta's Graph API").
ACCOUNT_DAILY_METRICS: tuple[str, ...] = (
    "reach",
    "views",
    "accounts_engaged",
    "total_interactions",
    "likes",
    "comments",
    "shares",
    "saves",
    "replies",
    "follows_and_unfollows",
    "profile_links_taps",
)
FOLLOWER_COUNT_METRIC = "follower_count"
FOLLOWER_COUNT_MIN_FOLLOWERS = 100

# Profile counts stored beside the daily metrics (the latest snapshot of the day wins).
PROFILE_COUNTS: tuple[str, ...] = ("followers_count", "follows_count", "media_count")

# Per-media insight metrics by kind of media.
MEDIA_METRICS: tuple[str, ...] = (
    "views",
    "reach",
    "likes",
    "comments",
    "saved",
    "shares",
    "total_interactions",
)
REEL_EXTRA_METRICS: tuple[str, ...] = ("ig_reels_avg_watch_time", "ig_reels_video_view_total_time")
STORY_METRICS: tuple[str, ...] = ("views", "reach", "replies", "shares", "total_interactions")

MAX_RANGE_DAYS = 366


@dataclass(frozen=True)
class DateRange:
    """Whole days from ``start`` to ``end``, both included."""

    start: date
    end: date

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise ValidationFailed(
                "The range ends before it starts", {"end": "Pick an end on or after the start."}
            )
        if self.days > MAX_RANGE_DAYS:
            raise ValidationFailed(
                "The range is too long", {"end": f"Pick at most {MAX_RANGE_DAYS} days."}
            )

    @classmethod
    def last(cls, days: int, *, ending: date) -> DateRange:
        """The ``days`` days up to and including ``ending``."""
        return cls(ending - timedelta(days=days - 1), ending)

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def previous(self) -> DateRange:
        """The period of the same length just before this one."""
        return DateRange(self.start - timedelta(days=self.days), self.start - timedelta(days=1))

    def __iter__(self) -> Iterator[date]:
        for offset in range(self.days):
            yield self.start + timedelta(days=offset)

    def __contains__(self, day: object) -> bool:
        return isinstance(day, date) and self.start <= day <= self.end


def parse_range(start: str | None, end: str | None, *, default: DateRange) -> DateRange:
    """A range from ISO dates typed in a form; blanks fall back to ``default``."""
    try:
        first = date.fromisoformat(start) if start else default.start
        last = date.fromisoformat(end) if end else default.end
    except ValueError:
        raise ValidationFailed(
            "Dates must look like 2025-01-31", {"start": "Use the date picker."}
        ) from None
    return DateRange(first, last)


def as_number(value: Any) -> float | None:
    """A metric value as a number; None for missing or non-numeric values (bools included)."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return value
    return None


def engagement_rate(interactions: float | None, reach: float | None) -> float | None:
    """Interactions ÷ reach in percent, rounded to 2 places; None when reach is 0 or unknown."""
    if interactions is None or not reach:
        return None
    return round(interactions * 100.0 / reach, 2)


def post_interactions(metrics: Mapping[str, Any]) -> int:
    """A post's interactions: Meta's ``total_interactions``, else the sum of its parts."""
    total = as_number(metrics.get("total_interactions"))
    if total is not None:
        return int(total)
    parts = ("likes", "comments", "saved", "shares")
    found = [as_number(metrics.get(name)) for name in parts]
    if all(value is None for value in found):
        # A media list entry without insights still carries its like and comment counts.
        found = [as_number(metrics.get("like_count")), as_number(metrics.get("comments_count"))]
    return int(sum(value for value in found if value is not None))


@dataclass(frozen=True)
class Change:
    """One number now and in the previous period; ``percent`` is None when before was 0."""

    current: float
    previous: float

    @property
    def delta(self) -> float:
        return self.current - self.previous

    @property
    def percent(self) -> float | None:
        if self.previous == 0:
            return None
        return round(self.delta * 100.0 / abs(self.previous), 1)

    @property
    def direction(self) -> str:
        return "up" if self.delta > 0 else "down" if self.delta < 0 else "flat"


def compare(current: float | None, previous: float | None) -> Change | None:
    """The change from ``previous`` to ``current``; None when either is unknown."""
    if current is None or previous is None:
        return None
    return Change(current=current, previous=previous)


def sum_metric(days: Iterable[Mapping[str, Any]], name: str) -> float | None:
    """The sum of one daily metric; None when no day has it."""
    values = [as_number(day.get(name)) for day in days]
    known = [value for value in values if value is not None]
    return sum(known) if known else None


def follower_change(series: Sequence[tuple[date, float | None]]) -> float | None:
    """Followers at the last known day minus followers at the first known day."""
    known = [(day, value) for day, value in sorted(series) if value is not None]
    if len(known) < 2:
        return None
    return known[-1][1] - known[0][1]


def last_known(series: Sequence[tuple[date, float | None]]) -> float | None:
    """The latest non-missing value of a daily series."""
    for _, value in sorted(series, reverse=True):
        if value is not None:
            return value
    return None


@dataclass(frozen=True)
class PeriodTotals:
    """An account's numbers over one period."""

    reach: float | None
    views: float | None
    interactions: float | None
    followers: float | None
    follower_change: float | None
    new_follows: float | None

    @property
    def engagement_rate(self) -> float | None:
        return engagement_rate(self.interactions, self.reach)


def period_totals(days: Mapping[date, Mapping[str, Any]], period: DateRange) -> PeriodTotals:
    """Sum a period's daily metrics (days outside ``period`` are ignored)."""
    inside = [metrics for day, metrics in days.items() if day in period]
    followers = [(day, as_number(metrics.get("followers_count"))) for day, metrics in days.items()]
    followers = [(day, value) for day, value in followers if day in period]
    return PeriodTotals(
        reach=sum_metric(inside, "reach"),
        views=sum_metric(inside, "views"),
        interactions=sum_metric(inside, "total_interactions"),
        followers=last_known(followers),
        follower_change=follower_change(followers),
        new_follows=sum_metric(inside, FOLLOWER_COUNT_METRIC),
    )


@dataclass(frozen=True)
class Comparison:
    """Each headline number of a period beside the same number of another period."""

    current: PeriodTotals
    previous: PeriodTotals

    @property
    def reach(self) -> Change | None:
        return compare(self.current.reach, self.previous.reach)

    @property
    def views(self) -> Change | None:
        return compare(self.current.views, self.previous.views)

    @property
    def interactions(self) -> Change | None:
        return compare(self.current.interactions, self.previous.interactions)

    @property
    def followers(self) -> Change | None:
        return compare(self.current.followers, self.previous.followers)

    @property
    def engagement_rate(self) -> Change | None:
        return compare(self.current.engagement_rate, self.previous.engagement_rate)


@dataclass(frozen=True)
class PostPerformance:
    """One post's latest numbers."""

    ig_media_id: str
    media_type: str
    permalink: str
    caption: str
    posted_at: str
    reach: int
    views: int
    interactions: int
    metrics: Mapping[str, Any]

    @property
    def engagement_rate(self) -> float | None:
        return engagement_rate(self.interactions, self.reach)


def post_performance(
    ig_media_id: str,
    media_type: str,
    permalink: str,
    metrics: Mapping[str, Any],
    info: Mapping[str, Any] | None = None,
) -> PostPerformance:
    """A post's numbers from its stored metrics (and its caption and time from ``info``)."""
    info = info or {}
    return PostPerformance(
        ig_media_id=ig_media_id,
        media_type=media_type,
        permalink=permalink,
        caption=str(info.get("caption") or ""),
        posted_at=str(info.get("timestamp") or ""),
        reach=int(as_number(metrics.get("reach")) or 0),
        views=int(as_number(metrics.get("views")) or 0),
        interactions=post_interactions(metrics),
        metrics=metrics,
    )


def top_posts(posts: Iterable[PostPerformance], limit: int = 5) -> list[PostPerformance]:
    """The best posts by interactions, then by reach, then newest first."""
    ranked = sorted(posts, key=lambda p: (p.interactions, p.reach, p.posted_at), reverse=True)
    return ranked[:limit]


def short_caption(caption: str, limit: int = 60) -> str:
    """The first line of a caption, cut at ``limit`` characters with an ellipsis."""
    first = caption.strip().splitlines()[0] if caption.strip() else ""
    return first if len(first) <= limit else first[: limit - 1].rstrip() + "…"
