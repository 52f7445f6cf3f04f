"""Checks a webhook endpoint the way Meta does: a GET verification round-trip."""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass

import aiohttp

from core.adapters.public_urls import REFUSED, check_url, guarded_session, refusal

logger = logging.getLogger(__name__)

PROBE_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class ProbeResult:
    ok: bool
    message: str
    status: int | None = None


async def probe_webhook(
    http: aiohttp.ClientSession, url: str, verify_token: str, *, private_ok: bool
) -> ProbeResult:
    """Send Meta's ``hub.mode=subscribe`` GET to ``url`` and check the challenge comes back.

    ``private_ok`` lets the check reach private and local addresses (``PRIVATE_URLS_OK``)."""
    challenge = secrets.token_hex(8)
    params = {"hub.mode": "subscribe", "hub.verify_token": verify_token, "hub.challenge": challenge}
    try:
        check_url(url, private_ok=private_ok)
        async with (
            guarded_session(http, private_ok=private_ok) as session,
            session.get(
                url,
                params=params,
                timeout=aiohttp.ClientTimeout(total=PROBE_TIMEOUT_S),
                allow_redirects=False,
            ) as response,
        ):
            body = (await response.text())[:200]
            status = response.status
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        if refusal(exc) is not None:
            logger.info("webhook probe of %s refused: %s", url, exc)
            return ProbeResult(
                False,
                f"{REFUSED} Meta cannot reach {url} either: set PUBLIC_BASE_URL to the "
                "panel's public address (or PRIVATE_URLS_OK=true to check a LAN address).",
            )
        logger.info("webhook probe of %s failed: %s", url, exc)
        return ProbeResult(
            False,
            f"Could not reach {url} ({type(exc).__name__}). Meta must reach PUBLIC_BASE_URL "
            "from the internet; check the address, the firewall and the TLS certificate.",
        )
    if status == 200 and body.strip() == challenge:
        return ProbeResult(True, "The endpoint answered the verification challenge.", status)
    if status == 403:
        return ProbeResult(False, "The endpoint refused the verify token.", status)
    if status == 404:
        return ProbeResult(
            False,
            f"Nothing answers at {url} (404): is PUBLIC_BASE_URL this panel's address?",
            status,
        )
    if status == 200:
        return ProbeResult(False, "The endpoint answered 200 but not with the challenge.", status)
    return ProbeResult(False, f"The endpoint answered HTTP {status}.", status)
