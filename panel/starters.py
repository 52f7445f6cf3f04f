"""Conversation starters: an account's ice breakers and persistent menu, as Instagram shows them."""

from __future__ import annotations

from typing import Any

from quart import Blueprint, flash, redirect, render_template, request, url_for
from werkzeug.datastructures import MultiDict
from werkzeug.wrappers import Response as WerkzeugResponse

from core.db.models import Role
from core.domain.messenger_profile import MAX_ICE_BREAKERS, MAX_MENU_TITLE, MAX_QUESTION
from core.errors import ValidationFailed
from core.services import account_settings
from core.services.messenger_profiles import MetaRefused
from panel.security import current_actor, current_membership, requires
from panel.services import services

blueprint = Blueprint("starters", __name__, url_prefix="/accounts")

MENU_ROWS = 5


def _document(form: MultiDict[str, str]) -> dict[str, Any]:
    """The rows the admin filled in; blank rows are left out."""
    breakers = []
    for n in range(MAX_ICE_BREAKERS):
        question, payload = form.get(f"q{n}", ""), form.get(f"p{n}", "")
        if question.strip() or payload.strip():
            breakers.append({"question": question, "payload": payload})
    menu = []
    for n in range(MENU_ROWS):
        kind = form.get(f"m{n}_type", "")
        title = form.get(f"m{n}_title", "")
        target = form.get(f"m{n}_target", "")
        if title.strip() or target.strip():
            key = "url" if kind == "web_url" else "payload"
            menu.append({"type": kind, "title": title, key: target})
    return {"ice_breakers": breakers, "menu": menu}


def _rows(document: dict[str, Any]) -> dict[str, Any]:
    """The form's rows: the document's entries, then blank ones up to the limits."""
    breakers = list(document.get("ice_breakers") or [])
    menu = [
        {
            "type": m.get("type", ""),
            "title": m.get("title", ""),
            "target": m.get("url") or m.get("payload", ""),
        }
        for m in document.get("menu") or []
    ]
    breakers += [{"question": "", "payload": ""}] * (MAX_ICE_BREAKERS - len(breakers))
    menu += [{"type": "postback", "title": "", "target": ""}] * (MENU_ROWS - len(menu))
    return {"ice_breakers": breakers[:MAX_ICE_BREAKERS], "menu": menu[:MENU_ROWS]}


async def _page(
    account_id: int, document: dict[str, Any] | None = None, error: str = "", status: int = 200
) -> tuple[str, int]:
    actor = current_actor()
    account = await account_settings.get_account(actor, account_id)
    saved = await services().messenger_profiles.get(actor, account_id)
    answered = await services().messenger_profiles.answering_rules(actor, account_id)
    shown = document if document is not None else saved.as_json()
    page = await render_template(
        "accounts/starters.html",
        account=account,
        saved=saved,
        answered=answered,
        rows=_rows(shown),
        error=error,
        can_manage=current_membership().role in (Role.OWNER, Role.ADMIN),
        max_question=MAX_QUESTION,
        max_title=MAX_MENU_TITLE,
    )
    return page, status


@blueprint.get("/<int:account_id>/starters")
@requires(Role.VIEWER)
async def show(account_id: int) -> tuple[str, int]:
    """The account's ice breakers and menu, with a preview."""
    return await _page(account_id)


@blueprint.post("/<int:account_id>/starters")
@requires(Role.ADMIN)
async def save(account_id: int) -> tuple[str, int] | WerkzeugResponse:
    """Validate, push to Instagram, then store the account's conversation starters."""
    document = _document(await request.form)
    try:
        await services().messenger_profiles.save(current_actor(), account_id, document)
    except ValidationFailed as exc:
        return await _page(account_id, document, exc.message, 422)
    except MetaRefused as exc:
        return await _page(account_id, document, str(exc), 502)
    await flash("Conversation starters saved and sent to Instagram.", "success")
    return redirect(url_for("starters.show", account_id=account_id))
