"""API: event webhook subscriptions (admin or owner), their delivery log, re-send and test.

``WEBHOOKS`` documents what a subscriber receives, as OpenAPI 3.1 ``webhooks``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field
from quart import Blueprint
from quart_schema import validate_querystring, validate_request, validate_response

from core.db.models import EventWebhook, EventWebhookDelivery, Role
from core.domain import event_webhooks as hooks
from core.services.event_webhooks import EventWebhooks
from panel.api.auth import api_requires, current_actor
from panel.api.schemas import CursorQuery, cursor_int, decode_cursor, encode_cursor
from panel.services import services

blueprint = Blueprint("api_event_webhooks", __name__, url_prefix="/api/v1/webhooks")

MAX_ID = 2**31 - 1


class WebhookBody(BaseModel):
    url: str = Field(max_length=2048, description="An http(s) address on the public internet.")
    events: list[str] = Field(
        min_length=1, max_length=len(hooks.EVENTS), description="Event kinds to receive."
    )
    description: str = Field("", max_length=200)


class WebhookChange(WebhookBody):
    active: bool = True


class WebhookOut(BaseModel):
    id: int
    url: str
    events: list[str]
    description: str
    active: bool
    created_by: str
    created_at: datetime


class NewWebhookOut(WebhookOut):
    secret: str = Field(description="The signing secret: shown in this answer only.")


class WebhookList(BaseModel):
    items: list[WebhookOut]
    has_next: bool
    next_cursor: str | None


class DeliveryOut(BaseModel):
    id: int
    webhook_id: int
    event_id: str = Field(description="The envelope's `id`, the same on retries and re-sends.")
    type: str
    status: str
    attempts: int
    response_status: int | None
    error: str
    next_attempt_at: datetime | None
    created_at: datetime
    delivered_at: datetime | None


class DeliveryList(BaseModel):
    items: list[DeliveryOut]
    has_next: bool
    next_cursor: str | None


def _service() -> EventWebhooks:
    return services().event_webhooks


def _out(webhook: EventWebhook) -> WebhookOut:
    return WebhookOut(
        id=webhook.id,
        url=webhook.url,
        events=list(webhook.events),
        description=webhook.description,
        active=webhook.active,
        created_by=webhook.created_by,
        created_at=webhook.created_at,
    )


def _delivery(item: EventWebhookDelivery) -> DeliveryOut:
    return DeliveryOut(
        id=item.id,
        webhook_id=item.webhook_id,
        event_id=str(item.payload.get("id", "")),
        type=item.kind,
        status=item.status.value,
        attempts=item.attempts,
        response_status=item.response_status,
        error=item.error,
        next_attempt_at=item.next_attempt_at,
        created_at=item.created_at,
        delivered_at=item.delivered_at,
    )


@blueprint.get("")
@api_requires(Role.ADMIN)
@validate_querystring(CursorQuery)
@validate_response(WebhookList)
async def list_webhooks(query_args: CursorQuery) -> WebhookList:
    """The workspace's event webhooks, oldest first."""
    rows = await _service().subscriptions(current_actor())
    after = 0
    if query_args.cursor:
        after = cursor_int(decode_cursor("webhooks", query_args.cursor), "after")
    else:
        rows = rows[(query_args.page - 1) * query_args.limit :]
    rows = [row for row in rows if row.id > after]
    shown = rows[: query_args.limit]
    more = len(rows) > query_args.limit
    return WebhookList(
        items=[_out(row) for row in shown],
        has_next=more,
        next_cursor=encode_cursor("webhooks", {"after": shown[-1].id}) if more else None,
    )


@blueprint.post("")
@api_requires(Role.ADMIN)
@validate_request(WebhookBody)
@validate_response(NewWebhookOut, 201)
async def create_webhook(data: WebhookBody) -> tuple[NewWebhookOut, int]:
    """Subscribe a URL to events; the answer holds its signing secret, once."""
    made = await _service().create(
        current_actor(), url=data.url, events=data.events, description=data.description
    )
    shown = NewWebhookOut(**_out(made.webhook).model_dump(), secret=made.secret)
    return shown, 201


