"""Password change for the signed-in user, and reset by emailed link."""

from __future__ import annotations

import logging

from quart import Blueprint, current_app, flash, g, redirect, render_template, request, url_for
from werkzeug.wrappers import Response as WerkzeugResponse

from core.db.models import Role, User
from core.errors import NotFound, ValidationFailed
from core.ports.mailer import Mailer, MailError
from core.services import password_resets, sessions, users as users_service
from panel import login_throttle
from panel.security import public, requires, session_token
from panel.services import services

logger = logging.getLogger(__name__)

blueprint = Blueprint("passwords", __name__)

Page = str | tuple[str, int] | WerkzeugResponse


@blueprint.route("/account/password", methods=["GET", "POST"])
@requires(Role.VIEWER)
async def change() -> Page:
    """Change the signed-in user's password; their other sessions end."""
    user: User = g.user
    errors: dict[str, str] = {}
    if request.method == "POST":
        form = await request.form
        try:
            await users_service.change_password(
                user,
                form.get("current_password", ""),
                form.get("password", ""),
                form.get("password_confirm", ""),
            )
        except ValidationFailed as exc:
            errors = exc.fields
        else:
            ended = await sessions.end_all(user, keep=session_token())
            await flash(f"Password changed. Signed out of {ended} other session(s).", "success")
            return redirect(url_for("auth.account"))
    page = await render_template("password_change.html", errors=errors)
    return (page, 422) if errors else page


def _mailer() -> Mailer | None:
    return services().delivery.mailer


async def _send_reset_link(email: str) -> None:
    """Create and email a reset link when ``email`` has an account (run after the answer,
    so the answer takes as long whether or not it has one)."""
    container = services().container
    mailer = _mailer()
    made = await password_resets.request_reset(email, container.clock.now())
    if made is None or mailer is None:
        return
    link = f"{container.settings.base_url}/login/reset/{made.token}"
    body = (
        "Someone (hopefully you) asked to reset the password of your Reelay account.\n\n"
        f"Choose a new password here within an hour (the link works once):\n{link}\n\n"
        "If you did not ask, ignore this email: your password stays as it is."
    )
    try:
        await mailer.send(made.user.email, "Reset your Reelay password", body)
    except MailError as exc:
        logger.warning("password reset email to user %s not sent: %s", made.user.id, exc)


@blueprint.route("/login/forgot", methods=["GET", "POST"])
@public
async def forgot() -> str:
    """Ask for a reset link; the same answer whether or not the email has an account."""
    sent = False
    if request.method == "POST" and _mailer() is not None:
        email = (await request.form).get("email", "")
        current_app.add_background_task(_send_reset_link, email)
        sent = True
    return await render_template("password_forgot.html", sent=sent, smtp=_mailer() is not None)


@blueprint.route("/login/reset/<token>", methods=["GET", "POST"])
@public
async def reset(token: str) -> Page:
    """Choose a new password from an emailed link; every session of the account ends."""
    container = services().container
    try:
        found = await password_resets.find(token, container.clock.now())
    except NotFound as exc:
        return await render_template("password_reset.html", invalid=str(exc), errors={}), 404
    errors: dict[str, str] = {}
    if request.method == "POST":
        form = await request.form
        password = form.get("password", "")
        try:
            if password != form.get("password_confirm", ""):
                raise ValidationFailed("", {"password_confirm": "The passwords differ."})
            user = await password_resets.complete(token, password, container.clock.now())
        except ValidationFailed as exc:
            errors = exc.fields
        except NotFound as exc:
            return await render_template("password_reset.html", invalid=str(exc), errors={}), 404
        else:
            await login_throttle.unlock(container.redis, user.email)
            await flash("Password changed. Sign in with the new one.", "success")
            return redirect(url_for("auth.login"))
    page = await render_template("password_reset.html", invalid="", errors=errors, user=found.user)
    return (page, 422) if errors else page
