"""The sandbox port: what core needs of a sandbox Instagram (in this process or another)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from core.errors import ReelayError


class RunningSandbox(Protocol):
    @property
    def url(self) -> str:
        """Where the sandbox listens (its Graph API and follower controls)."""


class SandboxUnavailable(ReelayError):
    """The sandbox Instagram could not be reached, or refused what was asked of it."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class Delivered:
    """What the sandbox did with a follower action: ``ref`` is the comment id or message
    mid; ``webhook_status`` is Reelay's answer to the signed webhook (None: not sent)."""

    ref: str
    webhook_status: int | None
    error: str = ""


class FollowerConsole(Protocol):
    """The sandbox's follower controls: act as a made-up follower, read back the answers."""

    async def act(self, event: str, fields: dict[str, Any]) -> Delivered:
        """Do ``event`` (comment, dm, postback) as a follower."""

    async def feed(self, ig_id: str) -> list[dict[str, Any]]:
        """The account's media, newest first."""

    async def conversation(self, ig_id: str, igsid: str) -> list[dict[str, Any]]:
        """What follower ``igsid`` did on the account and what it answered, in order."""
