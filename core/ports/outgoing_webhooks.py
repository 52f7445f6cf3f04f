"""The outgoing-webhook port: how core POSTs JSON to a customer's URL (lead webhooks and
event webhooks)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from core.errors import ReelayError


class WebhookDeliveryError(ReelayError):
    """The POST did not get a 2xx answer (network error, timeout or HTTP status)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


class WebhookPoster(Protocol):
    async def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> int:
        """POST ``body``; returns the 2xx status or raises WebhookDeliveryError."""
        ...

    def refusal(self, url: str) -> str | None:
        """Why the public-address guard refuses ``url`` as written, or None."""
        ...
