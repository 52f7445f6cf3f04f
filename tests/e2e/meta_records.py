"""What the fake Meta keeps and how it refuses: the calls it records, the accounts, containers
and media it holds, and Meta's Graph error envelope.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


class MetaRefusal(Exception):
    """An error answer in the Graph envelope."""

    def __init__(
        self, code: int, message: str, *, subcode: int | None = None, kind: str = "OAuthException"
    ) -> None:
        super().__init__(message)
        self.code = code
        self.subcode = subcode
        self.message = message
        self.kind = kind

    def response(self) -> web.Response:
        error: dict[str, Any] = {
            "message": self.message,
            "type": self.kind,
            "code": self.code,
            "fbtrace_id": secrets.token_hex(8),
        }
        if self.subcode is not None:
            error["error_subcode"] = self.subcode
        return web.json_response({"error": error}, status=400)


def missing(name: str) -> MetaRefusal:
    return MetaRefusal(100, f"(#100) The parameter {name} is required")


@dataclass
class Call:
    method: str
    path: str
    params: dict[str, str]
    body: dict[str, Any]
    bearer: str | None
    answer_status: int = 0

    @property
    def endpoint(self) -> str:
        """The path with the version dropped: ``1784.../media``."""
        parts = self.path.strip("/").split("/")
        if parts and parts[0].startswith("v") and "." in parts[0]:
            parts = parts[1:]
        return "/".join(parts)


@dataclass
class Account:
    ig_id: str
    username: str
    account_type: str
    app_scoped_id: str


@dataclass
class Container:
    id: str
    owner: str
    media_type: str  # IMAGE, REELS, VIDEO, STORIES, CAROUSEL
    fields: dict[str, str]
    carousel_item: bool = False
    children: list[str] = field(default_factory=list)
    status_code: str = "IN_PROGRESS"
    status: str = ""
    reads: int = 0
    media_id: str | None = None


@dataclass
class Fetch:
    url: str
    status: int
    content_type: str
    size: int


@dataclass
class Media:
    id: str
    owner: str
    container: str
    caption: str
    media_type: str
    timestamp: str
    permalink: str
    comments: list[dict[str, str]] = field(default_factory=list)