@blueprint.get("/<int:webhook_id>")
@api_requires(Role.ADMIN)
@validate_response(WebhookOut)
async def get_webhook(webhook_id: int) -> WebhookOut:
    """One event webhook (never its secret)."""
    return _out(await _service().get(current_actor(), webhook_id))


@blueprint.put("/<int:webhook_id>")
@api_requires(Role.ADMIN)
@validate_request(WebhookChange)
@validate_response(WebhookOut)
async def replace_webhook(webhook_id: int, data: WebhookChange) -> WebhookOut:
    """Change the URL, events, description, or switch it on or off (the secret stays)."""
    changed = await _service().update(
        current_actor(),
        webhook_id,
        url=data.url,
        events=data.events,
        active=data.active,
        description=data.description,
    )
    return _out(changed)


@blueprint.delete("/<int:webhook_id>")
@api_requires(Role.ADMIN)
async def delete_webhook(webhook_id: int) -> tuple[str, int]:
    """Remove an event webhook and its delivery log."""
    await _service().delete(current_actor(), webhook_id)
    return "", 204


@blueprint.get("/<int:webhook_id>/deliveries")
@api_requires(Role.ADMIN)
@validate_querystring(CursorQuery)
@validate_response(DeliveryList)
async def list_deliveries(webhook_id: int, query_args: CursorQuery) -> DeliveryList:
    """The webhook's deliveries, newest first."""
    before = None
    if query_args.cursor:
        before = cursor_int(decode_cursor("deliveries", query_args.cursor), "before")
    rows = await _service().deliveries(
        current_actor(), webhook_id, limit=query_args.limit + 1, before_id=before
    )
    shown = rows[: query_args.limit]
    more = len(rows) > query_args.limit
    return DeliveryList(
        items=[_delivery(item) for item in shown],
        has_next=more,
        next_cursor=encode_cursor("deliveries", {"before": shown[-1].id}) if more else None,
    )


@blueprint.post("/<int:webhook_id>/test")
@api_requires(Role.ADMIN)
@validate_response(DeliveryOut, 202)
async def send_test(webhook_id: int) -> tuple[DeliveryOut, int]:
    """Queue a `webhook.test` event to this webhook."""
    return _delivery(await _service().send_test(current_actor(), webhook_id)), 202


@blueprint.post("/<int:webhook_id>/deliveries/<int:delivery_id>/resend")
@api_requires(Role.ADMIN)
@validate_response(DeliveryOut, 202)
async def resend(webhook_id: int, delivery_id: int) -> tuple[DeliveryOut, int]:
    """Queue a delivery's event again (the same envelope, a new delivery)."""
    again = await _service().resend(current_actor(), delivery_id, webhook_id=webhook_id)
    return _delivery(again), 202


# ---------------------------------------------------------------- what subscribers receive


