"""Sign-in, sign-out, "log out everywhere", invitations and the first-run page."""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

from quart import (
    Blueprint,
    flash,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from werkzeug.wrappers import Response as WerkzeugResponse

from core.db.models import Membership, Role, User
from core.domain.ids import row_id
from core.errors import Conflict, NotFound, ValidationFailed
from core.services import audit, team, users
from panel import login_throttle
from panel.security import load_user, public, requires, sign_in, sign_out
from panel.services import services

logger = logging.getLogger(__name__)

blueprint = Blueprint("auth", __name__)

Page = str | tuple[str, int] | tuple[str, int, dict[str, str]] | WerkzeugResponse


def _new_account_problems(form: dict[str, str]) -> dict[str, str]:
    """Every problem with a new account's email, password and repeated password."""
    problems: dict[str, str] = {}
    password = form.get("password", "")
    try:
        users.check_credentials(form.get("email", ""), password)
    except ValidationFailed as exc:
        problems.update(exc.fields)
    if password != form.get("password_confirm", ""):
        problems["password_confirm"] = "The passwords differ."
    return problems


def _safe_next(target: str | None) -> str:
    """``target`` when it is a path on this site, else the home page (no open redirect).

    Browsers read a backslash as a slash and drop tabs and newlines, so a slash followed
    by a backslash or a tab leaves the site just as "//evil.example" does.
    """
    if (
        target
        and target.startswith("/")
        and not urlsplit(target).netloc
        and not any(char == "\\" or not char.isprintable() for char in target)
    ):
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
        errors = _new_account_problems(form)
        if not errors:
            try:
                user = await users.create_first_owner(
                    form["email"], form["password"], form.get("workspace", "").strip() or "My team"
                )
            except ValidationFailed as exc:
                errors = exc.fields or {"email": exc.message}
            except Conflict:
                return redirect(url_for("auth.login"))
            else:
                sign_in(user)
                await flash("Welcome! Let's set Reelay up.", "success")
                return redirect(url_for("setup.index"))
    page = await render_template("first_run.html", errors=errors, form=form)
    return (page, 422) if errors else page


@blueprint.route("/login", methods=["GET", "POST"])
@public
async def login() -> Page:
    """Email and password sign-in, limited per address and email."""
    if not await users.has_users():
        return redirect(url_for("auth.first_run"))
    error = ""
    status = 200
    form = await request.form
    if request.method == "POST":
        redis = services().container.redis
        email = form.get("email", "")
        address = request.remote_addr or "unknown"
        wait = await login_throttle.retry_after(redis, address, email)
        if wait:
            minutes = max(1, round(wait / 60))
            error = f"Too many failed attempts. Try again in about {minutes} minute(s)."
            status = 429
        else:
            user = await users.authenticate(email, form.get("password", ""))
            if user is None:
                await login_throttle.record_failure(redis, address, email)
                error = "Wrong email or password."
                status = 401
            else:
                await login_throttle.clear(redis, address, email)
                sign_in(user)
                return redirect(_safe_next(request.args.get("next")))
    elif await load_user() is not None:
        return redirect(url_for("home.index"))
    page = await render_template("login.html", error=error, form=form)
    headers = {"Retry-After": "60"} if status == 429 else {}
    return page, status, headers


@blueprint.post("/logout")
@public
async def logout() -> WerkzeugResponse:
    """Sign out of this browser."""
    sign_out()
    return redirect(url_for("auth.login"))


@blueprint.get("/account")
@requires(Role.VIEWER)
async def account() -> str:
    """The signed-in user's own account: workspaces and sessions."""
    user: User = g.user
    return await render_template("account.html", memberships=await users.memberships(user))


@blueprint.post("/account/logout-everywhere")
@requires(Role.VIEWER)
async def logout_everywhere() -> WerkzeugResponse:
    """End every session of the signed-in user, on every device."""
    user: User = g.user
    user.session_epoch += 1
    await user.save(update_fields=["session_epoch"])
    await audit.record(
        "user.logout_everywhere", actor=user.email, target_type="user", target_id=user.id
    )
    sign_out()
    await flash("You are signed out on every device.", "success")
    return redirect(url_for("auth.login"))


@blueprint.post("/account/workspace")
@requires(Role.VIEWER)
async def switch_workspace() -> WerkzeugResponse:
    """Work in another workspace the user belongs to."""
    form = await request.form
    wanted = form.get("workspace_id", "")
    user: User = g.user
    workspace_id = row_id(wanted)
    if workspace_id is not None and await Membership.exists(user=user, workspace_id=workspace_id):
        session["workspace_id"] = workspace_id
    else:
        await flash("You are not a member of that workspace.", "error")
    return redirect(url_for("home.index"))


@blueprint.route("/invite/<token>", methods=["GET", "POST"])
@public
async def accept_invite(token: str) -> Page:
    """Join a workspace from an invitation link (signed in, or creating an account)."""
    clock = services().container.clock
    try:
        invite = await team.find_invite(token, clock.now())
    except NotFound as exc:
        page = await render_template("invite.html", invalid=str(exc), form={}, errors={})
        return page, 404
    user = await load_user()
    errors: dict[str, str] = {}
    form = await request.form
    if request.method == "POST":
        try:
            if user is not None:
                membership = await team.accept_invite(token, user, clock.now())
            else:
                problems = _new_account_problems(form)
                if problems:
                    raise ValidationFailed("", problems)
                user, membership = await team.accept_invite_as_new_user(
                    token,
                    form.get("email", ""),
                    form.get("password", ""),
                    form.get("name", "").strip()[:120],
                    clock.now(),
                )
                sign_in(user)
        except ValidationFailed as exc:
            errors = exc.fields or {"email": exc.message}
        except (Conflict, NotFound) as exc:
            await flash(str(exc), "error")
            return redirect(url_for("home.index"))
        else:
            session["workspace_id"] = membership.workspace_id
            await flash(f"You joined {invite.workspace.name}.", "success")
            return redirect(url_for("home.index"))
    page = await render_template(
        "invite.html", invite=invite, invalid="", form=form, errors=errors, user=user
    )
    return (page, 422) if errors else page
