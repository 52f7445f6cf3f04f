"""Account jobs: the token refresh cron."""

from __future__ import annotations

import logging
from typing import Any

from arq import cron

from core.services import accounts
from core.wiring import Services

logger = logging.getLogger(__name__)


async def refresh_instagram_tokens(ctx: dict[str, Any]) -> None:
    """Refresh Instagram Login tokens well before they expire; flag the dead ones."""
    services: Services = ctx["services"]
    report = await accounts.refresh_tokens(services.container)
    if report.refreshed or report.failed:
        logger.info(
            "token refresh: %d refreshed, %d failed, %d need reconnecting",
            len(report.refreshed),
            len(report.failed),
            len(report.needs_reconnect),
        )


CRON_JOBS = [
    cron(refresh_instagram_tokens, hour={4, 16}, minute={17}, unique=True, timeout=600),
]
