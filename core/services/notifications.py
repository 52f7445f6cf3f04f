"""Delivering domain events to every linked chat (and by email where an address is set).

Where delivery runs: in the worker. ``deliver_event`` is an arq job; a cron sweep picks up
events recorded by any service (they only insert a ``DomainEvent`` row) and deliveries due
for a retry. The worker sends through the notifiers the bootstrap gives its ``Delivery``
(Telegram over the Bot API, Discord over its REST API), so alerts go out even when
``reelay bot`` is not running; the bot process only receives commands and button presses.

Each (event, destination) is one ``NotificationDelivery`` row, claimed with a conditional
update before sending, so a chat gets an event once even with several workers. Failures are
retried with exponential back-off and jitter; a platform's retry-after is respected; a chat
that is gone (bot removed, chat deleted) has its link disabled with an audit entry instead
of being retried.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from tortoise.exceptions import IntegrityError
from tortoise.expressions import Q

from core.bootstrap import Container
from core.db.models import (
    AutomationRule,
    ChatIdentity,
    ChatLink,
    DeliveryStatus,
    DomainEvent,
    InstagramAccount,
    Lead,
    MediaInsight,
    NotificationDelivery,
    Platform,
    Post,
    ReplyDraft,
    User,
    WebhookEvent,
)
from core.domain import alerts
from core.domain.backoff import backoff_s
from core.domain.chat import Reply
from core.domain.followers import follower_label
from core.domain.rule_definition import RuleDefinition
from core.domain.scope import Actor, instance_level
from core.errors import ReelayError
from core.ports.chat_threads import ChatThreads
from core.ports.mailer import Mailer, MailError
from core.ports.notifier import (
    ChatDeliveryError,
    ChatGone,
    ChatRateLimited,
    Notifier,
    PersonalNotifier,
)
from core.services import audit, chat_topics, followers

logger = logging.getLogger(__name__)

DELIVER_JOB = "deliver_event"
MAX_ATTEMPTS = 8
BACKOFF_BASE_S = 10.0
BACKOFF_MAX_S = 3600.0
# A delivery claimed this long ago by a worker that vanished is tried again.
STALE_SENDING = timedelta(minutes=5)
# Events older than this are not swept up any more (a worker down for days does not flood chats).
SWEEP_WINDOW = timedelta(days=2)
SWEEP_BATCH = 200
CHAT = "chat"
EMAIL = "email"
PERSON = "person"  # one member's own chat account (target "<platform>:<user id>")


@dataclass
class Delivery:
    """The notifiers and mailer one process delivers with (chosen by the bootstrap)."""

    notifiers: dict[Platform, Notifier] = field(default_factory=dict)
    mailer: Mailer | None = None
    # Conversations' topics and threads in the mirror chats (the same bots).
    threads: dict[Platform, ChatThreads] = field(default_factory=dict)


# ---------------------------------------------------------------- recording


@instance_level("records what a webhook- or job-driven engine raised for its workspace")
async def record_event(
    container: Container, workspace_id: int, kind: str, payload: dict[str, Any]
) -> DomainEvent:
    """Store an event and queue its delivery at once (the sweep would find it too)."""
    event = await DomainEvent.create(workspace_id=workspace_id, kind=kind, payload=payload)
    await container.queue.enqueue(DELIVER_JOB, event.id, job_id=f"notify:{event.id}")
    return event


# ---------------------------------------------------------------- delivering


@instance_level("a job: delivers one event, by id, from the queue")
async def deliver(container: Container, delivery: Delivery, event_id: int) -> None:
    """Send ``event_id`` to each destination not yet served; schedule retries for the rest."""
    event = await DomainEvent.get_or_none(id=event_id).prefetch_related("workspace")
    if event is None or event.delivered_at is not None:
        return
    now = container.clock.now()
    await _plan(event)
    ctx = alerts.AlertContext(
        timezone=event.workspace.timezone,
        panel_url=container.settings.base_url,
        workspace=event.workspace.name,
        now=container.clock.now(),
    )
    facts = await _gather_facts(event)
    due = (
        await NotificationDelivery.filter(event_id=event.id)
        .filter(
            Q(status=DeliveryStatus.PENDING, next_attempt_at__isnull=True)
            | Q(status=DeliveryStatus.PENDING, next_attempt_at__lte=now)
            | Q(status=DeliveryStatus.SENDING, next_attempt_at__lte=now - STALE_SENDING)
        )
        .order_by("id")
    )
    for item in due:
        claimed = await NotificationDelivery.filter(
            id=item.id, status=item.status, attempts=item.attempts
        ).update(status=DeliveryStatus.SENDING, attempts=item.attempts + 1, next_attempt_at=now)
        if not claimed:
            continue
        item.attempts += 1
        await _deliver_one(container, delivery, event, item, facts, ctx, now)
    await _finish(container, event, now)


async def _plan(event: DomainEvent) -> None:
    """Create the event's delivery rows once: every active chat, plus email where set."""
    if await NotificationDelivery.filter(event_id=event.id).exists():
        return
    rows: list[tuple[str, str, int | None]] = [*await chat_topics.planned(event)]
    if event.kind in alerts.DRAFT_UPDATES:
        draft = await ReplyDraft.get_or_none(
            id=event.payload.get("draft_id"), workspace_id=event.workspace.id
        )
        for ref in draft.chat_refs if draft else []:
            # Only chats still linked to the draft's workspace: one may have moved since.
            link = await ChatLink.get_or_none(
                workspace_id=event.workspace.id,
                platform=ref.get("platform"),
                chat_id=str(ref.get("chat_id")),
                active=True,
            )
            if link is not None:
                rows.append((CHAT, f"{link.id}:{ref.get('message_id')}", link.id))
    elif event.kind == alerts.CONVERSATION_ASSIGNED:
        # "Assigned to you": to the assignee's own chat accounts, not to the team's chats.
        for identity in await ChatIdentity.filter(user_id=event.payload.get("assignee_id") or 0):
            target = f"{identity.platform.value}:{identity.platform_user_id}"
            rows.append((PERSON, target, None))
    elif event.kind not in alerts.WEBHOOK_ONLY:
        for link in await ChatLink.filter(workspace_id=event.workspace.id, active=True):
            rows.append((CHAT, str(link.id), link.id))
        if event.kind in alerts.EMAIL_KINDS:
            rows += [(EMAIL, address, None) for address in await _email_addresses(event)]
    for channel, target, link_id in rows:
        try:
            await NotificationDelivery.create(
                event_id=event.id, channel=channel, target=target, chat_link_id=link_id
            )
        except IntegrityError:
            continue  # planned concurrently by another worker


