"""The panel's server: slow clients are cut off, limits are set, secrets stay out of the log."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest
import uvicorn

from core.settings import Settings
from reelay import panel_server


async def _hello(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"hello"})


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextlib.asynccontextmanager
async def serving(tmp_path: Any) -> AsyncIterator[int]:
    port = _free_port()
    settings = Settings(_env_file=None, var_dir=tmp_path, panel_port=port)  # type: ignore[call-arg]
    config = panel_server.panel_config(_hello, settings)
    config.lifespan = "off"
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    try:
        yield port
    finally:
        server.should_exit = True
        await task


async def test_request_headers_that_never_finish_are_cut_off(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(panel_server, "HEADER_TIMEOUT_S", 0.3)
    async with serving(tmp_path) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET / HTTP/1.1\r\nHost: localhost\r\n")
        await writer.drain()
        # The server closes the connection: reading ends with nothing, long before the test's
        # own timeout (a server without the deadline would keep it open forever).
        assert await asyncio.wait_for(reader.read(), 10) == b""
        writer.close()
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        answer = await asyncio.wait_for(reader.read(), 10)
        assert answer.startswith(b"HTTP/1.1 200") and b"hello" in answer
        writer.close()


def test_limits_and_timeouts_are_set_deliberately(tmp_path: Any) -> None:
    settings = Settings(_env_file=None, var_dir=tmp_path)  # type: ignore[call-arg]
    config = panel_server.panel_config(_hello, settings)
    assert config.http is panel_server.HeaderDeadlineProtocol
    assert config.limit_concurrency == panel_server.CONCURRENCY_LIMIT
    assert config.timeout_keep_alive == panel_server.KEEP_ALIVE_S
    assert config.h11_max_incomplete_event_size == panel_server.MAX_HEADER_BYTES
    assert config.timeout_graceful_shutdown == panel_server.GRACEFUL_SHUTDOWN_S


@pytest.mark.parametrize(
    ("path", "logged"),
    [
        ("/instagram/callback?code=AQ-secret&state=s-secret", "/instagram/callback?…"),
        ("/invite/tok-secret", "/invite/…"),
        ("/invite/tok-secret?next=/x", "/invite/…?…"),
        ("/webhooks/meta?hub.verify_token=v-secret&hub.challenge=1", "/webhooks/meta?…"),
        ("/logs/events?kind=comment&page=2", "/logs/events?kind=comment&page=2"),
        ("/posts/3", "/posts/3"),
    ],
)
def test_access_log_drops_secrets_from_addresses(path: str, logged: str) -> None:
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("203.0.113.9:5000", "GET", path, "1.1", 302),
        None,
    )
    assert panel_server.redact_access_log(record)
    assert record.getMessage() == f'203.0.113.9:5000 - "GET {logged} HTTP/1.1" 302'
    assert "secret" not in record.getMessage()


def test_the_cli_installs_the_access_log_filter() -> None:
    from reelay.cli import _configure_logging

    _configure_logging("INFO")
    filters = logging.getLogger("uvicorn.access").filters
    assert panel_server.redact_access_log in filters
