"""Downloading a file someone linked to (media upload from a URL)."""

from __future__ import annotations

import logging

import aiohttp

from core.errors import ValidationFailed

logger = logging.getLogger(__name__)

DOWNLOAD_TIMEOUT = aiohttp.ClientTimeout(total=120, sock_connect=10)


def _refuse(message: str) -> ValidationFailed:
    return ValidationFailed(message, {"url": message})


async def download(http: aiohttp.ClientSession, url: str, max_bytes: int) -> bytes:
    """The body at ``url``, refused with a message a person understands when it cannot be had."""
    try:
        async with http.get(url, timeout=DOWNLOAD_TIMEOUT, allow_redirects=True) as response:
            if response.status >= 400:
                raise _refuse(f"The link answered with HTTP {response.status}; check it.")
            declared = response.content_length
            if declared is not None and declared > max_bytes:
                raise _refuse(f"The file is larger than {max_bytes // (1024 * 1024)} MB.")
            chunks: list[bytes] = []
            total = 0
            async for chunk in response.content.iter_chunked(256 * 1024):
                total += len(chunk)
                if total > max_bytes:
                    raise _refuse(f"The file is larger than {max_bytes // (1024 * 1024)} MB.")
                chunks.append(chunk)
    except (TimeoutError, aiohttp.ClientError) as exc:
        logger.info("download of %s failed: %s", url, exc)
        raise _refuse(f"Reelay could not download the link ({type(exc).__name__}).") from exc
    return b"".join(chunks)
