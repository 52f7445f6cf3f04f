"""The media library: uploads (bytes or a URL) checked, converted and stored behind a port.

The type of a file comes from its first bytes, never its name. Images become JPEG (the only
format Instagram's API takes); videos are read for their duration and size from the MP4/MOV
container itself, in place: an uploaded video is never held whole in memory. One image is
decoded at a time per process, and a JPEG (kept byte for byte) only at a fraction of its size.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import logging
import mmap
import struct
import warnings
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import IO

from PIL import Image, ImageOps, UnidentifiedImageError

from core.db.models import MediaAsset
from core.domain.posts import MediaFacts
from core.domain.scope import Actor
from core.errors import NotFound, ValidationFailed
from core.ports.storage import MediaStorage
from core.settings import Settings

logger = logging.getLogger(__name__)

# What an upload may weigh before conversion (Instagram's own limits are checked per post).
IMAGE_UPLOAD_MAX_BYTES = 30 * 1024 * 1024
VIDEO_UPLOAD_MAX_BYTES = 300 * 1024 * 1024
MAX_PIXELS = 40_000_000
# A PNG or WebP is decoded whole (4 bytes a pixel) to become a JPEG: at most ~96 MB.
CONVERT_MAX_PIXELS = 24_000_000
JPEG_QUALITY = 90
# One thread prepares every upload: a burst decodes one image at a time, and the memory a
# decode takes is reused by the next instead of each thread's allocator keeping its own.
_PREPARING = ThreadPoolExecutor(max_workers=1, thread_name_prefix="media")

IMAGE_MIMES = {"image/jpeg", "image/png", "image/webp"}
VIDEO_MIMES = {"video/mp4", "video/quicktime"}
EXTENSIONS = {"image/jpeg": "jpg", "video/mp4": "mp4", "video/quicktime": "mov"}

# Top-level atoms a QuickTime file may start with when it has no ``ftyp``.
_QUICKTIME_LEADS = {b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot"}

Fetch = Callable[[str, int], Awaitable[bytes]]


def sniff_mime(data: bytes) -> str | None:
    """The file's type from its magic bytes; None when it is not one Reelay takes."""
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if len(data) >= 12 and data[4:8] == b"ftyp":
        brand = data[8:12]
        if brand == b"qt  ":
            return "video/quicktime"
        if brand.startswith((b"heic", b"heix", b"mif1", b"msf1", b"avif")):
            return "image/heic"
        return "video/mp4"
    if len(data) >= 8 and data[4:8] in _QUICKTIME_LEADS:
        return "video/quicktime"
    return None


# ---------------------------------------------------------------- MP4 / MOV


def _boxes(data: bytes | mmap.mmap, start: int, end: int) -> Iterator[tuple[bytes, int, int]]:
    """(type, payload start, box end) for each box between ``start`` and ``end``."""
    pos = start
    while pos + 8 <= end:
        size, kind = struct.unpack_from(">I4s", data, pos)
        header = 8
        if size == 1:
            if pos + 16 > end:
                return
            (size,) = struct.unpack_from(">Q", data, pos + 8)
            header = 16
        elif size == 0:
            size = end - pos
        if size < header or pos + size > end:
            return
        yield kind, pos + header, pos + size
        pos += size


def _child(data: bytes | mmap.mmap, start: int, end: int, name: bytes) -> tuple[int, int] | None:
    for kind, payload, box_end in _boxes(data, start, end):
        if kind == name:
            return payload, box_end
    return None


@dataclass(frozen=True)
class VideoFacts:
    duration_s: float
    width: int | None
    height: int | None


def read_video_facts(data: bytes | mmap.mmap) -> VideoFacts:
    """Duration (from ``mvhd``) and display size (from the first video ``tkhd``)."""
    moov = _child(data, 0, len(data), b"moov")
    if moov is None:
        raise ValueError("no moov box")
    mvhd = _child(data, *moov, b"mvhd")
    if mvhd is None:
        raise ValueError("no mvhd box")
    start = mvhd[0]
    if data[start] == 1:
        (timescale,) = struct.unpack_from(">I", data, start + 20)
        (duration,) = struct.unpack_from(">Q", data, start + 24)
    else:
        timescale, duration = struct.unpack_from(">II", data, start + 12)
    if not timescale:
        raise ValueError("mvhd timescale is zero")
    width = height = None
    for kind, payload, box_end in _boxes(data, *moov):
        if kind != b"trak":
            continue
        tkhd = _child(data, payload, box_end, b"tkhd")
        if tkhd is None:
            continue
        size = _track_size(data, tkhd[0])
        if size is not None:
            width, height = size
            break
    return VideoFacts(duration_s=duration / timescale, width=width, height=height)


