"""Posts: the calendar (month / week / list, drag to reschedule), the queue, and one post's page
with its error, retry and publishing progress."""

from __future__ import annotations

from datetime import datetime, timedelta

from quart import (
    Blueprint,
    Response,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from werkzeug.wrappers import Response as WerkzeugResponse

from core.db.models import MediaAsset, Role
from core.domain.graph_errors import GraphError
from core.domain.ids import row_id
from core.domain.posts import Status
from core.domain.zones import zone_info
from core.errors import Conflict, NotFound, ValidationFailed
from core.services import account_settings, composer
from core.services.accounts import account_ref
from core.services.publishing import Publishing
from panel.security import current_actor, current_membership, requires, viewer_zone
from panel.services import services

blueprint = Blueprint("posts", __name__, url_prefix="/posts")


def _publishing() -> Publishing:
    return services().publishing


def _media_url(asset: MediaAsset) -> str:
    return url_for("media.media_file", key=asset.storage_key)


def _when(text: str | None) -> datetime | None:
    """A bound of the calendar's range. The calendar runs on the viewer's wall clock in
    FullCalendar's "UTC" mode, so a bound without an offset, or in UTC, is a wall-clock time
    in the viewer's zone."""
    if not text:
        return None
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.utcoffset() in (None, timedelta(0)):
        return parsed.replace(tzinfo=zone_info(viewer_zone()))
    return parsed


def _status(text: str | None) -> Status | None:
    """The status a filter names; an unknown one filters nothing, as an empty one does."""
    return Status(text) if text in {s.value for s in Status} else None


@blueprint.get("")
@requires(Role.VIEWER)
async def index() -> str:
    """The calendar."""
    membership = current_membership()
    accounts = await account_settings.workspace_accounts(current_actor())
    return await render_template(
        "posts/calendar.html",
        timezone=viewer_zone(),
        accounts=accounts,
        statuses=[s.value for s in Status],
        can_edit=membership.role in (Role.OWNER, Role.ADMIN, Role.EDITOR),
    )


@blueprint.get("/events")
@requires(Role.VIEWER)
async def events() -> Response:
    """Posts between ``start`` and ``end`` as FullCalendar events (in the viewer's zone)."""
    account = request.args.get("account_id", "")
    views = await composer.posts_between(
        current_actor(),
        _when(request.args.get("start")),
        _when(request.args.get("end")),
        account_id=row_id(account),
        status=_status(request.args.get("status")),
    )
    timezone = viewer_zone()
    return jsonify(
        [
            composer.calendar_event(
                v, timezone, url_for("posts.detail", post_id=v.post.id), media_url=_media_url
            )
            for v in views
        ]
    )


@blueprint.post("/<int:post_id>/reschedule")
@requires(Role.EDITOR)
async def reschedule(post_id: int) -> tuple[Response, int]:
    """Move a post to another time (calendar drag): the API's checks, the message on refusal."""
    data = await request.get_json(silent=True)
    start = data.get("start") if isinstance(data, dict) else None
    try:
        when = composer.parse_local(str(start or ""), viewer_zone())
        post = await _publishing().schedule(current_actor(), post_id, when)
    except (ValidationFailed, Conflict) as exc:
        return jsonify({"error": str(exc)}), 422 if isinstance(exc, ValidationFailed) else 409
    except NotFound as exc:
        return jsonify({"error": str(exc)}), 404
    return jsonify(
        {
            "id": post.id,
            "status": post.status.value,
            "scheduled_at": composer.local_input(post.scheduled_at, viewer_zone()),
        }
    ), 200


@blueprint.get("/queue")
@requires(Role.VIEWER)
async def queue() -> str:
    """Every post, filtered by status and account."""
    membership = current_membership()
    status = request.args.get("status", "")
    account = request.args.get("account_id", "")
    views = await composer.posts_between(
        current_actor(),
        None,
        None,
        account_id=row_id(account),
        status=_status(status),
    )
    accounts = await account_settings.workspace_accounts(current_actor())
    return await render_template(
        "posts/queue.html",
        views=views,
        accounts=accounts,
        status=status,
        account_id=account,
        statuses=[s.value for s in Status],
        timezone=viewer_zone(),
        local=composer.local_input,
        can_edit=membership.role in (Role.OWNER, Role.ADMIN, Role.EDITOR),
    )


@blueprint.get("/<int:post_id>")
@requires(Role.VIEWER)
async def detail(post_id: int) -> str:
    """One post: content, status, error, and what can be done with it."""
    membership = current_membership()
    view = await composer.post_view(current_actor(), post_id)
    return await render_template(
        "posts/detail.html",
        view=view,
        timezone=viewer_zone(),
        local=composer.local_input,
        can_edit=membership.role in (Role.OWNER, Role.ADMIN, Role.EDITOR),
    )


@blueprint.get("/<int:post_id>/progress")
@requires(Role.VIEWER)
async def progress(post_id: int) -> str:
    """Where a publishing post stands (its container's status), polled while it publishes."""
    view = await composer.post_view(current_actor(), post_id)
    post = view.post
    container_status = ""
    if post.status is Status.PUBLISHING and post.container_id:
        try:
            found = await services().container.graph.container_status(
                account_ref(services().container, view.account), post.container_id
            )
            container_status = found.status_code
        except GraphError as exc:
            container_status = f"unknown ({exc.title})"
    return await render_template(
        "posts/_progress.html", view=view, container_status=container_status
    )


async def _act(post_id: int, verb: str) -> WerkzeugResponse:
    actor = current_actor()
    publishing = _publishing()
    try:
        if verb == "retry":
            await publishing.publish_now(actor, post_id)
            await flash("Trying again now.", "success")
        elif verb == "now":
            await publishing.publish_now(actor, post_id)
            await flash("Publishing now.", "success")
        elif verb == "cancel":
            await publishing.cancel(actor, post_id, reason="cancelled in the panel")
            await flash("Post cancelled.", "success")
    except (Conflict, ValidationFailed) as exc:
        await flash(str(exc), "error")
    return redirect(request.referrer or url_for("posts.detail", post_id=post_id))


@blueprint.post("/<int:post_id>/retry")
@requires(Role.EDITOR)
async def retry(post_id: int) -> WerkzeugResponse:
    """Publish a failed post again, now."""
    return await _act(post_id, "retry")


@blueprint.post("/<int:post_id>/publish-now")
@requires(Role.EDITOR)
async def publish_now(post_id: int) -> WerkzeugResponse:
    """Publish a draft or scheduled post now instead of at its time."""
    return await _act(post_id, "now")


@blueprint.post("/<int:post_id>/cancel")
@requires(Role.EDITOR)
async def cancel(post_id: int) -> WerkzeugResponse:
    """Cancel a post that is not being published."""
    return await _act(post_id, "cancel")
