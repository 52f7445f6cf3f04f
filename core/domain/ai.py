"""The AI vocabulary shared by the port, its adapter and the services: messages and errors.

Pure: no I/O. ``AiError`` carries what went wrong as data (``kind``, HTTP ``status``,
``retry_after_s``) so callers decide once what to do (retry, defer, tell the team).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from core.errors import ReelayError

Role = Literal["system", "user", "assistant"]


@dataclass(frozen=True)
class ChatMessage:
    """One message of a chat completion request."""

    role: Role
    content: str

    def as_json(self) -> dict[str, str]:
        return {"role": self.role, "content": self.content}


class AiErrorKind(StrEnum):
    TIMEOUT = "timeout"  # the server did not answer in time (after bounded retries)
    RATE_LIMITED = "rate_limited"  # 429 from the AI server
    UNAVAILABLE = "unavailable"  # 5xx or the server could not be reached
    AUTH = "auth"  # 401/403: key missing, wrong or without access
    BAD_REQUEST = "bad_request"  # other 4xx: model unknown, request refused as malformed
    REFUSED = "refused"  # the model refused or the content filter stopped it
    EMPTY = "empty"  # the answer had no usable text
    MALFORMED = "malformed"  # the answer did not have the shape asked for
    DISABLED = "disabled"  # AI is off for this workspace or not configured
    QUOTA = "quota"  # the workspace's monthly token quota is used up


RETRYABLE_KINDS = frozenset(
    {AiErrorKind.TIMEOUT, AiErrorKind.RATE_LIMITED, AiErrorKind.UNAVAILABLE}
)


class AiError(ReelayError):
    """An AI call that gave no usable answer; ``message`` is written for people."""

    def __init__(
        self,
        message: str,
        *,
        kind: AiErrorKind,
        status: int | None = None,
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.kind = kind
        self.status = status
        self.retry_after_s = retry_after_s

    @property
    def retryable(self) -> bool:
        return self.kind in RETRYABLE_KINDS

    def __repr__(self) -> str:
        return f"AiError(kind={self.kind.value!r}, status={self.status!r}, {self.message!r})"


class AiDisabled(AiError):
    """AI is switched off for the workspace, or no AI server is configured."""

    def __init__(self, message: str) -> None:
        super().__init__(message, kind=AiErrorKind.DISABLED)


class AiQuotaReached(AiError):
    """The workspace used its monthly token quota."""

    def __init__(self, message: str, *, used: int, quota: int, month: str) -> None:
        super().__init__(message, kind=AiErrorKind.QUOTA)
        self.used = used
        self.quota = quota
        self.month = month
