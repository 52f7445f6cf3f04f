"""WebhookPoster over the process's aiohttp session."""

from __future__ import annotations

from collections.abc import Mapping

import aiohttp

from core.ports.outgoing_webhooks import WebhookDeliveryError

TIMEOUT_S = 10.0


class AiohttpWebhookPoster:
    def __init__(self, http: aiohttp.ClientSession, *, timeout_s: float = TIMEOUT_S) -> None:
        self._http = http
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)

    async def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> int:
        try:
            async with self._http.post(
                url,
                data=body,
                headers={"Content-Type": "application/json", **headers},
                timeout=self._timeout,
                allow_redirects=False,
            ) as response:
                await response.read()
                if 200 <= response.status < 300:
                    return response.status
                raise WebhookDeliveryError(f"HTTP {response.status}", response.status)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise WebhookDeliveryError(f"{type(exc).__name__}: {exc}"[:300]) from exc
