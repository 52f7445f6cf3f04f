"""Insights: the metrics Meta accepts for an account and a post, with made-up but stable values.

Values are derived from the node, metric and day, so a sync run twice reads the same numbers.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime, time as dtime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sandbox.state import SandboxError

ACCOUNT_METRICS = {
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
    "follower_count",
    "online_followers",
    "engaged_audience_demographics",
    "reached_audience_demographics",
    "follower_demographics",
}
MEDIA_METRICS = {
    "views",
    "reach",
    "likes",
    "comments",
    "saved",
    "shares",
    "total_interactions",
    "ig_reels_avg_watch_time",
    "ig_reels_video_view_total_time",
    "replies",
    "navigation",
    "profile_visits",
    "follows",
    "profile_activity",
}
# Meta closes an insights day at midnight Pacific time and writes that moment in UTC.
META_DAY_ZONE = ZoneInfo("America/Los_Angeles")


def _day_param(params: dict[str, str], name: str) -> date | None:
    raw = params.get(name, "")
    if not raw:
        return None
    if not raw.lstrip("-").isdigit():
        raise SandboxError(f"(#100) The parameter {name} must be a unix timestamp", code=100)
    return datetime.fromtimestamp(int(raw), UTC).date()


def _daily_points(
    node: str, metric: str, params: dict[str, str], today: date
) -> list[dict[str, Any]]:
    """One value a day from ``since`` to the day before ``until`` (default: yesterday), each
    stamped as Meta does with the end of its day: ``2026-11-20T08:00:00+0000``."""
    until = _day_param(params, "until") or today
    since = _day_param(params, "since") or until - timedelta(days=1)
    points = []
    day = since
    while day < until:
        end = datetime.combine(day + timedelta(days=1), dtime.min, META_DAY_ZONE)
        seed = hashlib.sha256(f"{node}:{metric}:{day.isoformat()}".encode()).hexdigest()
        points.append(
            {
                "value": int(seed[:4], 16) % 50,
                "end_time": end.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S+0000"),
            }
        )
        day += timedelta(days=1)
    return points


def insights(
    node: str, params: dict[str, str], allowed: set[str], period: str, today: date
) -> list[dict[str, Any]]:
    """The rows of ``GET /{node}/insights``; ``allowed`` is the node's metric set."""
    metrics = [m for m in params.get("metric", "").split(",") if m]
    if not metrics:
        raise SandboxError("(#100) The parameter metric is required", code=100)
    for index, metric in enumerate(metrics):
        if metric not in allowed:
            raise SandboxError(
                f"(#100) metric[{index}] must be one of the following values: "
                + ", ".join(sorted(allowed)),
                code=100,
            )
    rows = []
    for metric in metrics:
        value = int(hashlib.sha256(f"{node}:{metric}".encode()).hexdigest()[:4], 16) % 500
        row: dict[str, Any] = {
            "name": metric,
            "period": params.get("period", period),
            "title": metric.replace("_", " ").title(),
            "id": f"{node}/insights/{metric}/{params.get('period', period)}",
        }
        if params.get("metric_type") == "total_value":
            row["total_value"] = {"value": value}
        elif row["period"] == "day":
            row["values"] = _daily_points(node, metric, params, today)
        else:
            row["values"] = [{"value": value}]
        rows.append(row)
    return rows
