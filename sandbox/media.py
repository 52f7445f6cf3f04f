"""The sandbox fetches media URLs like Meta does and refuses what Meta refuses."""

from __future__ import annotations

import io
import logging

import aiohttp
from PIL import Image, UnidentifiedImageError

from sandbox.state import SandboxError

logger = logging.getLogger(__name__)

MAX_IMAGE_BYTES = 8 * 1024 * 1024
VIDEO_HEAD_BYTES = 64 * 1024
MIN_RATIO = 4 / 5
MAX_RATIO = 1.91


def _unfetchable(url: str) -> SandboxError:
    return SandboxError(
        f"The media could not be fetched from this uri: {url}", code=9004, subcode=2207052
    )


async def _get(http: aiohttp.ClientSession, url: str, limit: int, timeout_s: float) -> bytes:
    try:
        async with http.get(url, timeout=aiohttp.ClientTimeout(total=timeout_s)) as response:
            if response.status != 200:
                raise _unfetchable(url)
            return await response.content.read(limit)
    except TimeoutError:
        raise SandboxError("Timed out downloading the media", code=-2, subcode=2207003) from None
    except (aiohttp.ClientError, ValueError):
        raise _unfetchable(url) from None


async def check_image(
    http: aiohttp.ClientSession, url: str, *, story: bool = False, timeout_s: float = 10.0
) -> None:
    """Raise Meta's error when ``url`` is not a public JPEG of an allowed size and shape."""
    data = await _get(http, url, MAX_IMAGE_BYTES + 1, timeout_s)
    if len(data) > MAX_IMAGE_BYTES:
        raise SandboxError("The image is too large", code=36000, subcode=2207004)
    if not data.startswith(b"\xff\xd8\xff"):
        raise SandboxError("The image format is not supported", code=36001, subcode=2207005)
    try:
        width, height = Image.open(io.BytesIO(data)).size
    except (UnidentifiedImageError, OSError):
        raise SandboxError(
            "The image format is not supported", code=36001, subcode=2207005
        ) from None
    if not story and height and not MIN_RATIO - 0.005 <= width / height <= MAX_RATIO + 0.005:
        raise SandboxError("The aspect ratio is not supported", code=36003, subcode=2207009)


async def check_video(http: aiohttp.ClientSession, url: str, *, timeout_s: float = 10.0) -> bool:
    """Raise when ``url`` cannot be fetched; False when it is no MP4/MOV (fails later)."""
    head = await _get(http, url, VIDEO_HEAD_BYTES, timeout_s)
    return len(head) >= 12 and head[4:8] == b"ftyp"
