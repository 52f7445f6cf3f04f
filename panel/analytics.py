"""Analytics pages: overview with charts, post detail, period comparison and CSV exports."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TypedDict

from quart import Blueprint, Response, flash, render_template, request

from core.db.models import Role, Workspace
from core.domain.analytics import DateRange, parse_range, short_caption
from core.domain.ids import row_id
from core.errors import ValidationFailed
from core.services import analytics
from panel.rules import TRIGGER_WORDS
from panel.security import current_actor, current_membership, requires
from panel.services import services

blueprint = Blueprint("analytics", __name__, url_prefix="/analytics")


def _workspace() -> Workspace:
    workspace: Workspace = current_membership().workspace
    return workspace


def _account_arg() -> int | None:
    raw = request.args.get("account", "")
    return row_id(raw)


async def _ranges(workspace: Workspace) -> tuple[DateRange, DateRange | None, list[str]]:
    """The period and comparison period asked for; bad input falls back with a message."""
    clock = services().container.clock
    default = analytics.default_period(workspace, clock)
    args = request.args
    problems = []
    try:
        period = parse_range(args.get("start"), args.get("end"), default=default)
    except ValidationFailed as exc:
        problems.append(f"{exc.message}; showing the last 28 days.")
        period = default
    compare_to = None
    if args.get("compare_start") or args.get("compare_end"):
        try:
            compare_to = parse_range(
                args.get("compare_start"), args.get("compare_end"), default=period.previous()
            )
        except ValidationFailed as exc:
            problems.append(f"Comparison: {exc.message}; comparing with the period before.")
    return period, compare_to, problems


def _local(workspace: Workspace) -> Callable[[datetime | None], str]:
    zone = analytics.workspace_zone(workspace)

    def local(moment: datetime | None) -> str:
        if moment is None:
            return "—"
        return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M")

    return local


class AutomationChart(TypedDict):
    labels: list[str]
    comments_replied: list[int]
    dms_sent: list[int]
    leads_by_rule: dict[str, list[int]]


class ChartData(TypedDict):
    """The overview charts' data, as the page's script reads it."""

    labels: list[str]
    followers: list[float | None]
    new_follows: list[float | None]
    reach: list[float | None]
    views: list[float | None]
    automation: AutomationChart


def _chart_data(view: analytics.Overview) -> ChartData:
    series = view.series
    automation = view.automation
    return {
        "labels": [point.day.isoformat() for point in series],
        "followers": [point.followers for point in series],
        "new_follows": [point.new_follows for point in series],
        "reach": [point.reach for point in series],
        "views": [point.views for point in series],
        "automation": {
            "labels": [day.isoformat() for day in automation.days],
            "comments_replied": automation.comments_replied,
            "dms_sent": automation.dms_sent,
            "leads_by_rule": automation.leads_by_rule,
        },
    }


@blueprint.get("/")
@requires(Role.VIEWER)
async def index() -> str:
    """Overview cards, charts, top posts, automation results and sync state."""
    workspace = _workspace()
    period, compare_to, problems = await _ranges(workspace)
    for problem in problems:
        await flash(problem, "error")
    clock = services().container.clock
    # Unless a period was chosen, automation results (Reelay's own, live records) include
    # today, while Instagram's lagging numbers end yesterday.
    live = period == analytics.default_period(workspace, clock)
    view = await analytics.overview(
        current_actor(),
        period,
        account_id=_account_arg(),
        compare_to=compare_to,
        automation_period=analytics.live_period(workspace, clock) if live else None,
    )
    return await render_template(
        "analytics/index.html",
        view=view,
        chart=_chart_data(view),
        custom_compare=compare_to is not None,
        automation_live=live,
        triggers=TRIGGER_WORDS,
        local=_local(workspace),
        short_caption=short_caption,
        timezone=workspace.timezone,
    )


@blueprint.get("/posts/<ig_media_id>")
@requires(Role.VIEWER)
async def post(ig_media_id: str) -> str:
    """One post's numbers over time."""
    workspace = _workspace()
    detail = await analytics.post_detail(current_actor(), ig_media_id[:64])
    chart = {
        "labels": [day.isoformat() for day, _ in detail.snapshots],
        "views": [metrics.get("views") for _, metrics in detail.snapshots],
        "reach": [metrics.get("reach") for _, metrics in detail.snapshots],
        "interactions": [metrics.get("total_interactions") for _, metrics in detail.snapshots],
    }
    return await render_template(
        "analytics/post.html",
        detail=detail,
        chart=chart,
        short_caption=short_caption,
        local=_local(workspace),
    )


def _csv_response(body: str, name: str, period: DateRange) -> Response:
    filename = f"reelay-{name}-{period.start.isoformat()}-{period.end.isoformat()}.csv"
    return Response(
        body,
        content_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Cache-Control": "no-store",
        },
    )


@blueprint.get("/export/account.csv")
@requires(Role.VIEWER)
async def export_account() -> Response:
    """Daily account metrics for the range as CSV."""
    workspace = _workspace()
    period, _, _ = await _ranges(workspace)
    body = await analytics.account_metrics_csv(current_actor(), period, account_id=_account_arg())
    return _csv_response(body, "account-metrics", period)


@blueprint.get("/export/posts.csv")
@requires(Role.VIEWER)
async def export_posts() -> Response:
    """Per-post metrics for posts published in the range as CSV."""
    workspace = _workspace()
    period, _, _ = await _ranges(workspace)
    body = await analytics.post_metrics_csv(current_actor(), period, account_id=_account_arg())
    return _csv_response(body, "post-metrics", period)
