"""Graph API errors as data, and their classification (what Reelay does about each).

``classify`` is pure: it turns Meta's error envelope, the HTTP status and the usage headers
into a ``GraphError``. The table below holds every code and subcode Meta documents for the
calls Reelay makes (ARCHITECTURE.md, "Meta's Graph API").

A failed write is either *not sent* (refused before it reached Meta, or refused by Meta with
its error envelope: nothing happened) or *maybe sent* (the request was written and no readable
answer came back: a dropped connection, a timeout, a 5xx or 200 without Meta's error body).
``GraphError.maybe_sent`` says which; a maybe-sent write must not be repeated blindly.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

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
        maybe_sent: bool = False,
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
        # The request was written and no answer says what Meta did with it.
        self.maybe_sent = maybe_sent

    @property
    def retryable(self) -> bool:
        return self.kind in {ErrorKind.TRANSIENT, ErrorKind.RATE_LIMITED, ErrorKind.NOT_READY}


@dataclass(frozen=True)
class Rule:
    """What one code (and subcode) means: the kind, a title for people, a default wait."""

    kind: ErrorKind
    title: str
    retry_after_s: float | None = None


# (code, subcode) first, then (code, None); a subcode alone matches with any code because
# vendor code reports the messaging subcodes under more than one top-level code.
RULES: dict[tuple[int | None, int | None], Rule] = {
    # Publishing
    (9007, 2207027): Rule(ErrorKind.NOT_READY, "The media is still being processed", 60),
    (9007, None): Rule(ErrorKind.NOT_READY, "The media is still being processed", 60),
    (24, 2207008): Rule(ErrorKind.TRANSIENT, "Instagram had a temporary problem", 60),
    (-2, 2207003): Rule(
        ErrorKind.NEW_CONTAINER, "Instagram timed out downloading the media; trying again"
    ),
    (-2, 2207020): Rule(
        ErrorKind.NEW_CONTAINER, "The upload expired before it was published; trying again"
    ),
    (9004, 2207052): Rule(
        ErrorKind.PERMANENT, "Instagram could not download the media: the URL is not public"
    ),
    (352, 2207026): Rule(
        ErrorKind.PERMANENT,
        "Instagram cannot use this video: use MP4 or MOV (H.264 or HEVC), 3 s to 15 min",
    ),
    (36003, 2207009): Rule(
        ErrorKind.PERMANENT,
        "The image's shape is not allowed: use an aspect ratio between 4:5 and 1.91:1",
    ),
    (36000, 2207004): Rule(ErrorKind.PERMANENT, "The image is too big: Instagram takes up to 8 MB"),
    (36001, 2207005): Rule(
        ErrorKind.PERMANENT, "Instagram cannot use this image format: use a JPEG"
    ),
    (36004, 2207010): Rule(
        ErrorKind.PERMANENT, "The caption is too long: Instagram takes up to 2200 characters"
    ),
    (100, 2207040): Rule(
        ErrorKind.PERMANENT, "Too many @mentions: Instagram takes up to 20 per post"
    ),
    (9, 2207042): Rule(
        ErrorKind.QUOTA, "The account reached Instagram's daily publishing limit", 3600
    ),
    (4, 2207051): Rule(
        ErrorKind.RESTRICTED, "Instagram blocked this action as suspected spam; check the account"
    ),
    (25, 2207050): Rule(
        ErrorKind.RESTRICTED, "The Instagram account is restricted; check it in the Instagram app"
    ),
    # Token
    (190, None): Rule(
        ErrorKind.TOKEN_INVALID, "The Instagram connection expired: reconnect the account"
    ),
    # Rate limits
    (4, None): Rule(ErrorKind.RATE_LIMITED, "Too many requests for the app; slowing down", 300),
    (17, None): Rule(
        ErrorKind.RATE_LIMITED, "Too many requests for this account; slowing down", 300
    ),
    (32, None): Rule(ErrorKind.RATE_LIMITED, "Too many requests for the page; slowing down", 300),
    (613, None): Rule(ErrorKind.RATE_LIMITED, "Too many requests of this kind; slowing down", 300),
    (80002, None): Rule(
        ErrorKind.RATE_LIMITED, "Too many Instagram requests for this account; slowing down", 300
    ),
    # Messaging (vendor subcodes)
    (None, 2534025): Rule(ErrorKind.ALREADY_DONE, "This comment already got its one private reply"),
    (None, 2534022): Rule(
        ErrorKind.WINDOW_CLOSED,
        "The messaging window is closed: the person has to write first",
    ),
    # A node that does not exist (or that the token may not see): a deleted comment reads so
    (100, 33): Rule(ErrorKind.PERMANENT, "It is no longer on Instagram (deleted, or not visible)"),
    # Generic Graph codes: unknown (1) and service (2) errors are temporary by Meta's docs
    (1, None): Rule(ErrorKind.TRANSIENT, "Instagram had an unknown problem; trying again", 30),
    (2, None): Rule(ErrorKind.TRANSIENT, "Instagram is temporarily unavailable", 30),
}

TRANSIENT_HTTP = Rule(ErrorKind.TRANSIENT, "Instagram is temporarily unavailable", None)
TOO_MANY_HTTP = Rule(ErrorKind.RATE_LIMITED, "Too many requests; slowing down", 60)
UNKNOWN = "Instagram refused the request"


def find_rule(code: int | None, subcode: int | None) -> Rule | None:
    """The table entry for a code/subcode pair, most specific first."""
    for key in ((code, subcode), (None, subcode), (code, None)):
        if key == (None, None):
            continue
        rule = RULES.get(key)
        if rule is not None:
            return rule
    return None


@dataclass(frozen=True)
class Usage:
    """How much of Meta's call budget is used, in percent, and when it frees (seconds)."""

    app_pct: float = 0.0
    business_pct: float = 0.0
    regain_after_s: float | None = None

    @property
    def pct(self) -> float:
        return max(self.app_pct, self.business_pct)

    def as_json(self) -> dict[str, Any]:
        return {
            "app_pct": self.app_pct,
            "business_pct": self.business_pct,
            "regain_after_s": self.regain_after_s,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Usage:
        regain = data.get("regain_after_s")
        return cls(
            app_pct=float(data.get("app_pct") or 0),
            business_pct=float(data.get("business_pct") or 0),
            regain_after_s=float(regain) if regain is not None else None,
        )


def _header(headers: Mapping[str, str], name: str) -> str | None:
    lowered = name.lower()
    for key, value in headers.items():
        if key.lower() == lowered:
            return value
    return None


def _pct_of(block: Mapping[str, Any]) -> float:
    values = [block.get(k) for k in ("call_count", "total_cputime", "total_time")]
    return max((float(v) for v in values if isinstance(v, int | float)), default=0.0)


def parse_usage(headers: Mapping[str, str]) -> Usage | None:
    """Read ``X-App-Usage`` and ``X-Business-Use-Case-Usage``; None when neither is present."""
    app_raw = _header(headers, "X-App-Usage")
    buc_raw = _header(headers, "X-Business-Use-Case-Usage")
    if app_raw is None and buc_raw is None:
        return None
    app_pct = 0.0
    business_pct = 0.0
    regain_min: float | None = None
    if app_raw:
        try:
            app = json.loads(app_raw)
        except ValueError:
            app = {}
        if isinstance(app, dict):
            app_pct = _pct_of(app)
    if buc_raw:
        try:
            buc = json.loads(buc_raw)
        except ValueError:
            buc = {}
        if isinstance(buc, dict):
            for blocks in buc.values():
                for block in blocks if isinstance(blocks, list) else [blocks]:
                    if not isinstance(block, dict):
                        continue
                    business_pct = max(business_pct, _pct_of(block))
                    wait = block.get("estimated_time_to_regain_access")
                    if isinstance(wait, int | float) and wait > 0:
                        regain_min = max(regain_min or 0.0, float(wait))
    return Usage(
        app_pct=app_pct,
        business_pct=business_pct,
        regain_after_s=regain_min * 60 if regain_min is not None else None,
    )


SLOWDOWN_FROM_PCT = 75.0
SLOWDOWN_MAX_S = 5.0


def slowdown_s(usage: Usage | None) -> float:
    """Seconds to wait before the next call: none below 75 %, growing to 5 s near 100 %."""
    if usage is None or usage.pct < SLOWDOWN_FROM_PCT:
        return 0.0
    if usage.pct >= 100:
        return usage.regain_after_s or 60.0
    share = (usage.pct - SLOWDOWN_FROM_PCT) / (100 - SLOWDOWN_FROM_PCT)
    return round(SLOWDOWN_MAX_S * share, 3)


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.lstrip("-").isdigit():
        return int(value)
    return None


def classify(
    body: Any,
    *,
    http_status: int | None = None,
    headers: Mapping[str, str] | None = None,
    write: bool = False,
) -> GraphError:
    """Build the GraphError for a failed Graph call.

    ``body`` is the decoded JSON (Meta's ``{"error": {...}}`` envelope, the OAuth endpoint's
    flat ``{"error_type", "code", "error_message"}``, or anything else); ``headers`` are the
    response headers, read for the usage figures that say how long to wait. ``write``: the
    call changes something on Instagram, so an answer that is not Meta's own refusal (a
    proxy's 502 or 504, an unreadable page) leaves the write *maybe sent*.
    """
    error: Mapping[str, Any] = {}
    enveloped = False
    if isinstance(body, Mapping):
        inner = body.get("error")
        enveloped = isinstance(inner, Mapping)
        error = inner if isinstance(inner, Mapping) else body
    message = str(error.get("message") or error.get("error_message") or "").strip()
    code = _as_int(error.get("code"))
    subcode = _as_int(error.get("error_subcode"))
    fbtrace = error.get("fbtrace_id")
    if not enveloped and code is not None and code == http_status:
        # The OAuth endpoint's flat shape repeats the HTTP status in "code".
        code = None
    usage = parse_usage(headers or {})

    rule = find_rule(code, subcode)
    from_meta = enveloped or code is not None or subcode is not None
    if rule is None:
        unreadable_success = not isinstance(body, Mapping) and (http_status or 200) < 400
        if (
            error.get("is_transient") is True
            or (http_status is not None and http_status >= 500)
            or unreadable_success
        ):
            # Meta always answers JSON: a page of HTML with 200 comes from a proxy or an
            # outage page in between, not from Instagram refusing the request.
            rule = TRANSIENT_HTTP
        elif http_status == 429:
            rule = TOO_MANY_HTTP
        else:
            user_msg = str(error.get("error_user_msg") or "").strip()
            title = user_msg or (f"{UNKNOWN}: {message}" if message else UNKNOWN)
            rule = Rule(ErrorKind.PERMANENT, title)

    retry_after = rule.retry_after_s
    limited = rule.kind in {ErrorKind.RATE_LIMITED, ErrorKind.QUOTA}
    if limited and usage is not None and usage.regain_after_s:
        retry_after = usage.regain_after_s
    return GraphError(
        code=code,
        subcode=subcode,
        message=message or (f"HTTP {http_status}" if http_status else "no error details"),
        kind=rule.kind,
        title=rule.title,
        http_status=http_status,
        retry_after_s=retry_after,
        fbtrace_id=str(fbtrace) if fbtrace else None,
        maybe_sent=write and not from_meta and rule is TRANSIENT_HTTP,
    )


def transport_error(reason: str, *, sent: bool) -> GraphError:
    """A timeout or broken connection: no answer from Meta.

    ``sent`` says the request was written (a write whose connection broke or timed out after
    sending), so its outcome is unknown; False when it never left (connection refused, DNS).
    """
    title = (
        "No answer from Instagram; the request may or may not have gone through"
        if sent
        else "Instagram could not be reached"
    )
    return GraphError(
        code=None,
        subcode=None,
        message=reason,
        kind=ErrorKind.TRANSIENT,
        title=title,
        maybe_sent=sent,
    )


def object_gone(exc: GraphError) -> bool:
    """Whether Meta says the object asked for does not exist (a deleted comment reads so:
    code 100, subcode 33, "Object with ID … does not exist")."""
    return exc.code == 100 and exc.subcode == 33