async def _email_addresses(event: DomainEvent) -> list[str]:
    addresses: list[str] = []
    if event.workspace.notification_email:
        addresses.append(event.workspace.notification_email)
    rule_id = event.payload.get("rule_id")
    if rule_id is None and event.payload.get("lead_id"):
        lead = await Lead.get_or_none(id=event.payload["lead_id"])
        rule_id = lead.rule_id if lead else None
    if rule_id is not None:
        rule = await AutomationRule.get_or_none(id=rule_id, workspace_id=event.workspace.id)
        rule_email = RuleDefinition.from_stored(rule).notification_email if rule else None
        if rule_email and rule_email not in addresses:
            addresses.append(rule_email)
    return addresses


async def _deliver_one(
    container: Container,
    delivery: Delivery,
    event: DomainEvent,
    item: NotificationDelivery,
    facts: Mapping[str, Any],
    ctx: alerts.AlertContext,
    now: datetime,
) -> None:
    try:
        if item.channel == EMAIL:
            await _send_email(delivery, event, item, facts, ctx)
            message_id = None
        elif item.channel == chat_topics.MIRROR:
            message_id = await _post_in_thread(delivery, event, item, now)
        else:
            message_id = await _send_chat(delivery, event, item, facts, ctx)
    except _Skipped:
        return
    except ChatGone as exc:
        await _chat_gone(event, item, str(exc))
    except ChatRateLimited as exc:
        wait = timedelta(seconds=max(exc.retry_after_s, 1.0))
        await _retry_later(item, now + wait, f"rate limited: {exc}", count_attempt=False)
    except (ChatDeliveryError, MailError) as exc:
        await _failed_attempt(event, item, now, str(exc))
    else:
        await NotificationDelivery.filter(id=item.id).update(
            status=DeliveryStatus.SENT, sent_at=now, message_id=message_id, error=""
        )


