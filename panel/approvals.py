"""Approvals: AI reply drafts waiting for a teammate, with the conversation so far; approve,
edit or reject. Decisions made in chat (or by a teammate) show up here within seconds."""

from __future__ import annotations

from datetime import timedelta

from quart import Blueprint, Response, flash, redirect, render_template, request, url_for
from werkzeug.exceptions import abort
from werkzeug.wrappers import Response as WerkzeugResponse

from core.db.models import Role
from core.domain.commands import describe_time
from core.domain.ids import row_id
from core.domain.posts import Status
from core.errors import Conflict, ValidationFailed
from core.services import approvals
from core.services.composer import parse_local
from core.services.smart_replies import SmartReplies
from panel.security import current_actor, current_membership, requires, viewer_zone
from panel.services import services

blueprint = Blueprint("drafts", __name__, url_prefix="/approvals")

POLL = "every 3s"


def _replies() -> SmartReplies:
    return services().smart_replies


def _can_decide() -> bool:
    return current_membership().role in (Role.OWNER, Role.ADMIN, Role.EDITOR)


@blueprint.get("")
@requires(Role.VIEWER)
async def index() -> str:
    """Pending drafts and the latest decisions."""
    actor = current_actor()
    pending = await approvals.pending(actor)
    since = services().container.clock.now() - timedelta(days=1)
    posts = await services().publishing.page(actor, status=Status.PENDING_APPROVAL, limit=50)
    timezone = viewer_zone()
    return await render_template(
        "approvals/index.html",
        pending_posts=[
            (post, describe_time(post.scheduled_at, timezone) if post.scheduled_at else "")
            for post in posts
        ],
        can_approve_posts=actor.allows(Role.ADMIN),
        timezone=timezone,
        pending=pending,
        decided=await approvals.decided_since(actor, since),
        after=max((v.draft.id for v in pending), default=0),
        can_decide=_can_decide(),
        poll=POLL,
    )


@blueprint.get("/new")
@requires(Role.VIEWER)
async def new() -> str:
    """Drafts that arrived since ``after`` (out-of-band fragments for the page's poller)."""
    after_raw = request.args.get("after", "0")
    after = row_id(after_raw) or 0
    found = await approvals.pending(current_actor(), after)
    return await render_template(
        "approvals/_new.html",
        pending=found,
        after=max([after, *(v.draft.id for v in found)]),
        can_decide=_can_decide(),
        poll=POLL,
    )


@blueprint.get("/<int:draft_id>/state")
@requires(Role.VIEWER)
async def state(draft_id: int) -> Response | tuple[str, int, dict[str, str]]:
    """Nothing while the draft waits; the decided card once someone decided (anywhere)."""
    view = await approvals.one(current_actor(), draft_id)
    if view is None:
        abort(404)
    if view.draft.status.value == "pending":
        return Response(status=204)
    page = await render_template("approvals/_card.html", view=view, can_decide=False, poll=POLL)
    return page, 200, {"HX-Retarget": f"#draft-{draft_id}", "HX-Reswap": "outerHTML"}


async def _decide(draft_id: int, verb: str) -> tuple[str, int]:
    actor = current_actor()
    form = await request.form
    replies = _replies()
    problem = ""
    status = 200
    try:
        if verb == "approve":
            await replies.approve(actor, draft_id)
        elif verb == "edit":
            await replies.edit(actor, draft_id, form.get("text", ""))
        else:
            await replies.reject(actor, draft_id, fallback_text=form.get("fallback_text") or None)
    except ValidationFailed as exc:
        problem, status = exc.fields.get("text") or exc.message, 422
    except Conflict as exc:
        problem, status = str(exc), 409
    view = await approvals.one(actor, draft_id)
    if view is None:
        abort(404)
    page = await render_template(
        "approvals/_card.html",
        view=view,
        can_decide=_can_decide(),
        problem=problem,
        text=form.get("text", ""),
        poll=POLL,
    )
    return page, status


@blueprint.post("/<int:draft_id>/approve")
@requires(Role.EDITOR)
async def approve(draft_id: int) -> tuple[str, int]:
    """Send the proposed reply."""
    return await _decide(draft_id, "approve")


@blueprint.post("/<int:draft_id>/edit")
@requires(Role.EDITOR)
async def edit(draft_id: int) -> tuple[str, int]:
    """Send the edited text instead."""
    return await _decide(draft_id, "edit")


@blueprint.post("/<int:draft_id>/reject")
@requires(Role.EDITOR)
async def reject(draft_id: int) -> tuple[str, int]:
    """Send nothing (or a short static reply)."""
    return await _decide(draft_id, "reject")


@blueprint.post("/posts/<int:post_id>/approve")
@requires(Role.ADMIN)
async def approve_post(post_id: int) -> WerkzeugResponse:
    """Let an editor's post publish, at its planned time or a new one."""
    form = await request.form
    actor = current_actor()
    raw = (form.get("when") or "").strip()
    try:
        when = parse_local(raw, viewer_zone()) if raw else None
        await services().publishing.approve(actor, post_id, when)
        await flash(f"Post #{post_id} is approved and scheduled.", "success")
    except (ValidationFailed, Conflict) as exc:
        await flash(str(exc), "error")
    return redirect(url_for("drafts.index") + "#posts")


@blueprint.post("/posts/<int:post_id>/reject")
@requires(Role.ADMIN)
async def reject_post(post_id: int) -> WerkzeugResponse:
    """Turn an editor's post down, saying why."""
    form = await request.form
    try:
        await services().publishing.reject(current_actor(), post_id, form.get("reason", ""))
        await flash(f"Post #{post_id} is rejected; it will not be published.", "success")
    except (ValidationFailed, Conflict) as exc:
        await flash(str(exc), "error")
    return redirect(url_for("drafts.index") + "#posts")
