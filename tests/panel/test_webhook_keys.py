"""The webhook endpoint checks Meta's calls with the app in force: the environment's, the one
entered in the setup wizard, or, on the sandbox, the sandbox's own signing secret."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import AsyncIterator
from typing import Any

import pytest

from core.adapters.redis_server import RedisLocation
from core.db.models import WebhookEvent
from core.services import meta_app, users
from core.services.sandbox_keys import signing_secret
from core.settings import Settings
from reelay.cli import open_services
from tests.automation_world import body_of, comment_payload

URL = "/webhooks/meta"


def _sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@pytest.fixture
async def bare_client(
    settings_factory: Any, redis_location: RedisLocation, redis: Any
) -> AsyncIterator[tuple[Any, Any]]:
    """A panel with no Meta app secret nor verify token in the environment (the quick start)."""
    settings: Settings = settings_factory(meta_app_secret=None, meta_verify_token=None)
    services = await open_services(settings, run_migrations=False, redis_location=redis_location)
    container = services.container
    container.redis_location = RedisLocation(
        url=redis_location.url, unix_socket_path=redis_location.unix_socket_path
    )
    from panel.app import create_app

    app = create_app(settings, services=services)
    async with app.test_app() as test_app:
        yield test_app.test_client(), container
    await container.close()


async def test_sandbox_signed_deliveries_are_accepted_on_the_quick_start(
    bare_client: tuple[Any, Any],
) -> None:
    client, container = bare_client
    body = body_of(comment_payload("c-1", "price?"))
    secret = signing_secret(container.settings, container.secret_key)
    ok = await client.post(URL, data=body, headers={"X-Hub-Signature-256": _sign(secret, body)})
    forged = await client.post(
        URL, data=body, headers={"X-Hub-Signature-256": _sign("guess", body)}
    )
    assert ok.status_code == 200
    assert forged.status_code == 403
    assert await WebhookEvent.all().count() == 1


async def test_wizard_verify_token_and_app_secret_are_used(
    bare_client: tuple[Any, Any],
) -> None:
    client, container = bare_client
    token = await meta_app.ensure_verify_token(container.settings, container.secrets)
    admin = await users.create_first_owner("owner@example.com", "long enough pw", "Shop")
    await meta_app.save_app(
        container.secrets,
        app_id="1234567890",
        app_secret="panel-secret",
        by=admin,
        workspace_id=None,
    )
    container_app = client.app
    container_app.extensions.pop("reelay.webhook_keys", None)  # as after the cache expires

    handshake = await client.get(
        URL,
        query_string={"hub.mode": "subscribe", "hub.verify_token": token, "hub.challenge": "42"},
    )
    assert handshake.status_code == 200 and await handshake.get_data(as_text=True) == "42"

    body = body_of(comment_payload("c-2", "hello"))
    ok = await client.post(
        URL, data=body, headers={"X-Hub-Signature-256": _sign("panel-secret", body)}
    )
    assert ok.status_code == 200
    # With a real app configured, the sandbox's secret no longer signs anything.
    sandbox_secret = signing_secret(container.settings, container.secret_key)
    body2 = body_of(comment_payload("c-3", "hello"))
    refused = await client.post(
        URL, data=body2, headers={"X-Hub-Signature-256": _sign(sandbox_secret, body2)}
    )
    assert refused.status_code == 403
