"""Tortoise models for Reelay's whole data model (see ARCHITECTURE.md, "Data model").

This module is the persistence adapter: services use these models as their
repositories. Secrets are stored encrypted (see ``core.adapters.crypto``).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from tortoise import fields
from tortoise.indexes import Index
from tortoise.models import Model

from core.db.fields import UtcDatetimeField
from core.domain.posts import Kind, Status
from core.domain.scope import Role as Role


class Platform(StrEnum):
    TELEGRAM = "telegram"
    DISCORD = "discord"


class LinkCodeKind(StrEnum):
    """What a link code links: a chat to a workspace (an admin's), or a chat user to a person."""

    CHAT = "chat"
    PERSON = "person"


class LoginKind(StrEnum):
    INSTAGRAM = "instagram"
    FACEBOOK = "facebook"
    SANDBOX = "sandbox"


class AccountStatus(StrEnum):
    ACTIVE = "active"
    NEEDS_RECONNECT = "needs_reconnect"
    DISCONNECTED = "disconnected"


class Trigger(StrEnum):
    COMMENT = "comment"
    DM = "dm"
    STORY_REPLY = "story_reply"
    STORY_MENTION = "story_mention"
    POSTBACK = "postback"
    REF_LINK = "ref_link"
    LIVE_COMMENT = "live_comment"


class MatchMode(StrEnum):
    WHOLE_WORD = "whole_word"
    CONTAINS = "contains"
    EXACT = "exact"
    ANY = "any"


class EventStatus(StrEnum):
    PENDING = "pending"
    PROCESSING = "processing"
    DONE = "done"
    IGNORED = "ignored"
    FAILED = "failed"
    WAITING = "waiting"  # the account needs reconnecting: handled after the reconnect
    EXPIRED = "expired"  # reconnected after Meta's window to answer it closed


class OutboundStatus(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    SKIPPED = "skipped"
    FAILED = "failed"
    # Instagram may have acted, no answer said so and a check could not settle it: not resent.
    UNCONFIRMED = "unconfirmed"
    WAITING = "waiting"  # the account needs reconnecting: sent after it if Meta's window allows
    EXPIRED = "expired"  # reconnected after Meta's window to send it had closed


class DraftStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    EDITED = "edited"
    REJECTED = "rejected"
    EXPIRED = "expired"


class Workspace(Model):
    id = fields.IntField(primary_key=True)
    name = fields.CharField(max_length=120)
    timezone = fields.CharField(max_length=64, default="UTC")
    ai_enabled = fields.BooleanField(default=True)
    ai_monthly_token_quota = fields.IntField(default=200_000)
    notification_email = fields.CharField(max_length=254, null=True)
    # Whether members of a linked chat who have not linked themselves may read (queue, stats…).
    chat_readers_unlinked = fields.BooleanField(default=False, db_default=False)
    # Whether an editor's scheduled post waits for an owner's or admin's approval.
    editor_posts_need_approval = fields.BooleanField(default=False, db_default=False)
    created_at = UtcDatetimeField(auto_now_add=True)


class AiUsage(Model):
    id = fields.IntField(primary_key=True)
    workspace_id: int
    workspace: fields.ForeignKeyRelation[Workspace] = fields.ForeignKeyField(
        "models.Workspace", related_name="ai_usage", on_delete=fields.CASCADE
    )
    month = fields.CharField(max_length=7)  # YYYY-MM
    tokens = fields.IntField(default=0)

    class Meta:
        unique_together = (("workspace", "month"),)


class User(Model):
    id = fields.IntField(primary_key=True)
    email = fields.CharField(max_length=254, unique=True)
    password_hash = fields.CharField(max_length=255)
    name = fields.CharField(max_length=120, default="")
    is_active = fields.BooleanField(default=True)
    # Instance-wide settings (the Meta app) serve every workspace; only these users change them.
    is_instance_admin = fields.BooleanField(default=False, db_default=False)
    # The person's own IANA zone for the panel and chat; None: the workspace's.
    timezone = fields.CharField(max_length=64, null=True)
    created_at = UtcDatetimeField(auto_now_add=True)


class Membership(Model):
    id = fields.IntField(primary_key=True)
    workspace_id: int
    user_id: int
    workspace: fields.ForeignKeyRelation[Workspace] = fields.ForeignKeyField(
        "models.Workspace", related_name="memberships", on_delete=fields.CASCADE
    )
    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="memberships", on_delete=fields.CASCADE
    )
    role = fields.CharEnumField(Role, max_length=16)
    created_at = UtcDatetimeField(auto_now_add=True)

    class Meta:
        unique_together = (("workspace", "user"),)


class Invite(Model):
    id = fields.IntField(primary_key=True)
    workspace_id: int
    created_by_id: int | None
    workspace: fields.ForeignKeyRelation[Workspace] = fields.ForeignKeyField(
        "models.Workspace", related_name="invites", on_delete=fields.CASCADE
    )
    token_hash = fields.CharField(max_length=64, unique=True)
    role = fields.CharEnumField(Role, max_length=16)
    created_by: fields.ForeignKeyNullableRelation[User] = fields.ForeignKeyField(
        "models.User", related_name=False, null=True, on_delete=fields.SET_NULL
    )
    expires_at = UtcDatetimeField()
    used_at = UtcDatetimeField(null=True)


class ApiToken(Model):
    id = fields.IntField(primary_key=True)
    workspace_id: int
    created_by_id: int | None
    workspace: fields.ForeignKeyRelation[Workspace] = fields.ForeignKeyField(
        "models.Workspace", related_name="api_tokens", on_delete=fields.CASCADE
    )
    name = fields.CharField(max_length=80)
    token_hash = fields.CharField(max_length=64, unique=True)
    role = fields.CharEnumField(Role, max_length=16)
    created_by: fields.ForeignKeyNullableRelation[User] = fields.ForeignKeyField(
        "models.User", related_name=False, null=True, on_delete=fields.SET_NULL
    )
    created_at = UtcDatetimeField(auto_now_add=True)
    last_used_at = UtcDatetimeField(null=True)
    revoked_at = UtcDatetimeField(null=True)


class ChatLink(Model):
    id = fields.IntField(primary_key=True)
    workspace_id: int
    workspace: fields.ForeignKeyRelation[Workspace] = fields.ForeignKeyField(
        "models.Workspace", related_name="chat_links", on_delete=fields.CASCADE
    )
    platform = fields.CharEnumField(Platform, max_length=16)
    chat_id = fields.CharField(max_length=64)
    title = fields.CharField(max_length=255, default="")
    purpose = fields.CharField(max_length=32, default="notifications")
    active = fields.BooleanField(default=True)
    created_at = UtcDatetimeField(auto_now_add=True)

    class Meta:
        unique_together = (("platform", "chat_id"),)


class ChatIdentity(Model):
    id = fields.IntField(primary_key=True)
    user_id: int
    platform = fields.CharEnumField(Platform, max_length=16)
    platform_user_id = fields.CharField(max_length=64)
    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="chat_identities", on_delete=fields.CASCADE
    )
    created_at = UtcDatetimeField(auto_now_add=True)

    class Meta:
        unique_together = (("platform", "platform_user_id"),)


