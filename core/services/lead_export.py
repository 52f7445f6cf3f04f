"""Listing and exporting captured leads (panel, API and chat)."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import datetime

from tortoise.expressions import Q
from tortoise.queryset import QuerySet

from core.db.models import Lead
from core.domain.scope import Actor
from core.domain.spreadsheet import safe_row

PAGE_SIZE = 50
EXPORT_LIMIT = 100_000
# igsid: the sender's Instagram-scoped id, the only way to tell who a DM lead (no username) was
COLUMNS = [
    "id",
    "created_at",
    "account",
    "rule_id",
    "username",
    "igsid",
    "name",
    "email",
    "phone",
]


@dataclass(frozen=True)
class LeadQuery:
    account_id: int | None = None
    rule_id: int | None = None
    since: datetime | None = None
    until: datetime | None = None
    # part of the username, name, email or phone, or the start of the sender's Instagram id
    search: str = ""


def _filtered(actor: Actor, wanted: LeadQuery) -> QuerySet[Lead]:
    query = Lead.filter(workspace_id=actor.workspace_id)
    if wanted.account_id is not None:
        query = query.filter(account_id=wanted.account_id)
    if wanted.rule_id is not None:
        query = query.filter(rule_id=wanted.rule_id)
    if wanted.since is not None:
        query = query.filter(created_at__gte=wanted.since)
    if wanted.until is not None:
        query = query.filter(created_at__lt=wanted.until)
    if wanted.search.strip():
        text = wanted.search.strip()
        query = query.filter(
            Q(username__icontains=text)
            | Q(name__icontains=text)
            | Q(email__icontains=text)
            | Q(phone__icontains=text)
            | Q(igsid__startswith=text)
        )
    return query


async def list_leads(
    actor: Actor,
    wanted: LeadQuery,
    page: int = 1,
    *,
    limit: int = PAGE_SIZE,
    after: tuple[datetime, int] | None = None,
) -> tuple[list[Lead], bool]:
    """One page of leads, newest first, and whether there are more: page ``page``, or the
    ``limit`` leads that come after the lead at ``after`` (its time and id, for a cursor)."""
    query = _filtered(actor, wanted)
    if after is not None:
        at, lead_id = after
        query = query.filter(Q(created_at__lt=at) | Q(created_at=at, id__lt=lead_id))
    else:
        query = query.offset((max(page, 1) - 1) * limit)
    rows = (
        await query.order_by("-created_at", "-id")
        .limit(limit + 1)
        .prefetch_related("account", "conversation")
    )
    return rows[:limit], len(rows) > limit


async def export_csv(actor: Actor, wanted: LeadQuery) -> str:
    """The leads as CSV (custom fields as extra columns), safe to open in a spreadsheet."""
    leads = (
        await _filtered(actor, wanted)
        .order_by("created_at", "id")
        .limit(EXPORT_LIMIT)
        .prefetch_related("account")
    )
    extra = sorted({key for lead in leads for key in lead.custom_fields})
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(COLUMNS + extra)
    for lead in leads:
        writer.writerow(
            safe_row(
                [
                    lead.id,
                    lead.created_at.isoformat(),
                    lead.account.username,
                    lead.rule_id,
                    lead.username,
                    lead.igsid,
                    lead.name,
                    lead.email,
                    lead.phone,
                ]
                + [lead.custom_fields.get(key) for key in extra]
            )
        )
    return out.getvalue()
