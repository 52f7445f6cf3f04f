"""Tortoise models of the integrations: API idempotency keys and event webhooks.

Kept apart from ``core.db.models`` (which re-exports them, so Tortoise finds them in the one
models module) to keep each module readable.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Any

from tortoise import fields
from tortoise.models import Model

from core.db.fields import UtcDatetimeField

if TYPE_CHECKING:
    from core.db.models import DomainEvent, Workspace


class IdempotentRequest(Model):
    """A POST of the JSON API made with an ``Idempotency-Key``: what it answered, for 24 h.

    ``status`` is null while the first request runs: a second one with the key is refused
    (409) rather than run beside it.
    """

    id = fields.IntField(primary_key=True)
    workspace_id: int
    workspace: fields.ForeignKeyRelation[Workspace] = fields.ForeignKeyField(
        "models.Workspace", related_name="idempotent_requests", on_delete=fields.CASCADE
    )
    key = fields.CharField(max_length=255)
    # SHA-256 of the method, path, query and body: the same key with another request is refused.
    fingerprint = fields.CharField(max_length=64)
    status = fields.IntField(null=True)
    content_type = fields.CharField(max_length=100, default="")
    body = fields.TextField(default="")
    created_at = UtcDatetimeField(db_index=True)

    class Meta:
        unique_together = (("workspace", "key"),)


class WebhookDeliveryStatus(StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    DELIVERED = "delivered"
    FAILED = "failed"


class EventWebhook(Model):
    """A workspace's subscription: these event kinds are POSTed, signed, to this URL."""

    id = fields.IntField(primary_key=True)
    workspace_id: int
    workspace: fields.ForeignKeyRelation[Workspace] = fields.ForeignKeyField(
        "models.Workspace", related_name="event_webhooks", on_delete=fields.CASCADE
    )
    url = fields.CharField(max_length=2048)
    description = fields.CharField(max_length=200, default="")
    events: fields.JSONField[list[str]] = fields.JSONField(default=list)
    # The signing secret, encrypted with the install's SecretBox; shown once when made.
    secret_encrypted = fields.TextField()
    active = fields.BooleanField(default=True)
    created_by = fields.CharField(max_length=120, default="")
    created_at = UtcDatetimeField(auto_now_add=True)


class EventWebhookDelivery(Model):
    """One event to one subscription, once (a test event has no domain event)."""

    id = fields.IntField(primary_key=True)
    webhook_id: int
    webhook: fields.ForeignKeyRelation[EventWebhook] = fields.ForeignKeyField(
        "models.EventWebhook", related_name="deliveries", on_delete=fields.CASCADE
    )
    event_id: int | None
    event: fields.ForeignKeyNullableRelation[DomainEvent] = fields.ForeignKeyField(
        "models.DomainEvent", related_name="webhook_deliveries", null=True, on_delete=fields.CASCADE
    )
    kind = fields.CharField(max_length=48)
    payload: fields.JSONField[dict[str, Any]] = fields.JSONField(default=dict)
    status = fields.CharEnumField(
        WebhookDeliveryStatus, max_length=10, default=WebhookDeliveryStatus.PENDING
    )
    attempts = fields.IntField(default=0)
    next_attempt_at = UtcDatetimeField(null=True, db_index=True)
    response_status = fields.IntField(null=True)
    error = fields.TextField(default="")
    created_at = UtcDatetimeField(auto_now_add=True, db_index=True)
    delivered_at = UtcDatetimeField(null=True)

    class Meta:
        unique_together = (("webhook", "event"),)
