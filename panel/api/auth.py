"""Bearer-token authentication for the JSON API: every endpoint declares its least role."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import ParamSpec, TypeVar

from quart import Response, g, request

from core.db.models import ApiToken, Role
from core.domain.scope import Actor
from core.services import api_tokens
from core.services.users import role_allows
from panel.declarations import declared
from panel.errors import json_error
from panel.services import services

P = ParamSpec("P")
R = TypeVar("R")


def api_requires(
    role: Role,
) -> Callable[[Callable[P, Awaitable[R]]], Callable[P, Awaitable[R | Response]]]:
    """The endpoint needs a live API token whose role is at least ``role``."""

    def decorate(view: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R | Response]]:
        @functools.wraps(view)
        async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R | Response:
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

        declarations = declared(wrapper)
        declarations.required_role = role
        declarations.csrf_exempt = True
        declarations.api = True
        return wrapper

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
