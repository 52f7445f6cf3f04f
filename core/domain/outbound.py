"""The kinds of action the outbox sends, how each is paced, and Meta's messaging windows."""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum

DM_WINDOW = timedelta(hours=24)
PRIVATE_REPLY_WINDOW = timedelta(days=7)
# Meta's message tag for a teammate's reply after 24 h, up to 7 days (needs App Review).
HUMAN_AGENT = "HUMAN_AGENT"
HUMAN_AGENT_WINDOW = timedelta(days=7)


class ActionKind(StrEnum):
    PUBLIC_REPLY = "public_reply"
    PRIVATE_REPLY = "private_reply"
    DM = "dm"
    # Moderation of a comment on the account's media (core/services/comment_moderation.py)
    HIDE_COMMENT = "hide_comment"
    UNHIDE_COMMENT = "unhide_comment"
    DELETE_COMMENT = "delete_comment"


MODERATION = frozenset(
    {ActionKind.HIDE_COMMENT, ActionKind.UNHIDE_COMMENT, ActionKind.DELETE_COMMENT}
)

# Paced separately: Meta counts private replies on their own (750/h).
PACE_BUCKET = {
    ActionKind.PUBLIC_REPLY: "comment_reply",
    ActionKind.PRIVATE_REPLY: "private_reply",
    ActionKind.DM: "dm",
    ActionKind.HIDE_COMMENT: "moderation",
    ActionKind.UNHIDE_COMMENT: "moderation",
    ActionKind.DELETE_COMMENT: "moderation",
}
