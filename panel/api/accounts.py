"""API: the workspace's Instagram accounts and their health, through the accounts and
health services the panel's pages use."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field
from quart import Blueprint
from quart_schema import validate_querystring, validate_response

from core.db.models import AccountStatus, InstagramAccount, LoginKind, Role
from core.domain.health import Level
from core.services import accounts
from core.services.health import AccountHealth
from panel.api.auth import api_requires, current_actor
from panel.api.schemas import CursorQuery, cursor_int, decode_cursor, encode_cursor
from panel.services import services

blueprint = Blueprint("api_accounts", __name__, url_prefix="/api/v1/accounts")


class AccountOut(BaseModel):
    id: int
    ig_id: str = Field(description="The account's Instagram user id.")
    username: str
    account_type: str
    status: AccountStatus
    status_reason: str
    login_kind: LoginKind = Field(description="How the account was connected.")
    token_expires_at: datetime | None = Field(
        description="When the access token expires (ISO 8601 with offset); null: unknown."
    )
    webhook_subscribed: bool = Field(description="Instagram sends the account's webhooks.")
    dm_pace_per_hour: int | None
    created_at: datetime


class AccountList(BaseModel):
    items: list[AccountOut]
    page: int
    has_next: bool
    next_cursor: str | None = Field(description="Pass as `cursor` for the next items.")


class FiguresOut(BaseModel):
    now: datetime = Field(description="The end of the 24-hour window the figures cover.")
    active: bool = Field(description="The account is connected and its token accepted.")
    status_reason: str
    webhook_subscribed: bool
    last_webhook_at: datetime | None
    events_per_hour: list[int] = Field(description="Webhook events per hour, oldest hour first.")
    events: int
    comments: int
    swept: int = Field(description="Comments the sweep caught (their webhook never came).")
    sends: dict[str, int] = Field(description="Sends by outcome.")
    reasons: dict[str, int] = Field(description="Why sends did not go out, with their counts.")
    token_expires_at: datetime | None
    token_days_left: int | None
    quota_used: int | None = Field(description="Posts published in Meta's 24-hour quota.")
    quota_total: int | None
    quota_error: str = Field(description="Why the quota could not be read, if it could not.")


class VerdictOut(BaseModel):
    level: Level
    text: str
    problems: list[str] = Field(description="Every problem found, the verdict's first.")


class HealthOut(BaseModel):
    account_id: int
    username: str
    figures: FiguresOut
    verdict: VerdictOut


def _out(account: InstagramAccount) -> AccountOut:
    return AccountOut(
        id=account.id,
        ig_id=account.ig_id,
        username=account.username,
        account_type=account.account_type,
        status=account.status,
        status_reason=account.status_reason,
        login_kind=account.login_kind,
        token_expires_at=account.token_expires_at,
        webhook_subscribed=account.webhook_subscribed,
        dm_pace_per_hour=account.dm_pace_per_hour,
        created_at=account.created_at,
    )


def _health_out(report: AccountHealth) -> HealthOut:
    figures = report.figures
    return HealthOut(
        account_id=report.account.id,
        username=report.account.username,
        figures=FiguresOut(
            now=figures.now,
            active=figures.active,
            status_reason=figures.status_reason,
            webhook_subscribed=figures.webhook_subscribed,
            last_webhook_at=figures.last_webhook_at,
            events_per_hour=list(figures.events_per_hour),
            events=figures.events,
            comments=figures.comments,
            swept=figures.swept,
            sends=dict(figures.sends),
            reasons=dict(figures.reasons),
            token_expires_at=figures.token_expires_at,
            token_days_left=figures.token_days_left,
            quota_used=figures.quota_used,
            quota_total=figures.quota_total,
            quota_error=figures.quota_error,
        ),
        verdict=VerdictOut(
            level=report.verdict.level,
            text=report.verdict.text,
            problems=list(report.verdict.problems),
        ),
    )


@blueprint.get("")
@api_requires(Role.VIEWER)
@validate_querystring(CursorQuery)
@validate_response(AccountList)
async def list_accounts(query_args: CursorQuery) -> AccountList:
    """The workspace's accounts, oldest first: ``limit`` (50) after ``cursor``, or page
    ``page``."""
    limit = query_args.limit
    found = await accounts.list_accounts(current_actor(), services().container)
    if query_args.cursor:
        after = cursor_int(decode_cursor("accounts", query_args.cursor), "after")
        rows = [account for account in found if account.id > after][: limit + 1]
    else:
        start = (query_args.page - 1) * limit
        rows = found[start : start + limit + 1]
    items = [_out(account) for account in rows[:limit]]
    more = len(rows) > limit
    return AccountList(
        items=items,
        page=query_args.page,
        has_next=more,
        next_cursor=encode_cursor("accounts", {"after": items[-1].id}) if more else None,
    )


@blueprint.get("/<int:account_id>")
@api_requires(Role.VIEWER)
@validate_response(AccountOut)
async def get_account(account_id: int) -> AccountOut:
    """One of the workspace's accounts."""
    return _out(await accounts.account(current_actor(), account_id))


@blueprint.get("/<int:account_id>/health")
@api_requires(Role.VIEWER)
@validate_response(HealthOut)
async def account_health(account_id: int) -> HealthOut:
    """The account's last 24 hours (webhooks, sends, Meta's publishing quota, token) and the
    verdict the panel's Health page shows. A disconnected account has no health (404)."""
    reports = await services().health.accounts(current_actor(), account_id)
    return _health_out(reports[0])