class LinkCode(Model):
    id = fields.IntField(primary_key=True)
    workspace_id: int
    created_by_id: int
    workspace: fields.ForeignKeyRelation[Workspace] = fields.ForeignKeyField(
        "models.Workspace", related_name="link_codes", on_delete=fields.CASCADE
    )
    code_hash = fields.CharField(max_length=64, unique=True)
    created_by: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name=False, on_delete=fields.CASCADE
    )
    expires_at = UtcDatetimeField()
    used_at = UtcDatetimeField(null=True)
    kind = fields.CharEnumField(
        LinkCodeKind, max_length=16, default=LinkCodeKind.CHAT, db_default="chat"
    )


class InstagramAccount(Model):
    id = fields.IntField(primary_key=True)
    workspace_id: int
    workspace: fields.ForeignKeyRelation[Workspace] = fields.ForeignKeyField(
        "models.Workspace", related_name="accounts", on_delete=fields.CASCADE
    )
    ig_id = fields.CharField(max_length=64, db_index=True)
    username = fields.CharField(max_length=64)
    account_type = fields.CharField(max_length=32, default="BUSINESS")
    login_kind = fields.CharEnumField(LoginKind, max_length=16)
    page_id = fields.CharField(max_length=64, null=True)
    token_encrypted = fields.TextField()
    token_expires_at = UtcDatetimeField(null=True)
    token_refreshed_at = UtcDatetimeField(null=True)
    status = fields.CharEnumField(AccountStatus, max_length=20, default=AccountStatus.ACTIVE)
    status_reason = fields.CharField(max_length=255, default="")
    dm_pace_per_hour = fields.IntField(null=True)
    webhook_subscribed = fields.BooleanField(default=False)
    usage: fields.JSONField[dict[str, Any]] = fields.JSONField(default=dict)
    messenger_profile: fields.JSONField[dict[str, Any]] = fields.JSONField(default=dict)
    comment_alerts = fields.BooleanField(default=False, db_default=False)  # each comment to chat
    created_at = UtcDatetimeField(auto_now_add=True)

    class Meta:
        unique_together = (("workspace", "ig_id"),)


