"""The one place that builds a process's ``Services``: infrastructure and long-lived services.

Panel, worker and bots each receive the ``Services`` built here (``app.extensions``, arq's
``ctx``, aiogram's workflow data, the Discord bot's ``__init__``); nothing looks services up
by name. Adapters the core must not import (the arq queue, the chat notifiers) are handed in
by the entry point.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from core.adapters.call_budget import RedisCallBudget
from core.adapters.downloads import download
from core.adapters.graph import GraphClient, usage_key
from core.adapters.outgoing_webhooks import AiohttpWebhookPoster
from core.adapters.redis_server import RedisLocation
from core.adapters.smtp import mailer_from_settings
from core.adapters.storage import DiskStorage
from core.bootstrap import Container, QueueFactory, build_container
from core.db.models import InstagramAccount, MediaAsset
from core.domain.graph_errors import Usage
from core.ports.chat_threads import ChatThreads
from core.ports.instagram import AccountRef
from core.ports.notifier import Notifier
from core.ports.storage import MediaStorage
from core.services import comment_sweep, followers, insights_sync, notifications
from core.services.accounts import account_ref
from core.services.automations import Automations
from core.services.chat_mirror import ChatDesk
from core.services.chat_state import CommandResults
from core.services.chat_topics import MirrorNudge
from core.services.chatops import ChatOps
from core.services.comment_moderation import CommentModeration
from core.services.comment_sweep import CommentSweep
from core.services.conversations import Conversations
from core.services.event_webhooks import EventWebhooks
from core.services.follow_gate import FollowGate
from core.services.health import Health
from core.services.inbox import POOLED_WRITERS, InboxWriter
from core.services.inbox_stream import InboxStream
from core.services.leads import Leads
from core.services.media import Fetch, public_url
from core.services.messenger_profiles import MessengerProfiles
from core.services.notifications import Delivery
from core.services.outbox import Outbox
from core.services.post_versions import PublishPolicy
from core.services.publishing import Publishing
from core.services.reply_sending import OutboxReplySender
from core.services.smart_replies import EngineHooks, SmartReplies
from core.services.tracked_links import LinkTracker
from core.settings import Settings

# The chat notifiers for the tokens set; it registers their closers with the container.
ChatNotifiers = Callable[[Container], Iterable[Notifier]]


@dataclass(frozen=True, eq=False)
class Services:
    """Everything a process runs on, opened once at startup and closed at shutdown."""

    # Settings, secrets, database, Redis, queue, HTTP session, Graph client, clock, AI.
    container: Container
    publishing: Publishing
    # The automations engine; its rule cache lives as long as the process.
    automations: Automations
    smart_replies: SmartReplies
    chatops: ChatOps
    storage: MediaStorage
    # Downloads a linked file for the media library (refusing private addresses unless allowed).
    downloads: Fetch
    # What the insights syncs run with (the Graph client and a per-account call budget).
    insights: insights_sync.SyncDeps
    # The lead flows' follow step (asks Meta whether a person follows, after the commit).
    follow_gate: FollowGate
    # Group commit for the webhook endpoint.
    inbox_writer: InboxWriter
    # The inbox stream's writer: the worker runs it while deliveries go through the stream,
    # and otherwise once at its start, for what the stream kept from an earlier setting.
    stream_writer: InboxStream
    # The endpoint's Redis stream, drained by the worker (None: the panel writes the events).
    inbox_stream: InboxStream | None
    # Reads recent comments and records those whose webhook never came.
    comment_sweep: CommentSweep
    # Each account's health at a glance (the panel's Health page, /health in chat).
    health: Health
    # Each account's ice breakers and persistent menu, pushed to Meta on save.
    messenger_profiles: MessengerProfiles
    # The notifiers and mailer alerts go out through.
    delivery: Delivery
    # The workspaces' event webhooks: subscriptions and signed deliveries.
    event_webhooks: EventWebhooks
    # Reading, answering, hiding and deleting comments (panel, API, chat alerts).
    comment_moderation: CommentModeration
    # The inbox: conversations read, answered, taken over and assigned by the team.
    conversations: Conversations
    # The team chat as an inbox: what teammates write in a conversation's topic or thread.
    chat_desk: ChatDesk
    # Queues the chat mirror's posts of the messages a job made, at the job's end.
    mirror_nudge: MirrorNudge

    @property
    def links(self) -> LinkTracker:
        """Tracked links: the engine rewrites with it, the ``/l/<code>`` route counts clicks."""
        tracker = self.automations.links
        if tracker is None:  # pragma: no cover - assemble_services always gives one
            raise RuntimeError("the automations engine has no link tracker")
        return tracker

    @property
    def outbox(self) -> Outbox:
        """The automations engine's outbox: every send of the process goes through it."""
        return self.automations.outbox

    async def close(self) -> None:
        await self.automations.finish_sends()  # the profile reads still gathering, too
        await self.container.close()


