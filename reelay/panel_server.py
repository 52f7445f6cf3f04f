"""How the panel is served: uvicorn with deliberate limits and timeouts, and an access log
that never shows the codes and tokens some addresses carry.

Slow clients are cut off at every stage: request headers must arrive within
``HEADER_TIMEOUT_S`` (uvicorn itself waits forever), the body within the panel's
``BODY_TIMEOUT`` (panel/limits.py), and an idle kept-alive connection is closed after
``KEEP_ALIVE_S``. Past ``CONCURRENCY_LIMIT`` open connections or requests, new ones get a 503.
"""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from core.settings import Settings

HEADER_TIMEOUT_S = 10.0
KEEP_ALIVE_S = 5
CONCURRENCY_LIMIT = 500
MAX_HEADER_BYTES = 32 * 1024
GRACEFUL_SHUTDOWN_S = 30

# Addresses whose query string (or part of the path) carries a secret: OAuth codes and state,
# invitation tokens, Meta's verify token.
_SECRET_QUERIES = ("/instagram/callback", "/invite/", "/webhooks/")
_SECRET_PATH = re.compile(r"^(/invite/)[^/?]+")


class HeaderDeadlineProtocol(H11Protocol):
    """uvicorn's HTTP/1.1 protocol, closing a connection whose request headers do not arrive
    within ``HEADER_TIMEOUT_S``."""

    _header_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_header_deadline()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE:
            self._disarm_header_deadline()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._arm_header_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_header_deadline()
        super().connection_lost(exc)

    def _arm_header_deadline(self) -> None:
        self._disarm_header_deadline()
        self._header_deadline = self.loop.call_later(HEADER_TIMEOUT_S, self._headers_too_slow)

    def _disarm_header_deadline(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _headers_too_slow(self) -> None:
        self._header_deadline = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self.transport.close()


def panel_config(app: Any, settings: Settings) -> uvicorn.Config:
    """uvicorn's configuration for the panel."""
    return uvicorn.Config(
        app,
        host=settings.panel_host,
        port=settings.panel_port,
        log_config=None,
        lifespan="on",
        # The panel reads X-Forwarded-* itself, trusting only TRUSTED_PROXIES.
        proxy_headers=False,
        http=HeaderDeadlineProtocol,
        limit_concurrency=CONCURRENCY_LIMIT,
        timeout_keep_alive=KEEP_ALIVE_S,
        h11_max_incomplete_event_size=MAX_HEADER_BYTES,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
    )


def redacted_path(path: str) -> str:
    """``path`` (with its query string) as the access log may show it."""
    path = _SECRET_PATH.sub(r"\1…", path)
    bare, mark, _ = path.partition("?")
    if mark and bare.startswith(_SECRET_QUERIES):
        return f"{bare}?…"
    return path


def redact_access_log(record: logging.LogRecord) -> bool:
    """A filter for ``uvicorn.access``: its third argument is the path with the query."""
    if isinstance(record.args, tuple) and len(record.args) >= 3:
        args = list(record.args)
        args[2] = redacted_path(str(args[2]))
        record.args = tuple(args)
    return True
