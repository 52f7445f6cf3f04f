"""The webhooks Meta sends: their payloads (messaging and comment events) and signature.

``Sandbox.deliver`` POSTs them to the app's webhook URL; a ``Delivery`` records each one.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sandbox.state import SandboxState
from sandbox.wire import ms


@dataclass
class Delivery:
    """One webhook POST the sandbox made (status None when no webhook URL is set)."""

    payload: dict[str, Any]
    body: bytes
    signature: str
    status: int | None
    error: str = ""


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def unsubscribed(state: SandboxState, payload: dict[str, Any]) -> list[str]:
    """The accounts of ``payload``'s entries whose webhook subscription was removed."""
    found = []
    for entry in payload.get("entry") or []:
        account = state.accounts.get(str(entry.get("id")))
        if account is not None and account.unsubscribed:
            found.append(account.ig_id)
    return found


def messaging_event(ig_id: str, igsid: str, item: dict[str, Any], now: datetime) -> dict[str, Any]:
    """A ``messaging`` event from ``igsid`` to account ``ig_id`` carrying ``item``."""
    return {
        "object": "instagram",
        "entry": [
            {
                "id": ig_id,
                "time": ms(now),
                "messaging": [
                    {
                        "sender": {"id": igsid},
                        "recipient": {"id": ig_id},
                        "timestamp": ms(now),
                        **item,
                    }
                ],
            }
        ],
    }
