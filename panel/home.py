"""The dashboard."""

from __future__ import annotations

from quart import Blueprint, g, render_template

from core.db.models import InstagramAccount, Post, Role
from core.domain.posts import Status
from panel.security import requires

blueprint = Blueprint("home", __name__)


@blueprint.get("/")
@requires(Role.VIEWER)
async def index() -> str:
    """Overview of the current workspace."""
    workspace = g.membership.workspace
    accounts = await InstagramAccount.filter(workspace=workspace).order_by("username")
    queued = await Post.filter(workspace=workspace, status=Status.SCHEDULED).count()
    return await render_template("home.html", workspace=workspace, accounts=accounts, queued=queued)
