"""The Tortoise models of the team-chat mirror: which chat mirrors a workspace's
conversations, and each conversation's topic (Telegram) or thread (Discord) there.

Kept apart from ``core.db.models`` (which re-exports them, so Tortoise finds them in the one
models module) to keep each module readable.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tortoise import fields
from tortoise.models import Model

from core.db.fields import UtcDatetimeField

if TYPE_CHECKING:
    from core.db.models import ChatLink, Conversation, Workspace


class ChatMirror(Model):
    """The one linked chat (a Telegram forum group, a Discord channel) a workspace mirrors its
    conversations to: one topic or thread per conversation."""

    id = fields.IntField(primary_key=True)
    workspace_id: int
    chat_link_id: int
    workspace: fields.OneToOneRelation[Workspace] = fields.OneToOneField(
        "models.Workspace", related_name="chat_mirror", on_delete=fields.CASCADE
    )
    chat_link: fields.ForeignKeyRelation[ChatLink] = fields.ForeignKeyField(
        "models.ChatLink", related_name=False, on_delete=fields.CASCADE
    )
    created_at = UtcDatetimeField(auto_now_add=True)


class ChatThread(Model):
    """A conversation's topic or thread in a mirror chat.

    The row is inserted before the topic is made (``thread_id`` empty, ``claimed_at`` set), so
    two messages at once make one topic: the second finds the row and waits for its id.
    """

    id = fields.IntField(primary_key=True)
    workspace_id: int
    conversation_id: int
    workspace: fields.ForeignKeyRelation[Workspace] = fields.ForeignKeyField(
        "models.Workspace", related_name=False, on_delete=fields.CASCADE
    )
    conversation: fields.ForeignKeyRelation[Conversation] = fields.ForeignKeyField(
        "models.Conversation", related_name=False, on_delete=fields.CASCADE
    )
    platform = fields.CharField(max_length=16)
    chat_id = fields.CharField(max_length=64)
    thread_id = fields.CharField(max_length=64, default="")
    # The name the topic was given (renamed once the person's profile is known).
    name = fields.CharField(max_length=128, default="")
    claimed_at = UtcDatetimeField(null=True)
    created_at = UtcDatetimeField(auto_now_add=True)

    class Meta:
        unique_together = (("conversation", "platform", "chat_id"),)
        indexes = (("platform", "chat_id", "thread_id"),)
