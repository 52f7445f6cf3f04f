"""The worker's heartbeat: lets /healthz and operators see that a worker is alive."""

from __future__ import annotations

from typing import Any

from core.wiring import Services

HEARTBEAT_KEY = "reelay:worker:heartbeat"


async def heartbeat(ctx: dict[str, Any]) -> None:
    """Record that a worker is alive, with the time in UTC."""
    services: Services = ctx["services"]
    container = services.container
    await container.redis.set(HEARTBEAT_KEY, container.clock.now().isoformat(), ex=300)
