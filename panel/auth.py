"""Sign-in, sign-out, "log out everywhere", invitations and the first-run page."""

from __future__ import annotations

import logging
import math
from urllib.parse import unquote, urlsplit

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
from core.domain.zones import checked_zone
from core.errors import Conflict, NotFound, ValidationFailed
from core.services import audit, sessions, team, time_zones, users
from panel import clients, login_throttle
from panel.security import current_actor, load_user, public, requires, sign_in, sign_out
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


def _leaves_site(target: str) -> bool:
    return (
        not target.startswith("/")
        or target.startswith("//")
        or any(char == "\\" or not char.isprintable() for char in target)
        or bool(urlsplit(target).netloc)
    )


def safe_next(target: str | None) -> str:
    """``target`` when it is a path on this site, else the home page (no open redirect).

    Only "/" followed by something other than a slash will do: "//evil.example" and
    "///evil.example" leave the site. Browsers read a backslash as a slash and drop tabs
    and newlines, so any of those (or any other unprintable character) is refused too, and
    so is a path that would leave once percent-decoded ("/%2F/evil.example").
    """
    if target and not _leaves_site(target) and not _leaves_site(unquote(target)):
        return target
    return url_for("home.index")


def _too_many(wait: int) -> str:
    minutes = max(1, math.ceil(wait / 60))
    return f"Too many sign-in attempts. Try again in about {minutes} minute(s)."


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
        zone = form.get("timezone", "").strip() or "UTC"
        try:
            zone = checked_zone(zone)
        except ValidationFailed as exc:
            errors.update(exc.fields)
        if not errors:
            try:
                user = await users.create_first_owner(
                    form["email"],
                    form["password"],
                    form.get("workspace", "").strip() or "My team",
                    timezone=zone,
                )
            except ValidationFailed as exc:
                errors = exc.fields or {"email": exc.message}
            except Conflict:
                return redirect(url_for("auth.login"))
            else:
                await sign_in(user)
                await flash("Welcome! Let's set Reelay up.", "success")
                return redirect(url_for("setup.index"))
    page = await render_template("first_run.html", errors=errors, form=form)
    return (page, 422) if errors else page


@blueprint.route("/login", methods=["GET", "POST"])
@public
async def login() -> Page:
    """Email and password sign-in, throttled per address, account and known device."""
    if not await users.has_users():
        return redirect(url_for("auth.first_run"))
    error = ""
    status = 200
    headers: dict[str, str] = {}
    form = await request.form
    if request.method == "POST":
        container = services().container
        email = form.get("email", "")
        address = clients.client_address()
        device = clients.known_device(email)
        wait = await login_throttle.reserve(
            container.redis, address, email, device, container.clock.now().timestamp()
        )
        if wait:
            error, status, headers = _too_many(wait), 429, {"Retry-After": str(wait)}
        else:
            user = await users.authenticate(email, form.get("password", ""))
            if user is None:
                error = "Wrong email or password."
                status = 401
            else:
                await login_throttle.succeed(container.redis, address, email, device)
                await sign_in(user)
                response = redirect(safe_next(request.args.get("next")))
                clients.remember_device(response, email, device)
                return response
    elif await load_user() is not None:
        return redirect(url_for("home.index"))
    page = await render_template("login.html", error=error, form=form)
    return page, status, headers


@blueprint.post("/logout")
@public
async def logout() -> WerkzeugResponse:
    """Sign out of this browser."""
    await sign_out()
    return redirect(url_for("auth.login"))


@blueprint.get("/account")
@requires(Role.VIEWER)
async def account() -> str:
    """The signed-in user's own account: workspaces, time zone and sessions."""
    user: User = g.user
    return await render_template("account.html", memberships=await users.memberships(user))


@blueprint.post("/account/timezone")
@requires(Role.VIEWER)
async def save_time_zone() -> Page:
    """Set (or clear) the signed-in person's own time zone."""
    form = await request.form
    wanted = form.get("timezone", "")
    try:
        g.user = await time_zones.set_own_zone(current_actor(), wanted)
    except ValidationFailed as exc:
        user: User = g.user
        page = await render_template(
            "account.html",
            memberships=await users.memberships(user),
            errors=exc.fields,
            zone_form=wanted,
        )
        return page, 422
    await flash("Your time zone is saved.", "success")
    return redirect(url_for("auth.account") + "#time-zone")


@blueprint.post("/account/logout-everywhere")
@requires(Role.VIEWER)
async def logout_everywhere() -> WerkzeugResponse:
    """End every session of the signed-in user, on every device."""
    user: User = g.user
    await sessions.end_all(user)
    await audit.record(
        "user.logout_everywhere", actor=user.email, target_type="user", target_id=user.id
    )
    await sign_out()
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
    """Join a workspace from an invitation link (signed in, or with an email and password)."""
    container = services().container
    clock = container.clock
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
                email, address = form.get("email", ""), clients.client_address()
                # The form checks a password when the email is taken: throttled as sign-in is.
                wait = await login_throttle.reserve(
                    container.redis, address, email, None, clock.now().timestamp()
                )
                if wait:
                    raise ValidationFailed("", {"email": _too_many(wait)})
                user, membership = await team.accept_invite_with_credentials(
                    token,
                    email,
                    form.get("password", ""),
                    form.get("name", "").strip()[:120],
                    clock.now(),
                )
                await login_throttle.succeed(container.redis, address, email, None)
                await sign_in(user)
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
