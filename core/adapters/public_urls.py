"""The one guard for requests to an address someone typed in (media links, lead webhooks, the
setup webhook check).

Such requests leave from the server Reelay runs on, so by default they reach public addresses
only: a URL (or a redirect) to localhost, a private network or a cloud metadata address is
refused, both when the host is written as an address (:func:`check_url`) and when its name
resolves to one (:class:`PublicOnlyResolver`, applied at connect time so a name cannot change
its answer between a check and the request). ``PRIVATE_URLS_OK`` lifts the guard for installs
whose targets live on the LAN. A caller that follows redirects checks every hop with
:func:`check_url` and sends it through the same guarded session.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

REFUSED = "The address is private or local; Reelay only reaches public addresses."


class NotPublic(OSError):
    """The host is (or resolves to) an address that is not on the public internet."""


def is_public_address(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    return True


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


def check_url(url: str, *, private_ok: bool) -> None:
    """Raise NotPublic when ``url``'s host is written as a non-public address."""
    host = urlsplit(url).hostname or ""
    if not private_ok and _is_address(host) and not is_public_address(host):
        raise NotPublic(f"{host} is not a public address")


@asynccontextmanager
async def guarded_session(
    http: aiohttp.ClientSession, *, private_ok: bool
) -> AsyncIterator[aiohttp.ClientSession]:
    """``http`` itself when private addresses are allowed, else a session of its own whose
    connections reach public addresses only."""
    if private_ok:
        yield http
        return
    connector = aiohttp.TCPConnector(resolver=PublicOnlyResolver(), use_dns_cache=False)
    async with aiohttp.ClientSession(connector=connector) as public:
        yield public


def refusal(exc: BaseException) -> NotPublic | None:
    """The guard's refusal behind ``exc`` (raised directly or wrapped by aiohttp's connector)."""
    if isinstance(exc, NotPublic):
        return exc
    if isinstance(exc, aiohttp.ClientConnectorError) and isinstance(exc.os_error, NotPublic):
        return exc.os_error
    return None
