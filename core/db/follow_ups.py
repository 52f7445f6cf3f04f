"""The Tortoise model of follow-ups: a rule's message sent a while after its DM unless the
person answered, planned in a row so a lost delayed job is rebuilt from it.

Kept apart from ``core.db.models`` (which re-exports it, so Tortoise finds it in the one
models module) to keep each module readable.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Any

from tortoise import fields
from tortoise.indexes import Index
from tortoise.models import Model

from core.db.fields import UtcDatetimeField

if TYPE_CHECKING:
    from core.db.models import AutomationRule, Conversation, InstagramAccount


class FollowUpStatus(StrEnum):
    PENDING = "pending"  # waits for its time
    SENT = "sent"  # handed to the outbox (which records the send itself)
    CANCELLED = "cancelled"  # the person answered first
    EXPIRED = "expired"  # due after Meta's 24-hour window: never sent


class FollowUp(Model):
    """One follow-up of one rule to one person, due at its time, with why it ended as it did.
    One per (rule, triggering event): ``dedupe_key``."""

    id = fields.IntField(primary_key=True)
    account_id: int
    rule_id: int
    conversation_id: int
    account: fields.ForeignKeyRelation[InstagramAccount] = fields.ForeignKeyField(
        "models.InstagramAccount", related_name=False, on_delete=fields.CASCADE
    )
    rule: fields.ForeignKeyRelation[AutomationRule] = fields.ForeignKeyField(
        "models.AutomationRule", related_name="follow_ups", on_delete=fields.CASCADE
    )
    conversation: fields.ForeignKeyRelation[Conversation] = fields.ForeignKeyField(
        "models.Conversation", related_name="follow_ups", on_delete=fields.CASCADE
    )
    dedupe_key = fields.CharField(max_length=255, unique=True)
    message: fields.JSONField[dict[str, Any]] = fields.JSONField()
    variant = fields.CharField(max_length=16, default="")
    status = fields.CharEnumField(FollowUpStatus, max_length=16, default=FollowUpStatus.PENDING)
    reason = fields.TextField(default="")
    planned_at = UtcDatetimeField()
    due_at = UtcDatetimeField(db_index=True)
    # When Meta's 24-hour window closes for it (the person's last message + 24 h).
    window_ends_at = UtcDatetimeField(null=True)
    outbound_action_id = fields.IntField(null=True)
    done_at = UtcDatetimeField(null=True)
    created_at = UtcDatetimeField(auto_now_add=True)

    class Meta:
        # A person's pending ones, cancelled when they write.
        indexes = (Index(fields=["conversation_id", "status"]),)
