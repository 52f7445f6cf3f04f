"""Sign-in, sign-out and the first-run page that creates the owner."""

from __future__ import annotations

from quart import Blueprint, redirect, render_template, request, session, url_for
from quart_auth import AuthUser, login_user, logout_user
from werkzeug.wrappers import Response as WerkzeugResponse

from core.errors import Conflict, ValidationFailed
from core.services import users
from panel.security import load_user, public

blueprint = Blueprint("auth", __name__)

Page = str | tuple[str, int] | WerkzeugResponse


def _safe_next(target: str | None) -> str:
    if target and target.startswith("/") and not target.startswith("//"):
        return target
    return url_for("home.index")


@blueprint.route("/setup/first-run", methods=["GET", "POST"])
@public
async def first_run() -> Page:
    """Create the workspace owner while no user exists."""
    if await users.has_users():
        return redirect(url_for("auth.login"))
    errors: dict[str, str] = {}
    form = await request.form
    if request.method == "POST":
        if form.get("password", "") != form.get("password_confirm", ""):
            errors["password_confirm"] = "The passwords differ."
        else:
            try:
                user = await users.create_first_owner(
                    form.get("email", ""),
                    form.get("password", ""),
                    form.get("workspace", "").strip() or "My team",
                )
            except ValidationFailed as exc:
                errors = exc.fields or {"email": exc.message}
            except Conflict:
                return redirect(url_for("auth.login"))
            else:
                session.clear()
                login_user(AuthUser(f"{user.id}:{user.session_epoch}"), remember=True)
                return redirect(url_for("home.index"))
    page = await render_template("first_run.html", errors=errors, form=form)
    return (page, 422) if errors else page


@blueprint.route("/login", methods=["GET", "POST"])
@public
async def login() -> Page:
    """Email and password sign-in."""
    if not await users.has_users():
        return redirect(url_for("auth.first_run"))
    error = ""
    form = await request.form
    if request.method == "POST":
        user = await users.authenticate(form.get("email", ""), form.get("password", ""))
        if user is None:
            error = "Wrong email or password."
        else:
            session.clear()  # a fresh session on sign-in: no fixation
            login_user(AuthUser(f"{user.id}:{user.session_epoch}"), remember=True)
            return redirect(_safe_next(request.args.get("next")))
    elif await load_user() is not None:
        return redirect(url_for("home.index"))
    page = await render_template("login.html", error=error, form=form)
    return (page, 401) if error else page


@blueprint.post("/logout")
@public
async def logout() -> WerkzeugResponse:
    """Sign out of this browser."""
    logout_user()
    session.clear()
    return redirect(url_for("auth.login"))
