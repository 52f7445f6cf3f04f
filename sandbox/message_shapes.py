"""What the sandbox's Send API accepts, as Meta does: text length, quick replies, the button
template and the generic template (cards)."""

from __future__ import annotations

from typing import Any

from sandbox.errors import SandboxError

MAX_TEXT_BYTES = 1000
MAX_QUICK_REPLIES = 13
MAX_BUTTONS = 3
MAX_CARDS = 10
CARD_TEXT_MAX = 80
BUTTON_TYPES = {"web_url", "postback"}


def check_message(message: dict[str, Any]) -> None:
    if not isinstance(message, dict) or not message:
        raise SandboxError("(#100) The parameter message is required", code=100)
    text = message.get("text")
    if text is not None and len(str(text).encode()) > MAX_TEXT_BYTES:
        raise SandboxError(
            "(#100) Length of param message[text] must be less than or equal to 1000",
            code=100,
        )
    if len(message.get("quick_replies") or []) > MAX_QUICK_REPLIES:
        raise SandboxError("(#100) Too many quick replies (at most 13)", code=100)
    payload = (message.get("attachment") or {}).get("payload") or {}
    if len(payload.get("buttons") or []) > MAX_BUTTONS:
        raise SandboxError("(#100) A button template has at most 3 buttons", code=100)
    if payload.get("template_type") == "generic":
        check_generic(payload)
    if text is None and "attachment" not in message:
        raise SandboxError("(#100) The message needs text or an attachment", code=100)


def check_generic(payload: dict[str, Any]) -> None:
    """Meta's generic template: 1 to 10 cards, each a title (≤ 80), an optional subtitle
    (≤ 80), image and default action, and at most 3 web_url or postback buttons."""
    elements = payload.get("elements")
    if not isinstance(elements, list) or not 1 <= len(elements) <= MAX_CARDS:
        raise SandboxError("(#100) A generic template has 1 to 10 elements", code=100)
    for n, card in enumerate(elements):
        where = f"(#100) param message[attachment][payload][elements][{n}]"
        if not isinstance(card, dict) or not str(card.get("title") or "").strip():
            raise SandboxError(f"{where}[title] is required", code=100)
        for name in ("title", "subtitle"):
            if len(str(card.get(name) or "")) > CARD_TEXT_MAX:
                raise SandboxError(f"{where}[{name}] must be at most 80 characters", code=100)
        buttons = card.get("buttons") or []
        if not isinstance(buttons, list) or len(buttons) > MAX_BUTTONS:
            raise SandboxError(f"{where}[buttons] has at most 3 buttons", code=100)
        for button in buttons:
            kind = button.get("type") if isinstance(button, dict) else None
            if kind not in BUTTON_TYPES or not button.get("title"):
                raise SandboxError(f"{where}[buttons] has a button Instagram cannot show", code=100)
            if kind == "web_url" and not str(button.get("url") or "").startswith("http"):
                raise SandboxError(f"{where}[buttons] needs a url", code=100)
            if kind == "postback" and not button.get("payload"):
                raise SandboxError(f"{where}[buttons] needs a payload", code=100)
