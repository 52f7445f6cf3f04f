"""Event webhooks: the kinds a workspace may subscribe to, the envelope, and its signature.

Pure. A delivery's body is the JSON envelope ``{"id", "type", "created_at", "workspace_id",
"data"}``; its header ``X-Reelay-Signature: t=<unix seconds>,v1=<hex>`` carries the
HMAC-SHA256 of ``"<t>.<body>"`` keyed with the subscription's secret (the scheme Stripe
uses), so a receiver checks both who sent it and when, and refuses an old one replayed.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from core.domain import alerts

SIGNATURE_HEADER = "X-Reelay-Signature"
EVENT_HEADER = "X-Reelay-Event"
DELIVERY_HEADER = "X-Reelay-Delivery"
# A receiver refuses a signature older than this (and so a replay).
TOLERANCE_S = 300
TEST_EVENT = "webhook.test"

# Every kind a subscription may ask for, with what it means.
EVENTS: dict[str, str] = {
    alerts.POST_PUBLISHED: "A post went live on Instagram.",
    alerts.POST_FAILED: "A post could not be published.",
    alerts.LEAD_CAPTURED: "A lead flow finished: the person's answers are stored.",
    alerts.DRAFT_APPROVAL_NEEDED: "An AI reply waits for a person to approve it.",
    alerts.DRAFT_DECIDED: "An AI reply draft was approved, edited or rejected.",
    alerts.POST_APPROVAL_NEEDED: "An editor's post waits for an owner's or admin's approval.",
    alerts.POST_APPROVAL_DECIDED: "An owner or admin approved or rejected an editor's post.",
    alerts.COMMENT_RECEIVED: "Someone commented on one of the workspace's posts.",
    alerts.ACCOUNT_NEEDS_RECONNECT: "Instagram no longer accepts an account's access token.",
    alerts.CONVERSATION_ASSIGNED: "A conversation was assigned to a team member (inbox).",
    alerts.CONVERSATION_MESSAGE_RECEIVED: "A person wrote to one of the workspace's accounts.",
    alerts.CONVERSATION_MESSAGE_SENT: "An account answered a person: a rule, a teammate or "
    "the Instagram app (`source`).",
    alerts.CONVERSATION_TAKEN_OVER: "A teammate took a conversation over: automations stay "
    "silent for the person.",
    alerts.CONVERSATION_HANDED_BACK: "A conversation was handed back to the automations.",
}


def new_secret() -> str:
    """A signing secret for a new subscription."""
    return "whsec_" + secrets.token_urlsafe(32)


def envelope(
    event_id: str, kind: str, created_at: datetime, workspace_id: int, data: Mapping[str, Any]
) -> dict[str, Any]:
    """What a delivery's body holds; ``id`` is the same on every retry and re-send."""
    return {
        "id": event_id,
        "type": kind,
        "created_at": created_at.isoformat(),
        "workspace_id": workspace_id,
        "data": dict(data),
    }


def body_of(document: Mapping[str, Any]) -> bytes:
    return json.dumps(document, separators=(",", ":"), sort_keys=True, default=str).encode()


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The ``X-Reelay-Signature`` header's value for ``body`` sent at ``timestamp``."""
    signed = f"{timestamp}.".encode() + body
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify(
    secret: str, header: str, body: bytes, now: float, tolerance_s: int = TOLERANCE_S
) -> bool:
    """A receiver's check: the header signs ``body`` with ``secret`` and is recent."""
    parts = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    try:
        timestamp = int(parts.get("t", ""))
    except ValueError:
        return False
    if abs(now - timestamp) > tolerance_s:
        return False
    expected = signature(secret, timestamp, body).split("v1=", 1)[1]
    return hmac.compare_digest(expected, parts.get("v1", ""))
