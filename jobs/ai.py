"""AI jobs: expire reply drafts whose messaging window closed."""

from __future__ import annotations

import functools
from typing import Any

from arq import cron

from core.services import notifications
from core.services.reply_drafts import expire_due_drafts
from core.wiring import Services


async def expire_reply_drafts(ctx: dict[str, Any]) -> int:
    """Mark pending reply drafts past their window as expired (every minute)."""
    services: Services = ctx["services"]
    container = services.container
    announce = functools.partial(notifications.record_event, container)
    return await expire_due_drafts(container.clock, announce)


CRON_JOBS = [
    cron(expire_reply_drafts, second=15, run_at_startup=True, unique=True, timeout=60),
]
