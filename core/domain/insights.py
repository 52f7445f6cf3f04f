"""Reading Meta's insight rows into plain numbers, and which metrics to ask for.

An insight row is one element of the ``data`` list Meta returns, in one of two shapes:
``{"name": "reach", "total_value": {"value": 120}}`` (``metric_type=total_value``) or
``{"name": "follower_count", "values": [{"value": 3, "end_time": "2025-01-02T08:00:00+0000"}]}``
(time series, and media insights, whose single value has no ``end_time``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, datetime, timedelta
from typing import Any

from core.domain.analytics import MEDIA_METRICS, REEL_EXTRA_METRICS, STORY_METRICS, as_number

# Error codes Meta uses when a metric cannot be had for this account or media: 10 (no
# permission, e.g. follower_count under 100 followers) and 100 (metric not supported).
METRIC_UNAVAILABLE_CODES = frozenset({10, 100})

# A smaller set tried once when a media's full set is refused (older media, odd types).
MEDIA_FALLBACK_METRICS: tuple[str, ...] = ("reach", "likes", "comments", "saved", "shares")


def total_values(rows: Iterable[Mapping[str, Any]]) -> dict[str, float]:
    """``{metric: value}`` from ``total_value`` rows (or single-value rows)."""
    found: dict[str, float] = {}
    for row in rows:
        name = row.get("name")
        if not isinstance(name, str):
            continue
        value = _row_value(row)
        if value is not None:
            found[name] = value
    return found


def _row_value(row: Mapping[str, Any]) -> float | None:
    total = row.get("total_value")
    if isinstance(total, Mapping):
        return as_number(total.get("value"))
    values = row.get("values")
    if isinstance(values, list) and values:
        numbers = [as_number(v.get("value")) for v in values if isinstance(v, Mapping)]
        known = [n for n in numbers if n is not None]
        # A range without a breakdown per day: the values add up to the range's total.
        return sum(known) if known else None
    return as_number(row.get("value"))


def daily_values(rows: Iterable[Mapping[str, Any]], metric: str) -> dict[date, float]:
    """``{day: value}`` for one time-series metric.

    Meta stamps each value with the *end* of its day (midnight Pacific, written in UTC),
    so the day a value belongs to is the one before its ``end_time``.
    """
    found: dict[date, float] = {}
    for row in rows:
        if row.get("name") != metric:
            continue
        for point in row.get("values") or []:
            if not isinstance(point, Mapping):
                continue
            value = as_number(point.get("value"))
            end = point.get("end_time")
            if value is None or not isinstance(end, str):
                continue
            try:
                ended = datetime.fromisoformat(end)
            except ValueError:
                continue
            found[(ended - timedelta(days=1)).date()] = value
    return found


def media_kind(media: Mapping[str, Any]) -> str:
    """``REELS``, ``STORY`` or ``FEED`` from a media list entry."""
    product = str(media.get("media_product_type") or "").upper()
    if product in {"REELS", "STORY"}:
        return product
    if str(media.get("media_type") or "").upper() == "STORY":
        return "STORY"
    return "FEED"


def media_metrics_for(kind: str) -> tuple[str, ...]:
    """The insight metrics to ask for a media of ``kind`` (see :func:`media_kind`)."""
    if kind == "REELS":
        return (*MEDIA_METRICS, *REEL_EXTRA_METRICS)
    if kind == "STORY":
        return STORY_METRICS
    return MEDIA_METRICS


def posted_at(media: Mapping[str, Any]) -> datetime | None:
    """When a media was posted, from its ``timestamp`` field (aware), if readable."""
    raw = media.get("timestamp")
    if not isinstance(raw, str):
        return None
    try:
        when = datetime.fromisoformat(raw)
    except ValueError:
        return None
    return when if when.tzinfo is not None else None