def _object(properties: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": required or []}


_STR = {"type": "string"}
_NSTR = {"type": ["string", "null"]}
_INT = {"type": "integer"}
_NINT = {"type": ["integer", "null"]}
_TIME = {"type": ["string", "null"], "format": "date-time"}
_POST = _object(
    {
        "post_id": _INT,
        "account_id": _INT,
        "post_kind": _STR,
        "scheduled_at": _TIME,
        "reason": _NSTR,
    },
    ["post_id", "account_id"],
)
_DRAFT = _object(
    {
        "draft_id": _INT,
        "status": _STR,
        "decided_by": _STR,
        "decided_at": _TIME,
        "sent_text": _NSTR,
    },
    ["draft_id", "status"],
)
DATA: dict[str, dict[str, Any]] = {
    "post.published": _POST,
    "post.failed": _POST,
    "lead.captured": _object(
        {
            "event": _STR,
            "lead_id": _INT,
            "captured_at": _TIME,
            "account": _object({"id": _INT, "ig_id": _STR, "username": _STR}),
            "rule": {"type": ["object", "null"], "properties": {"id": _INT, "name": _STR}},
            "person": _object({"igsid": _STR, "username": _STR}),
            "email": _NSTR,
            "phone": _NSTR,
            "name": _NSTR,
            "custom_fields": {"type": "object"},
        },
        ["lead_id", "account", "person"],
    ),
    "draft.approval_needed": _object(
        {
            "draft_id": _INT,
            "rule_id": _NINT,
            "rule_name": _STR,
            "account_id": _INT,
            "account_username": _STR,
            "username": _STR,
            "channel": _STR,
            "inbound_text": _STR,
            "proposed_text": _STR,
            "expires_at": _TIME,
        },
        ["draft_id", "proposed_text"],
    ),
    "draft.decided": _DRAFT,
    "post.approval_needed": _object(
        {
            "post_id": _INT,
            "account_id": _INT,
            "post_kind": _STR,
            "scheduled_at": _TIME,
            "by": _STR,
        },
        ["post_id", "account_id"],
    ),
    "post.approval_decided": _object(
        {
            "post_id": _INT,
            "account_id": _INT,
            "scheduled_at": _TIME,
            "decision": {"enum": ["approved", "rejected"]},
            "by": _STR,
            "reason": _STR,
        },
        ["post_id", "decision"],
    ),
    "comment.received": _object(
        {
            "account_id": _INT,
            "username": _STR,
            "comment_id": _STR,
            "parent_id": _NSTR,
            "media_id": _STR,
            "text": _STR,
            "from_id": _STR,
            "from_username": _STR,
            "timestamp": _TIME,
        },
        ["account_id", "comment_id", "text"],
    ),
    "account.needs_reconnect": _object(
        {"account_id": _INT, "username": _STR, "reason": _STR}, ["account_id"]
    ),
    "conversation.assigned": _object(
        {
            "conversation_id": _INT,
            "account_id": _INT,
            "username": _STR,
            "person": _STR,
            "assignee_id": _INT,
            "assignee": _STR,
            "assigned_by": _STR,
            "last_message": _STR,
        },
        ["conversation_id", "assignee_id"],
    ),
    **{
        kind: _object(
            {
                "conversation_id": _INT,
                "message_id": _INT,
                "account_id": _INT,
                "username": _STR,
                "direction": _STR,
                "source": _STR,
                "author_id": _INT,
                "text": _STR,
            },
            ["conversation_id", "message_id", "direction", "source"],
        )
        for kind in ("conversation.message_received", "conversation.message_sent")
    },
    **{
        kind: _object(
            {
                "conversation_id": _INT,
                "account_id": _INT,
                "username": _STR,
                "person": _STR,
                "by": _STR,
                "until": _TIME,
            },
            ["conversation_id"],
        )
        for kind in ("conversation.taken_over", "conversation.handed_back")
    },
    hooks.TEST_EVENT: _object({"message": _STR, "sent_by": _STR}, ["message"]),
}

_HEADERS = [
    {
        "name": hooks.SIGNATURE_HEADER,
        "in": "header",
        "required": True,
        "schema": _STR,
        "description": 't=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>" keyed with '
        "the webhook's secret>. Refuse a request whose t is more than 300 s from your clock.",
    },
    {"name": hooks.EVENT_HEADER, "in": "header", "required": True, "schema": _STR},
    {"name": hooks.DELIVERY_HEADER, "in": "header", "required": True, "schema": _STR},
]


def webhooks_document() -> dict[str, Any]:
    """OpenAPI 3.1 ``webhooks``: one POST per event kind, its envelope and data."""
    described = {**hooks.EVENTS, hooks.TEST_EVENT: "The “send test event” button."}
    document: dict[str, Any] = {}
    for kind, meaning in described.items():
        envelope = _object(
            {
                "id": {**_STR, "description": "Unique per event; the same on every retry."},
                "type": {"const": kind},
                "created_at": {"type": "string", "format": "date-time"},
                "workspace_id": _INT,
                "data": DATA[kind],
            },
            ["id", "type", "created_at", "workspace_id", "data"],
        )
        document[kind] = {
            "post": {
                "summary": meaning,
                "parameters": _HEADERS,
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": envelope}},
                },
                "responses": {
                    "2XX": {"description": "Received; any other answer is retried for 24 h."}
                },
            }
        }
    return document
