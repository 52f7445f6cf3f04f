"""Leads: the table with search and filters, one lead with its conversation, the CSV export
(UTF-8 with a byte-order mark, safe from formula injection) and the webhook re-send."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from quart import (
    Blueprint,
    Response,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from werkzeug.wrappers import Response as WerkzeugResponse

from core.db.models import Role
from core.domain.ids import page_number, row_id
from core.domain.posts import zone
from core.errors import Conflict
from core.services import account_settings, lead_export, lead_review, rule_editor
from panel.security import current_actor, current_membership, requires, viewer_zone
from panel.services import services

blueprint = Blueprint("leads", __name__, url_prefix="/leads")

BOM = "\ufeff"  # Excel reads the file as UTF-8 only with it


# Days a filter can name: one day short of each end of the calendar, so the day's bounds
# exist in every time zone (a filter beyond them filters nothing, like an unreadable one).
DAYS = (date(1, 1, 2), date(9999, 12, 30))


def _day(text: str) -> date | None:
    try:
        day = date.fromisoformat(text) if text else None
    except ValueError:
        return None
    first, last = DAYS
    return day if day is not None and first <= day <= last else None


def _query() -> tuple[lead_export.LeadQuery, dict[str, str]]:
    """The filters from the query string (dates are days in the workspace's timezone)."""
    args = request.args
    tz = zone(viewer_zone())
    since_day, until_day = _day(args.get("since", "")), _day(args.get("until", ""))
    account, rule = args.get("account_id", ""), args.get("rule_id", "")
    query = lead_export.LeadQuery(
        account_id=row_id(account),
        rule_id=row_id(rule),
        since=datetime.combine(since_day, time(), tz) if since_day else None,
        until=datetime.combine(until_day + timedelta(days=1), time(), tz) if until_day else None,
        search=args.get("q", "")[:100],
    )
    shown = {
        "q": query.search,
        "account_id": account,
        "rule_id": rule,
        "since": since_day.isoformat() if since_day else "",
        "until": until_day.isoformat() if until_day else "",
    }
    return query, shown


@blueprint.get("")
@requires(Role.VIEWER)
async def index() -> str:
    """The leads table."""
    query, shown = _query()
    page_raw = request.args.get("page", "1")
    page = page_number(page_raw)
    actor = current_actor()
    leads, has_next = await lead_export.list_leads(actor, query, page)
    rules = await rule_editor.rules_by_name(actor)
    return await render_template(
        "leads/index.html",
        leads=leads,
        has_next=has_next,
        page=page,
        shown=shown,
        accounts=await account_settings.workspace_accounts(actor),
        rules=rules,
        rule_names={r.id: r.name for r in rules},
        timezone=viewer_zone(),
        tz=zone(viewer_zone()),
    )


@blueprint.get("/export.csv")
@requires(Role.VIEWER)
async def export() -> Response:
    """The filtered leads as a CSV file."""
    query, _ = _query()
    body = await lead_export.export_csv(current_actor(), query)
    stamp = services().container.clock.now().strftime("%Y%m%d")
    return Response(
        BOM + body,
        content_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="leads-{stamp}.csv"'},
    )


@blueprint.get("/<int:lead_id>")
@requires(Role.VIEWER)
async def detail(lead_id: int) -> str:
    """One lead with the conversation it came from and its webhook delivery."""
    membership = current_membership()
    found = await lead_review.lead_detail(current_actor(), lead_id)
    return await render_template(
        "leads/detail.html",
        detail=found,
        tz=zone(viewer_zone()),
        can_edit=membership.role in (Role.OWNER, Role.ADMIN, Role.EDITOR),
    )


@blueprint.post("/<int:lead_id>/resend")
@requires(Role.EDITOR)
async def resend(lead_id: int) -> WerkzeugResponse:
    """POST the lead to its rule's webhook again."""
    try:
        await lead_review.resend_webhook(current_actor(), services().container.queue, lead_id)
    except Conflict as exc:
        await flash(str(exc), "error")
    else:
        await flash("The lead is on its way to the webhook again.", "success")
    return redirect(url_for("leads.detail", lead_id=lead_id))
