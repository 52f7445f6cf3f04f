"""The worker's heartbeat job: lets /healthz, /metrics and operators see that a worker is
alive (``core.services.heartbeat``)."""

from __future__ import annotations

from typing import Any

from core.services.heartbeat import beat
from core.wiring import Services


async def heartbeat(ctx: dict[str, Any]) -> None:
    """Record that a worker is alive, with the time in UTC."""
    services: Services = ctx["services"]
    container = services.container
    await beat(container.redis, container.clock.now())
