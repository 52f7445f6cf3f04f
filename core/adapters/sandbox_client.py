"""Reelay's side of the sandbox's follower controls, over HTTP.

The panel acts as a made-up follower through ``POST /_sandbox/{event}`` (the sandbox then
signs the event and delivers it to ``/webhooks/meta`` like Meta would) and reads back what
the account said through ``GET /_sandbox/state`` and ``/_sandbox/conversation``. Going over
HTTP works the same whether the sandbox runs in this process (``reelay run``) or in another.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import aiohttp

from core.ports.sandbox import Delivered, SandboxUnavailable

logger = logging.getLogger(__name__)

TIMEOUT_S = 25.0  # the sandbox answers once Reelay's webhook endpoint has (it waits up to 20 s)


class SandboxLink:
    """The follower controls of the sandbox listening at ``base_url``."""

    def __init__(self, http: aiohttp.ClientSession, base_url: str) -> None:
        self.http = http
        self.base_url = base_url.rstrip("/")

    async def _call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        url = f"{self.base_url}{path}"
        try:
            async with self.http.request(
                method, url, timeout=aiohttp.ClientTimeout(total=TIMEOUT_S), **kwargs
            ) as response:
                if response.status >= 400:
                    raise SandboxUnavailable(_refusal(response.status, await response.text()))
                body = await response.json(content_type=None)
        except (TimeoutError, aiohttp.ClientError) as exc:
            logger.warning("sandbox at %s not reachable: %s", self.base_url, exc)
            raise SandboxUnavailable(
                f"The sandbox Instagram at {self.base_url} is not reachable ({type(exc).__name__}"
                "). It runs inside reelay run or reelay panel when META_APP_ID is empty; "
                "SANDBOX_URL says where."
            ) from exc
        except ValueError as exc:
            raise SandboxUnavailable(
                f"The sandbox at {self.base_url} answered something that is not JSON."
            ) from exc
        if not isinstance(body, dict):
            raise SandboxUnavailable(f"The sandbox at {self.base_url} answered {body!r:.100}.")
        return body

    async def act(self, event: str, fields: dict[str, Any]) -> Delivered:
        """Do ``event`` (comment, dm, postback) as a follower; ``fields`` as the sandbox's
        control endpoint reads them (ig_id, from_id, text, media_id, payload, …)."""
        body = await self._call("POST", f"/_sandbox/{event}", json=fields)
        status = body.get("webhook_status")
        return Delivered(
            ref=str(body.get("id") or ""),
            webhook_status=status if isinstance(status, int) else None,
            error=str(body.get("error") or ""),
        )

    async def feed(self, ig_id: str) -> list[dict[str, Any]]:
        """The account's media, newest first (posts Reelay published included)."""
        body = await self._call("GET", "/_sandbox/state", params={"ig_id": ig_id})
        media = [m for m in body.get("feed") or [] if isinstance(m, dict)]
        return sorted(media, key=lambda m: (str(m.get("timestamp")), str(m.get("id"))))[::-1]

    async def conversation(self, ig_id: str, igsid: str) -> list[dict[str, Any]]:
        """What follower ``igsid`` did on the account and what it answered, in order."""
        body = await self._call(
            "GET", "/_sandbox/conversation", params={"ig_id": ig_id, "with": igsid}
        )
        return [item for item in body.get("items") or [] if isinstance(item, dict)]


def _refusal(status: int, text: str) -> str:
    """The sandbox's reason: Meta's error envelope's message, else the start of the body."""
    detail = text.strip()[:300]
    try:
        error = json.loads(text).get("error")
    except (ValueError, AttributeError):
        error = None
    if isinstance(error, dict) and error.get("message"):
        detail = str(error["message"])
    return f"The sandbox refused it (HTTP {status}): {detail or 'no details'}"
