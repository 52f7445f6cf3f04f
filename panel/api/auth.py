"""Bearer-token authentication for the JSON API: every endpoint declares its least role."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import ParamSpec, TypeVar, cast

from quart import Response, current_app, g, request
from quart.typing import ResponseReturnValue

from core.db.models import ApiToken, Role
from core.domain.scope import Actor
from core.services import api_tokens, idempotency
from core.services.users import role_allows
from panel.declarations import declared
from panel.errors import json_error
from panel.services import services

IDEMPOTENCY_HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"

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
            key = request.headers.get(IDEMPOTENCY_HEADER)
            if request.method != "POST" or key is None:
                return await view(*args, **kwargs)
            return await _once(key, functools.partial(view, *args, **kwargs))

        declarations = declared(wrapper)
        declarations.required_role = role
        declarations.csrf_exempt = True
        declarations.api = True
        return wrapper

    return decorate


async def _once(key: str, run: Callable[[], Awaitable[object]]) -> Response:
    """Run a POST once per Idempotency-Key; a retry gets the first answer back."""
    problem = idempotency.check_key(key)
    if problem is not None:
        return json_error(422, problem, {IDEMPOTENCY_HEADER: problem})
    actor = current_actor()
    # A multipart body differs on every send (its boundary is random): such a request is
    # known by its method and path.
    multipart = request.mimetype.startswith("multipart/")
    body = b"" if multipart else cast(bytes, await request.get_data(as_text=False))
    request_print = idempotency.fingerprint(
        request.method, request.path, request.query_string, body
    )
    now = services().container.clock.now()
    stored = await idempotency.begin(actor, key, request_print, now)
    if stored is not None:
        replay = Response(stored.body, status=stored.status, content_type=stored.content_type)
        replay.headers[REPLAYED_HEADER] = "true"
        return replay
    try:
        made = await current_app.make_response(cast(ResponseReturnValue, await run()))
    except Exception:
        await idempotency.give_back(actor, key)
        raise
    # The API's views return models and statuses, which Quart makes into its own Response.
    response = cast(Response, made)
    if response.status_code >= 500:
        await idempotency.give_back(actor, key)
        return response
    text = await response.get_data(as_text=False)
    answer = idempotency.StoredAnswer(
        response.status_code, response.content_type or "", text.decode("utf-8", "replace")
    )
    await idempotency.finish(actor, key, answer)
    return response


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
