"""The audit log and the event log pages."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, TypedDict

from quart import Blueprint, current_app, render_template, request, url_for

from core.db.models import AuditLog, InstagramAccount, Role, WebhookEvent
from core.domain.ids import page_number, row_id
from core.domain.zones import zone_info
from core.services import account_settings, followers, logs
from panel.security import current_actor, requires, viewer_zone

blueprint = Blueprint("logs", __name__, url_prefix="/logs")

# Where an audit entry's target lives in the panel: target type → (endpoint, id argument).
TARGET_PAGES: dict[str, tuple[str, str]] = {
    "post": ("posts.detail", "post_id"),
    "rule": ("rules.edit", "rule_id"),
    "lead": ("leads.detail", "lead_id"),
    "draft": ("drafts.detail", "draft_id"),
    "account": ("accounts.index", ""),
    "instagram_account": ("accounts.index", ""),
    "user": ("team.index", ""),
    "invite": ("team.index", ""),
    "chat": ("setup.index", ""),
    "api_token": ("api_tokens.index", ""),
}


def _date(raw: str | None) -> datetime | None:
    if not raw:
        return None
    try:
        return datetime.fromisoformat(raw).replace(tzinfo=zone_info(viewer_zone()))
    except ValueError:
        return None


def _filter() -> tuple[logs.LogFilter, dict[str, str]]:
    args = request.args
    account = args.get("account", "")
    level = args.get("level", "")
    wanted = logs.LogFilter(
        account_id=row_id(account),
        kind=args.get("kind", "")[:64],
        level=level if level in logs.LEVELS else "",
        since=_date(args.get("since")),
        until=_date(args.get("until")),
    )
    return wanted, {
        key: args.get(key, "") for key in ("account", "kind", "level", "since", "until")
    }


def _page_number() -> int:
    raw = request.args.get("page", "1")
    return page_number(raw)


def target_link(entry: AuditLog) -> str:
    """The panel page of what an audit entry is about ('' when there is none)."""
    endpoint, argument = TARGET_PAGES.get(entry.target_type, ("", ""))
    if not endpoint or endpoint not in current_app.view_functions:
        return ""
    if not argument:
        on_account = entry.target_type in {"account", "instagram_account"}
        anchor = f"#account-{entry.target_id}" if on_account else ""
        return url_for(endpoint) + anchor
    if not entry.target_id.isdigit():
        return ""
    # Typed as url_for's own **values: mypy checks a dict[str, int] against its _anchor too.
    values: dict[str, Any] = {argument: int(entry.target_id)}
    return url_for(endpoint, **values)


class LogContext(TypedDict):
    """What the audit and event log templates show around the entries."""

    page: logs.Page[AuditLog] | logs.Page[WebhookEvent]
    shown: dict[str, str]
    accounts: list[InstagramAccount]
    page_url: Callable[[int], str]


async def _common(
    view: str, page: logs.Page[AuditLog] | logs.Page[WebhookEvent], shown: dict[str, str]
) -> LogContext:
    accounts = await account_settings.workspace_accounts(current_actor())

    def page_url(number: int) -> str:
        values: dict[str, Any] = {k: v for k, v in shown.items() if v}  # as url_for's **values
        return url_for(view, **values, page=number)

    return {"page": page, "shown": shown, "accounts": accounts, "page_url": page_url}


@blueprint.get("/audit")
@requires(Role.VIEWER)
async def audit() -> str:
    """Who did what, filtered by account, kind, level and time."""
    wanted, shown = _filter()
    page = await logs.audit_page(current_actor(), wanted, _page_number())
    context = await _common("logs.audit", page, shown)
    return await render_template("logs/audit.html", target_link=target_link, **context)


@blueprint.get("/events")
@requires(Role.VIEWER)
async def events() -> str:
    """Webhook events received from Meta, filtered by account, kind, level and time."""
    wanted, shown = _filter()
    page = await logs.event_page(current_actor(), wanted, _page_number())
    context = await _common("logs.events", page, shown)
    by_ig_id = {account.ig_id: account for account in context["accounts"]}
    people = await followers.event_people(current_actor(), page.items)
    return await render_template(
        "logs/events.html",
        by_ig_id=by_ig_id,
        people=people,
        event_level=logs.EVENT_LEVEL,
        **context,
    )
