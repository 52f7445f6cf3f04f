"""The infrastructure a process runs on (``Container``); ``core.wiring`` adds the services."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

import aiohttp
from redis.asyncio import Redis
from redis.exceptions import RedisError

from core.adapters.crypto import SecretBox, embedded_encryption_key, embedded_secret_key
from core.adapters.graph import GraphClient, RedisUsageStore
from core.adapters.instagram_oauth import InstagramOAuth
from core.adapters.openai_ai import build_ai_client
from core.adapters.private_files import private_directory
from core.adapters.redis_server import RedisLocation, keeps_appends_on_disk, locate_redis
from core.adapters.sandbox_client import SandboxLink
from core.db import close_database, open_database
from core.errors import InfrastructureError
from core.ports.ai import AiClient
from core.ports.clock import Clock, SystemClock
from core.ports.instagram import InstagramClient
from core.ports.oauth import OAuthClient
from core.ports.queue import JobQueue
from core.ports.sandbox import FollowerConsole, RunningSandbox
from core.settings import Settings

logger = logging.getLogger(__name__)


class OpenedQueue(JobQueue, Protocol):
    """A queue a process opened for itself and closes at shutdown."""

    async def close(self) -> None: ...


QueueFactory = Callable[[RedisLocation], Awaitable[OpenedQueue]]


@dataclass
class Container:
    """Everything a process needs, opened once at startup and closed at shutdown."""

    settings: Settings
    secrets: SecretBox
    secret_key: str
    redis_location: RedisLocation
    redis: Redis
    # Whether Redis keeps what it acknowledged in its append-only file (the embedded one does).
    redis_on_disk: bool
    queue: JobQueue
    http: aiohttp.ClientSession
    graph: InstagramClient
    oauth: OAuthClient
    clock: Clock = field(default_factory=SystemClock)
    # None when no AI server is configured (no OPENAI_API_KEY and the default base URL).
    ai: AiClient | None = None
    # The sandbox Instagram this process serves, while it runs (``reelay run`` without Meta).
    sandbox: RunningSandbox | None = None
    _closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list, repr=False)

    def follower_console(self) -> FollowerConsole:
        """The sandbox running in this process, else the one at SANDBOX_URL."""
        running = self.sandbox
        base_url = running.url if running is not None else self.settings.sandbox_base_url
        return SandboxLink(self.http, base_url)

    def on_close(self, closer: Callable[[], Awaitable[None]]) -> None:
        """Run ``closer`` when the container closes (last registered, first run)."""
        self._closers.append(closer)

    async def close(self) -> None:
        for closer in reversed(self._closers):
            try:
                await closer()
            except Exception:
                logger.exception("error while closing %r", closer)
        self._closers.clear()
        await self.http.close()
        await self.redis.aclose()
        await close_database()
        self.redis_location.stop()


def encryption_key(settings: Settings) -> str:
    if settings.encryption_key is not None:
        return settings.encryption_key.get_secret_value()
    return embedded_encryption_key(settings.var_dir)


def session_secret(settings: Settings) -> str:
    if settings.secret_key is not None:
        return settings.secret_key.get_secret_value()
    return embedded_secret_key(settings.var_dir)


async def build_container(
    settings: Settings,
    *,
    queue_factory: QueueFactory,
    run_migrations: bool = True,
    redis_location: RedisLocation | None = None,
) -> Container:
    """Open the database, Redis, queue and HTTP session described by ``settings``."""
    private_directory(settings.var_dir)
    box = SecretBox(encryption_key(settings))
    secret = session_secret(settings)
    await open_database(settings.resolved_database_url, run_migrations=run_migrations)
    location = redis_location or locate_redis(settings.redis_url, settings.var_dir)
    redis: Redis = Redis(**location.connection_kwargs())
    try:
        await redis.ping()
        on_disk = await keeps_appends_on_disk(redis)
        queue = await queue_factory(location)
    except (OSError, RedisError) as exc:
        await redis.aclose()
        await close_database()
        location.stop()
        raise InfrastructureError(f"cannot reach Redis at {location.describe()}: {exc}") from exc
    http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
    container = Container(
        settings=settings,
        secrets=box,
        secret_key=secret,
        redis_location=location,
        redis=redis,
        redis_on_disk=on_disk,
        queue=queue,
        http=http,
        graph=GraphClient(http, settings, usage=RedisUsageStore(redis)),
        oauth=InstagramOAuth(http),
    )
    container.on_close(queue.close)
    container.ai = build_ai_client(settings)
    if container.ai is not None:
        container.on_close(container.ai.close)
    return container
