"""The dashboard."""

from __future__ import annotations

from quart import Blueprint, g, render_template

from core.db.models import Role
from core.services import account_settings
from panel.security import current_actor, requires
from panel.services import services

blueprint = Blueprint("home", __name__)


@blueprint.get("/")
@requires(Role.VIEWER)
async def index() -> str:
    """Overview of the current workspace."""
    workspace = g.membership.workspace
    actor = current_actor()
    accounts = await account_settings.workspace_accounts(actor)
    queued = await services().publishing.scheduled_count(actor)
    return await render_template("home.html", workspace=workspace, accounts=accounts, queued=queued)