async def build_services(
    settings: Settings,
    *,
    queue_factory: QueueFactory,
    chat_notifiers: ChatNotifiers | None = None,
    run_migrations: bool = True,
    redis_location: RedisLocation | None = None,
) -> Services:
    """Open the infrastructure described by ``settings`` and build the services over it.

    ``queue_factory`` opens the job queue; ``chat_notifiers`` gives the chat notifiers
    alerts are delivered with (none when omitted).
    """
    container = await build_container(
        settings,
        queue_factory=queue_factory,
        run_migrations=run_migrations,
        redis_location=redis_location,
    )
    return assemble_services(container, chat_notifiers=chat_notifiers)


def inbox_through_stream(settings: Settings, *, redis_on_disk: bool) -> bool:
    """Whether webhook deliveries go through the Redis stream (``WEBHOOK_INBOX``): on ``auto``
    when Redis keeps them in its append-only file (the embedded one, docker-compose's), on
    either database. A delivery is then answered once Redis has it; the worker stores it
    within milliseconds. What a crash of the machine may lose is what Redis had not yet
    synced (at most a second with ``appendfsync everysec``) and the worker not yet stored;
    ``database`` answers only once the database has committed it, at about twice the CPU
    per delivery on PostgreSQL (ARCHITECTURE.md, data path 1)."""
    if settings.webhook_inbox != "auto":
        return settings.webhook_inbox == "stream"
    return redis_on_disk


