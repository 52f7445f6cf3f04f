"""The media library: every upload with search, filters, where it is used, and deletion."""

from __future__ import annotations

from quart import Blueprint, flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response as WerkzeugResponse

from core.db.models import Role
from core.domain.ids import page_number
from core.errors import Conflict, ValidationFailed
from core.services import library, media
from panel.limits import accepts_upload
from panel.security import current_actor, current_membership, requires
from panel.services import services

blueprint = Blueprint("library", __name__, url_prefix="/library")


@blueprint.get("")
@requires(Role.VIEWER)
async def index() -> str:
    """The library grid."""
    membership = current_membership()
    search = request.args.get("q", "")
    kind = request.args.get("kind", "")
    unused = request.args.get("unused") == "1"
    page_raw = request.args.get("page", "1")
    page = page_number(page_raw)
    items, has_next = await library.list_media(
        current_actor(), search=search, kind=kind, unused_only=unused, page=page
    )
    return await render_template(
        "library/index.html",
        items=items,
        has_next=has_next,
        page=page,
        q=search,
        kind=kind,
        unused=unused,
        can_edit=membership.role in (Role.OWNER, Role.ADMIN, Role.EDITOR),
    )


@blueprint.post("")
@accepts_upload
@requires(Role.EDITOR)
async def upload() -> WerkzeugResponse:
    """Add files to the library."""
    files = await request.files
    chosen = [sent for sent in files.getlist("files") if sent.filename]
    if not chosen:
        await flash("Choose one or more files to upload first.", "error")
        return redirect(url_for("library.index"))
    added = 0
    for sent in chosen:
        try:
            await media.upload_file(
                current_actor(),
                services().storage,
                source=sent.stream,
                filename=sent.filename or "",
            )
            added += 1
        except ValidationFailed as exc:
            await flash(f"{sent.filename}: {exc.message}", "error")
    if added:
        await flash(f"{added} file{'s' if added > 1 else ''} added.", "success")
    return redirect(url_for("library.index"))


@blueprint.post("/<int:asset_id>/delete")
@requires(Role.EDITOR)
async def delete(asset_id: int) -> WerkzeugResponse:
    """Delete a file no post uses."""
    try:
        await library.delete_media(current_actor(), services().storage, asset_id)
    except Conflict as exc:
        await flash(str(exc), "error")
    else:
        await flash("File deleted.", "success")
    return redirect(request.referrer or url_for("library.index"))