def _track_size(data: bytes | mmap.mmap, start: int) -> tuple[int, int] | None:
    matrix_at = start + (52 if data[start] == 1 else 40)
    if matrix_at + 44 > len(data):
        return None
    a, b = struct.unpack_from(">ii", data, matrix_at)
    w_fixed, h_fixed = struct.unpack_from(">II", data, matrix_at + 36)
    width, height = w_fixed >> 16, h_fixed >> 16
    if not width or not height:
        return None
    if a == 0 and abs(b) == 1 << 16:  # rotated a quarter turn: shown the other way round
        width, height = height, width
    return width, height


# ---------------------------------------------------------------- preparing an upload


@dataclass(frozen=True)
class PreparedMedia:
    """A checked file: its bytes, or for an uploaded video the file holding them."""

    data: bytes | IO[bytes]
    mime: str
    width: int | None
    height: int | None
    duration_s: float | None
    converted_from: str | None = None
    size: int = 0

    @property
    def extension(self) -> str:
        return EXTENSIONS[self.mime]

    @property
    def length(self) -> int:
        return len(self.data) if isinstance(self.data, bytes) else self.size


def _refuse(message: str) -> ValidationFailed:
    return ValidationFailed(message, {"file": message})


def _open_image(data: bytes) -> Image.Image:
    """The decoded image; a JPEG only at an eighth of its size (enough to find damage)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            width, height = image.size
            if width * height > MAX_PIXELS:
                raise _refuse(
                    f"The image is {width}x{height} pixels; Reelay takes up to 40 megapixels."
                )
            if image.format == "JPEG":
                image.draft(image.mode, (width // 8, height // 8))
            elif width * height > CONVERT_MAX_PIXELS:
                raise _refuse(
                    f"The image is {width}x{height} pixels; Reelay converts PNG and WebP images "
                    "up to 24 megapixels. Export it as JPEG, or smaller."
                )
            image.load()
    except (UnidentifiedImageError, OSError, SyntaxError, Image.DecompressionBombError) as exc:
        raise _refuse("The image is damaged or incomplete; export it again.") from exc
    except Image.DecompressionBombWarning as exc:
        raise _refuse("The image is too large in pixels.") from exc
    return image


def _prepare_image(data: bytes, mime: str) -> PreparedMedia:
    if len(data) > IMAGE_UPLOAD_MAX_BYTES:
        raise _refuse(f"The image is {len(data) // (1024 * 1024)} MB; upload up to 30 MB.")
    # Each step replaces the image it works on, so at most two full-size copies ever exist.
    image = _open_image(data)
    if mime == "image/jpeg":
        # Kept byte for byte; the size people see follows the EXIF orientation.
        width, height = Image.open(io.BytesIO(data)).size
        if image.getexif().get(0x0112, 1) in {5, 6, 7, 8}:
            width, height = height, width
        return PreparedMedia(data, mime, width, height, None)
    ImageOps.exif_transpose(image, in_place=True)
    if image.mode in {"RGBA", "LA"} or "transparency" in image.info:
        if image.mode != "RGBA":
            image = image.convert("RGBA")
        canvas = Image.new("RGB", image.size, (255, 255, 255))
        canvas.paste(image, mask=image)
        image = canvas
    elif image.mode != "RGB":
        image = image.convert("RGB")
    out = io.BytesIO()
    # No optimize=True: it holds every DCT coefficient of the image in memory at once.
    image.save(out, "JPEG", quality=JPEG_QUALITY)
    width, height = image.size
    return PreparedMedia(out.getvalue(), "image/jpeg", width, height, None, converted_from=mime)


def _video_facts(data: bytes | mmap.mmap) -> VideoFacts:
    if len(data) > VIDEO_UPLOAD_MAX_BYTES:
        raise _refuse(
            f"The video is {len(data) // (1024 * 1024)} MB; Instagram takes up to 300 MB."
        )
    try:
        return read_video_facts(data)
    except (ValueError, struct.error, IndexError) as exc:
        raise _refuse(
            "Reelay could not read this video; export it as MP4 (H.264) and upload it again."
        ) from exc


def _prepare_video(data: bytes, mime: str) -> PreparedMedia:
    facts = _video_facts(data)
    return PreparedMedia(data, mime, facts.width, facts.height, facts.duration_s)


def prepare_media(data: bytes) -> PreparedMedia:
    """Check and convert one uploaded file; ``ValidationFailed`` (field ``file``) if refused."""
    if not data:
        raise _refuse("The file is empty.")
    mime = sniff_mime(data)
    if mime in IMAGE_MIMES:
        return _prepare_image(data, mime)
    if mime in VIDEO_MIMES:
        return _prepare_video(data, mime)
    if mime == "image/gif":
        raise _refuse("GIFs are not supported by Instagram; upload a JPEG, PNG or MP4.")
    if mime == "image/heic":
        raise _refuse("HEIC photos are not supported; export the photo as JPEG.")
    raise _refuse("This file is not a JPEG, PNG or WebP image, nor an MP4 or MOV video.")


# ---------------------------------------------------------------- the library


def public_url(settings: Settings, asset: MediaAsset) -> str:
    """Where Meta fetches the file: ``PUBLIC_BASE_URL/media/<key>``."""
    return f"{settings.base_url}/media/{asset.storage_key}"


def facts_of(asset: MediaAsset) -> MediaFacts:
    return MediaFacts(
        asset_id=asset.id,
        mime=asset.mime,
        size=asset.size,
        width=asset.width,
        height=asset.height,
        duration_s=asset.duration_s,
    )


def _prepared_with_checksum(data: bytes) -> tuple[PreparedMedia, str]:
    prepared = prepare_media(data)
    assert isinstance(prepared.data, bytes)
    return prepared, hashlib.sha256(prepared.data).hexdigest()


def _prepared_file_with_checksum(source: IO[bytes]) -> tuple[PreparedMedia, str]:
    """Like ``prepare_media`` over a file; a video is read in place and stays in the file."""
    source.seek(0)
    head = source.read(64)
    size = source.seek(0, io.SEEK_END)
    source.seek(0)
    mime = sniff_mime(head) or ""
    if mime not in IMAGE_MIMES | VIDEO_MIMES:
        prepare_media(head)  # refuses, naming the problem
    if mime in IMAGE_MIMES:
        if size > IMAGE_UPLOAD_MAX_BYTES:
            raise _refuse(f"The image is {size // (1024 * 1024)} MB; upload up to 30 MB.")
        return _prepared_with_checksum(source.read())
    with mmap.mmap(source.fileno(), 0, access=mmap.ACCESS_READ) as view:
        facts = _video_facts(view)
    digest = hashlib.sha256()
    while chunk := source.read(1024 * 1024):
        digest.update(chunk)
    prepared = PreparedMedia(source, mime, facts.width, facts.height, facts.duration_s, size=size)
    return prepared, digest.hexdigest()


async def upload_bytes(
    actor: Actor, storage: MediaStorage, data: bytes, filename: str = ""
) -> MediaAsset:
    """Add a file to the workspace's library; the same content uploaded twice is stored once."""
    workspace_id = actor.workspace_id
    # Converting an image or reading a 300 MB video takes long enough to stall everything
    # else the process serves (webhooks, chat buttons), so it runs in a thread.
    loop = asyncio.get_running_loop()
    prepared, checksum = await loop.run_in_executor(_PREPARING, _prepared_with_checksum, data)
    return await _store(storage, workspace_id, prepared, checksum, filename)