class MediaAsset(Model):
    id = fields.IntField(primary_key=True)
    workspace_id: int
    workspace: fields.ForeignKeyRelation[Workspace] = fields.ForeignKeyField(
        "models.Workspace", related_name="media", on_delete=fields.CASCADE
    )
    storage_key = fields.CharField(max_length=128, unique=True)
    filename = fields.CharField(max_length=255, default="")
    mime = fields.CharField(max_length=64)
    size = fields.BigIntField()
    width = fields.IntField(null=True)
    height = fields.IntField(null=True)
    duration_s = fields.FloatField(null=True)
    checksum = fields.CharField(max_length=64, db_index=True)
    created_at = UtcDatetimeField(auto_now_add=True)


class Post(Model):
    id = fields.IntField(primary_key=True)
    workspace_id: int
    account_id: int
    cover_asset_id: int | None
    created_by_id: int | None
    workspace: fields.ForeignKeyRelation[Workspace] = fields.ForeignKeyField(
        "models.Workspace", related_name="posts", on_delete=fields.CASCADE
    )
    account: fields.ForeignKeyRelation[InstagramAccount] = fields.ForeignKeyField(
        "models.InstagramAccount", related_name="posts", on_delete=fields.CASCADE
    )
    kind = fields.CharEnumField(Kind, max_length=16)
    status = fields.CharEnumField(Status, max_length=16, default=Status.DRAFT, db_index=True)
    caption = fields.TextField(default="")
    first_comment = fields.TextField(default="")
    alt_text = fields.CharField(max_length=1000, default="")
    collaborators: fields.JSONField[list[Any]] = fields.JSONField(default=list)
    location_id = fields.CharField(max_length=64, null=True)
    share_to_feed = fields.BooleanField(default=True)
    cover_asset: fields.ForeignKeyNullableRelation[MediaAsset] = fields.ForeignKeyField(
        "models.MediaAsset", related_name=False, null=True, on_delete=fields.SET_NULL
    )
    scheduled_at = UtcDatetimeField(null=True, db_index=True)
    version = fields.IntField(default=1)
    container_id = fields.CharField(max_length=64, null=True)
    child_container_ids: fields.JSONField[list[Any]] = fields.JSONField(default=list)
    container_created_at = UtcDatetimeField(null=True)
    ig_media_id = fields.CharField(max_length=64, null=True)
    permalink = fields.CharField(max_length=512, null=True)
    published_at = UtcDatetimeField(null=True)
    attempts = fields.IntField(default=0)
    last_error = fields.TextField(default="")
    next_attempt_at = UtcDatetimeField(null=True)
    source = fields.CharField(max_length=16, default="panel")
    created_by: fields.ForeignKeyNullableRelation[User] = fields.ForeignKeyField(
        "models.User", related_name=False, null=True, on_delete=fields.SET_NULL
    )
    created_at = UtcDatetimeField(auto_now_add=True)
    updated_at = UtcDatetimeField(auto_now=True)


