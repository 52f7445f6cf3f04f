"""Downloading a file someone linked to (media upload from a URL).

A link is fetched from the server Reelay runs on, so by default only public addresses are
reached: a link (or a redirect) to localhost, a private network or a cloud metadata address
is refused, both when the host is written as an address and when its name resolves to one
(checked at connect time, so a name cannot change its answer between a check and the fetch).
"""

from __future__ import annotations

import ipaddress
import logging
import socket
from typing import Any
from urllib.parse import urljoin, urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

from core.errors import ValidationFailed

logger = logging.getLogger(__name__)

DOWNLOAD_TIMEOUT = aiohttp.ClientTimeout(total=120, sock_connect=10)
MAX_REDIRECTS = 5
REDIRECTS = {301, 302, 303, 307, 308}


def _refuse(message: str) -> ValidationFailed:
    return ValidationFailed(message, {"url": message})


def is_public_address(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global


class NotPublic(OSError):
    """The link's host is (or resolves to) an address that is not on the public internet."""


class PublicOnlyResolver(AbstractResolver):
    """Resolves like aiohttp does, keeping only public addresses."""

    def __init__(self) -> None:
        self._inner = DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        found = await self._inner.resolve(host, port, family)
        public = [entry for entry in found if is_public_address(entry["host"])]
        if not public:
            raise NotPublic(f"{host} is not a public address")
        return public

    async def close(self) -> None:
        await self._inner.close()


async def download(
    http: aiohttp.ClientSession, url: str, max_bytes: int, *, private_ok: bool = False
) -> bytes:
    """The body at ``url``, refused with a message a person understands when it cannot be had.

    ``private_ok`` lets links reach private and local addresses (``http`` is used as is);
    otherwise a session of its own that reaches public addresses only is used.
    """
    if private_ok:
        return await _fetch(http, url, max_bytes, public_only=False)
    connector = aiohttp.TCPConnector(resolver=PublicOnlyResolver(), use_dns_cache=False)
    async with aiohttp.ClientSession(connector=connector) as public:
        return await _fetch(public, url, max_bytes, public_only=True)


async def _fetch(
    http: aiohttp.ClientSession, url: str, max_bytes: int, *, public_only: bool
) -> bytes:
    try:
        for _ in range(MAX_REDIRECTS + 1):
            host = urlsplit(url).hostname or ""
            if public_only and _is_address(host) and not is_public_address(host):
                raise NotPublic(f"{host} is not a public address")
            async with http.get(url, timeout=DOWNLOAD_TIMEOUT, allow_redirects=False) as response:
                if response.status in REDIRECTS and "Location" in response.headers:
                    url = urljoin(url, response.headers["Location"])
                    continue
                return await _body(response, max_bytes)
        raise _refuse(f"The link redirects more than {MAX_REDIRECTS} times.")
    except NotPublic as exc:
        logger.info("download of %s refused: %s", url, exc)
        raise _refuse(
            "The link points to a private or local address; use a public link or upload the file."
        ) from exc
    except aiohttp.ClientConnectorError as exc:
        if isinstance(exc.os_error, NotPublic):
            logger.info("download of %s refused: %s", url, exc.os_error)
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


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    return True


def _plain(exc: Any) -> str:
    if isinstance(exc, TimeoutError):
        return "it took too long"
    if isinstance(exc, aiohttp.InvalidURL):
        return "the address is not a valid link"
    return "the connection failed"
