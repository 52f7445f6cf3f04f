"""WebhookPoster over the process's aiohttp session, through the public-address guard."""

from __future__ import annotations

from collections.abc import Mapping

import aiohttp

from core.adapters.public_urls import REFUSED, NotPublic, check_url, guarded_session, refusal
from core.ports.outgoing_webhooks import WebhookDeliveryError

TIMEOUT_S = 10.0


class AiohttpWebhookPoster:
    """Posts to the customer's URL; ``private_ok`` lets it reach private and local addresses."""

    def __init__(
        self, http: aiohttp.ClientSession, *, private_ok: bool, timeout_s: float = TIMEOUT_S
    ) -> None:
        self._http = http
        self._private_ok = private_ok
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)

    def refusal(self, url: str) -> str | None:
        """The guard's answer for an address written into ``url`` (names are checked when
        they are resolved, at each delivery)."""
        try:
            check_url(url, private_ok=self._private_ok)
        except NotPublic:
            return REFUSED
        return None

    async def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> int:
        try:
            check_url(url, private_ok=self._private_ok)
            async with (
                guarded_session(self._http, private_ok=self._private_ok) as http,
                http.post(
                    url,
                    data=body,
                    headers={"Content-Type": "application/json", **headers},
                    timeout=self._timeout,
                    allow_redirects=False,
                ) as response,
            ):
                await response.read()
                if 200 <= response.status < 300:
                    return response.status
                raise WebhookDeliveryError(f"HTTP {response.status}", response.status)
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            if refusal(exc) is not None:
                raise WebhookDeliveryError(REFUSED) from exc
            raise WebhookDeliveryError(f"{type(exc).__name__}: {exc}"[:300]) from exc
