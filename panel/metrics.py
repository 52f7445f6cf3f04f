"""Prometheus metrics of one panel app (own registry, so tests can build many apps)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest

from core.services.heartbeat import ALIVE_S


class PanelMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "reelay_http_requests",
            "HTTP requests served by the panel",
            ["endpoint", "status"],
            registry=self.registry,
        )
        self.webhook_events = Counter(
            "reelay_webhook_events",
            "Meta webhook events received",
            ["outcome"],
            registry=self.registry,
        )
        self.up = Gauge(
            "reelay_dependency_up",
            f"1 when a dependency answers (worker: one beat within the last {ALIVE_S} s)",
            ["dependency"],
            registry=self.registry,
        )
        self.inbox_waiting = Gauge(
            "reelay_inbox_waiting",
            "Webhook deliveries kept in the Redis stream and not yet stored by a worker",
            registry=self.registry,
        )

    def observe(self, endpoint: str, status: int) -> None:
        self.requests.labels(endpoint=endpoint, status=str(status)).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
