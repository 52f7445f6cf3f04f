"""The audit log and the event log, filtered and paged for the panel and the API."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Generic, TypeVar

from tortoise.fields import CharField
from tortoise.models import Model
from tortoise.queryset import QuerySet

from core.db.models import AuditLog, EventStatus, InstagramAccount, WebhookEvent
from core.domain.scope import Actor

PAGE_SIZE = 50
LEVELS = ("info", "warning", "error")
# The event log's level of an inbox entry, from its processing status.
EVENT_LEVEL = {
    EventStatus.PENDING: "info",
    EventStatus.PROCESSING: "info",
    EventStatus.DONE: "info",
    EventStatus.IGNORED: "info",
    EventStatus.FAILED: "error",
    EventStatus.WAITING: "warning",
    EventStatus.EXPIRED: "warning",
}

T = TypeVar("T", bound=Model)


@dataclass(frozen=True)
class LogFilter:
    account_id: int | None = None
    kind: str = ""
    level: str = ""
    since: datetime | None = None
    until: datetime | None = None


@dataclass
class Page(Generic[T]):
    items: list[T]
    number: int
    has_next: bool
    kinds: list[str] = field(default_factory=list)

    @property
    def has_previous(self) -> bool:
        return self.number > 1


async def _page(query: QuerySet[T], number: int) -> tuple[list[T], bool]:
    number = max(number, 1)
    rows = await query.offset((number - 1) * PAGE_SIZE).limit(PAGE_SIZE + 1)
    return rows[:PAGE_SIZE], len(rows) > PAGE_SIZE


async def audit_page(actor: Actor, wanted: LogFilter, number: int = 1) -> Page[AuditLog]:
    """Audit entries of the workspace, newest first; ``kind`` is an action or its prefix."""
    query = AuditLog.filter(workspace_id=actor.workspace_id)
    if wanted.account_id is not None:
        query = query.filter(account_id=wanted.account_id)
    if wanted.kind:
        query = query.filter(action__startswith=wanted.kind)
    if wanted.level:
        query = query.filter(level=wanted.level)
    if wanted.since is not None:
        query = query.filter(created_at__gte=wanted.since)
    if wanted.until is not None:
        query = query.filter(created_at__lt=wanted.until)
    items, has_next = await _page(query.order_by("-created_at", "-id"), number)
    actions = (
        await AuditLog.filter(workspace_id=actor.workspace_id)
        .distinct()
        .values_list("action", flat=True)
    )
    kinds = sorted({str(action).split(".", 1)[0] for action in actions})
    return Page(items=items, number=max(number, 1), has_next=has_next, kinds=kinds)


async def event_page(actor: Actor, wanted: LogFilter, number: int = 1) -> Page[WebhookEvent]:
    """Webhook events received for the workspace's accounts, newest first."""
    accounts = InstagramAccount.filter(workspace_id=actor.workspace_id)
    if wanted.account_id is not None:
        accounts = accounts.filter(id=wanted.account_id)
    ig_ids = [str(ig_id) for ig_id in await accounts.values_list("ig_id", flat=True)]
    query = WebhookEvent.filter(account_ig_id__in=ig_ids)
    if wanted.kind:
        # A kind longer than the column holds matches nothing (and may not be sent as a value).
        column = WebhookEvent._meta.fields_map["kind"]
        assert isinstance(column, CharField)
        fits = len(wanted.kind) <= column.max_length
        query = query.filter(kind=wanted.kind) if fits else query.filter(id__in=[])
    if wanted.level:
        statuses = [status for status, level in EVENT_LEVEL.items() if level == wanted.level]
        query = query.filter(status__in=statuses)
    if wanted.since is not None:
        query = query.filter(received_at__gte=wanted.since)
    if wanted.until is not None:
        query = query.filter(received_at__lt=wanted.until)
    items, has_next = await _page(query.order_by("-received_at", "-id"), number)
    found = (
        await WebhookEvent.filter(account_ig_id__in=ig_ids)
        .distinct()
        .values_list("kind", flat=True)
    )
    return Page(
        items=items, number=max(number, 1), has_next=has_next, kinds=sorted(map(str, found))
    )
