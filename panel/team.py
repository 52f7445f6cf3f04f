"""The team page: members and roles, invitations by link."""

from __future__ import annotations

import logging

from quart import Blueprint, flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response as WerkzeugResponse

from core.db.models import Role
from core.errors import Conflict, Forbidden, NotFound, ValidationFailed
from core.ports.mailer import MailError
from core.services import team, users
from panel.security import current_actor, current_membership, requires
from panel.services import services

logger = logging.getLogger(__name__)

blueprint = Blueprint("team", __name__, url_prefix="/team")

ROLE_CHOICES = [(role.value, role.value.capitalize()) for role in Role]


async def _page(
    new_invite_url: str = "",
    status: int = 200,
    *,
    emailed_to: str = "",
    email_problem: str = "",
    email: str = "",
) -> tuple[str, int]:
    membership = current_membership()
    now = services().container.clock.now()
    page = await render_template(
        "team/index.html",
        members=await team.members(current_actor()),
        invites=await team.open_invites(current_actor(), now),
        roles=ROLE_CHOICES,
        new_invite_url=new_invite_url,
        can_manage=membership.role in (Role.OWNER, Role.ADMIN),
        can_email=services().delivery.mailer is not None,
        emailed_to=emailed_to,
        email_problem=email_problem,
        email=email,
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
    """Make an invitation link (shown once), and email it when an address is given."""
    form = await request.form
    now = services().container.clock.now()
    email = form.get("email", "").strip()
    mailer = services().delivery.mailer
    if email and mailer is None:
        await flash("Email is not set up (SMTP_HOST): copy the link instead.", "error")
        return redirect(url_for("team.index"))
    if email:
        try:
            users.normalise_email(email)
        except ValidationFailed as exc:
            return await _page(email_problem=exc.fields["email"], email=email, status=422)
    try:
        made = await team.create_invite(current_actor(), team.parse_role(form.get("role", "")), now)
    except (ValidationFailed, Forbidden) as exc:
        await flash(str(exc), "error")
        return redirect(url_for("team.index"))
    url = url_for("auth.accept_invite", token=made.token, _external=True)
    if not email or mailer is None:
        return await _page(new_invite_url=url, status=201)
    try:
        sent_to = await team.email_invite(
            current_actor(),
            mailer,
            made,
            to=email,
            link=url,
            team_name=current_membership().workspace.name,
        )
    except MailError as exc:
        logger.warning("invite %s not emailed: %s", made.invite.id, exc)
        problem = f"The email could not be sent ({exc}): copy the link and send it yourself."
        return await _page(new_invite_url=url, status=201, email_problem=problem, email=email)
    return await _page(new_invite_url=url, status=201, emailed_to=sent_to)


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
