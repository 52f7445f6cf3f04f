"""The Health page: each account's webhooks, sweep, sends, token and quota at a glance."""

from __future__ import annotations

from quart import Blueprint, render_template

from core.db.models import Role
from core.domain.health import NO_WORKER, shown_time
from core.domain.posts import zone
from panel.security import current_actor, requires, viewer_zone
from panel.services import services

blueprint = Blueprint("account_health", __name__, url_prefix="/health")

BADGE = {"working": "ok", "warning": "warning", "broken": "error"}


@blueprint.get("")
@requires(Role.VIEWER)
async def index() -> str:
    """Each connected account's health and a plain verdict; times in the viewer's zone."""
    tz = zone(viewer_zone())
    health = services().health
    reports = await health.accounts(current_actor())
    return await render_template(
        "account_health/index.html",
        no_worker=None if await health.worker_running() else NO_WORKER,
        reports=reports,
        badge=BADGE,
        when=lambda moment: shown_time(moment, tz),
        zone_name=tz.key,
    )
