"""The Tortoise model of a conversation's messages, in and out.

Kept apart from ``core.db.models`` (which re-exports it, so Tortoise finds it in the one
models module) to keep each module readable.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tortoise import fields
from tortoise.models import Model

from core.db.fields import UtcDatetimeField

if TYPE_CHECKING:
    from core.db.models import Conversation


class Message(Model):
    id = fields.IntField(primary_key=True)
    conversation_id: int
    conversation: fields.ForeignKeyRelation[Conversation] = fields.ForeignKeyField(
        "models.Conversation", related_name="messages", on_delete=fields.CASCADE
    )
    direction = fields.CharField(max_length=3)  # "in" or "out"
    mid = fields.CharField(max_length=255, null=True)
    text = fields.TextField(default="")
    # An outgoing message's rule, and when Meta reported it read (the rule's funnel).
    rule_id = fields.IntField(null=True)
    read_at = UtcDatetimeField(null=True)
    # Which of the rule's variations went out ("v2"), and from which step ("dm", "follow_up").
    variant = fields.CharField(max_length=16, default="", db_default="")
    created_at = UtcDatetimeField(auto_now_add=True)
