"""The panel's application factory."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from quart import Quart, Response, request
from quart_auth import QuartAuth

from core.domain.zones import effective_zone
from core.services.followers import lead_label
from core.settings import Settings
from core.wiring import Services
from panel import (
    account_health,
    accounts,
    analytics,
    api,
    api_tokens,
    approvals,
    auth,
    calendar,
    comments,
    composer,
    errors,
    event_webhooks,
    health,
    home,
    inbox,
    instagram as instagram_connect,
    leads,
    library,
    limits,
    links,
    logs,
    mcp_mount,
    media as media_files,
    passwords,
    rules,
    sandbox,
    setup,
    starters,
    team,
    webhooks as meta_webhooks,
)
from panel.clients import trust_proxies
from panel.headers import harden, style_nonce
from panel.metrics import PanelMetrics
from panel.navigation import menu_for
from panel.routing import refuse_ids_out_of_range
from panel.security import (
    check_csrf,
    csrf_token,
    load_membership,
    load_user,
    refuse_nul_characters,
    shown_to_viewer,
)
from panel.services import EXTENSION as SERVICES

logger = logging.getLogger(__name__)

ServicesFactory = Callable[[Settings], Awaitable[Services]]


def create_app(
    settings: Settings,
    *,
    services: Services | None = None,
    services_factory: ServicesFactory | None = None,
) -> Quart:
    """Build the panel.

    Pass ``services`` to share them (``reelay run``), or ``services_factory`` to let the app
    open its own at startup and close them at shutdown.
    """
    if services is None and services_factory is None:
        raise ValueError("create_app needs services or a services_factory")
    app = Quart(__name__)
    app.config.update(
        QUART_AUTH_COOKIE_SECURE=settings.base_url.startswith("https://"),
        QUART_AUTH_COOKIE_SAMESITE="Lax",
        QUART_AUTH_DURATION=14 * 24 * 3600,
        SESSION_COOKIE_SECURE=settings.base_url.startswith("https://"),
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
    )
    app.extensions["reelay.settings"] = settings
    app.extensions["reelay.metrics"] = PanelMetrics()
    QuartAuth(app)
    trust_proxies(app, settings)
    if services is not None:
        _attach(app, services)

    @app.before_serving
    async def open_resources() -> None:
        if services is None and services_factory is not None:
            _attach(app, await services_factory(settings))

    @app.after_serving
    async def close_resources() -> None:
        if services is None and SERVICES in app.extensions:
            await app.extensions.pop(SERVICES).close()

    app.url_value_preprocessor(refuse_ids_out_of_range)
    limits.install(app)
    app.before_request(refuse_nul_characters)
    app.before_request(check_csrf)

    app.jinja_env.filters["when"] = shown_to_viewer
    app.jinja_env.filters["follower"] = lead_label

    @app.context_processor
    async def template_globals() -> dict[str, Any]:
        user = await load_user()
        membership = await load_membership(user) if user is not None else None
        return {
            "csrf_token": csrf_token,
            "csp_nonce": style_nonce,
            "current": user,
            "membership": membership,
            "viewer_zone": effective_zone(membership.workspace.timezone, user.timezone)
            if membership is not None and user is not None
            else "UTC",
            "menu": menu_for(membership),
            "view_endpoints": app.view_functions,
            "settings": settings,
        }

    @app.after_request
    async def count_and_harden(response: Response) -> Response:
        metrics: PanelMetrics = app.extensions["reelay.metrics"]
        metrics.observe(request.endpoint or "unknown", response.status_code)
        return harden(
            response, https=settings.base_url.startswith("https://"), endpoint=request.endpoint
        )

    errors.install(app)

    app.register_blueprint(health.blueprint)
    app.register_blueprint(auth.blueprint)
    app.register_blueprint(passwords.blueprint)
    app.register_blueprint(home.blueprint)
    app.register_blueprint(analytics.blueprint)
    app.register_blueprint(media_files.blueprint)
    app.register_blueprint(links.blueprint)
    app.register_blueprint(team.blueprint)
    app.register_blueprint(setup.blueprint)
    app.register_blueprint(accounts.blueprint)
    app.register_blueprint(starters.blueprint)
    app.register_blueprint(account_health.blueprint)
    app.register_blueprint(instagram_connect.blueprint)
    app.register_blueprint(logs.blueprint)
    app.register_blueprint(api_tokens.blueprint)
    app.register_blueprint(event_webhooks.blueprint)
    meta_webhooks.install(app)
    app.register_blueprint(rules.blueprint)
    app.register_blueprint(composer.blueprint)
    app.register_blueprint(calendar.blueprint)
    app.register_blueprint(library.blueprint)
    app.register_blueprint(approvals.blueprint)
    app.register_blueprint(comments.blueprint)
    app.register_blueprint(leads.blueprint)
    app.register_blueprint(inbox.blueprint)
    sandbox.install(app, settings)
    api.install(app)
    mcp_mount.install(app)
    return app


def _attach(app: Quart, services: Services) -> None:
    app.extensions[SERVICES] = services
    app.secret_key = services.container.secret_key