class PostMedia(Model):
    id = fields.IntField(primary_key=True)
    post_id: int
    asset_id: int
    post: fields.ForeignKeyRelation[Post] = fields.ForeignKeyField(
        "models.Post", related_name="items", on_delete=fields.CASCADE
    )
    asset: fields.ForeignKeyRelation[MediaAsset] = fields.ForeignKeyField(
        "models.MediaAsset", related_name="uses", on_delete=fields.RESTRICT
    )
    position = fields.IntField()

    class Meta:
        unique_together = (("post", "position"),)


class PublishJob(Model):
    """The one live job of a post version: the unique pair stops a second one."""

    id = fields.IntField(primary_key=True)
    post_id: int
    post: fields.ForeignKeyRelation[Post] = fields.ForeignKeyField(
        "models.Post", related_name="jobs", on_delete=fields.CASCADE
    )
    version = fields.IntField()
    job_id = fields.CharField(max_length=128, unique=True)
    created_at = UtcDatetimeField(auto_now_add=True)

    class Meta:
        unique_together = (("post", "version"),)


class AutomationRule(Model):
    id = fields.IntField(primary_key=True)
    workspace_id: int
    account_id: int
    workspace: fields.ForeignKeyRelation[Workspace] = fields.ForeignKeyField(
        "models.Workspace", related_name="rules", on_delete=fields.CASCADE
    )
    account: fields.ForeignKeyRelation[InstagramAccount] = fields.ForeignKeyField(
        "models.InstagramAccount", related_name="rules", on_delete=fields.CASCADE
    )
    name = fields.CharField(max_length=120, default="")
    trigger = fields.CharEnumField(Trigger, max_length=16)
    media_ids: fields.JSONField[list[Any]] = fields.JSONField(default=list)
    keywords: fields.JSONField[list[Any]] = fields.JSONField(default=list)
    match_mode = fields.CharEnumField(MatchMode, max_length=16, default=MatchMode.WHOLE_WORD)
    priority = fields.IntField(default=0)
    cooldown_s = fields.IntField(default=0)
    first_comment_only = fields.BooleanField(default=False)
    # Seed-shaped action config: comment_replies, message_variations, dm_type, buttons,
    # quick_replies, delay_minutes, lead_capture_flow, lead_capture_settings, ai.
    config: fields.JSONField[dict[str, Any]] = fields.JSONField(default=dict)
    active = fields.BooleanField(default=True)
    created_at = UtcDatetimeField(auto_now_add=True)
    updated_at = UtcDatetimeField(auto_now=True)


class RuleStats(Model):
    id = fields.IntField(primary_key=True)
    rule_id: int
    rule: fields.OneToOneRelation[AutomationRule] = fields.OneToOneField(
        "models.AutomationRule", related_name="stats", on_delete=fields.CASCADE
    )
    total_triggers = fields.IntField(default=0)
    total_dms_sent = fields.IntField(default=0)
    total_comments_replied = fields.IntField(default=0)
    total_leads_captured = fields.IntField(default=0)
    # DMs and private replies Meta reported read (``read`` messaging webhooks).
    total_dms_opened = fields.IntField(default=0, db_default=0)
    last_triggered_at = UtcDatetimeField(null=True)
    last_lead_captured_at = UtcDatetimeField(null=True)


class Lead(Model):
    id = fields.IntField(primary_key=True)
    workspace: fields.ForeignKeyRelation[Workspace] = fields.ForeignKeyField(
        "models.Workspace", related_name="leads", on_delete=fields.CASCADE
    )
    account: fields.ForeignKeyRelation[InstagramAccount] = fields.ForeignKeyField(
        "models.InstagramAccount", related_name="leads", on_delete=fields.CASCADE
    )
    rule: fields.ForeignKeyNullableRelation[AutomationRule] = fields.ForeignKeyField(
        "models.AutomationRule", related_name="leads", null=True, on_delete=fields.SET_NULL
    )
    conversation: fields.ForeignKeyNullableRelation[Conversation] = fields.ForeignKeyField(
        "models.Conversation", related_name="leads", null=True, on_delete=fields.SET_NULL
    )
    workspace_id: int
    account_id: int
    rule_id: int | None
    conversation_id: int | None
    igsid = fields.CharField(max_length=64)
    username = fields.CharField(max_length=64, default="")
    email = fields.CharField(max_length=254, null=True)
    phone = fields.CharField(max_length=32, null=True)
    name = fields.CharField(max_length=120, null=True)
    custom_fields: fields.JSONField[dict[str, Any]] = fields.JSONField(default=dict)
    webhook_status = fields.CharField(max_length=16, default="none")
    webhook_attempts = fields.IntField(default=0)
    webhook_error = fields.TextField(default="")
    delivered_at = UtcDatetimeField(null=True)
    created_at = UtcDatetimeField(auto_now_add=True)


