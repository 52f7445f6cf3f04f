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


async def _check(name: str, probe: Awaitable[object], *, down_when_false: bool = False) -> str:
    """``up`` when ``probe`` finishes in time (and, with ``down_when_false``, answers true)."""
    try:
        answer = await asyncio.wait_for(probe, CHECK_TIMEOUT_S)
    except Exception as exc:
        logger.warning("health check: %s is down: %s", name, exc)
        return "down"
    return "down" if down_when_false and not answer else "up"


@blueprint.get("/healthz")
@public
async def healthz() -> tuple[Response, int]:
    """Database and Redis status, 503 when one is down; and whether a worker beat lately.

    A missing worker is reported, not a 503: this panel still answers Meta and people (the
    deliveries wait for a worker), and an orchestrator restarting the panel for it would not
    bring a worker back.
    """
    status = await _probe()
    healthy = status["database"] == "up" and status["redis"] == "up"
    return jsonify({"status": "ok" if healthy else "degraded", **status}), 200 if healthy else 503


async def _probe() -> dict[str, str]:
    """Each dependency ``up`` or ``down``, also set in the metrics' gauges."""
    found: Services | None = current_app.extensions.get(SERVICES)
    database = await _check("database", ping_database())
    redis = await _check("redis", found.container.redis.ping()) if found else "down"
    worker = "down"
    if found is not None and redis == "up":
        worker = await _check("worker", found.health.worker_running(), down_when_false=True)
    status = {"database": database, "redis": redis, "worker": worker}
    metrics: PanelMetrics = current_app.extensions["reelay.metrics"]
    for name, state in status.items():
        metrics.up.labels(name).set(state == "up")
    return status


@blueprint.get("/metrics")
@public
async def metrics() -> Response:
    """Prometheus text exposition, for METRICS_TOKEN's bearer or, without one, this machine."""
    refusal = _metrics_refusal(current_app.extensions["reelay.settings"])
    if refusal is not None:
        return refusal
    registry: PanelMetrics = current_app.extensions["reelay.metrics"]
    status = await _probe()
    found: Services | None = current_app.extensions.get(SERVICES)
    if found is not None and found.inbox_stream is not None and status["redis"] == "up":
        try:
            waiting = await asyncio.wait_for(found.inbox_stream.waiting(), CHECK_TIMEOUT_S)
        except Exception as exc:  # the other figures are still worth a scrape
            logger.warning("metrics: the inbox stream's length is unknown: %s", exc)
        else:
            registry.inbox_waiting.set(waiting)
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
