"""The Tortoise model of tracked links: each link a rule sent one person, with its clicks.

Kept apart from ``core.db.models`` (which re-exports it, so Tortoise finds it in the one
models module) to keep each module readable.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tortoise import fields
from tortoise.models import Model

from core.db.fields import UtcDatetimeField

if TYPE_CHECKING:
    from core.db.models import AutomationRule, Conversation, InstagramAccount, Workspace


class TrackedLink(Model):
    """A link a rule sent one person, rewritten to ``/l/<code>``: its clicks are counted.

    One per (rule, step, variant, person, target), found again by ``key`` (their hash).
    """

    id = fields.IntField(primary_key=True)
    workspace_id: int
    account_id: int
    rule_id: int
    conversation_id: int | None
    workspace: fields.ForeignKeyRelation[Workspace] = fields.ForeignKeyField(
        "models.Workspace", related_name=False, on_delete=fields.CASCADE
    )
    account: fields.ForeignKeyRelation[InstagramAccount] = fields.ForeignKeyField(
        "models.InstagramAccount", related_name=False, on_delete=fields.CASCADE
    )
    rule: fields.ForeignKeyRelation[AutomationRule] = fields.ForeignKeyField(
        "models.AutomationRule", related_name="tracked_links", on_delete=fields.CASCADE
    )
    conversation: fields.ForeignKeyNullableRelation[Conversation] = fields.ForeignKeyField(
        "models.Conversation", related_name=False, null=True, on_delete=fields.SET_NULL
    )
    code = fields.CharField(max_length=32, unique=True)
    key = fields.CharField(max_length=64, unique=True)
    step = fields.CharField(max_length=64, default="")
    variant = fields.CharField(max_length=16, default="")
    igsid = fields.CharField(max_length=64, default="")
    target = fields.TextField()
    clicks = fields.IntField(default=0)
    first_clicked_at = UtcDatetimeField(null=True)
    last_clicked_at = UtcDatetimeField(null=True)
    created_at = UtcDatetimeField(auto_now_add=True)
