"""Sign-in state, roles and CSRF for panel views."""

from __future__ import annotations

import functools
import hmac
import json
import secrets
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import ParamSpec, TypeVar

from quart import abort, current_app, g, redirect, request, session, url_for
from quart_auth import AuthUser, current_user, login_user, logout_user
from werkzeug.exceptions import BadRequest
from werkzeug.wrappers import Response as WerkzeugResponse

from core.db.models import Membership, Role, User
from core.domain.scope import Actor
from core.domain.zones import effective_zone, shown
from core.ports.clock import Clock
from core.services import sessions
from core.services.users import role_allows
from panel.declarations import declared, is_csrf_exempt
from panel.services import services

F = TypeVar("F", bound=Callable[..., Awaitable[object]])
P = ParamSpec("P")
R = TypeVar("R")
# What a guarded view answers when nobody is signed in: a redirect to the sign-in page,
# or (to htmx) a header asking for it.
SignInFirst = WerkzeugResponse | tuple[str, int, dict[str, str]]

CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


def csrf_token() -> str:
    """The session's CSRF token, created on first use."""
    token = session.get(CSRF_FIELD)
    if not token:
        token = secrets.token_urlsafe(32)
        session[CSRF_FIELD] = token
    return str(token)


async def refuse_nul_characters() -> None:
    """Refuse text input holding NUL characters: PostgreSQL cannot store them in text or JSON.

    Checked on query strings, form fields and JSON bodies (file uploads are binary and exempt).
    A JSON body is read here, so one that cannot be read is refused before any view runs.
    """
    values = list(request.args.values())
    if request.method not in SAFE_METHODS:
        if request.is_json:
            values.extend(_texts_in(await _json_body()))
        elif request.mimetype in {"application/x-www-form-urlencoded", "multipart/form-data"}:
            values.extend((await request.form).values())
    if any("\x00" in value for value in values):
        abort(400, "Text may not contain NUL characters.")


async def _json_body() -> object:
    """The parsed JSON body (Quart keeps it for the view), or None when the body is empty.

    A body that is not UTF-8, not JSON or nested too deeply for the parser is refused with
    a 400 saying which, instead of failing in the view with a server error.
    """
    raw = await request.get_data(as_text=False)
    if not raw.strip():
        return None
    try:
        return await request.get_json()
    except UnicodeDecodeError:
        abort(400, "The body is not valid UTF-8 text.")
    except RecursionError:
        abort(400, "The JSON body is nested too deeply.")
    except BadRequest:
        try:
            json.loads(raw)
        except ValueError as exc:
            abort(400, f"The body is not valid JSON: {exc}.")
        raise


def _texts_in(document: object) -> list[str]:
    """Every string in a parsed JSON document, keys included (without recursion: it may be
    nested as deep as the parser allows)."""
    texts: list[str] = []
    pending = [document]
    while pending:
        value = pending.pop()
        if isinstance(value, str):
            texts.append(value)
        elif isinstance(value, list):
            pending.extend(value)
        elif isinstance(value, dict):
            texts.extend(value)
            pending.extend(value.values())
    return texts


async def check_csrf() -> None:
    """Refuse a state-changing request whose CSRF token is missing or wrong."""
    if request.method in SAFE_METHODS or request.routing_exception is not None:
        # No route took the request: it ends in a 404 or 405 that changes nothing.
        return
    view = current_app.view_functions.get(request.endpoint or "")
    if view is not None and is_csrf_exempt(view):
        return
    expected = session.get(CSRF_FIELD)
    sent = request.headers.get(CSRF_HEADER)
    if sent is None:
        form = await request.form
        sent = form.get(CSRF_FIELD)
    if not expected or not sent or not hmac.compare_digest(str(expected), str(sent)):
        abort(400, "CSRF token missing or invalid; reload the page and try again.")


def csrf_exempt(view: F) -> F:
    """Mark a view that authenticates otherwise (webhook signature, API token)."""
    declared(view).csrf_exempt = True
    return view


def _clock() -> Clock:
    return services().container.clock


async def load_user() -> User | None:
    """The signed-in user for this request: the cookie's session must still be stored."""
    if "user" in g:
        loaded: User | None = g.user
        return loaded
    user = None
    token = current_user.auth_id
    if token:
        user = await sessions.user_of(token, _clock().now())
    g.user = user
    return user


async def sign_in(user: User) -> None:
    """Start a fresh signed-in session for ``user``.

    The old session (and its CSRF token) is dropped and the auth cookie carries a new
    random session token, stored server-side (hashed), so nothing set before sign-in
    survives it (no fixation) and signing out ends it for every copy of the cookie.
    """
    session.clear()
    token = await sessions.start(user, _clock().now())
    login_user(AuthUser(token), remember=True)
    g.user = user


def session_token() -> str | None:
    """The current request's session token (None when signed out)."""
    token: str | None = current_user.auth_id
    return token


async def sign_out() -> None:
    """End this browser's session: the stored session goes, not just the cookie."""
    token = session_token()
    if token:
        await sessions.end(token)
    logout_user()
    session.clear()


async def load_membership(user: User) -> Membership | None:
    if "membership" in g:
        loaded: Membership | None = g.membership
        return loaded
    wanted = session.get("workspace_id")
    query = Membership.filter(user=user).prefetch_related("workspace").order_by("id")
    found = await query
    membership = next((m for m in found if m.workspace_id == wanted), found[0] if found else None)
    g.membership = membership
    return membership


def _this_page() -> str:
    """The path asked for, with its query string only when there is one."""
    query = request.query_string.decode("utf-8", "replace")
    return f"{request.path}?{query}" if query else request.path


def requires(
    role: Role,
) -> Callable[[Callable[P, Awaitable[R]]], Callable[P, Awaitable[R | SignInFirst]]]:
    """The view needs a signed-in member with at least ``role`` in the current workspace."""

    def decorate(view: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R | SignInFirst]]:
        @functools.wraps(view)
        async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R | SignInFirst:
            user = await load_user()
            if user is None:
                if request.headers.get("HX-Request"):
                    return "", 401, {"HX-Redirect": url_for("auth.login")}
                return redirect(url_for("auth.login", next=_this_page()))
            membership = await load_membership(user)
            if membership is None or not role_allows(membership.role, role):
                abort(403)
            return await view(*args, **kwargs)

        declared(wrapper).required_role = role
        return wrapper

    return decorate


def public(view: F) -> F:
    """Mark a view that needs no sign-in (login, first run, health, webhooks)."""
    declared(view).required_role = None
    return view


def current_membership() -> Membership:
    """The signed-in member (inside a view guarded by ``requires``)."""
    membership: Membership = g.membership
    return membership


def current_actor() -> Actor:
    """The signed-in member acting in their current workspace (inside a guarded view)."""
    membership = current_membership()
    user: User = g.user
    return Actor(
        workspace_id=membership.workspace_id,
        role=membership.role,
        label=user.email,
        user_id=user.id,
    )


def viewer_zone() -> str:
    """The zone the signed-in person reads and types times in: their own, else the team's."""
    membership = current_membership()
    return effective_zone(membership.workspace.timezone, signed_in_user().timezone)


def shown_to_viewer(moment: datetime | None, seconds: bool = False) -> str:
    """The templates' ``when`` filter: a stored time in the viewer's zone, the zone named."""
    signed_in = g.get("membership") is not None and g.get("user") is not None
    return shown(moment, viewer_zone() if signed_in else "UTC", seconds=seconds)


def current_email() -> str:
    return signed_in_user().email


def signed_in_user() -> User:
    """The signed-in user (inside a view guarded by ``requires``)."""
    user: User = g.user
    return user