def assemble_services(
    container: Container, *, chat_notifiers: ChatNotifiers | None = None
) -> Services:
    """The services over an open ``container`` (which they close with)."""
    settings = container.settings

    def ref(account: InstagramAccount) -> AccountRef:
        return account_ref(container, account)

    def media_url(asset: MediaAsset) -> str:
        return public_url(settings, asset)

    async def usage(account: AccountRef) -> Usage | None:
        graph = container.graph
        return await graph.usage.get(usage_key(account)) if isinstance(graph, GraphClient) else None

    publishing = Publishing(
        instagram=container.graph,
        queue=container.queue,
        clock=container.clock,
        account_ref=ref,
        media_url=media_url,
        policy=PublishPolicy.from_settings(settings),
        redis=container.redis,
    )
    outbox = Outbox(
        graph=container.graph,
        queue=container.queue,
        redis=container.redis,
        clock=container.clock,
        settings=settings,
        account_ref=ref,
        retry_base_s=settings.send_retry_base_s,
    )
    smart_replies = SmartReplies(
        ai=container.ai,
        sender=OutboxReplySender(outbox),
        clock=container.clock,
        max_tokens=settings.openai_reply_max_tokens,
        announce=functools.partial(notifications.record_event, container),
    )
    hooks = EngineHooks(smart_replies, container.clock)
    poster = AiohttpWebhookPoster(container.http, private_ok=settings.private_urls_ok)
    leads = Leads(
        queue=container.queue,
        clock=container.clock,
        poster=poster,
        secret_key=container.secret_key,
        secrets=container.secrets,
    )
    links = LinkTracker(base_url=settings.base_url)
    automations = Automations(
        outbox=outbox,
        leads=leads,
        redis=container.redis,
        clock=container.clock,
        continuation=hooks.continue_conversation,
        ai_replies=hooks,
        links=links,
        profiles=functools.partial(followers.queue_refreshes, container.queue, container.clock),
    )
    follow = FollowGate(
        graph=container.graph,
        account_ref=ref,
        outbox=outbox,
        leads=leads,
        links=links,
        clock=container.clock,
    )
    storage = DiskStorage(settings.var_dir / "media")
    health = Health(
        instagram=container.graph, account_ref=ref, clock=container.clock, redis=container.redis
    )
    moderation = CommentModeration(
        graph=container.graph, outbox=outbox, clock=container.clock, account_ref=ref
    )
    delivery = Delivery(mailer=mailer_from_settings(settings))
    for notifier in chat_notifiers(container) if chat_notifiers is not None else ():
        delivery.notifiers[notifier.platform] = notifier
        if isinstance(notifier, ChatThreads):  # the bots that also open conversations' topics
            delivery.threads[notifier.platform] = notifier
    conversations = Conversations(
        outbox=outbox,
        clock=container.clock,
        queue=container.queue,
        human_agent=settings.meta_human_agent,
    )
    stream = InboxStream(
        container.redis,
        container.queue,
        container.clock.now,
        engine=functools.partial(automations.handle_events, wait_for_sends=False),
        sends=automations.finish_sends,
        together=(automations.store_and_handle if settings.on_sqlite else None),
    )
    return Services(
        container=container,
        publishing=publishing,
        automations=automations,
        smart_replies=smart_replies,
        chatops=ChatOps(
            container,
            publishing=publishing,
            storage=storage,
            smart_replies=smart_replies,
            health=health,
            comments=moderation,
        ),
        storage=storage,
        downloads=functools.partial(download, container.http, private_ok=settings.private_urls_ok),
        insights=insights_sync.SyncDeps(
            client=container.graph,
            account_ref=ref,
            clock=container.clock,
            budget=RedisCallBudget(
                container.redis,
                container.clock,
                per_hour=insights_sync.CALLS_PER_HOUR,
                prefix=insights_sync.BUDGET_PREFIX,
            ),
            redis=container.redis,
        ),
        inbox_writer=InboxWriter(
            container.queue,
            container.clock.now,
            redis=container.redis,
            writers=1 if settings.on_sqlite else POOLED_WRITERS,
        ),
        stream_writer=stream,
        inbox_stream=(
            stream
            if inbox_through_stream(settings, redis_on_disk=container.redis_on_disk)
            else None
        ),
        health=health,
        comment_sweep=CommentSweep(
            instagram=container.graph,
            account_ref=ref,
            queue=container.queue,
            redis=container.redis,
            clock=container.clock,
            budget=RedisCallBudget(
                container.redis,
                container.clock,
                per_hour=comment_sweep.CALLS_PER_HOUR,
                prefix=comment_sweep.BUDGET_PREFIX,
            ),
            usage=usage,
            every_minutes=settings.comment_sweep_minutes,
        ),
        follow_gate=follow,
        delivery=delivery,
        messenger_profiles=MessengerProfiles(graph=container.graph, account_ref=ref),
        event_webhooks=EventWebhooks(
            queue=container.queue, clock=container.clock, poster=poster, secrets=container.secrets
        ),
        comment_moderation=moderation,
        conversations=conversations,
        chat_desk=ChatDesk(
            conversations=conversations,
            storage=storage,
            media_url=media_url,
            results=CommandResults(container.redis),
        ),
        mirror_nudge=MirrorNudge(container.queue, container.clock),
    )
