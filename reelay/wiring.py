"""Builds the core container with the arq queue: used by every process."""

from __future__ import annotations

from bot.notifiers import install_notifiers
from core.adapters.redis_server import RedisLocation
from core.bootstrap import Container, build_container
from core.settings import Settings
from reelay.queue import ArqQueue, open_arq_queue


async def build(
    settings: Settings,
    *,
    run_migrations: bool = True,
    redis_location: RedisLocation | None = None,
) -> Container:
    """The container for a Reelay process (panel, worker, bots, or all three)."""
    container = await build_container(
        settings,
        queue_factory=open_arq_queue,
        run_migrations=run_migrations,
        redis_location=redis_location,
    )
    queue = container.queue
    if isinstance(queue, ArqQueue):
        container.on_close(queue.close)
    install_notifiers(container)
    return container
