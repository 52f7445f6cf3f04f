"""API: the workspace's members and their roles (read-only), through the team service."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field
from quart import Blueprint
from quart_schema import validate_querystring, validate_response

from core.db.models import Membership, Role
from core.services import team
from panel.api.auth import api_requires, current_actor
from panel.api.schemas import CursorQuery, cursor_int, decode_cursor, encode_cursor

blueprint = Blueprint("api_team", __name__, url_prefix="/api/v1/team")


class MemberOut(BaseModel):
    id: int = Field(description="The membership's id.")
    user_id: int
    email: str
    name: str
    role: Role
    joined_at: datetime


class MemberList(BaseModel):
    items: list[MemberOut]
    page: int
    has_next: bool
    next_cursor: str | None = Field(description="Pass as `cursor` for the next items.")


def _out(member: Membership) -> MemberOut:
    return MemberOut(
        id=member.id,
        user_id=member.user_id,
        email=member.user.email,
        name=member.user.name,
        role=member.role,
        joined_at=member.created_at,
    )


@blueprint.get("")
@api_requires(Role.ADMIN)
@validate_querystring(CursorQuery)
@validate_response(MemberList)
async def list_members(query_args: CursorQuery) -> MemberList:
    """The workspace's members, owners first, then by email: ``limit`` (50) after
    ``cursor``, or page ``page`` (a token of an owner or admin)."""
    limit = query_args.limit
    start = (query_args.page - 1) * limit
    if query_args.cursor:
        start = max(0, cursor_int(decode_cursor("team", query_args.cursor), "offset"))
    found = await team.members(current_actor())
    rows = found[start : start + limit + 1]
    items = [_out(member) for member in rows[:limit]]
    more = len(rows) > limit
    return MemberList(
        items=items,
        page=query_args.page,
        has_next=more,
        next_cursor=encode_cursor("team", {"offset": start + limit}) if more else None,
    )
