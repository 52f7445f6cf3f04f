"""The mailer port: plain-text alert emails."""

from __future__ import annotations

from typing import Protocol

from core.errors import ReelayError


class MailError(ReelayError):
    """The mail server refused or could not be reached; worth retrying later."""


class Mailer(Protocol):
    async def send(self, to: str, subject: str, body: str) -> None: ...