class WebhookEvent(Model):
    id = fields.IntField(primary_key=True)
    dedupe_key = fields.CharField(max_length=255, unique=True)
    account_ig_id = fields.CharField(max_length=64, default="", db_index=True)
    kind = fields.CharField(max_length=32)
    # Meta's one-event payload, as received (the event log and the rule test show it).
    payload: fields.JSONField[dict[str, Any]] = fields.JSONField()
    # The parsed event's fields (core.domain.webhooks.stored_fields), so the worker does not
    # parse the payload again; None on rows stored before it was kept.
    event: fields.JSONField[dict[str, Any] | None] = fields.JSONField(null=True)
    status = fields.CharEnumField(EventStatus, max_length=16, default=EventStatus.PENDING)
    error = fields.TextField(default="")
    received_at = UtcDatetimeField(auto_now_add=True)
    processed_at = UtcDatetimeField(null=True)
    # How it reached Reelay: "webhook" (Meta sent it) or "sweep" (the comment sweep read a
    # comment whose webhook had not come; core/services/comment_sweep.py).
    source = fields.CharField(max_length=8, default="webhook", db_default="webhook")
    rule_id: int | None
    # The rule that acted on the event (a matched rule or the lead flow it answered), None
    # when none did. Its name is kept too: the log still says which rule it was after the
    # rule is deleted.
    rule: fields.ForeignKeyNullableRelation[AutomationRule] = fields.ForeignKeyField(
        "models.AutomationRule", related_name=False, null=True, on_delete=fields.SET_NULL
    )
    rule_name = fields.CharField(max_length=120, null=True)

    class Meta:
        # The recovery job's pending and stuck events; an account's log and health.
        indexes = (
            Index(fields=["status", "received_at"]),
            Index(fields=["account_ig_id", "received_at"]),
        )


class ReplyDraft(Model):
    id = fields.IntField(primary_key=True)
    workspace_id: int
    account_id: int
    rule_id: int | None
    conversation_id: int | None
    decided_by_id: int | None
    workspace: fields.ForeignKeyRelation[Workspace] = fields.ForeignKeyField(
        "models.Workspace", related_name="drafts", on_delete=fields.CASCADE
    )
    account: fields.ForeignKeyRelation[InstagramAccount] = fields.ForeignKeyField(
        "models.InstagramAccount", related_name="drafts", on_delete=fields.CASCADE
    )
    rule: fields.ForeignKeyNullableRelation[AutomationRule] = fields.ForeignKeyField(
        "models.AutomationRule", related_name="drafts", null=True, on_delete=fields.SET_NULL
    )
    conversation: fields.ForeignKeyNullableRelation[Conversation] = fields.ForeignKeyField(
        "models.Conversation", related_name="drafts", null=True, on_delete=fields.SET_NULL
    )
    inbound_text = fields.TextField(default="")
    proposed_text = fields.TextField()
    final_text = fields.TextField(null=True)
    # {"igsid": …} or {"comment_id": …}
    target: fields.JSONField[dict[str, Any]] = fields.JSONField(default=dict)
    status = fields.CharEnumField(DraftStatus, max_length=16, default=DraftStatus.PENDING)
    decided_by: fields.ForeignKeyNullableRelation[User] = fields.ForeignKeyField(
        "models.User", related_name=False, null=True, on_delete=fields.SET_NULL
    )
    decided_at = UtcDatetimeField(null=True)
    expires_at = UtcDatetimeField()
    chat_refs: fields.JSONField[list[Any]] = fields.JSONField(default=list)
    created_at = UtcDatetimeField(auto_now_add=True)


