"""``/mcp`` answered from ASGI, outside Quart, with the caller's API token checked first.

The MCP SDK is large (about 50 MB and over a second to import), so it is loaded on the first
authenticated request (:mod:`panel.mcp_server`), not when the panel starts: a panel nobody
connects an AI agent to does not pay for it.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, cast

from quart import Quart

from core.domain.scope import Actor
from core.services import api_tokens
from core.wiring import Services
from panel.services import EXTENSION as SERVICES

if TYPE_CHECKING:
    from hypercorn.typing import ASGIReceiveCallable, ASGISendCallable, Scope

PATH = "/mcp"
ACTOR = "reelay.actor"


async def _refuse(send: ASGISendCallable, status: int, message: str) -> None:
    body = json.dumps({"error": {"status": status, "message": message, "fields": {}}}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if status == 401:
        headers.append((b"www-authenticate", b'Bearer realm="reelay"'))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


def install(app: Quart) -> None:
    """Answer ``/mcp`` from ASGI, with the caller's API token checked first."""
    endpoints: list[Any] = []  # the SDK's endpoint, once the first request needed it
    inner = app.asgi_app

    @app.after_serving
    async def stop_mcp() -> None:
        for endpoint in endpoints:
            await endpoint.close()

    async def asgi(scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable) -> None:
        if not (
            scope["type"] == "http"
            and scope["path"] in (PATH, PATH + "/")
            and SERVICES in app.extensions
        ):
            await inner(scope, receive, send)
            return
        services: Services = app.extensions[SERVICES]
        token = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                scheme, _, secret = value.decode("latin-1").partition(" ")
                if scheme.lower() == "bearer" and secret.strip():
                    token = await api_tokens.authenticate(
                        secret.strip(), services.container.clock.now()
                    )
        if token is None:
            await _refuse(send, 401, "A valid API token is required (Authorization: Bearer …).")
            return
        actor = Actor(
            workspace_id=token.workspace_id,
            role=token.role,
            label=f"mcp:{token.name}",
            user_id=token.created_by_id,
        )
        if not endpoints:
            from panel.mcp_server import McpEndpoint

            endpoints.append(McpEndpoint())
        scoped = cast("Scope", {**scope, ACTOR: actor, SERVICES: services})
        await endpoints[0].handle(scoped, receive, send)

    app.asgi_app = asgi  # type: ignore[method-assign]
