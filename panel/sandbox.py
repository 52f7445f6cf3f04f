"""The sandbox page: comment, DM or tap a button as a made-up follower, and watch Reelay answer.

Only in sandbox mode (no META_APP_ID): in live mode the page is not registered, so its
addresses answer 404 and the menu leaves it out.
"""

from __future__ import annotations

from typing import Any

from quart import Blueprint, Quart, flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response as WerkzeugResponse

from core.db.models import InstagramAccount, Role
from core.errors import NotFound, ValidationFailed
from core.ports.sandbox import Delivered, SandboxUnavailable
from core.services import sandbox_console
from core.services.messenger_profiles import stored_profile
from core.settings import Settings
from panel.security import current_actor, requires
from panel.services import services

blueprint = Blueprint("sandbox", __name__, url_prefix="/sandbox")

DEFAULT_FOLLOWER = "sandbox_follower"
POLLS = 6  # the conversation refreshes every second for this many seconds after an action


def install(app: Quart, settings: Settings) -> None:
    """Serve the page when Reelay runs against the sandbox Instagram."""
    if settings.sandbox:
        app.register_blueprint(blueprint)


def _int(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() else None


async def _page(
    account_id: int | None,
    username: str,
    *,
    values: dict[str, str] | None = None,
    failed: str = "",
    errors: dict[str, str] | None = None,
    message: str = "",
    polls: int = 0,
    status: int = 200,
) -> tuple[str, int]:
    actor = current_actor()
    accounts = await sandbox_console.sandbox_accounts(actor)
    context: dict[str, Any] = {
        "accounts": accounts,
        "account": None,
        "username": username,
        "values": values or {},
        "failed": failed,
        "errors": errors or {},
        "message": message,
        "problem": "",
        "posts": [],
        "conversation": None,
        "polls": polls,
        "ice_breakers": (),
    }
    if accounts:
        try:
            account = await sandbox_console.sandbox_account(actor, account_id)
        except NotFound as exc:
            context["problem"] = str(exc)
            account = accounts[0]
        context["account"] = account
        context["ice_breakers"] = stored_profile(account).ice_breakers
        try:
            context["posts"] = await sandbox_console.posts(actor, services().container, account.id)
            context["conversation"] = await sandbox_console.conversation(
                actor, services().container, account.id, username
            )
        except SandboxUnavailable as exc:
            # Shown on the page (htmx swaps only 2xx answers); the page itself works.
            context["problem"] = exc.message
    return await render_template("sandbox/index.html", **context), status


def _follower(raw: str | None) -> str:
    try:
        return sandbox_console.check_username(raw or "")
    except ValidationFailed:
        return DEFAULT_FOLLOWER


@blueprint.get("")
@requires(Role.EDITOR)
async def index() -> tuple[str, int]:
    """The forms, and the conversation with the chosen follower."""
    polls = _int(request.args.get("polls")) or 0
    return await _page(
        _int(request.args.get("account_id")),
        _follower(request.args.get("username")),
        polls=min(polls, POLLS),
    )


@blueprint.get("/conversation")
@requires(Role.EDITOR)
async def conversation() -> tuple[str, int]:
    """The conversation alone (polled for a few seconds after the follower acts)."""
    actor = current_actor()
    account = await sandbox_console.sandbox_account(actor, _int(request.args.get("account_id")))
    username = _follower(request.args.get("username"))
    polls = min(_int(request.args.get("polls")) or 0, POLLS)
    try:
        found = await sandbox_console.conversation(
            actor, services().container, account.id, username
        )
    except SandboxUnavailable as exc:
        page = await render_template(
            "sandbox/_conversation.html",
            account=account,
            username=username,
            conversation=None,
            problem=exc.message,
            polls=0,
        )
        return page, 200
    page = await render_template(
        "sandbox/_conversation.html",
        account=account,
        username=username,
        conversation=found,
        problem="",
        polls=polls,
    )
    return page, 200


async def _sent(account: InstagramAccount, username: str, delivered: Delivered) -> WerkzeugResponse:
    if delivered.webhook_status != 200:
        reason = delivered.error or f"Reelay answered HTTP {delivered.webhook_status}"
        await flash(f"The sandbox could not deliver the webhook to Reelay: {reason}.", "error")
    return redirect(url_for("sandbox.index", account_id=account.id, username=username, polls=POLLS))


async def _act(kind: str) -> tuple[str, int] | WerkzeugResponse:
    form = await request.form
    values = {name: str(value) for name, value in form.items() if name != "csrf_token"}
    actor = current_actor()
    account = await sandbox_console.sandbox_account(actor, _int(form.get("account_id")))
    username = values.get("username", "").strip().removeprefix("@")
    try:
        if kind == "comment":
            delivered = await sandbox_console.comment(
                actor,
                services().container,
                account.id,
                username=values.get("username", ""),
                text=values.get("text", ""),
                media_id=values.get("media_id", ""),
                place=values.get("place", "post"),
            )
        elif kind in {"follow", "unfollow"}:
            await sandbox_console.follow(
                actor,
                services().container,
                account.id,
                username=values.get("username", ""),
                following=kind == "follow",
            )
            verb = "now follows" if kind == "follow" else "no longer follows"
            await flash(f"@{username} {verb} @{account.username}.", "success")
            return redirect(url_for("sandbox.index", account_id=account.id, username=username))
        elif kind == "ice_breaker":
            delivered = await sandbox_console.ice_breaker(
                actor,
                services().container,
                account.id,
                username=values.get("username", ""),
                index=values.get("index", ""),
            )
        elif kind == "ig_me":
            delivered = await sandbox_console.open_link(
                actor,
                services().container,
                account.id,
                username=values.get("username", ""),
                link=values.get("link", ""),
            )
        elif kind == "app_reply":
            delivered = await sandbox_console.app_reply(
                actor,
                services().container,
                account.id,
                username=values.get("username", ""),
                text=values.get("text", ""),
            )
        elif kind == "dm":
            delivered = await sandbox_console.direct_message(
                actor,
                services().container,
                account.id,
                username=values.get("username", ""),
                text=values.get("text", ""),
            )
        else:
            delivered = await sandbox_console.tap(
                actor,
                services().container,
                account.id,
                username=values.get("username", ""),
                kind=values.get("kind", ""),
                payload=values.get("payload", ""),
                title=values.get("title", ""),
            )
    except (ValidationFailed, SandboxUnavailable) as exc:
        return await _page(
            account.id,
            _follower(username),
            values=values,
            failed=kind,
            errors=exc.fields if isinstance(exc, ValidationFailed) else {},
            message=exc.message,
            status=422,
        )
    return await _sent(account, username, delivered)


@blueprint.post("/comment")
@requires(Role.EDITOR)
async def comment() -> tuple[str, int] | WerkzeugResponse:
    """Comment on one of the account's posts as the follower."""
    return await _act("comment")


@blueprint.post("/dm")
@requires(Role.EDITOR)
async def direct_message() -> tuple[str, int] | WerkzeugResponse:
    """Send the account a DM as the follower."""
    return await _act("dm")


@blueprint.post("/app-reply")
@requires(Role.EDITOR)
async def app_reply() -> tuple[str, int] | WerkzeugResponse:
    """Answer the follower from the Instagram app (an echo Reelay did not send)."""
    return await _act("app_reply")


@blueprint.post("/tap")
@requires(Role.EDITOR)
async def tap() -> tuple[str, int] | WerkzeugResponse:
    """Tap a button or quick reply the account sent the follower."""
    return await _act("tap")


@blueprint.post("/follow")
@requires(Role.EDITOR)
async def follow() -> tuple[str, int] | WerkzeugResponse:
    """The follower follows the account (what the follow gate asks Instagram)."""
    return await _act("follow")


@blueprint.post("/unfollow")
@requires(Role.EDITOR)
async def unfollow() -> tuple[str, int] | WerkzeugResponse:
    """The follower unfollows the account."""
    return await _act("unfollow")


@blueprint.post("/ig-me")
@requires(Role.EDITOR)
async def open_link() -> tuple[str, int] | WerkzeugResponse:
    """The follower opens a rule's ig.me link (a referral webhook reaches Reelay)."""
    return await _act("ig_me")


@blueprint.post("/ice-breaker")
@requires(Role.EDITOR)
async def ice_breaker() -> tuple[str, int] | WerkzeugResponse:
    """The follower taps one of the account's ice breakers (a postback reaches Reelay)."""
    return await _act("ice_breaker")
