"""The Tortoise models of the inbox: each person's conversation, its messages and its notes.

Kept apart from ``core.db.models`` (which re-exports them, so Tortoise finds them in the one
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
    from core.db.models import AutomationRule, InstagramAccount, User


class ConversationStatus(StrEnum):
    OPEN = "open"
    WAITING = "waiting"  # the person wrote last: waiting on the team
    DONE = "done"


class MessageSource(StrEnum):
    """Who wrote a message: the person, a rule, a teammate (in the panel or in chat), or the
    account's owner in the Instagram app (an echo Reelay did not send)."""

    FOLLOWER = "follower"
    AUTOMATION = "automation"
    INBOX = "inbox"
    CHAT = "chat"
    INSTAGRAM_APP = "instagram_app"


class Conversation(Model):
    id = fields.IntField(primary_key=True)
    account_id: int
    ai_rule_id: int | None
    assignee_id: int | None
    paused_by_id: int | None
    account: fields.ForeignKeyRelation[InstagramAccount] = fields.ForeignKeyField(
        "models.InstagramAccount", related_name="conversations", on_delete=fields.CASCADE
    )
    igsid = fields.CharField(max_length=64)
    username = fields.CharField(max_length=64, default="")
    first_name = fields.CharField(max_length=64, default="")
    # The person's Instagram profile (user-profile API), fetched once they message and
    # refreshed after a day: see core/services/followers.py.
    profile_name = fields.CharField(max_length=255, default="", db_default="")
    profile_pic = fields.TextField(default="", db_default="")
    follower_count = fields.IntField(null=True)
    is_verified_user = fields.BooleanField(default=False, db_default=False)
    is_user_follow_business = fields.BooleanField(null=True)
    profile_fetched_at = UtcDatetimeField(null=True)
    profile_failed_at = UtcDatetimeField(null=True)
    last_inbound_at = UtcDatetimeField(null=True)
    flow_state: fields.JSONField[dict[str, Any] | None] = fields.JSONField(null=True)
    ai_rule: fields.ForeignKeyNullableRelation[AutomationRule] = fields.ForeignKeyField(
        "models.AutomationRule", related_name=False, null=True, on_delete=fields.SET_NULL
    )
    # The inbox: where the conversation stands, who has it, and whether a teammate took it
    # over (every automation stays silent for the person until ``paused_until``).
    status = fields.CharEnumField(
        ConversationStatus, max_length=16, default=ConversationStatus.OPEN, db_default="open"
    )
    assignee: fields.ForeignKeyNullableRelation[User] = fields.ForeignKeyField(
        "models.User", related_name=False, null=True, on_delete=fields.SET_NULL
    )
    # ",vip,order," (each label between commas, so one is found with a LIKE on any database).
    labels = fields.CharField(max_length=512, default="", db_default="")
    paused_until = UtcDatetimeField(null=True)
    paused_by: fields.ForeignKeyNullableRelation[User] = fields.ForeignKeyField(
        "models.User", related_name=False, null=True, on_delete=fields.SET_NULL
    )
    last_message_at = UtcDatetimeField(null=True, db_index=True)
    last_message_text = fields.TextField(default="", db_default="")
    created_at = UtcDatetimeField(auto_now_add=True)

    class Meta:
        unique_together = (("account", "igsid"),)
        # The inbox lists an account's conversations by their last message.
        indexes = (Index(fields=["account_id", "last_message_at"]),)


class Message(Model):
    id = fields.IntField(primary_key=True)
    conversation_id: int
    author_id: int | None
    conversation: fields.ForeignKeyRelation[Conversation] = fields.ForeignKeyField(
        "models.Conversation", related_name="messages", on_delete=fields.CASCADE
    )
    direction = fields.CharField(max_length=3)  # "in" or "out"
    # Who wrote it (``MessageSource``); '' on rows older than the inbox: read by ``source_of``.
    source = fields.CharField(max_length=16, default="", db_default="")
    author: fields.ForeignKeyNullableRelation[User] = fields.ForeignKeyField(
        "models.User", related_name=False, null=True, on_delete=fields.SET_NULL
    )
    mid = fields.CharField(max_length=255, null=True)
    text = fields.TextField(default="")
    media_url = fields.TextField(default="", db_default="")
    # An outgoing message's rule, and when Meta reported it read (the rule's funnel).
    rule_id = fields.IntField(null=True)
    read_at = UtcDatetimeField(null=True)
    # Which of the rule's variations went out ("v2"), and from which step ("dm", "follow_up").
    variant = fields.CharField(max_length=16, default="", db_default="")
    created_at = UtcDatetimeField(auto_now_add=True)

    class Meta:
        # A thread is read by conversation, newest first.
        indexes = (Index(fields=["conversation_id", "created_at"]),)


def label_list(conversation: Conversation) -> list[str]:
    """The conversation's labels, in the order they were set."""
    return [label for label in conversation.labels.split(",") if label]


def source_of(message: Message) -> MessageSource:
    """Who wrote ``message``, also for rows stored before sources were recorded."""
    if message.source:
        return MessageSource(message.source)
    return MessageSource.FOLLOWER if message.direction == "in" else MessageSource.AUTOMATION


class ConversationNote(Model):
    """A teammate's internal note on a conversation (never sent to the person)."""

    id = fields.IntField(primary_key=True)
    conversation_id: int
    author_id: int | None
    conversation: fields.ForeignKeyRelation[Conversation] = fields.ForeignKeyField(
        "models.Conversation", related_name="notes", on_delete=fields.CASCADE
    )
    author: fields.ForeignKeyNullableRelation[User] = fields.ForeignKeyField(
        "models.User", related_name=False, null=True, on_delete=fields.SET_NULL
    )
    text = fields.TextField()
    created_at = UtcDatetimeField(auto_now_add=True)
