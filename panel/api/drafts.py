"""API: AI reply drafts waiting for approval (list, approve, edit, reject)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field
from quart import Blueprint
from quart_schema import validate_querystring, validate_request, validate_response

from core.db.models import DraftStatus, ReplyDraft, Role
from core.services import approvals
from core.services.smart_replies import SmartReplies
from panel.api.auth import api_requires, current_actor
from panel.api.schemas import CursorQuery, cursor_int, decode_cursor, encode_cursor, may_conflict
from panel.services import services

blueprint = Blueprint("api_drafts", __name__, url_prefix="/api/v1/drafts")


class DraftQuery(CursorQuery):
    status: DraftStatus | None = DraftStatus.PENDING


class DraftOut(BaseModel):
    id: int
    account_id: int
    rule_id: int | None
    inbound_text: str
    proposed_text: str
    final_text: str | None
    status: str
    expires_at: datetime
    decided_at: datetime | None
    created_at: datetime


class DraftList(BaseModel):
    items: list[DraftOut]
    page: int
    has_next: bool
    next_cursor: str | None = Field(description="Pass as `cursor` for the next items.")


class EditBody(BaseModel):
    text: str = Field(min_length=1, max_length=10_000)


class RejectBody(BaseModel):
    fallback_text: str | None = Field(
        None, max_length=10_000, description="Send this static reply instead of nothing."
    )


def _replies() -> SmartReplies:
    return services().smart_replies


def _out(draft: ReplyDraft) -> DraftOut:
    return DraftOut(
        id=draft.id,
        account_id=draft.account_id,
        rule_id=draft.rule_id,
        inbound_text=draft.inbound_text,
        proposed_text=draft.proposed_text,
        final_text=draft.final_text,
        status=draft.status.value,
        expires_at=draft.expires_at,
        decided_at=draft.decided_at,
        created_at=draft.created_at,
    )


@blueprint.get("")
@api_requires(Role.VIEWER)
@validate_querystring(DraftQuery)
@validate_response(DraftList)
async def list_drafts(query_args: DraftQuery) -> DraftList:
    """Drafts, pending ones by default, newest first: ``limit`` after ``cursor``, or a page."""
    limit = query_args.limit
    before = None
    if query_args.cursor:
        before = cursor_int(decode_cursor("drafts", query_args.cursor), "before")
    rows = await approvals.drafts_page(
        current_actor(),
        status=query_args.status,
        offset=0 if before else (query_args.page - 1) * limit,
        limit=limit + 1,
        before_id=before,
    )
    items = [_out(d) for d in rows[:limit]]
    more = len(rows) > limit
    return DraftList(
        items=items,
        page=query_args.page,
        has_next=more,
        next_cursor=encode_cursor("drafts", {"before": items[-1].id}) if more else None,
    )


@blueprint.post("/<int:draft_id>/approve")
@api_requires(Role.EDITOR)
@may_conflict("The draft was already decided or has expired.")
@validate_response(DraftOut)
async def approve(draft_id: int) -> DraftOut:
    """Send the proposed reply as it is."""
    draft = await _replies().approve(current_actor(), draft_id)
    return _out(draft)


@blueprint.post("/<int:draft_id>/edit")
@api_requires(Role.EDITOR)
@may_conflict("The draft was already decided or has expired.")
@validate_request(EditBody)
@validate_response(DraftOut)
async def edit(draft_id: int, data: EditBody) -> DraftOut:
    """Send your text instead of the proposed one."""
    draft = await _replies().edit(current_actor(), draft_id, data.text)
    return _out(draft)


@blueprint.post("/<int:draft_id>/reject")
@api_requires(Role.EDITOR)
@may_conflict("The draft was already decided or has expired.")
@validate_request(RejectBody)
@validate_response(DraftOut)
async def reject(draft_id: int, data: RejectBody) -> DraftOut:
    """Send nothing, or the given static reply."""
    draft = await _replies().reject(current_actor(), draft_id, fallback_text=data.fallback_text)
    return _out(draft)
