"""The accounts page: connected Instagram accounts, their health, pacing and webhooks."""

from __future__ import annotations

from quart import Blueprint, current_app, flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response as WerkzeugResponse

from core.db.models import Role
from core.errors import ValidationFailed
from core.services import account_settings, accounts
from panel.security import current_actor, current_membership, requires
from panel.services import services

blueprint = Blueprint("accounts", __name__, url_prefix="/accounts")


async def _page(
    errors: dict[int, dict[str, str]] | None = None,
    status: int = 200,
    typed: dict[int, str] | None = None,
) -> tuple[str, int]:
    membership = current_membership()
    container = services().container
    now = container.clock.now()
    found = await account_settings.workspace_accounts(current_actor())
    views = current_app.view_functions
    page = await render_template(
        "accounts/index.html",
        accounts=[(account, account_settings.health(account, now)) for account in found],
        default_pace=container.settings.dm_pace_per_hour,
        errors=errors or {},
        typed=typed or {},
        can_manage=membership.role in (Role.OWNER, Role.ADMIN),
        connect_endpoint="instagram.connect" if "instagram.connect" in views else "",
    )
    return page, status


@blueprint.get("")
@requires(Role.VIEWER)
async def index() -> tuple[str, int]:
    """Every account with its status, token expiry, pacing and webhook subscription."""
    return await _page()


@blueprint.post("/<int:account_id>/pace")
@requires(Role.ADMIN)
async def set_pace(account_id: int) -> tuple[str, int] | WerkzeugResponse:
    """Change how many DMs per hour an account sends."""
    form = await request.form
    raw = form.get("dm_pace_per_hour", "")
    try:
        account = await account_settings.set_dm_pace(current_actor(), account_id, raw)
    except ValidationFailed as exc:
        return await _page({account_id: exc.fields}, 422, typed={account_id: raw})
    await flash(f"Send pacing of @{account.username} saved.", "success")
    return redirect(url_for("accounts.index"))


@blueprint.post("/<int:account_id>/comment-alerts")
@requires(Role.ADMIN)
async def set_comment_alerts(account_id: int) -> WerkzeugResponse:
    """Turn the chat alert for each new comment on the account on or off."""
    on = (await request.form).get("comment_alerts") == "on"
    account = await account_settings.set_comment_alerts(
        current_actor(), account_id, on, redis=services().container.redis
    )
    state = "on: each new comment goes to the linked chats" if on else "off"
    await flash(f"Comment alerts of @{account.username} are {state}.", "success")
    return redirect(url_for("accounts.index"))


@blueprint.post("/<int:account_id>/disconnect")
@requires(Role.ADMIN)
async def disconnect(account_id: int) -> WerkzeugResponse:
    """Unsubscribe the account from Meta's webhooks, forget its token, stop acting for it."""
    done = await accounts.disconnect(current_actor(), services().container, account_id)
    await flash(f"@{done.account.username} is disconnected.", "success")
    if done.warning:
        await flash(done.warning, "warning")
    return redirect(url_for("accounts.index"))


@blueprint.post("/<int:account_id>/webhooks")
@requires(Role.ADMIN)
async def subscribe(account_id: int) -> WerkzeugResponse:
    """Subscribe the account to Reelay's webhook fields again."""
    account = await account_settings.get_account(current_actor(), account_id)
    if await accounts.subscribe_webhooks(current_actor(), services().container, account.id):
        await flash(f"@{account.username} is subscribed to webhooks.", "success")
    else:
        await flash(
            f"Meta refused the webhook subscription of @{account.username}; see the audit log.",
            "error",
        )
    return redirect(url_for("accounts.index") + f"#account-{account.id}")