async def _send_chat(
    delivery: Delivery,
    event: DomainEvent,
    item: NotificationDelivery,
    facts: Mapping[str, Any],
    ctx: alerts.AlertContext,
) -> str | None:
    if item.channel == PERSON:
        return await _send_to_person(delivery, event, item, facts, ctx)
    link = await ChatLink.get_or_none(id=item.chat_link_id)
    if link is None or not link.active:
        await NotificationDelivery.filter(id=item.id).update(
            status=DeliveryStatus.SKIPPED, error="the chat was unlinked"
        )
        raise _Skipped()
    notifier = delivery.notifiers.get(link.platform)
    if notifier is None:
        raise ChatDeliveryError(f"no {link.platform.value} bot is configured in this process")
    if event.kind in alerts.DRAFT_UPDATES:
        message_id = item.target.split(":", 1)[1]
        await notifier.edit(link.chat_id, message_id, _draft_reply(facts, ctx))
        return message_id
    if event.kind == alerts.DRAFT_APPROVAL_NEEDED and "draft" in facts:
        sent = await notifier.send(link.chat_id, _draft_reply(facts, ctx))
        await _remember_chat_message(facts["draft"].id, link, sent)
        return sent
    return await notifier.send(link.chat_id, alerts.render_event(event.kind, facts, ctx))


async def _post_in_thread(
    delivery: Delivery, event: DomainEvent, item: NotificationDelivery, now: datetime
) -> str:
    link = await ChatLink.get_or_none(id=item.chat_link_id, active=True)
    message_id = (
        await chat_topics.deliver(delivery.threads, event, link, now) if link is not None else None
    )
    if message_id is None:
        await NotificationDelivery.filter(id=item.id).update(
            status=DeliveryStatus.SKIPPED, error="the chat or the conversation is gone"
        )
        raise _Skipped()
    return message_id


async def _send_to_person(
    delivery: Delivery,
    event: DomainEvent,
    item: NotificationDelivery,
    facts: Mapping[str, Any],
    ctx: alerts.AlertContext,
) -> str:
    """A message to one person's own chat account (``person`` deliveries)."""
    platform, _, user_id = item.target.partition(":")
    notifier = delivery.notifiers.get(Platform(platform))
    if notifier is None:
        raise ChatDeliveryError(f"no {platform} bot is configured in this process")
    reply = alerts.render_event(event.kind, {**facts, "personal": True}, ctx)
    if isinstance(notifier, PersonalNotifier):
        return await notifier.send_to_person(user_id, reply)
    return await notifier.send(user_id, reply)


class _Skipped(ReelayError):
    """The destination went away before sending: nothing to retry."""


def _draft_reply(facts: Mapping[str, Any], ctx: alerts.AlertContext) -> Reply:
    draft: alerts.DraftFacts = facts["draft"]
    return alerts.render_draft(draft, ctx)


async def _remember_chat_message(draft_id: int, link: ChatLink, message_id: str) -> None:
    """Store where the draft was shown, so a decision anywhere can edit it there."""
    draft = await ReplyDraft.get(id=draft_id)
    ref = {"platform": link.platform.value, "chat_id": link.chat_id, "message_id": message_id}
    if ref not in draft.chat_refs:
        draft.chat_refs = [*draft.chat_refs, ref]
        await draft.save(update_fields=["chat_refs"])


async def _send_email(
    delivery: Delivery,
    event: DomainEvent,
    item: NotificationDelivery,
    facts: Mapping[str, Any],
    ctx: alerts.AlertContext,
) -> None:
    if delivery.mailer is None:
        raise MailError("SMTP is not configured (SMTP_HOST is empty)")
    reply = alerts.render_event(event.kind, facts, ctx)
    await delivery.mailer.send(
        item.target, alerts.email_subject(event.kind, facts, ctx), alerts.email_body(reply)
    )


async def _chat_gone(event: DomainEvent, item: NotificationDelivery, reason: str) -> None:
    await NotificationDelivery.filter(id=item.id).update(
        status=DeliveryStatus.SKIPPED, error=f"chat gone: {reason}"
    )
    if item.chat_link_id is None:  # a person's own chat: nothing linked to disable
        return
    disabled = await ChatLink.filter(id=item.chat_link_id, active=True).update(active=False)
    if disabled:
        link = await ChatLink.get(id=item.chat_link_id)
        await audit.record(
            "chat.link_disabled",
            actor="reelay",
            workspace_id=link.workspace_id,
            target_type="chat",
            target_id=link.id,
            level="warning",
            platform=link.platform.value,
            title=link.title,
            reason=reason,
        )
        logger.warning("chat link %s disabled: %s", link.id, reason)
    # other pending deliveries to the same chat would fail the same way
    await NotificationDelivery.filter(
        chat_link_id=item.chat_link_id, status=DeliveryStatus.PENDING
    ).update(status=DeliveryStatus.SKIPPED, error=f"chat gone: {reason}")


