"""OAuth: the login dialog, the code exchange and the long-lived token endpoints.

The dialog signs in as ``state.authorize_as`` without asking anyone, so "Connect Instagram"
works against the sandbox; tokens come from ``SandboxState`` and are checked there.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from sandbox.state import SandboxError, SandboxState


class OAuth:
    """The OAuth routes of a sandbox over ``state``."""

    def __init__(self, state: SandboxState) -> None:
        self.state = state

    async def authorize(self, request: web.Request) -> web.StreamResponse:
        """GET /oauth/authorize: redirect back at once with a code."""
        redirect_uri = request.query.get("redirect_uri", "")
        if request.query.get("response_type") != "code" or not redirect_uri:
            raise SandboxError("Invalid redirect_uri or response_type", code=100)
        ig_id = self.state.authorize_as
        if ig_id is None or ig_id not in self.state.accounts:
            raise SandboxError("No sandbox account to sign in as", code=100)
        code = self.state.authorize(ig_id)
        query = urlencode({"code": code, "state": request.query.get("state", "")})
        raise web.HTTPFound(f"{redirect_uri}?{query}#_")

    async def exchange_code(self, request: web.Request) -> web.StreamResponse:
        """POST /oauth/access_token: a code for a short-lived token, in Instagram's shape."""
        form = await request.post()
        if form.get("grant_type") != "authorization_code":
            return web.json_response(
                {"error_type": "OAuthException", "code": 400, "error_message": "Invalid grant"},
                status=400,
            )
        try:
            token, user_id = self.state.exchange_code(
                str(form.get("code", "")), str(form.get("client_secret", ""))
            )
        except SandboxError as exc:
            return web.json_response(
                {"error_type": "OAuthException", "code": 400, "error_message": exc.message},
                status=400,
            )
        grant = {
            "access_token": token,
            "user_id": user_id,
            "permissions": "instagram_business_basic,instagram_business_manage_messages",
        }
        if self.state.token_shape == "flat":
            return web.json_response(grant)
        return web.json_response({"data": [grant]})

    def long_lived(self, params: dict[str, str]) -> dict[str, Any]:
        """GET /access_token: a short-lived token for a long-lived one."""
        token, expires = self.state.long_lived(
            params.get("access_token", ""), params.get("client_secret", "")
        )
        return {"access_token": token, "token_type": "bearer", "expires_in": expires}

    def refresh(self, token: str) -> dict[str, Any]:
        """GET /refresh_access_token: a long-lived token for a fresh one."""
        token, expires = self.state.refresh(token)
        return {"access_token": token, "token_type": "bearer", "expires_in": expires}
