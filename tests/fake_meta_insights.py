"""Meta's insight endpoints for tests: an aioresponses callback with switches for failures."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from aioresponses import CallbackResult
from yarl import URL

from core.domain.analytics import ACCOUNT_DAILY_METRICS

GRAPH_URL = r"^https://graph\.instagram\.com/.*"
IG_ID = "1784001"
NOW = datetime(2025, 3, 20, 10, 0, tzinfo=UTC)
TODAY = NOW.date()


class FixedClock:
    def __init__(self, now: datetime) -> None:
        self.at = now

    def now(self) -> datetime:
        return self.at


def day_value(metric: str, day: date) -> int:
    """The fake's number for ``metric`` on ``day``: distinct per metric and day."""
    return (ACCOUNT_DAILY_METRICS.index(metric) + 1) * 100 + day.toordinal() % 97


@dataclass
class FakeMeta:
    """Meta's insight endpoints as aioresponses callbacks, with switches for failures."""

    followers: int = 250
    refused: set[str] = field(default_factory=set)  # metrics answered with error 10
    refused_media: set[str] = field(default_factory=set)  # media ids with no insights
    rate_limited: bool = False
    usage_pct: int | None = None  # reported on every answer when set
    token_dead: bool = False
    media: list[dict[str, Any]] = field(default_factory=list)
    calls: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    follower_answer: dict[str, Any] | None = None  # sent as is for follower_count when set

    def _error(self, status: int, code: int, message: str) -> CallbackResult:
        body = {"error": {"message": message, "type": "OAuthException", "code": code}}
        return CallbackResult(status=status, payload=body, headers=self._headers())

    def _headers(self) -> dict[str, str]:
        if self.usage_pct is None:
            return {}
        usage = {
            IG_ID: [
                {
                    "type": "instagram",
                    "call_count": self.usage_pct,
                    "total_cputime": 1,
                    "total_time": 1,
                    "estimated_time_to_regain_access": 30,
                }
            ]
        }
        return {"X-Business-Use-Case-Usage": json.dumps(usage)}

    def __call__(self, url: URL, **kwargs: Any) -> CallbackResult:
        path = url.path.removeprefix("/v25.0/")
        query = dict(url.query)
        self.calls.append((path, query))
        if self.token_dead:
            return self._error(401, 190, "Error validating access token")
        if self.rate_limited:
            return self._error(400, 17, "User request limit reached")
        if path == IG_ID:
            body = {
                "id": IG_ID,
                "username": "shop",
                "followers_count": self.followers,
                "follows_count": 12,
                "media_count": len(self.media),
            }
            return CallbackResult(payload=body, headers=self._headers())
        if path == f"{IG_ID}/insights":
            return self._account_insights(query)
        if path == f"{IG_ID}/media":
            return CallbackResult(payload={"data": self.media}, headers=self._headers())
        if path.endswith("/insights"):
            media_id = path.split("/")[0]
            if media_id in self.refused_media:
                return self._error(400, 100, "(#100) The Media Insights API does not support this")
            data = [
                {"name": m, "period": "lifetime", "values": [{"value": 10 + i}]}
                for i, m in enumerate(query["metric"].split(","))
            ]
            return CallbackResult(payload={"data": data}, headers=self._headers())
        return self._error(404, 803, f"unknown path {path}")

    def _account_insights(self, query: dict[str, str]) -> CallbackResult:
        metrics = query["metric"].split(",")
        if set(metrics) & self.refused:
            return self._error(400, 10, "(#10) Application does not have permission")
        since = datetime.fromtimestamp(int(query["since"]), UTC).date()
        until = datetime.fromtimestamp(int(query["until"]), UTC).date()
        if metrics == ["follower_count"]:
            assert "metric_type" not in query
            if self.followers < 100:
                return self._error(400, 10, "(#10) Not enough followers")
            if self.follower_answer is not None:
                return CallbackResult(payload=self.follower_answer, headers=self._headers())
            values = []
            day = since
            while day < until:
                end = datetime.combine(day + timedelta(days=1), datetime.min.time(), UTC)
                end_time = (end + timedelta(hours=8)).strftime("%Y-%m-%dT%H:%M:%S+0000")
                values.append({"value": day.day, "end_time": end_time})
                day += timedelta(days=1)
            data = [{"name": "follower_count", "period": "day", "values": values}]
            return CallbackResult(payload={"data": data}, headers=self._headers())
        assert query["metric_type"] == "total_value" and query["period"] == "day"
        assert until - since == timedelta(days=1), "one day per request"
        data = [
            {"name": m, "period": "day", "total_value": {"value": day_value(m, since)}}
            for m in metrics
        ]
        return CallbackResult(payload={"data": data}, headers=self._headers())

    def insight_calls(self) -> list[dict[str, str]]:
        return [q for p, q in self.calls if p == f"{IG_ID}/insights"]
