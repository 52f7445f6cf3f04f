"""The composer: account(s), kind, media (library or upload), caption with live counts, AI
caption, preview, and schedule / publish now / draft."""

from __future__ import annotations

from typing import TypedDict

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

from core.db.models import Role
from core.domain.ai import AiError
from core.domain.captions import CaptionTone
from core.domain.ids import row_id
from core.domain.posts import CAPTION_MAX, HASHTAGS_MAX, MENTIONS_MAX
from core.errors import ValidationFailed
from core.services import account_settings, composer, library, media
from core.services.captions import write_caption
from core.services.publishing import PostInput
from panel.limits import accepts_upload
from panel.security import current_actor, requires, viewer_zone
from panel.services import services

blueprint = Blueprint("composer", __name__, url_prefix="/compose")

KINDS = [("image", "Image"), ("carousel", "Carousel"), ("reel", "Reel"), ("story", "Story")]


class ComposerValues(TypedDict, total=False):
    """The composer's form as sent (or its defaults), shown again with any errors."""

    account_ids: list[int]
    kind: str
    media_ids: list[int]
    caption: str
    first_comment: str
    alt_text: str
    cover_id: int | None
    share_to_feed: bool
    action: str
    scheduled_at: str


def _ids(values: list[str]) -> list[int]:
    return [n for n in map(row_id, values) if n is not None]


async def _page(
    values: ComposerValues, errors: dict[str, str] | None = None, status: int = 200
) -> tuple[str, int]:
    accounts = await account_settings.workspace_accounts(current_actor())
    items, _ = await library.list_media(current_actor())
    picked_ids = values.get("media_ids", [])
    by_id = {item.asset.id: item for item in items}
    picked = [by_id[i] for i in picked_ids if i in by_id]
    page = await render_template(
        "composer/index.html",
        values=values,
        errors=errors or {},
        accounts=accounts,
        kinds=KINDS,
        library=items,
        picked=picked,
        timezone=viewer_zone(),
        tones=[t.value for t in CaptionTone],
        limits={"caption": CAPTION_MAX, "hashtags": HASHTAGS_MAX, "mentions": MENTIONS_MAX},
        ai_ready=services().container.ai is not None,
    )
    return page, status


@blueprint.get("")
@requires(Role.EDITOR)
async def index() -> tuple[str, int]:
    """An empty composer."""
    accounts = request.args.getlist("account_id")
    return await _page({"kind": "image", "action": "schedule", "account_ids": _ids(accounts)})


@blueprint.post("")
@requires(Role.EDITOR)
async def create() -> tuple[str, int] | WerkzeugResponse:
    """Create one post per chosen account (all checked first)."""
    form = await request.form
    cover = form.get("cover_id", "")
    values: ComposerValues = {
        "account_ids": _ids(form.getlist("account_ids")),
        "kind": form.get("kind", ""),
        "media_ids": _ids(form.getlist("media_ids")),
        "caption": form.get("caption", ""),
        "first_comment": form.get("first_comment", ""),
        "alt_text": form.get("alt_text", ""),
        "cover_id": row_id(cover),
        "share_to_feed": form.get("share_to_feed") == "on",
        "action": form.get("action", "draft"),
        "scheduled_at": form.get("scheduled_at", ""),
    }
    composition = composer.Composition(
        account_ids=values["account_ids"],
        content=PostInput(
            kind=values["kind"],
            media_ids=tuple(values["media_ids"]),
            caption=values["caption"],
            first_comment=values["first_comment"],
            alt_text=values["alt_text"],
            share_to_feed=values["share_to_feed"] or values["kind"] != "reel",
            cover_id=values["cover_id"] if values["kind"] == "reel" else None,
        ),
        action=values["action"],
        local_time=values["scheduled_at"],
    )
    try:
        posts = await composer.compose(current_actor(), services().publishing, composition)
    except ValidationFailed as exc:
        return await _page(values, exc.fields, 422)
    verb = {"draft": "saved as a draft", "schedule": "scheduled", "now": "queued to publish now"}
    count = len(posts)
    await flash(f"{count} post{'s' if count > 1 else ''} {verb[composition.action]}.", "success")
    return redirect(url_for("posts.index"))


@blueprint.post("/upload")
@accepts_upload
@requires(Role.EDITOR)
async def upload() -> tuple[Response, int]:
    """Add one file to the library (the composer uploads with a progress bar)."""
    files = await request.files
    sent = files.get("file")
    if sent is None:
        return jsonify({"error": "Choose a file to upload."}), 422
    try:
        asset = await media.upload_file(
            current_actor(),
            services().storage,
            source=sent.stream,
            filename=sent.filename or "",
        )
    except ValidationFailed as exc:
        return jsonify({"error": exc.message}), 422
    return jsonify(
        {
            "id": asset.id,
            "url": url_for("media.media_file", key=asset.storage_key),
            "mime": asset.mime,
            "filename": asset.filename,
            "width": asset.width,
            "height": asset.height,
        }
    ), 201


@blueprint.post("/caption")
@requires(Role.EDITOR)
async def caption() -> tuple[Response, int]:
    """An AI caption suggestion for the topic (nothing is stored)."""
    form = await request.form
    container = services().container
    try:
        suggestion = await write_caption(
            current_actor(),
            container.ai,
            topic=form.get("topic", ""),
            tone=form.get("tone", "casual"),
            context=form.get("context", ""),
            clock=container.clock,
        )
    except ValidationFailed as exc:
        return jsonify({"error": exc.message, "fields": exc.fields}), 422
    except AiError as exc:
        return jsonify({"error": exc.message}), 503
    return jsonify({"caption": suggestion.text}), 200
