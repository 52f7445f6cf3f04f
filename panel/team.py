"""The team page: members and roles, invitations by link."""

from __future__ import annotations

from quart import Blueprint, flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response as WerkzeugResponse

from core.db.models import Role
from core.errors import Conflict, Forbidden, NotFound, ValidationFailed
from core.services import team
from panel.security import current_actor, current_membership, requires
from panel.services import services

blueprint = Blueprint("team", __name__, url_prefix="/team")

ROLE_CHOICES = [(role.value, role.value.capitalize()) for role in Role]


async def _page(new_invite_url: str = "", status: int = 200) -> tuple[str, int]:
    membership = current_membership()
    now = services().container.clock.now()
    page = await render_template(
        "team/index.html",
        members=await team.members(current_actor()),
        invites=await team.open_invites(current_actor(), now),
        roles=ROLE_CHOICES,
        new_invite_url=new_invite_url,
        can_manage=membership.role in (Role.OWNER, Role.ADMIN),
    )
    return page, status


@blueprint.get("")
@requires(Role.VIEWER)
async def index() -> tuple[str, int]:
    """Members, their roles and open invitations."""
    return await _page()


@blueprint.post("/invites")
@requires(Role.ADMIN)
async def invite() -> tuple[str, int] | WerkzeugResponse:
    """Make an invitation link (shown once)."""
    form = await request.form
    now = services().container.clock.now()
    try:
        made = await team.create_invite(current_actor(), team.parse_role(form.get("role", "")), now)
    except (ValidationFailed, Forbidden) as exc:
        await flash(str(exc), "error")
        return redirect(url_for("team.index"))
    url = url_for("auth.accept_invite", token=made.token, _external=True)
    return await _page(new_invite_url=url, status=201)


@blueprint.post("/invites/<int:invite_id>/revoke")
@requires(Role.ADMIN)
async def revoke_invite(invite_id: int) -> WerkzeugResponse:
    """Withdraw an unused invitation."""
    try:
        await team.revoke_invite(current_actor(), invite_id)
    except (NotFound, Forbidden) as exc:
        await flash(str(exc), "error")
    else:
        await flash("Invitation withdrawn.", "success")
    return redirect(url_for("team.index"))


@blueprint.post("/members/<int:membership_id>/role")
@requires(Role.ADMIN)
async def change_role(membership_id: int) -> WerkzeugResponse:
    """Give a member another role."""
    form = await request.form
    try:
        changed = await team.change_role(
            current_actor(), membership_id, team.parse_role(form.get("role", ""))
        )
    except (ValidationFailed, Forbidden, Conflict, NotFound) as exc:
        await flash(str(exc), "error")
    else:
        await flash(f"{changed.user.email} is now {changed.role.value}.", "success")
    return redirect(url_for("team.index"))


@blueprint.post("/members/<int:membership_id>/remove")
@requires(Role.ADMIN)
async def remove(membership_id: int) -> WerkzeugResponse:
    """Take a member out of the workspace."""
    try:
        await team.remove_member(
            current_actor(), membership_id, now=services().container.clock.now()
        )
    except (Forbidden, Conflict, NotFound) as exc:
        await flash(str(exc), "error")
    else:
        await flash("Member removed.", "success")
    return redirect(url_for("team.index"))