async def _retry_later(
    item: NotificationDelivery, at: datetime, error: str, *, count_attempt: bool
) -> None:
    attempts = item.attempts if count_attempt else max(item.attempts - 1, 0)
    await NotificationDelivery.filter(id=item.id).update(
        status=DeliveryStatus.PENDING, next_attempt_at=at, error=error[:2000], attempts=attempts
    )


async def _failed_attempt(
    event: DomainEvent, item: NotificationDelivery, now: datetime, error: str
) -> None:
    if item.attempts >= MAX_ATTEMPTS:
        await NotificationDelivery.filter(id=item.id).update(
            status=DeliveryStatus.FAILED, error=error[:2000]
        )
        await audit.record(
            "notification.failed",
            actor="reelay",
            workspace_id=event.workspace.id,
            target_type="event",
            target_id=event.id,
            level="error",
            kind=event.kind,
            channel=item.channel,
            attempts=item.attempts,
            error=error[:500],
        )
        return
    delay = backoff_s(item.attempts, base_s=BACKOFF_BASE_S, cap_s=BACKOFF_MAX_S, spread=(0.8, 1.2))
    logger.info(
        "delivery %s of event %s failed (attempt %s), retry in %.0fs: %s",
        item.id,
        event.id,
        item.attempts,
        delay,
        error,
    )
    await _retry_later(item, now + timedelta(seconds=delay), error, count_attempt=True)


async def _finish(container: Container, event: DomainEvent, now: datetime) -> None:
    """Mark the event delivered when nothing is left, else queue the next retry."""
    waiting = await NotificationDelivery.filter(
        event_id=event.id, status__in=[DeliveryStatus.PENDING, DeliveryStatus.SENDING]
    ).order_by("next_attempt_at")
    if not waiting:
        await DomainEvent.filter(id=event.id, delivered_at__isnull=True).update(delivered_at=now)
        return
    soonest = min((item.next_attempt_at or now) for item in waiting)
    if soonest <= now:
        soonest = now + timedelta(seconds=1)
    await container.queue.enqueue(
        DELIVER_JOB,
        event.id,
        job_id=f"notify:{event.id}:{int(soonest.timestamp())}",
        defer_by_s=(soonest - now).total_seconds(),
    )


@instance_level("a cron over every workspace's undelivered events")
async def sweep(container: Container) -> int:
    """Queue delivery of recent undelivered events that are new or have a retry due."""
    now = container.clock.now()
    events = (
        await DomainEvent.filter(delivered_at__isnull=True, created_at__gte=now - SWEEP_WINDOW)
        .order_by("id")
        .limit(SWEEP_BATCH)
    )
    queued = 0
    for event in events:
        rows = await NotificationDelivery.filter(event_id=event.id)
        due = not rows or any(
            (row.status is DeliveryStatus.PENDING and (row.next_attempt_at or now) <= now)
            or (
                row.status is DeliveryStatus.SENDING
                and (row.next_attempt_at or now) <= now - STALE_SENDING
            )
            for row in rows
        )
        if due and await container.queue.enqueue(
            DELIVER_JOB, event.id, job_id=f"notify:{event.id}:sweep:{int(now.timestamp()) // 60}"
        ):
            queued += 1
    return queued


# ---------------------------------------------------------------- facts


