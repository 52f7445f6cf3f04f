"""Connecting Instagram accounts: the start of Meta's OAuth dialog and its callback."""

from __future__ import annotations

import logging

from quart import Blueprint, flash, redirect, request, url_for
from werkzeug.wrappers import Response as WerkzeugResponse

from core.db.models import Role
from core.domain.graph_errors import GraphError
from core.errors import Forbidden, NotFound, ValidationFailed
from core.services import accounts
from panel.security import current_actor, current_email, current_membership, requires
from panel.services import services

logger = logging.getLogger(__name__)

blueprint = Blueprint("instagram", __name__, url_prefix="/instagram")

CALLBACK_PATH = "/instagram/callback"


def callback_url() -> str:
    """The redirect URI registered with Meta (must match exactly in both OAuth legs)."""
    return services().container.settings.base_url + CALLBACK_PATH


@blueprint.get("/connect")
@requires(Role.ADMIN)
async def connect() -> WerkzeugResponse:
    """Send the admin to Meta's dialog (``?kind=facebook`` for Facebook Login)."""
    url = await accounts.authorization_url(
        current_actor(),
        services().container,
        redirect_uri=callback_url(),
        login_kind=request.args.get("kind", "instagram"),
    )
    return redirect(url)


@blueprint.get("/callback")
@requires(Role.ADMIN)
async def callback() -> WerkzeugResponse:
    """Meta sends the admin back here with a code, or with the reason it did not."""
    done = url_for("accounts.index")
    if request.args.get("error"):
        reason = request.args.get("error_description") or request.args.get("error_reason")
        await flash(
            f"Instagram was not connected: {reason or 'the dialog was cancelled'}.", "error"
        )
        return redirect(done)
    try:
        account = await accounts.complete_connection(
            services().container,
            code=request.args.get("code", ""),
            state=request.args.get("state", ""),
            redirect_uri=callback_url(),
            user_id=current_membership().user_id,
            actor=current_email(),
        )
    except ValidationFailed as exc:
        details = " ".join(exc.fields.values())
        await flash(f"{exc.message}. {details}".strip(), "error")
        return redirect(done)
    except (Forbidden, NotFound) as exc:
        await flash(str(exc), "error")
        return redirect(done)
    except GraphError as exc:
        await flash(f"Instagram refused the connection: {exc.title}.", "error")
        return redirect(done)
    note = "" if account.webhook_subscribed else " Webhooks are not subscribed yet: retry later."
    await flash(f"Connected @{account.username}.{note}", "success")
    return redirect(done)
