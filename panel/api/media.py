"""API: media upload (a file, or a link to fetch) into the workspace's library."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field
from quart import Blueprint
from quart_schema import DataSource, validate_request, validate_response
from quart_schema.pydantic import File

from core.db.models import MediaAsset, Role
from core.services import media
from panel.api.auth import api_requires, current_actor
from panel.limits import accepts_upload
from panel.services import services

blueprint = Blueprint("api_media", __name__, url_prefix="/api/v1/media")


class Upload(BaseModel):
    file: File


class UploadLink(BaseModel):
    url: str = Field(max_length=2048, description="An http(s) link Reelay downloads.")


class MediaOut(BaseModel):
    id: int
    filename: str
    mime: str
    size: int
    width: int | None
    height: int | None
    duration_s: float | None
    url: str
    created_at: datetime


def _out(asset: MediaAsset) -> MediaOut:
    return MediaOut(
        id=asset.id,
        filename=asset.filename,
        mime=asset.mime,
        size=asset.size,
        width=asset.width,
        height=asset.height,
        duration_s=asset.duration_s,
        url=media.public_url(services().container.settings, asset),
        created_at=asset.created_at,
    )


@blueprint.post("")
@accepts_upload
@api_requires(Role.EDITOR)
@validate_request(Upload, source=DataSource.FORM_MULTIPART)
@validate_response(MediaOut, 201)
async def upload(data: Upload) -> tuple[MediaOut, int]:
    """Upload an image (JPEG, PNG, WebP, HEIC…) or a video (MP4, MOV) as multipart ``file``."""
    asset = await media.upload_file(
        current_actor(),
        services().storage,
        source=data.file.stream,
        filename=data.file.filename or "",
    )
    return _out(asset), 201


@blueprint.post("/from-url")
@api_requires(Role.EDITOR)
@validate_request(UploadLink)
@validate_response(MediaOut, 201)
async def upload_from_url(data: UploadLink) -> tuple[MediaOut, int]:
    """Fetch a public link into the library."""
    found = services()
    asset = await media.upload_from_url(current_actor(), found.storage, found.downloads, data.url)
    return _out(asset), 201
