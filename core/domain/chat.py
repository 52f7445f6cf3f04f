"""What the command layer answers with: text and buttons, no chat framework types.

Adapters (Telegram, Discord) translate a ``Reply`` into their own message and keyboard,
and a button press back into its ``Action``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from core.errors import ValidationFailed

# Where the panel makes link codes: its menu item (``panel/navigation.py`` labels it with this)
# and the setup step (``core/services/setup_wizard.py`` titles it with this). Chat replies name
# this path, so they never send anyone to a page that does not exist.
LINK_CODES_MENU = "Setup"
LINK_CODES_STEP = "Team chat"
LINK_CODES_PATH = f"{LINK_CODES_MENU} → {LINK_CODES_STEP}"
# Where a person makes their own personal code: their account page (``panel/auth.py``), whose
# section carries this title (``panel/templates/account.html``).
PERSONAL_CODES_SECTION = "Chat accounts"
PERSONAL_CODES_PATH = f"Your account → {PERSONAL_CODES_SECTION}"


class ButtonStyle(StrEnum):
    PRIMARY = "primary"
    SECONDARY = "secondary"
    SUCCESS = "success"
    DANGER = "danger"


class ActionVerb(StrEnum):
    """What a button does when pressed."""

    APPROVE = "approve"
    EDIT = "edit"
    REJECT = "reject"
    # the same decisions from the /approvals list: only the draft's own line changes
    LIST_APPROVE = "lapprove"
    LIST_REJECT = "lreject"
    # the new text of an edited draft, shown back before it goes out
    SEND_EDIT = "sendedit"
    DROP_EDIT = "dropedit"
    # an editor's post that waits for an admin
    POST_APPROVE = "postok"
    POST_NOW = "postnow"
    CANCEL = "cancel"
    QUEUE = "queue"
    # a comment alert (the target is the alert's event id): hide, show, delete (confirmed)
    HIDE_COMMENT = "chide"
    SHOW_COMMENT = "cshow"
    DELETE_COMMENT = "cdel"
    CONFIRM_DELETE = "cdelok"
    KEEP_COMMENT = "ckeep"


@dataclass(frozen=True)
class Action:
    """A button's payload: a verb and the id it acts on (a draft, a post, a queue page)."""

    verb: ActionVerb
    target: int

    def encode(self) -> str:
        """Short enough for Telegram's 64-byte callback data and Discord's custom ids."""
        return f"{self.verb.value}:{self.target}"


_ACTION = re.compile(r"^(?P<verb>[a-z]+):(?P<target>\d{1,18})$")


def decode_action(data: str) -> Action:
    """The ``Action`` encoded in ``data``; ``ValidationFailed`` for anything else."""
    match = _ACTION.match(data)
    if match is None:
        raise ValidationFailed("This button is not one of Reelay's.")
    try:
        verb = ActionVerb(match["verb"])
    except ValueError:
        raise ValidationFailed("This button is not one of Reelay's.") from None
    return Action(verb, int(match["target"]))


@dataclass(frozen=True)
class Button:
    """A button that triggers ``action`` or, when ``url`` is set, opens a link."""

    label: str
    action: Action | None = None
    url: str = ""
    style: ButtonStyle = ButtonStyle.SECONDARY


@dataclass(frozen=True)
class Reply:
    """One message: text and rows of buttons.

    ``private``: only the asker should see it where the platform allows (Discord).
    ``replace``: the answer to a button press replaces the message the button was on.
    ``line_of``: with ``replace``, only the line of that target (``#<target>: …``) is
    replaced by ``text``, and only the buttons acting on it are dropped; the rest stays.
    ``awaits_reply``: a reply to this message answers it (Telegram shows a reply box).
    ``mention``: the chat user id (and name) the message is addressed to, so that a
    reply box reaches them even where the bot sees only replies and commands.
    """

    text: str
    buttons: tuple[tuple[Button, ...], ...] = ()
    private: bool = False
    replace: bool = False
    awaits_reply: bool = False
    line_of: int | None = None
    mention: tuple[str, str] | None = None

    def all_buttons(self) -> list[Button]:
        return [button for row in self.buttons for button in row]

    def to_json(self) -> str:
        """The reply as stored for a repeated delivery of the same command."""
        rows = [
            [
                {
                    "label": b.label,
                    "action": b.action.encode() if b.action else "",
                    "url": b.url,
                    "style": b.style.value,
                }
                for b in row
            ]
            for row in self.buttons
        ]
        return json.dumps(
            {
                "text": self.text,
                "buttons": rows,
                "private": self.private,
                "awaits_reply": self.awaits_reply,
                "mention": list(self.mention) if self.mention else None,
            }
        )

    @classmethod
    def from_json(cls, raw: str) -> Reply:
        data: dict[str, Any] = json.loads(raw)
        rows = tuple(
            tuple(
                Button(
                    b["label"],
                    decode_action(b["action"]) if b["action"] else None,
                    b["url"],
                    ButtonStyle(b["style"]),
                )
                for b in row
            )
            for row in data["buttons"]
        )
        mention = data.get("mention")
        return cls(
            data["text"],
            rows,
            private=data["private"],
            awaits_reply=data["awaits_reply"],
            mention=(mention[0], mention[1]) if mention else None,
        )
