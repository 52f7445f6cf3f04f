"""The API tokens page: make (shown once), list and revoke tokens."""

from __future__ import annotations

from quart import Blueprint, flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response as WerkzeugResponse

from core.db.models import Role
from core.errors import Forbidden, NotFound, ValidationFailed
from core.services import api_tokens, team
from panel.security import current_actor, requires
from panel.services import services

blueprint = Blueprint("api_tokens", __name__, url_prefix="/settings/api-tokens")

ROLE_CHOICES = [(role.value, role.value.capitalize()) for role in Role]


async def _page(status: int = 200, **extra: object) -> tuple[str, int]:
    extra.setdefault("errors", {})
    extra.setdefault("form", {})
    page = await render_template(
        "api_tokens/index.html",
        tokens=await api_tokens.list_tokens(current_actor()),
        roles=ROLE_CHOICES,
        **extra,
    )
    return page, status


@blueprint.get("")
@requires(Role.ADMIN)
async def index() -> tuple[str, int]:
    """The workspace's API tokens."""
    return await _page()


@blueprint.post("")
@requires(Role.ADMIN)
async def create() -> tuple[str, int]:
    """Make a token; its secret is shown on this response only."""
    form = await request.form
    try:
        made = await api_tokens.create_token(
            current_actor(), form.get("name", ""), team.parse_role(form.get("role", ""))
        )
    except ValidationFailed as exc:
        return await _page(422, errors=exc.fields, form=form)
    return await _page(201, new_token=made)


@blueprint.post("/<int:token_id>/revoke")
@requires(Role.ADMIN)
async def revoke(token_id: int) -> WerkzeugResponse:
    """Revoke a token at once."""
    now = services().container.clock.now()
    try:
        await api_tokens.revoke_token(current_actor(), token_id, now)
    except (NotFound, Forbidden) as exc:
        await flash(str(exc), "error")
    else:
        await flash("Token revoked.", "success")
    return redirect(url_for("api_tokens.index"))
