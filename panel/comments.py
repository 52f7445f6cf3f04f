"""Comments: the posts with recent comments, and each post's comments with their replies, to
answer in public or in private, hide, show again or delete (editors and up; viewers read)."""

from __future__ import annotations

from quart import Blueprint, flash, redirect, render_template, request, url_for
from werkzeug.exceptions import abort
from werkzeug.wrappers import Response as WerkzeugResponse

from core.db.models import Role
from core.errors import ValidationFailed
from core.services.comment_moderation import CommentModeration, Moderated
from panel.security import current_actor, requires
from panel.services import services

blueprint = Blueprint("comments", __name__, url_prefix="/inbox/comments")

VERBS = frozenset({"hide", "unhide", "delete", "reply", "private-reply"})


def _moderation() -> CommentModeration:
    return services().comment_moderation


@blueprint.get("")
@requires(Role.VIEWER)
async def index() -> str:
    """Posts with comments in the last 7 days, the most recently commented first."""
    posts = await _moderation().recent_posts(current_actor())
    return await render_template("comments/index.html", posts=posts)


@blueprint.get("/<media_id>")
@requires(Role.VIEWER)
async def show(media_id: str) -> str:
    """One post's comments, with their replies and what can be done with each."""
    actor = current_actor()
    after = request.args.get("after") or None
    page = await _moderation().comments(actor, media_id, after=after)
    return await render_template("comments/show.html", page=page, can_act=actor.allows(Role.EDITOR))


@blueprint.post("/<media_id>/<comment_id>/<verb>")
@requires(Role.EDITOR)
async def act(media_id: str, comment_id: str, verb: str) -> tuple[str, int] | WerkzeugResponse:
    """Hide, show, delete or answer one comment; the result in place (htmx) or as a notice."""
    if verb not in VERBS:
        abort(404)
    actor = current_actor()
    moderation = _moderation()
    text = (await request.form).get("text", "")
    try:
        if verb in {"hide", "unhide"}:
            done = await moderation.hide(actor, comment_id, hide=verb == "hide", media_id=media_id)
        elif verb == "delete":
            done = await moderation.delete(actor, comment_id, media_id=media_id)
        elif verb == "reply":
            done = await moderation.reply(actor, comment_id, text, media_id=media_id)
        else:
            done = await moderation.private_reply(actor, comment_id, text, media_id=media_id)
    except ValidationFailed as exc:
        problem = exc.fields.get("text") or exc.message
        done = Moderated(comment_id, verb.replace("-", "_"), "refused", problem)
        status = 422
    else:
        status = 200 if done.ok else 409
    if request.headers.get("HX-Request"):
        page = await render_template("comments/_result.html", done=done)
        return page, status
    await flash(done.words, "success" if done.ok else "error")
    return redirect(url_for("comments.show", media_id=media_id) + f"#comment-{comment_id}")
