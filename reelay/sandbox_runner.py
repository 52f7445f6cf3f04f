"""Runs the sandbox Instagram inside ``reelay run`` / ``reelay panel`` when no Meta app is set.

It listens on SANDBOX_URL, signs webhooks to Reelay's own ``/webhooks/meta`` with
``core.services.sandbox_keys.signing_secret``, and keeps one connected demo account per workspace
(created at startup and within seconds of a new workspace, e.g. after first-run), each with a
few sample posts.
"""

from __future__ import annotations

import asyncio
import logging

from yarl import URL

from core.bootstrap import Container
from core.errors import InfrastructureError
from core.services import accounts
from core.services.meta_app import webhook_url
from core.services.sandbox_keys import signing_secret, token_secret
from sandbox.server import Sandbox
from sandbox.state import SandboxState

logger = logging.getLogger(__name__)

# The account the sandbox's OAuth dialog signs in as, so "Connect" works without Meta too.
CONNECT_IG_ID = "17841409999999999"
DEMO_CHECK_S = 3.0


def build_sandbox(container: Container) -> Sandbox:
    settings = container.settings
    address = URL(settings.sandbox_base_url)
    state = SandboxState(
        secret=token_secret(container.secret_key),
        app_secret=signing_secret(settings, container.secret_key),
        app_id="sandbox",
        base_url=str(settings.sandbox_base_url).rstrip("/"),
    )
    state.webhook_url = webhook_url(settings)
    state.ensure_account(CONNECT_IG_ID, "sandbox_brand")
    state.authorize_as = CONNECT_IG_ID
    return Sandbox(state, host=address.host or "127.0.0.1", port=address.port or 8010)


async def run_sandbox(container: Container) -> None:
    """Serve the sandbox until cancelled; ``container.sandbox`` holds it meanwhile."""
    server = build_sandbox(container)
    try:
        await server.start()
    except OSError as exc:
        await server.stop()
        raise InfrastructureError(
            f"the sandbox cannot listen on {container.settings.sandbox_base_url} ({exc}); "
            "set SANDBOX_URL to a free address"
        ) from exc
    container.sandbox = server
    try:
        while True:
            made = await accounts.ensure_demo_accounts(container)
            for account in made:
                logger.info("sandbox: connected demo account %s", account.ig_id)
            # Every sandbox account (those from before this start, and those the panel
            # connected) gets its sample posts now rather than at the first call with its
            # token, so the sandbox page offers a post to comment on at once.
            for account in await accounts.sandbox_accounts_everywhere():
                server.state.ensure_account(account.ig_id, account.username)
            await asyncio.sleep(DEMO_CHECK_S)
    finally:
        container.sandbox = None
        await server.stop()
