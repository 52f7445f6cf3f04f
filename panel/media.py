"""Public media files: Meta fetches post media from ``PUBLIC_BASE_URL/media/<key>``."""

from __future__ import annotations

from quart import Blueprint, Response, abort, send_file

from core.adapters.storage import is_valid_key
from panel.security import public
from panel.services import services

blueprint = Blueprint("media", __name__)

MIME_BY_EXTENSION = {"jpg": "image/jpeg", "mp4": "video/mp4", "mov": "video/quicktime"}
ONE_YEAR_S = 365 * 24 * 3600


@blueprint.get("/media/<key>")
@public
async def media_file(key: str) -> Response:
    """One stored file by its unguessable key (no listing; byte ranges supported)."""
    mime = MIME_BY_EXTENSION.get(key.rsplit(".", 1)[-1])
    if mime is None or not is_valid_key(key):
        abort(404)
    storage = services().storage
    path = storage.local_path(key)
    if path is not None:
        response = await send_file(path, mimetype=mime, conditional=True, cache_timeout=ONE_YEAR_S)
    else:
        size = await storage.size(key)
        if size is None:
            abort(404)
        response = Response(storage.stream(key), mimetype=mime)
        response.content_length = size
        response.headers["Cache-Control"] = f"public, max-age={ONE_YEAR_S}"
    response.headers["X-Robots-Tag"] = "noindex"
    return response
