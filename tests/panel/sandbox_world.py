"""A workspace with a sandbox-connected account, and the sandbox's webhooks forwarded to the
panel's test client (the signed webhook path, without a listening panel)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from core.bootstrap import Container
from core.db.models import (
    EventStatus,
    InstagramAccount,
    LoginKind,
    Membership,
    User,
    WebhookEvent,
)
from core.services import users
from core.wiring import assemble_services
from tests.panel.helpers import sign_in_as

IG_ID = "17841400000000077"


@dataclass
class World:
    owner: Membership
    account: InstagramAccount
    sandbox: Any


async def sandbox_world(client: Any, container: Container, sandbox: Any) -> World:
    """An owner signed in on ``client`` with one sandbox account that has one post."""
    user, workspace = await users.create_owner("owner@example.com", "long enough pw")
    owner = await Membership.get(user=user, workspace=workspace)
    sandbox.state.add_account(IG_ID, "sandbox_shop")
    token = sandbox.state.issue_token(IG_ID)
    account = await InstagramAccount.create(
        workspace=workspace,
        ig_id=IG_ID,
        username="sandbox_shop",
        login_kind=LoginKind.SANDBOX,
        token_encrypted=container.secrets.encrypt(token),
        webhook_subscribed=True,
    )
    sandbox.state.add_media(IG_ID, caption="Spring sale", media_url=f"{sandbox.url}/x.jpg")
    container.sandbox = sandbox
    await sign_in_as(client, await User.get(id=user.id), workspace.id)
    return World(owner, account, sandbox)


@asynccontextmanager
async def webhooks_into(client: Any, sandbox: Any) -> AsyncIterator[None]:
    """Point the sandbox's webhooks at a local server that hands them to ``client``."""

    async def forward(request: web.Request) -> web.Response:
        body = await request.read()
        answer = await client.post(
            "/webhooks/meta",
            data=body,
            headers={
                "Content-Type": "application/json",
                "X-Hub-Signature-256": request.headers.get("X-Hub-Signature-256", ""),
            },
        )
        return web.Response(status=answer.status_code)

    app = web.Application()
    app.router.add_post("/webhooks/meta", forward)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    sandbox.state.webhook_url = f"http://127.0.0.1:{port}/webhooks/meta"
    try:
        yield
    finally:
        sandbox.state.webhook_url = None
        await runner.cleanup()


async def run_pending_events(container: Container) -> int:
    """Do the worker's part: handle every recorded, pending event."""
    engine = assemble_services(container).automations
    done = 0
    for event in await WebhookEvent.filter(status=EventStatus.PENDING).order_by("id"):
        await engine.handle_event(event.id)
        done += 1
    return done