async def upload_file(
    actor: Actor, storage: MediaStorage, source: IO[bytes], filename: str = ""
) -> MediaAsset:
    """``upload_bytes`` for an uploaded file (such as the form parser's spooled temporary
    file): a video is checked and copied from it without being read into memory."""
    loop = asyncio.get_running_loop()
    prepared, checksum = await loop.run_in_executor(
        _PREPARING, _prepared_file_with_checksum, source
    )
    return await _store(storage, actor.workspace_id, prepared, checksum, filename)


async def _store(
    storage: MediaStorage, workspace_id: int, prepared: PreparedMedia, checksum: str, filename: str
) -> MediaAsset:
    existing = await MediaAsset.filter(workspace_id=workspace_id, checksum=checksum).first()
    if existing is not None and await storage.size(existing.storage_key) is not None:
        return existing
    key = storage.new_key(prepared.extension)
    if isinstance(prepared.data, bytes):
        await storage.save(key, prepared.data)
    else:
        await storage.save_file(key, prepared.data)
    asset = await MediaAsset.create(
        workspace_id=workspace_id,
        storage_key=key,
        filename=filename[:255],
        mime=prepared.mime,
        size=prepared.length,
        width=prepared.width,
        height=prepared.height,
        duration_s=prepared.duration_s,
        checksum=checksum,
    )
    logger.info(
        "media %s stored for workspace %s (%s, %d bytes%s)",
        asset.id,
        workspace_id,
        asset.mime,
        asset.size,
        f", converted from {prepared.converted_from}" if prepared.converted_from else "",
    )
    return asset


async def upload_from_url(
    actor: Actor, storage: MediaStorage, fetch: Fetch, url: str
) -> MediaAsset:
    """Download ``url`` (http or https, up to the video limit) into the library."""
    if not url.lower().startswith(("http://", "https://")):
        raise ValidationFailed(
            "Give a link that starts with http:// or https://.",
            {"url": "Give a link that starts with http:// or https://."},
        )
    data = await fetch(url, VIDEO_UPLOAD_MAX_BYTES)
    filename = url.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]
    return await upload_bytes(actor, storage, data, filename)


async def assets_for(actor: Actor, asset_ids: list[int]) -> list[MediaAsset]:
    """The workspace's assets in the order asked; ``NotFound`` when one is missing."""
    scoped = MediaAsset.filter(workspace_id=actor.workspace_id, id__in=asset_ids)
    found = {a.id: a for a in await scoped}
    missing = [i for i in asset_ids if i not in found]
    if missing:
        raise NotFound(f"media {missing[0]} is not in this workspace's library")
    return [found[i] for i in asset_ids]
