"""The panel's main menu: one line per page, shown when the page exists and the role allows it.

Feature blueprints add their page here with one line (endpoint, label, least role).
"""

from __future__ import annotations

from dataclasses import dataclass

from quart import current_app, request

from core.db.models import Membership, Role
from core.domain.chat import LINK_CODES_MENU
from core.services.users import role_allows


@dataclass(frozen=True)
class NavItem:
    endpoint: str
    label: str
    role: Role
    # Other blueprints whose pages belong to this item (the inbox's Comments tab).
    also: tuple[str, ...] = ()


MENU: list[NavItem] = [
    NavItem("home.index", "Overview", Role.VIEWER),
    NavItem("posts.index", "Posts", Role.VIEWER),
    NavItem("library.index", "Media", Role.VIEWER),
    NavItem("inbox.index", "Inbox", Role.VIEWER, also=("comments",)),
    NavItem("rules.index", "Automations", Role.VIEWER),
    NavItem("leads.index", "Leads", Role.VIEWER),
    NavItem("drafts.index", "Approvals", Role.VIEWER),
    NavItem("analytics.index", "Analytics", Role.VIEWER),
    NavItem("accounts.index", "Accounts", Role.VIEWER),
    NavItem("account_health.index", "Health", Role.VIEWER),
    NavItem("sandbox.index", "Sandbox", Role.EDITOR),
    NavItem("logs.audit", "Logs", Role.VIEWER),
    NavItem("team.index", "Team", Role.VIEWER),
    NavItem("setup.index", LINK_CODES_MENU, Role.ADMIN),
    NavItem("api_tokens.index", "API", Role.ADMIN),
    NavItem("event_webhooks.index", "Webhooks", Role.ADMIN),
]


def menu_for(membership: Membership | None) -> list[tuple[NavItem, bool]]:
    """The menu items this member may open, each with whether it is the current page."""
    if membership is None:
        return []
    views = current_app.view_functions
    current_blueprint = (request.endpoint or "").split(".", 1)[0]
    return [
        (item, current_blueprint in {item.endpoint.split(".", 1)[0], *item.also})
        for item in MENU
        if item.endpoint in views and role_allows(membership.role, item.role)
    ]
