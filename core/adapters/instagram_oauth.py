"""Meta's OAuth endpoints: code exchange, long-lived tokens, refresh, ``/me`` and Pages.

Token values never reach a log line. Errors become classified ``GraphError``s.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any, Literal

import aiohttp

from core.domain.graph_errors import ErrorKind, GraphError, classify, transport_error
from core.ports.oauth import Grant

logger = logging.getLogger(__name__)


def strip_code(code: str) -> str:
    """Meta appends ``#_`` to the code in the redirect; it is not part of the code."""
    code = code.strip()
    return code[:-2] if code.endswith("#_") else code


class InstagramOAuth:
    """The OAuthClient port over the shared aiohttp session."""

    def __init__(self, http: aiohttp.ClientSession, *, timeout_s: float = 20.0) -> None:
        self._http = http
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)

    async def _call(
        self,
        method: Literal["GET", "POST"],
        url: str,
        *,
        params: Mapping[str, str] | None = None,
        data: Mapping[str, str] | None = None,
        token: str | None = None,
    ) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        try:
            async with self._http.request(
                method, url, params=params, data=data, headers=headers, timeout=self._timeout
            ) as response:
                text = await response.text()
                status = response.status
                reply_headers = dict(response.headers)
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise transport_error(f"{type(exc).__name__}: {exc}", sent=method == "POST") from exc
        try:
            body: Any = json.loads(text) if text else {}
        except ValueError:
            body = None
        if status >= 400 or not isinstance(body, dict) or "error" in body:
            error = classify(body, http_status=status, headers=reply_headers)
            logger.warning("oauth %s %s failed: %s", method, url.split("?")[0], error)
            raise error
        return body

    @staticmethod
    def _grant(body: dict[str, Any]) -> Grant:
        rows = body.get("data")
        row = rows[0] if isinstance(rows, list) and rows else body
        token = row.get("access_token") if isinstance(row, dict) else None
        if not token:
            raise GraphError(
                code=None,
                subcode=None,
                message="no access_token in the answer",
                kind=ErrorKind.PERMANENT,
                title="Instagram did not return a token",
            )
        expires = row.get("expires_in")
        return Grant(
            access_token=str(token),
            expires_in_s=int(expires) if expires is not None else None,
            user_id=str(row.get("user_id") or ""),
        )

    # ------------------------------------------------------------------ Instagram Login

    async def exchange_code(
        self, token_url: str, *, client_id: str, client_secret: str, redirect_uri: str, code: str
    ) -> Grant:
        """``POST api.instagram.com/oauth/access_token`` → short-lived token (data[] or flat)."""
        body = await self._call(
            "POST",
            token_url,
            data={
                "client_id": client_id,
                "client_secret": client_secret,
                "grant_type": "authorization_code",
                "redirect_uri": redirect_uri,
                "code": strip_code(code),
            },
        )
        return self._grant(body)

    async def long_lived(self, graph_base: str, *, client_secret: str, token: str) -> Grant:
        body = await self._call(
            "GET",
            f"{graph_base}/access_token",
            params={
                "grant_type": "ig_exchange_token",
                "client_secret": client_secret,
                "access_token": token,
            },
        )
        return self._grant(body)

    async def refresh(self, graph_base: str, *, token: str) -> Grant:
        body = await self._call(
            "GET",
            f"{graph_base}/refresh_access_token",
            params={"grant_type": "ig_refresh_token", "access_token": token},
        )
        return self._grant(body)

    async def me(self, graph_base: str, version: str, *, token: str) -> dict[str, Any]:
        """The token's account: flat, or wrapped in ``data[]`` as some of Meta's pages show."""
        body = await self._call(
            "GET",
            f"{graph_base}/{version}/me",
            params={"fields": "user_id,username,account_type"},
            token=token,
        )
        rows = body.get("data")
        if "username" not in body and isinstance(rows, list) and rows:
            return rows[0] if isinstance(rows[0], dict) else {}
        return body

    # ------------------------------------------------------------------ Facebook Login

    async def facebook_exchange_code(
        self,
        graph_base: str,
        version: str,
        *,
        client_id: str,
        client_secret: str,
        redirect_uri: str,
        code: str,
    ) -> Grant:
        body = await self._call(
            "GET",
            f"{graph_base}/{version}/oauth/access_token",
            params={
                "client_id": client_id,
                "redirect_uri": redirect_uri,
                "client_secret": client_secret,
                "code": strip_code(code),
            },
        )
        return self._grant(body)

    async def facebook_long_lived(
        self, graph_base: str, version: str, *, client_id: str, client_secret: str, token: str
    ) -> Grant:
        body = await self._call(
            "GET",
            f"{graph_base}/{version}/oauth/access_token",
            params={
                "grant_type": "fb_exchange_token",
                "client_id": client_id,
                "client_secret": client_secret,
                "fb_exchange_token": token,
            },
        )
        return self._grant(body)

    async def facebook_pages(
        self, graph_base: str, version: str, *, token: str
    ) -> list[dict[str, Any]]:
        body = await self._call(
            "GET",
            f"{graph_base}/{version}/me/accounts",
            params={"fields": "name,access_token,instagram_business_account"},
            token=token,
        )
        return [p for p in body.get("data") or [] if isinstance(p, dict)]

    async def instagram_user(
        self, graph_base: str, version: str, ig_id: str, *, token: str
    ) -> dict[str, Any]:
        return await self._call(
            "GET",
            f"{graph_base}/{version}/{ig_id}",
            params={"fields": "username,name"},
            token=token,
        )
