"""The panel's way to the process's services, kept on the app by ``create_app``."""

from __future__ import annotations

from quart import Quart, current_app

from core.wiring import Services

EXTENSION = "reelay.services"


def services() -> Services:
    """The services of the app serving this request."""
    return services_of(current_app)


def services_of(app: Quart) -> Services:
    """The services ``app`` was given or opened (outside a request, e.g. the ASGI fast path)."""
    found: Services = app.extensions[EXTENSION]
    return found