class OutboundAction(Model):
    id = fields.IntField(primary_key=True)
    account_id: int
    account: fields.ForeignKeyRelation[InstagramAccount] = fields.ForeignKeyField(
        "models.InstagramAccount", related_name="outbox", on_delete=fields.CASCADE
    )
    kind = fields.CharField(max_length=32)
    dedupe_key = fields.CharField(max_length=255, unique=True)
    target = fields.CharField(max_length=128)
    payload: fields.JSONField[dict[str, Any]] = fields.JSONField()
    status = fields.CharEnumField(OutboundStatus, max_length=16, default=OutboundStatus.PENDING)
    attempts = fields.IntField(default=0)
    not_before = UtcDatetimeField(null=True)
    response: fields.JSONField[dict[str, Any] | None] = fields.JSONField(null=True)
    error = fields.TextField(default="")
    created_at = UtcDatetimeField(auto_now_add=True)
    sent_at = UtcDatetimeField(null=True)
    # Which rule, person and variant it came from: a rule's variant results count these.
    rule_id = fields.IntField(null=True, db_index=True)
    conversation_id = fields.IntField(null=True)
    step = fields.CharField(max_length=16, default="", db_default="")
    variant = fields.CharField(max_length=16, default="", db_default="")

    class Meta:
        # The recovery job's overdue actions; an account's health.
        indexes = (
            Index(fields=["status", "created_at"]),
            Index(fields=["account_id", "created_at"]),
        )


class AccountInsight(Model):
    id = fields.IntField(primary_key=True)
    account_id: int
    account: fields.ForeignKeyRelation[InstagramAccount] = fields.ForeignKeyField(
        "models.InstagramAccount", related_name="insights", on_delete=fields.CASCADE
    )
    date = fields.DateField()
    metrics: fields.JSONField[dict[str, Any]] = fields.JSONField(default=dict)
    updated_at = UtcDatetimeField(auto_now=True)

    class Meta:
        unique_together = (("account", "date"),)


class MediaInsight(Model):
    id = fields.IntField(primary_key=True)
    account_id: int
    account: fields.ForeignKeyRelation[InstagramAccount] = fields.ForeignKeyField(
        "models.InstagramAccount", related_name="media_insights", on_delete=fields.CASCADE
    )
    ig_media_id = fields.CharField(max_length=64)
    date = fields.DateField()
    media_type = fields.CharField(max_length=32, default="")
    permalink = fields.CharField(max_length=512, default="")
    metrics: fields.JSONField[dict[str, Any]] = fields.JSONField(default=dict)
    updated_at = UtcDatetimeField(auto_now=True)

    class Meta:
        unique_together = (("ig_media_id", "date"),)


class SyncState(Model):
    id = fields.IntField(primary_key=True)
    account_id: int
    account: fields.ForeignKeyRelation[InstagramAccount] = fields.ForeignKeyField(
        "models.InstagramAccount", related_name="sync_states", on_delete=fields.CASCADE
    )
    kind = fields.CharField(max_length=32)
    last_success_at = UtcDatetimeField(null=True)
    last_error = fields.TextField(default="")
    next_run_at = UtcDatetimeField(null=True)

    class Meta:
        unique_together = (("account", "kind"),)


class DomainEvent(Model):
    """Something a team should hear about, delivered to linked chats by a job."""

    id = fields.IntField(primary_key=True)
    workspace_id: int
    workspace: fields.ForeignKeyRelation[Workspace] = fields.ForeignKeyField(
        "models.Workspace", related_name="events", on_delete=fields.CASCADE
    )
    kind = fields.CharField(max_length=48, db_index=True)
    payload: fields.JSONField[dict[str, Any]] = fields.JSONField(default=dict)
    created_at = UtcDatetimeField(auto_now_add=True)
    delivered_at = UtcDatetimeField(null=True)

    class Meta:
        # The notification sweep's undelivered events; a workspace's live inbox.
        indexes = (
            Index(fields=["delivered_at", "created_at"]),
            Index(fields=["workspace_id", "id"]),
        )


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    SKIPPED = "skipped"


