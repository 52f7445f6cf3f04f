"""Bearer-token authentication for the JSON API: every endpoint declares its least role."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from quart import g, request

from core.db.models import ApiToken, Role
from core.domain.scope import Actor
from core.services import api_tokens
from core.services.users import role_allows
from panel.errors import json_error
from panel.services import services

F = TypeVar("F", bound=Callable[..., Awaitable[Any]])


def api_requires(role: Role) -> Callable[[F], F]:
    """The endpoint needs a live API token whose role is at least ``role``."""

    def decorate(view: F) -> F:
        @functools.wraps(view)
        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            scheme, _, secret = request.headers.get("Authorization", "").partition(" ")
            token = None
            if scheme.lower() == "bearer" and secret.strip():
                clock = services().container.clock
                token = await api_tokens.authenticate(secret.strip(), clock.now())
            if token is None:
                response = json_error(
                    401, "A valid API token is required (Authorization: Bearer …)."
                )
                response.headers["WWW-Authenticate"] = 'Bearer realm="reelay"'
                return response
            if not role_allows(token.role, role):
                return json_error(
                    403,
                    f"A {token.role.value} token cannot do this; it needs {role.value}.",
                )
            g.api_token = token
            return await view(*args, **kwargs)

        wrapper.required_role = role  # type: ignore[attr-defined]
        wrapper.csrf_exempt = True  # type: ignore[attr-defined]
        wrapper.api = True  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]

    return decorate


def current_token() -> ApiToken:
    token: ApiToken = g.api_token
    return token


def current_actor() -> Actor:
    """The token acting in its workspace, named as the token in audit entries."""
    token = current_token()
    return Actor(
        workspace_id=token.workspace_id,
        role=token.role,
        label=f"api:{token.name}",
        user_id=token.created_by_id,
    )
