"""API: the daily series the panel's analytics page shows, through the analytics service."""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel, ConfigDict, Field
from quart import Blueprint
from quart_schema import validate_querystring, validate_response

from core.db.models import Role
from core.domain.analytics import DateRange
from core.errors import ValidationFailed
from core.services import analytics
from panel.api.auth import api_requires, current_actor
from panel.services import services

blueprint = Blueprint("api_analytics", __name__, url_prefix="/api/v1/analytics")

DAYS_NOTE = "A day in the workspace's time zone (`timezone`), YYYY-MM-DD."


class AnalyticsQuery(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    start: str | None = Field(
        None,
        alias="from",
        max_length=10,
        description=f"The first day, included. {DAYS_NOTE} Default: 28 days before `to`.",
    )
    end: str | None = Field(
        None,
        alias="to",
        max_length=10,
        description=f"The last day, included. {DAYS_NOTE} Default: yesterday.",
    )
    account_id: int | None = Field(
        None, ge=1, le=2**31 - 1, description="Default: the workspace's first account."
    )


class DayOut(BaseModel):
    day: date = Field(description=DAYS_NOTE)
    followers: float | None = Field(description="Null where Instagram gave nothing.")
    new_follows: float | None
    reach: float | None
    views: float | None
    interactions: float | None


class AutomationDayOut(BaseModel):
    day: date = Field(description=DAYS_NOTE)
    comments_replied: int
    dms_sent: int
    leads: int


class AnalyticsOut(BaseModel):
    account_id: int | None = Field(description="Null when the workspace has no account.")
    account_username: str | None
    timezone: str = Field(description="The IANA zone the days are counted in.")
    first_day: date = Field(description="`from`, or its default.")
    last_day: date = Field(description="`to`, or its default.")
    days: list[DayOut] = Field(description="Instagram's numbers per day, every day of the range.")
    automation: list[AutomationDayOut] = Field(description="What Reelay's automations did per day.")


def _day(raw: str | None, name: str, default: date) -> date:
    if not raw:
        return default
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise ValidationFailed(
            "Dates must look like 2025-01-31.",
            {name: "Use YYYY-MM-DD, a day in the workspace's time zone."},
        ) from None


def _range(query: AnalyticsQuery, default: DateRange) -> DateRange:
    end = _day(query.end, "to", default.end)
    start = _day(query.start, "from", DateRange.last(default.days, ending=end).start)
    try:
        return DateRange(start, end)
    except ValidationFailed as exc:
        renamed = {"start": "from", "end": "to"}
        raise ValidationFailed(
            exc.message, {renamed.get(key, key): text for key, text in exc.fields.items()}
        ) from None


@blueprint.get("")
@api_requires(Role.VIEWER)
@validate_querystring(AnalyticsQuery)
@validate_response(AnalyticsOut)
async def series(query_args: AnalyticsQuery) -> AnalyticsOut:
    """The daily series of one account from ``from`` to ``to`` (days in the workspace's time
    zone), as the panel's analytics page shows them: followers, reach, views and interactions,
    and the automations' replies, DMs and leads."""
    actor = current_actor()
    zone, default = await analytics.zone_and_default_period(actor, services().container.clock)
    period = _range(query_args, default)
    view = await analytics.overview(actor, period, account_id=query_args.account_id)
    automation = view.automation
    return AnalyticsOut(
        account_id=view.account.id if view.account else None,
        account_username=view.account.username if view.account else None,
        timezone=zone.key,
        first_day=period.start,
        last_day=period.end,
        days=[
            DayOut(
                day=point.day,
                followers=point.followers,
                new_follows=point.new_follows,
                reach=point.reach,
                views=point.views,
                interactions=point.interactions,
            )
            for point in view.series
        ],
        automation=[
            AutomationDayOut(
                day=day,
                comments_replied=automation.comments_replied[index],
                dms_sent=automation.dms_sent[index],
                leads=automation.leads[index],
            )
            for index, day in enumerate(automation.days)
        ],
    )