class NotificationDelivery(Model):
    """One domain event to one destination (a linked chat or an email address), once."""

    id = fields.IntField(primary_key=True)
    event: fields.ForeignKeyRelation[DomainEvent] = fields.ForeignKeyField(
        "models.DomainEvent", related_name="deliveries", on_delete=fields.CASCADE
    )
    event_id: int
    # "chat" or "email"
    channel = fields.CharField(max_length=8)
    # the chat link id, or the email address
    target = fields.CharField(max_length=254)
    chat_link: fields.ForeignKeyNullableRelation[ChatLink] = fields.ForeignKeyField(
        "models.ChatLink", related_name="deliveries", null=True, on_delete=fields.CASCADE
    )
    chat_link_id: int | None
    status = fields.CharEnumField(DeliveryStatus, max_length=8, default=DeliveryStatus.PENDING)
    attempts = fields.IntField(default=0)
    next_attempt_at = UtcDatetimeField(null=True, db_index=True)
    message_id = fields.CharField(max_length=64, null=True)
    error = fields.TextField(default="")
    created_at = UtcDatetimeField(auto_now_add=True)
    sent_at = UtcDatetimeField(null=True)

    class Meta:
        unique_together = (("event", "channel", "target"),)


class AuditLog(Model):
    id = fields.IntField(primary_key=True)
    workspace_id: int | None
    workspace: fields.ForeignKeyNullableRelation[Workspace] = fields.ForeignKeyField(
        "models.Workspace", related_name="audit", null=True, on_delete=fields.CASCADE
    )
    actor = fields.CharField(max_length=120)
    action = fields.CharField(max_length=64, db_index=True)
    target_type = fields.CharField(max_length=32, default="")
    target_id = fields.CharField(max_length=64, default="")
    # The Instagram account the entry concerns, if any (the log pages filter on it).
    account_id = fields.IntField(null=True, db_index=True)
    level = fields.CharField(max_length=8, default="info")
    details: fields.JSONField[dict[str, Any]] = fields.JSONField(default=dict)
    created_at = UtcDatetimeField(auto_now_add=True, db_index=True)


class KeyValue(Model):
    """Small workspace-independent settings stored by the setup wizard."""

    key = fields.CharField(max_length=64, primary_key=True)
    value = fields.TextField()


class UserSession(Model):
    """A signed-in browser: the cookie holds the token, the row only its SHA-256."""

    id = fields.IntField(primary_key=True)
    user_id: int
    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="sessions", on_delete=fields.CASCADE
    )
    token_hash = fields.CharField(max_length=64, unique=True)
    created_at = UtcDatetimeField(auto_now_add=True)
    expires_at = UtcDatetimeField(db_index=True)


class PasswordReset(Model):
    """An emailed password-reset link: single use, expiring, stored as its SHA-256."""

    id = fields.IntField(primary_key=True)
    user_id: int
    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="password_resets", on_delete=fields.CASCADE
    )
    token_hash = fields.CharField(max_length=64, unique=True)
    created_at = UtcDatetimeField(auto_now_add=True)
    expires_at = UtcDatetimeField()
    used_at = UtcDatetimeField(null=True)


# Re-exported so Tortoise finds them in this, the one models module.
from core.db.chat_mirror import ChatMirror as ChatMirror, ChatThread as ChatThread  # noqa: E402
from core.db.conversations import (  # noqa: E402
    Conversation as Conversation,
    ConversationNote as ConversationNote,
    Message as Message,
)
from core.db.follow_ups import (  # noqa: E402
    FollowUp as FollowUp,
    FollowUpStatus as FollowUpStatus,
)
from core.db.integrations import (  # noqa: E402
    EventWebhook as EventWebhook,
    EventWebhookDelivery as EventWebhookDelivery,
    IdempotentRequest as IdempotentRequest,
    WebhookDeliveryStatus as WebhookDeliveryStatus,
)
from core.db.tracked_links import TrackedLink as TrackedLink  # noqa: E402
