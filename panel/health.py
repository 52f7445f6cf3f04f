"""Health and metrics endpoints."""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections.abc import Awaitable

from quart import Blueprint, Response, current_app, jsonify, request

from core.db import ping_database
from core.settings import Settings
from core.wiring import Services
from panel.metrics import PanelMetrics
from panel.security import public
from panel.services import EXTENSION as SERVICES

logger = logging.getLogger(__name__)

blueprint = Blueprint("health", __name__)

CHECK_TIMEOUT_S = 2.0
# Quart names a client without an address (a Unix socket) "<local>".
LOOPBACK = {"127.0.0.1", "::1", "<local>"}


async def _check(name: str, probe: Awaitable[object]) -> str:
    try:
        await asyncio.wait_for(probe, CHECK_TIMEOUT_S)
    except Exception as exc:
        logger.warning("health check: %s is down: %s", name, exc)
        return "down"
    return "up"


@blueprint.get("/healthz")
@public
async def healthz() -> tuple[Response, int]:
    """Database and Redis status; 503 when one is down."""
    found: Services | None = current_app.extensions.get(SERVICES)
    database = await _check("database", ping_database())
    redis = await _check("redis", found.container.redis.ping()) if found else "down"
    metrics: PanelMetrics = current_app.extensions["reelay.metrics"]
    metrics.up.labels("database").set(database == "up")
    metrics.up.labels("redis").set(redis == "up")
    status = {"database": database, "redis": redis}
    healthy = all(value == "up" for value in status.values())
    return jsonify({"status": "ok" if healthy else "degraded", **status}), 200 if healthy else 503


@blueprint.get("/metrics")
@public
async def metrics() -> Response:
    """Prometheus text exposition, for METRICS_TOKEN's bearer or, without one, this machine."""
    refusal = _metrics_refusal(current_app.extensions["reelay.settings"])
    if refusal is not None:
        return refusal
    registry: PanelMetrics = current_app.extensions["reelay.metrics"]
    return Response(registry.render(), content_type="text/plain; version=0.0.4")


def _metrics_refusal(settings: Settings) -> Response | None:
    """Why this request may not read /metrics, or None when it may."""
    if settings.metrics_token is None:
        if request.remote_addr in LOOPBACK:
            return None
        return Response(
            "/metrics answers this machine only; set METRICS_TOKEN to scrape it from elsewhere.",
            status=403,
            content_type="text/plain",
        )
    scheme, _, sent = request.headers.get("Authorization", "").partition(" ")
    expected = settings.metrics_token.get_secret_value().encode()
    if scheme.lower() == "bearer" and hmac.compare_digest(sent.strip().encode(), expected):
        return None
    return Response(
        "a valid METRICS_TOKEN is required",
        status=401,
        content_type="text/plain",
        headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
    )
