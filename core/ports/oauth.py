"""The OAuth port: Meta's endpoints that turn a login into tokens and say whose they are."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class Grant:
    """A token Meta issued; ``expires_in_s`` None means it does not expire (Page tokens)."""

    access_token: str = field(repr=False)
    expires_in_s: int | None = None
    user_id: str = ""


class OAuthClient(Protocol):
    """Meta's OAuth calls. ``graph_base`` is the host (``Settings.graph_base_url``);
    ``version`` the Graph API version."""

    # Instagram Login

    async def exchange_code(
        self, token_url: str, *, client_id: str, client_secret: str, redirect_uri: str, code: str
    ) -> Grant:
        """The redirect's code → a short-lived token."""
        ...

    async def long_lived(self, graph_base: str, *, client_secret: str, token: str) -> Grant:
        """A short-lived token → a long-lived one (60 days)."""
        ...

    async def refresh(self, graph_base: str, *, token: str) -> Grant:
        """A long-lived token → a fresh one."""
        ...

    async def me(self, graph_base: str, version: str, *, token: str) -> dict[str, Any]:
        """The token's account: ``user_id``, ``username``, ``account_type``."""
        ...

    # Facebook Login

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
        """The redirect's code → a short-lived user token."""
        ...

    async def facebook_long_lived(
        self, graph_base: str, version: str, *, client_id: str, client_secret: str, token: str
    ) -> Grant:
        """A short-lived user token → a long-lived one."""
        ...

    async def facebook_pages(
        self, graph_base: str, version: str, *, token: str
    ) -> list[dict[str, Any]]:
        """The user's Pages with their tokens and linked Instagram accounts."""
        ...

    async def instagram_user(
        self, graph_base: str, version: str, ig_id: str, *, token: str
    ) -> dict[str, Any]:
        """An Instagram account's ``username`` and ``name``."""
        ...
