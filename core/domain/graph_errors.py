"""Graph API errors as data, and their classification (what Reelay does about each)."""

from __future__ import annotations

from enum import StrEnum

from core.errors import ReelayError


class ErrorKind(StrEnum):
    TRANSIENT = "transient"  # retry with back-off
    RATE_LIMITED = "rate_limited"  # wait retry_after_s, then retry
    QUOTA = "quota"  # daily publishing cap: defer until it frees
    NOT_READY = "not_ready"  # media still processing: poll again
    PERMANENT = "permanent"  # fail with a message a user understands
    TOKEN_INVALID = "token_invalid"  # account needs_reconnect
    NEW_CONTAINER = "new_container"  # container expired or download timed out: make a new one
    RESTRICTED = "restricted"  # spam suspicion / account restricted: fail and alert
    ALREADY_DONE = "already_done"  # e.g. the private reply for this comment was already used
    WINDOW_CLOSED = "window_closed"  # messaging window closed: do not retry


class GraphError(ReelayError):
    """One Graph API error, classified. ``title`` is for people; ``message`` is Meta's."""

    def __init__(
        self,
        *,
        code: int | None,
        subcode: int | None,
        message: str,
        kind: ErrorKind,
        title: str,
        http_status: int | None = None,
        retry_after_s: float | None = None,
        fbtrace_id: str | None = None,
    ) -> None:
        super().__init__(f"{title} (code {code}, subcode {subcode}): {message}")
        self.code = code
        self.subcode = subcode
        self.message = message
        self.kind = kind
        self.title = title
        self.http_status = http_status
        self.retry_after_s = retry_after_s
        self.fbtrace_id = fbtrace_id

    @property
    def retryable(self) -> bool:
        return self.kind in {ErrorKind.TRANSIENT, ErrorKind.RATE_LIMITED, ErrorKind.NOT_READY}