async def _gather_facts(event: DomainEvent) -> dict[str, Any]:
    """The event's payload plus what it names: post, lead, account, draft."""
    facts: dict[str, Any] = dict(event.payload)
    facts["alert_id"] = event.id  # the buttons of a card act on its event
    workspace_id = event.workspace.id
    # the lead document nests what it names: flatten it for wording
    if isinstance(facts.get("account"), dict):
        facts.setdefault("account_id", facts["account"].get("id"))
        facts.setdefault("username", facts["account"].get("username"))
    if isinstance(facts.get("rule"), dict):
        facts.setdefault("rule_id", facts["rule"].get("id"))
        facts["rule"] = facts["rule"].get("name") or f"rule #{facts['rule'].get('id')}"
    actor = Actor.system(workspace_id)
    if isinstance(facts.get("person"), dict):
        person = facts["person"]
        facts["person"] = await followers.label(
            actor,
            _int(facts.get("account_id")),
            str(person.get("igsid") or ""),
            str(person.get("username") or ""),
        )
    elif facts.get("igsid") and not facts.get("person"):
        facts["person"] = await followers.label(
            actor,
            _int(facts.get("account_id")),
            str(facts["igsid"]),
            str(facts.get("person_username") or ""),
        )
    if facts.get("post_id"):
        post = await Post.get_or_none(id=facts["post_id"], workspace_id=workspace_id)
        if post is not None:
            facts.setdefault("permalink", post.permalink)
            facts.setdefault("reason", post.last_error or None)
            facts.setdefault("account_id", post.account_id)
            flat = " ".join(post.caption.split())
            facts["caption_snippet"] = flat if len(flat) <= 80 else flat[:79] + "…"
    if facts.get("lead_id"):
        lead = await Lead.get_or_none(id=facts["lead_id"], workspace_id=workspace_id)
        if lead is not None:
            await lead.fetch_related("rule")
            fields = {"name": lead.name, "email": lead.email, "phone": lead.phone}
            fields.update({str(k): v for k, v in lead.custom_fields.items()})
            facts["fields"] = fields
            facts["person"] = await followers.label(
                actor, lead.account_id, lead.igsid, lead.username
            )
            facts.setdefault("account_id", lead.account_id)
            if lead.rule is not None:
                facts["rule"] = lead.rule.name or f"rule #{lead.rule.id}"
    if facts.get("account_id") and not facts.get("username"):
        account = await InstagramAccount.get_or_none(
            id=facts["account_id"], workspace_id=workspace_id
        )
        if account is not None:
            facts["username"] = account.username
    if facts.get("draft_id"):
        draft = await _draft_facts(int(facts["draft_id"]), workspace_id)
        if draft is not None:
            facts["draft"] = draft
    return facts


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) else None


async def draft_facts(actor: Actor, draft_id: int) -> alerts.DraftFacts | None:
    """What a chat shows of one of the workspace's reply drafts; None when there is none."""
    return await _draft_facts(draft_id, actor.workspace_id)


def _person(user: User) -> str:
    """A teammate as chats name them: "Olga (olga@example.com)", or the email alone."""
    return f"{user.name} ({user.email})" if user.name else user.email


async def _draft_facts(draft_id: int, workspace_id: int) -> alerts.DraftFacts | None:
    draft = await ReplyDraft.get_or_none(id=draft_id, workspace_id=workspace_id)
    if draft is None:
        return None
    await draft.fetch_related("rule", "conversation", "decided_by")
    person = follower_label(
        followers.follower_of(draft.conversation, igsid=str(draft.target.get("igsid") or ""))
    )
    channel = "comment" if draft.target.get("comment_id") else "DM"
    return alerts.DraftFacts(
        id=draft.id,
        status=draft.status.value,
        inbound_text=draft.inbound_text,
        proposed_text=draft.proposed_text,
        final_text=draft.final_text,
        channel=channel,
        person=person,
        rule=(draft.rule.name or f"#{draft.rule.id}") if draft.rule else "",
        decided_by=_person(draft.decided_by) if draft.decided_by else "",
        decided_at=draft.decided_at,
        post_link=await _post_link(draft),
        window_closes_at=draft.expires_at,
    )


async def _post_link(draft: ReplyDraft) -> str:
    """The permalink of the post a drafted comment reply is under ("" for a DM or unknown)."""
    event_key = draft.target.get("event_key")
    if not draft.target.get("comment_id") or not event_key:
        return ""
    event = await WebhookEvent.get_or_none(dedupe_key=event_key)
    media_id = str((event.event or {}).get("media_id") or "") if event else ""
    if not media_id:
        return ""
    post = await Post.get_or_none(workspace_id=draft.workspace_id, ig_media_id=media_id)
    if post is not None and post.permalink:
        return post.permalink
    seen = await MediaInsight.filter(account_id=draft.account_id, ig_media_id=media_id).first()
    return seen.permalink if seen is not None and seen.permalink else ""
