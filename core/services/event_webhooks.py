"""Event webhooks: a workspace's subscriptions, and each event delivered to each, once.

A subscription names a URL, the event kinds it wants and a signing secret (stored encrypted
with the install's SecretBox, shown once when made). When a domain event is delivered
(``jobs/notifications.py``), :meth:`EventWebhooks.plan` adds one ``EventWebhookDelivery``
row per (subscription, event) — unique, so planning twice plans once — and queues the
``deliver_event_webhook`` job for each. A delivery is claimed with a compare-and-set on its
attempts before it is sent, signed ``X-Reelay-Signature: t=…,v1=…``
(``core.domain.event_webhooks``), POSTed through the public-address guard
(``WebhookPoster``, the lead webhooks' poster), and retried with the one back-off for
``RETRY_FOR`` (24 h) after the event. The envelope's ``id`` is the same on every attempt, so
a receiver that got an attempt whose answer was lost can tell a repeat. A re-send or a test
event is a new delivery row; the log keeps every one. Secrets never reach a log line.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from tortoise.exceptions import IntegrityError
from tortoise.expressions import Q

from core.db.models import (
    DomainEvent,
    EventWebhook,
    EventWebhookDelivery,
    InstagramAccount,
    WebhookDeliveryStatus,
)
from core.domain import alerts, event_webhooks as hooks
from core.domain.backoff import backoff_s
from core.domain.scope import Actor, Role, instance_level
from core.domain.webhooks import InboundEvent
from core.errors import Forbidden, NotFound, ValidationFailed
from core.ports.clock import Clock
from core.ports.outgoing_webhooks import WebhookDeliveryError, WebhookPoster
from core.ports.queue import JobQueue
from core.ports.secrets import SecretStore
from core.services import audit

logger = logging.getLogger(__name__)

DELIVER_JOB = "deliver_event_webhook"
RETRY_FOR = timedelta(hours=24)
BACKOFF_BASE_S = 30.0
BACKOFF_MAX_S = 3600.0
# A delivery claimed this long ago by a worker that vanished is tried again.
STALE_SENDING = timedelta(minutes=5)
SWEEP_BATCH = 200
MANAGER_ROLE = Role.ADMIN
MAX_URL = 2048


@dataclass(frozen=True)
class NewWebhook:
    webhook: EventWebhook
    # Shown once: only its encryption is stored.
    secret: str


def _check_role(actor: Actor) -> None:
    if not actor.allows(MANAGER_ROLE):
        raise Forbidden("Only an admin or owner manages event webhooks.")


class EventWebhooks:
    def __init__(
        self,
        *,
        queue: JobQueue,
        clock: Clock,
        poster: WebhookPoster,
        secrets: SecretStore,
        backoff_base_s: float = BACKOFF_BASE_S,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self.queue = queue
        self.clock = clock
        self.poster = poster
        self._secrets = secrets
        self._backoff_base_s = backoff_base_s
        self._jitter = jitter

    # ------------------------------------------------------------ subscriptions

    def _checked(self, url: str, events: Sequence[str]) -> tuple[str, list[str]]:
        problems: dict[str, str] = {}
        url = url.strip()
        if not url.lower().startswith(("http://", "https://")) or len(url) > MAX_URL:
            problems["url"] = "An http:// or https:// address of at most 2048 characters."
        elif (refused := self.poster.refusal(url)) is not None:
            problems["url"] = refused
        unknown = sorted(set(events) - set(hooks.EVENTS))
        if unknown:
            problems["events"] = f"Unknown event kinds: {', '.join(unknown)}."
        elif not events:
            problems["events"] = "Choose at least one event."
        if problems:
            raise ValidationFailed("The webhook is not valid.", problems)
        return url, [kind for kind in hooks.EVENTS if kind in set(events)]

    async def create(
        self, actor: Actor, *, url: str, events: Sequence[str], description: str = ""
    ) -> NewWebhook:
        """A new, active subscription and its signing secret (shown this once)."""
        _check_role(actor)
        url, kinds = self._checked(url, events)
        secret = hooks.new_secret()
        webhook = await EventWebhook.create(
            workspace_id=actor.workspace_id,
            url=url,
            events=kinds,
            description=description.strip()[:200],
            secret_encrypted=self._secrets.encrypt(secret),
            created_by=actor.label[:120],
        )
        await audit.record(
            "event_webhook.created",
            actor=actor.label,
            workspace_id=actor.workspace_id,
            target_type="event_webhook",
            target_id=webhook.id,
            url=url,
            events=kinds,
        )
        return NewWebhook(webhook, secret)

    async def subscriptions(self, actor: Actor) -> list[EventWebhook]:
        """The workspace's subscriptions, oldest first."""
        return await EventWebhook.filter(workspace_id=actor.workspace_id).order_by("id")

    async def get(self, actor: Actor, webhook_id: int) -> EventWebhook:
        found = await EventWebhook.get_or_none(id=webhook_id, workspace_id=actor.workspace_id)
        if found is None:
            raise NotFound(f"event webhook {webhook_id} does not exist")
        return found

    async def update(
        self,
        actor: Actor,
        webhook_id: int,
        *,
        url: str,
        events: Sequence[str],
        active: bool,
        description: str = "",
    ) -> EventWebhook:
        """Change a subscription's URL, events, state and description (not its secret)."""
        _check_role(actor)
        webhook = await self.get(actor, webhook_id)
        url, kinds = self._checked(url, events)
        await EventWebhook.filter(id=webhook.id, workspace_id=actor.workspace_id).update(
            url=url, events=kinds, active=active, description=description.strip()[:200]
        )
        await audit.record(
            "event_webhook.changed",
            actor=actor.label,
            workspace_id=actor.workspace_id,
            target_type="event_webhook",
            target_id=webhook.id,
            url=url,
            events=kinds,
            active=active,
        )
        return await self.get(actor, webhook_id)

    async def delete(self, actor: Actor, webhook_id: int) -> None:
        """Remove a subscription and its delivery log."""
        _check_role(actor)
        webhook = await self.get(actor, webhook_id)
        await EventWebhook.filter(id=webhook.id, workspace_id=actor.workspace_id).delete()
        await audit.record(
            "event_webhook.deleted",
            actor=actor.label,
            workspace_id=actor.workspace_id,
            target_type="event_webhook",
            target_id=webhook.id,
            url=webhook.url,
        )

    # ------------------------------------------------------------ the delivery log

    async def deliveries(
        self, actor: Actor, webhook_id: int, *, limit: int = 50, before_id: int | None = None
    ) -> list[EventWebhookDelivery]:
        """A subscription's deliveries, newest first."""
        webhook = await self.get(actor, webhook_id)
        query = EventWebhookDelivery.filter(webhook_id=webhook.id)
        if before_id is not None:
            query = query.filter(id__lt=before_id)
        return await query.order_by("-id").limit(limit)

    async def resend(
        self, actor: Actor, delivery_id: int, *, webhook_id: int | None = None
    ) -> EventWebhookDelivery:
        """Send a delivery's event again, as a new delivery (the same envelope and id); with
        ``webhook_id``, only a delivery of that subscription."""
        _check_role(actor)
        query = EventWebhookDelivery.filter(
            id=delivery_id, webhook__workspace_id=actor.workspace_id
        )
        if webhook_id is not None:
            query = query.filter(webhook_id=webhook_id)
        earlier = await query.first()
        if earlier is None:
            raise NotFound(f"delivery {delivery_id} does not exist")
        return await self._start(earlier.webhook_id, None, earlier.kind, earlier.payload)

    async def send_test(self, actor: Actor, webhook_id: int) -> EventWebhookDelivery:
        """A ``webhook.test`` event to one subscription, whatever events it asked for."""
        _check_role(actor)
        webhook = await self.get(actor, webhook_id)
        now = self.clock.now()
        document = hooks.envelope(
            f"evt_test_{int(now.timestamp() * 1000)}",
            hooks.TEST_EVENT,
            now,
            actor.workspace_id,
            {"message": "A test event from Reelay.", "sent_by": actor.label},
        )
        return await self._start(webhook.id, None, hooks.TEST_EVENT, document)

    async def _start(
        self, webhook_id: int, event_id: int | None, kind: str, document: dict[str, object]
    ) -> EventWebhookDelivery:
        delivery = await EventWebhookDelivery.create(
            webhook_id=webhook_id, event_id=event_id, kind=kind, payload=document
        )
        await self.queue.enqueue(DELIVER_JOB, delivery.id, job_id=f"hook:{delivery.id}")
        return delivery

    # ------------------------------------------------------------ planning and sending

    @instance_level("a job: plans the webhook deliveries of one event, by id")
    async def plan(self, event_id: int) -> int:
        """One delivery per subscription that wants the event (once, however often called)."""
        event = await DomainEvent.get_or_none(id=event_id)
        if event is None or event.kind not in hooks.EVENTS:
            return 0
        planned = 0
        wanting = await EventWebhook.filter(workspace_id=event.workspace_id, active=True)
        for webhook in wanting:
            if event.kind not in webhook.events:
                continue
            document = hooks.envelope(
                f"evt_{event.id}", event.kind, event.created_at, event.workspace_id, event.payload
            )
            try:
                await self._start(webhook.id, event.id, event.kind, document)
            except IntegrityError:
                continue  # planned already
            planned += 1
        return planned

    @instance_level("a job: one attempt of one delivery, by id, from the queue")
    async def deliver(self, delivery_id: int) -> WebhookDeliveryStatus | None:
        """Send a delivery once it is claimed; returns its status after the attempt."""
        item = await EventWebhookDelivery.get_or_none(id=delivery_id).prefetch_related("webhook")
        if item is None:
            return None
        now = self.clock.now()
        stale = item.status is WebhookDeliveryStatus.SENDING and (
            item.next_attempt_at is None or item.next_attempt_at <= now - STALE_SENDING
        )
        if item.status is not WebhookDeliveryStatus.PENDING and not stale:
            return item.status
        if item.next_attempt_at is not None and item.next_attempt_at > now and not stale:
            return item.status  # an early job: the one queued for the retry time sends it
        webhook: EventWebhook = item.webhook
        if not webhook.active:
            await self._fail(item, "the subscription is switched off")
            return WebhookDeliveryStatus.FAILED
        attempt = item.attempts + 1
        claimed = await EventWebhookDelivery.filter(
            id=item.id, status=item.status, attempts=item.attempts
        ).update(status=WebhookDeliveryStatus.SENDING, attempts=attempt, next_attempt_at=now)
        if not claimed:
            return None
        body = hooks.body_of(item.payload)
        headers = {
            hooks.SIGNATURE_HEADER: hooks.signature(
                self._secrets.decrypt(webhook.secret_encrypted), int(now.timestamp()), body
            ),
            hooks.EVENT_HEADER: item.kind,
            hooks.DELIVERY_HEADER: str(item.id),
        }
        try:
            status = await self.poster.post(webhook.url, body, headers)
        except WebhookDeliveryError as exc:
            return await self._failed_attempt(item, attempt, exc, now)
        await EventWebhookDelivery.filter(id=item.id).update(
            status=WebhookDeliveryStatus.DELIVERED,
            response_status=status,
            delivered_at=self.clock.now(),
            error="",
        )
        logger.info(
            "event webhook delivery %s (%s, webhook %s) delivered on attempt %d",
            item.id,
            item.kind,
            webhook.id,
            attempt,
        )
        return WebhookDeliveryStatus.DELIVERED

    async def _failed_attempt(
        self,
        item: EventWebhookDelivery,
        attempt: int,
        exc: WebhookDeliveryError,
        now: datetime,
    ) -> WebhookDeliveryStatus:
        delay = backoff_s(
            attempt,
            base_s=self._backoff_base_s,
            cap_s=BACKOFF_MAX_S,
            spread=(0.75, 1.25),
            rng=self._jitter,
        )
        when = now + timedelta(seconds=delay)
        if when > item.created_at + RETRY_FOR:
            await self._fail(item, f"{attempt} attempts over 24 hours failed, last: {exc.message}")
            return WebhookDeliveryStatus.FAILED
        await EventWebhookDelivery.filter(id=item.id).update(
            status=WebhookDeliveryStatus.PENDING,
            next_attempt_at=when,
            response_status=exc.status,
            error=exc.message[:2000],
        )
        logger.info(
            "event webhook delivery %s failed (%s), attempt %d, retry in %.0fs",
            item.id,
            exc.message,
            attempt,
            delay,
        )
        await self.queue.enqueue(
            DELIVER_JOB, item.id, job_id=f"hook:{item.id}:{attempt}", defer_until=when
        )
        return WebhookDeliveryStatus.PENDING

    async def _fail(self, item: EventWebhookDelivery, reason: str) -> None:
        await EventWebhookDelivery.filter(id=item.id).update(
            status=WebhookDeliveryStatus.FAILED, error=reason[:2000]
        )
        await audit.record(
            "event_webhook.failed",
            actor="reelay",
            workspace_id=item.webhook.workspace_id,
            target_type="event_webhook",
            target_id=item.webhook_id,
            level="error",
            delivery=item.id,
            kind=item.kind,
            error=reason[:500],
        )
        logger.warning("event webhook delivery %s given up: %s", item.id, reason)

    @instance_level("a cron over every workspace's deliveries whose job was lost")
    async def sweep(self) -> int:
        """Queue the deliveries that are due but have no job (Redis flushed, worker died)."""
        now = self.clock.now()
        due = (
            await EventWebhookDelivery.filter(
                status=WebhookDeliveryStatus.PENDING, created_at__gte=now - RETRY_FOR
            )
            .filter(
                Q(next_attempt_at__lte=now)
                | Q(next_attempt_at__isnull=True, created_at__lte=now - timedelta(minutes=1))
            )
            .order_by("id")
            .limit(SWEEP_BATCH)
        )
        stale = (
            await EventWebhookDelivery.filter(
                status=WebhookDeliveryStatus.SENDING, next_attempt_at__lte=now - STALE_SENDING
            )
            .order_by("id")
            .limit(SWEEP_BATCH)
        )
        queued = 0
        minute = int(now.timestamp()) // 60
        for item in [*due, *stale]:
            if await self.queue.enqueue(
                DELIVER_JOB, item.id, job_id=f"hook:{item.id}:sweep:{minute}"
            ):
                queued += 1
        return queued


@instance_level("the engine, for a comment on any workspace's account")
async def announce_comment(account: InstagramAccount, event: InboundEvent) -> None:
    """Record ``comment.received`` when one of the workspace's webhooks wants it (only
    then: every comment would otherwise add a row nobody reads)."""
    wanted = await EventWebhook.filter(workspace_id=account.workspace_id, active=True).values_list(
        "events", flat=True
    )
    if not any(alerts.COMMENT_RECEIVED in kinds for kinds in wanted):
        return
    await DomainEvent.create(
        workspace_id=account.workspace_id,
        kind=alerts.COMMENT_RECEIVED,
        payload={
            "account_id": account.id,
            "username": account.username,
            "comment_id": event.comment_id,
            "parent_id": event.parent_id or None,
            "media_id": event.media_id,
            "text": event.text,
            "from_id": event.sender_id,
            "from_username": event.sender_username,
            "timestamp": event.timestamp.isoformat() if event.timestamp else None,
        },
    )
