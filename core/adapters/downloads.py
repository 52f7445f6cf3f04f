"""Downloading a file someone linked to (media upload from a URL).

A link is fetched from the server Reelay runs on, so it goes through the public-address guard
of :mod:`core.adapters.public_urls`: every redirect hop is checked again.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urljoin

import aiohttp

from core.adapters.public_urls import NotPublic, check_url, guarded_session, refusal
from core.errors import ValidationFailed

logger = logging.getLogger(__name__)

DOWNLOAD_TIMEOUT = aiohttp.ClientTimeout(total=120, sock_connect=10)
MAX_REDIRECTS = 5
REDIRECTS = {301, 302, 303, 307, 308}


def _refuse(message: str) -> ValidationFailed:
    return ValidationFailed(message, {"url": message})


async def download(
    http: aiohttp.ClientSession, url: str, max_bytes: int, *, private_ok: bool = False
) -> bytes:
    """The body at ``url``, refused with a message a person understands when it cannot be had.

    ``private_ok`` lets links reach private and local addresses (``http`` is used as is);
    otherwise a session of its own that reaches public addresses only is used.
    """
    async with guarded_session(http, private_ok=private_ok) as session:
        return await _fetch(session, url, max_bytes, private_ok=private_ok)


async def _fetch(
    http: aiohttp.ClientSession, url: str, max_bytes: int, *, private_ok: bool
) -> bytes:
    try:
        for _ in range(MAX_REDIRECTS + 1):
            check_url(url, private_ok=private_ok)
            async with http.get(url, timeout=DOWNLOAD_TIMEOUT, allow_redirects=False) as response:
                if response.status in REDIRECTS and "Location" in response.headers:
                    url = urljoin(url, response.headers["Location"])
                    continue
                return await _body(response, max_bytes)
        raise _refuse(f"The link redirects more than {MAX_REDIRECTS} times.")
    except (NotPublic, aiohttp.ClientConnectorError) as exc:
        refused = refusal(exc)
        if refused is not None:
            logger.info("download of %s refused: %s", url, refused)
            raise _refuse(
                "The link points to a private or local address; "
                "use a public link or upload the file."
            ) from exc
        logger.info("download of %s failed: %s", url, exc)
        raise _refuse("Reelay could not connect to the link's server.") from exc
    except (TimeoutError, aiohttp.ClientError) as exc:
        logger.info("download of %s failed: %s", url, exc)
        raise _refuse(f"Reelay could not download the link ({_plain(exc)}).") from exc


async def _body(response: aiohttp.ClientResponse, max_bytes: int) -> bytes:
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
    return b"".join(chunks)


def _plain(exc: Any) -> str:
    if isinstance(exc, TimeoutError):
        return "it took too long"
    if isinstance(exc, aiohttp.InvalidURL):
        return "the address is not a valid link"
    return "the connection failed"
