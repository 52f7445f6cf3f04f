"""API: captured leads (list and CSV export)."""

from __future__ import annotations

from datetime import datetime

from pydantic import AwareDatetime, BaseModel, Field
from quart import Blueprint, Response
from quart_schema import validate_querystring, validate_response

from core.db.models import Lead, Role
from core.errors import ValidationFailed
from core.services import lead_export
from panel.api.auth import api_requires, current_actor
from panel.api.schemas import CursorQuery, cursor_int, decode_cursor, encode_cursor

blueprint = Blueprint("api_leads", __name__, url_prefix="/api/v1/leads")


class LeadFilter(BaseModel):
    account_id: int | None = Field(None, ge=1, le=2**31 - 1)
    rule_id: int | None = Field(None, ge=1, le=2**31 - 1)
    since: AwareDatetime | None = None
    until: AwareDatetime | None = None
    q: str = Field(
        "",
        max_length=100,
        description="Part of the username, name, email or phone, or the start of the IGSID.",
    )


class LeadListQuery(LeadFilter, CursorQuery):
    pass


class LeadOut(BaseModel):
    id: int
    account_id: int
    account_username: str
    rule_id: int | None
    igsid: str
    username: str
    name: str | None
    email: str | None
    phone: str | None
    custom_fields: dict[str, object]
    webhook_status: str
    created_at: datetime


class LeadList(BaseModel):
    items: list[LeadOut]
    page: int
    has_next: bool
    next_cursor: str | None = Field(description="Pass as `cursor` for the next items.")


def _query(args: LeadFilter) -> lead_export.LeadQuery:
    return lead_export.LeadQuery(
        account_id=args.account_id,
        rule_id=args.rule_id,
        since=args.since,
        until=args.until,
        search=args.q,
    )


def _out(lead: Lead) -> LeadOut:
    return LeadOut(
        id=lead.id,
        account_id=lead.account.id,
        account_username=lead.account.username,
        rule_id=lead.rule_id,
        igsid=lead.igsid,
        username=lead.username,
        name=lead.name,
        email=lead.email,
        phone=lead.phone,
        custom_fields=lead.custom_fields,
        webhook_status=lead.webhook_status,
        created_at=lead.created_at,
    )


@blueprint.get("")
@api_requires(Role.VIEWER)
@validate_querystring(LeadListQuery)
@validate_response(LeadList)
async def list_leads(query_args: LeadListQuery) -> LeadList:
    """Leads, newest first: ``limit`` (50) after ``cursor``, or page ``page``."""
    after = None
    if query_args.cursor:
        position = decode_cursor("leads", query_args.cursor)
        after = (_cursor_time(position.get("at")), cursor_int(position, "before"))
    items, has_next = await lead_export.list_leads(
        current_actor(),
        _query(query_args),
        query_args.page,
        limit=query_args.limit,
        after=after,
    )
    next_cursor = None
    if has_next:
        last = items[-1]
        next_cursor = encode_cursor("leads", {"at": last.created_at.isoformat(), "before": last.id})
    return LeadList(
        items=[_out(lead) for lead in items],
        page=query_args.page,
        has_next=has_next,
        next_cursor=next_cursor,
    )


def _cursor_time(value: object) -> datetime:
    try:
        found = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        found = None
    if found is None or found.tzinfo is None:
        raise ValidationFailed(
            "The cursor is not one this list gave; pass next_cursor back unchanged.",
            {"cursor": "not a cursor of this list"},
        )
    return found


@blueprint.get("/export")
@api_requires(Role.VIEWER)
@validate_querystring(LeadFilter)
async def export_leads(query_args: LeadFilter) -> Response:
    """All matching leads as a CSV file (oldest first)."""
    body = await lead_export.export_csv(current_actor(), _query(query_args))
    return Response(
        body,
        content_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="leads.csv"'},
    )
