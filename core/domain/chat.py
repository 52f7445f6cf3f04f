"""What the command layer answers with: text and buttons, no chat framework types.

Adapters (Telegram, Discord) translate a ``Reply`` into their own message and keyboard,
and a button press back into its ``Action``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from core.errors import ValidationFailed

# Where the panel makes link codes: its menu item (``panel/navigation.py`` labels it with this)
# and the setup step (``core/services/setup_wizard.py`` titles it with this). Chat replies name
# this path, so they never send anyone to a page that does not exist.
LINK_CODES_MENU = "Setup"
LINK_CODES_STEP = "Team chat"
LINK_CODES_PATH = f"{LINK_CODES_MENU} → {LINK_CODES_STEP}"


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
    POST_NOW = "postnow"
    CANCEL = "cancel"
    QUEUE = "queue"


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
    ``awaits_reply``: the asker's next message answers it (Telegram shows a reply box).
    """

    text: str
    buttons: tuple[tuple[Button, ...], ...] = ()
    private: bool = False
    replace: bool = False
    awaits_reply: bool = False

    def all_buttons(self) -> list[Button]:
        return [button for row in self.buttons for button in row]
