"""Publishing: posts from draft to published, exactly once, on time, surviving crashes.

Every status change is a conditional update on (id, status, version) so that only one
caller wins; each is recorded in the audit log with its reason. Three parts keep this:

- The post editor (this module): people create, edit, schedule (reschedule), cancel,
  publish now, unschedule, delete and duplicate posts. Each change bumps ``version``; the
  queued job carries the version it was made for, so a job for an older version finds a
  mismatch and does nothing. A post being published belongs to the worker, not to people.
- The publisher (``core.services.publisher``): the ``publish_post`` job, which claims a due
  post under a lease and takes it through Instagram's container -> status -> publish flow
  without ever publishing twice.
- The reconciler (``core.services.publish_reconciler``): a cron that queues due posts with
  no live job and resumes posts whose worker vanished.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from redis.asyncio import Redis
from tortoise.transactions import in_transaction

from core.db.models import InstagramAccount, MediaAsset, Post, PostMedia, Workspace
from core.domain.posts import (
    Kind,
    PostContent,
    Status,
    check_editable,
    check_transition,
    local_time,
    validate_content,
    validate_schedule,
)
from core.domain.scope import Actor, instance_level
from core.errors import Conflict, NotFound
from core.ports.clock import Clock
from core.ports.instagram import AccountRef, InstagramClient
from core.ports.queue import JobQueue
from core.services import audit
from core.services.media import assets_for, facts_of
from core.services.post_versions import PublishPolicy, audit_move, enqueue
from core.services.publish_reconciler import Reconciler
from core.services.publisher import Publisher

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PostInput:
    """What a person (panel, chat or API) writes into a post; media by library id."""

    kind: str
    media_ids: Sequence[int] = ()
    caption: str = ""
    first_comment: str = ""
    alt_text: str = ""
    collaborators: Sequence[str] = field(default_factory=tuple)
    location_id: str | None = None
    share_to_feed: bool = True
    cover_id: int | None = None


class PostEditor:
    """People's actions on posts. Ports come in; nothing here knows arq, Redis or HTTP.

    Every method takes the acting ``Actor`` first and finds posts by id *and* the actor's
    workspace, so another workspace's post is not found (``NotFound``) and nothing changes.
    """

    def __init__(self, *, queue: JobQueue, clock: Clock) -> None:
        self.queue = queue
        self.clock = clock

    async def get(self, actor: Actor, post_id: int) -> Post:
        """The actor's workspace's post ``post_id``; NotFound for any other."""
        post = await Post.get_or_none(id=post_id, workspace_id=actor.workspace_id)
        if post is None:
            raise NotFound(f"There is no post #{post_id} in this workspace.")
        return post

    async def media_ids(self, actor: Actor, post_id: int) -> list[int]:
        """The media of the actor's workspace's post ``post_id``, in order (none for another's)."""
        rows = await (
            PostMedia.filter(post_id=post_id, post__workspace_id=actor.workspace_id)
            .order_by("position")
            .values_list("asset_id", flat=True)
        )
        return [int(asset_id) for asset_id in rows]  # type: ignore[call-overload]

    async def scheduled_count(self, actor: Actor) -> int:
        """How many of the workspace's posts wait for their time."""
        return await Post.filter(workspace_id=actor.workspace_id, status=Status.SCHEDULED).count()

    async def page(
        self,
        actor: Actor,
        *,
        status: Status | None = None,
        account_id: int | None = None,
        offset: int = 0,
        limit: int = 50,
        before_id: int | None = None,
    ) -> list[Post]:
        """The workspace's posts, newest first, ``limit`` from ``offset`` (or after the post
        ``before_id``, for a cursor)."""
        query = Post.filter(workspace_id=actor.workspace_id)
        if before_id is not None:
            query = query.filter(id__lt=before_id)
        if status is not None:
            query = query.filter(status=status)
        if account_id is not None:
            query = query.filter(account_id=account_id)
        return await query.order_by("-id").offset(offset).limit(limit)

    async def create(
        self,
        actor: Actor,
        *,
        account_id: int,
        content: PostInput,
        scheduled_at: datetime | None = None,
        source: str = "panel",
    ) -> Post:
        """Validate and store a post: a draft, or scheduled when ``scheduled_at`` is given."""
        workspace_id = actor.workspace_id
        workspace = await Workspace.get_or_none(id=workspace_id)
        account = await InstagramAccount.get_or_none(id=account_id, workspace_id=workspace_id)
        if workspace is None or account is None:
            raise NotFound("no such Instagram account in this workspace")
        cleaned, assets, cover = await self._validated(workspace_id, content)
        when = None
        if scheduled_at is not None:
            when = validate_schedule(scheduled_at, self.clock.now(), workspace.timezone)
        status = Status.SCHEDULED if when is not None else Status.DRAFT
        async with in_transaction():
            post = await Post.create(
                workspace_id=workspace_id,
                account_id=account_id,
                kind=cleaned.kind,
                status=status,
                scheduled_at=when,
                source=source,
                created_by_id=actor.user_id,
                **self._content_fields(cleaned, cover),
            )
            await self._store_items(post.id, assets)
            await audit.record(
                "post.created",
                actor=actor.label,
                workspace_id=workspace_id,
                target_type="post",
                target_id=post.id,
                status=status.value,
                kind=post.kind.value,
                scheduled_at=when.isoformat() if when else None,
                source=source,
            )
        if when is not None:
            await enqueue(self.queue, post.id, post.version, when)
        return post

    async def edit(
        self,
        actor: Actor,
        post_id: int,
        content: PostInput,
        *,
        expected_version: int | None = None,
    ) -> Post:
        """Replace a post's content (not while it is being published). Containers start over."""
        post = await self.get(actor, post_id)
        check_editable(post.status)
        if expected_version is not None and post.version != expected_version:
            raise Conflict("Someone changed this post meanwhile; reload it and try again.")
        cleaned, assets, cover = await self._validated(post.workspace_id, content)
        if cleaned.kind.value != post.kind.value:
            raise Conflict("A post's kind cannot change; duplicate it as a new post instead.")
        async with in_transaction():
            changed = await Post.filter(
                id=post.id, status=post.status, version=post.version
            ).update(
                version=post.version + 1,
                container_id=None,
                child_container_ids=[],
                container_created_at=None,
                **self._content_fields(cleaned, cover),
            )
            if not changed:
                raise Conflict("This post changed meanwhile; reload it and try again.")
            await PostMedia.filter(post_id=post.id).delete()
            await self._store_items(post.id, assets)
            await audit.record(
                "post.edited",
                actor=actor.label,
                workspace_id=post.workspace_id,
                target_type="post",
                target_id=post.id,
                version=post.version + 1,
            )
        if post.status == Status.SCHEDULED and post.scheduled_at is not None:
            await enqueue(self.queue, post.id, post.version + 1, post.scheduled_at)
        return await self.get(actor, post.id)

    async def schedule(self, actor: Actor, post_id: int, when: datetime) -> Post:
        """Schedule (or reschedule) a post for ``when``; the job queued before does nothing."""
        post = await self.get(actor, post_id)
        workspace = await Workspace.get(id=post.workspace_id)
        when = validate_schedule(when, self.clock.now(), workspace.timezone)
        verb = "rescheduled" if post.status == Status.SCHEDULED else "scheduled"
        moved = await self._person_moves(
            post,
            Status.SCHEDULED,
            action=verb,
            actor=actor,
            reason=f"{verb} for {local_time(when, workspace.timezone)}",
            scheduled_at=when,
        )
        await enqueue(self.queue, moved.id, moved.version, when)
        return moved

    reschedule = schedule

    async def publish_now(self, actor: Actor, post_id: int) -> Post:
        """Publish as soon as a worker is free (the post is scheduled for now)."""
        post = await self.get(actor, post_id)
        now = self.clock.now()
        moved = await self._person_moves(
            post,
            Status.SCHEDULED,
            action="published now",
            actor=actor,
            reason="publish now",
            scheduled_at=now,
        )
        await enqueue(self.queue, moved.id, moved.version, now)
        return moved

    async def cancel(self, actor: Actor, post_id: int, *, reason: str = "cancelled") -> Post:
        """Cancel a post that is not being published; its queued job does nothing."""
        post = await self.get(actor, post_id)
        return await self._person_moves(
            post, Status.CANCELLED, action="cancelled", actor=actor, reason=reason
        )

    async def delete(self, actor: Actor, post_id: int) -> None:
        """Delete a draft, scheduled, failed or cancelled post (its media stay in the library).

        A scheduled post is cancelled first, so its queued job finds nothing to publish.
        Raises Conflict while the post is being published or waits to retry, and for a
        published post: it is live on Instagram, and Reelay does not delete it there.
        """
        post = await self.get(actor, post_id)
        status = Status(post.status)
        if status is Status.PUBLISHED:
            raise Conflict(
                "This post is published: it is live on Instagram, and deleting it there is not "
                "supported. Delete it in the Instagram app; Reelay keeps its record."
            )
        if status is Status.PUBLISHING:
            raise Conflict(
                "This post is being published right now, so it cannot be deleted. Try again "
                "once it is published or has failed."
            )
        if status is Status.RETRYING:
            raise Conflict(
                "This post is waiting to retry publishing, so it cannot be deleted. Cancel it "
                "first, then delete it."
            )
        if status is Status.SCHEDULED:
            post = await self.cancel(actor, post_id, reason="cancelled to be deleted")
        async with in_transaction():
            deleted = await Post.filter(
                id=post.id, status=post.status, version=post.version
            ).delete()
            if deleted:
                await audit.record(
                    "post.deleted",
                    actor=actor.label,
                    workspace_id=post.workspace_id,
                    account_id=post.account_id,
                    target_type="post",
                    target_id=post.id,
                    from_status=status.value,
                    kind=post.kind.value,
                    caption=post.caption[:80],
                )
        if not deleted:
            raise Conflict("This post changed meanwhile; reload it and try again.")
        logger.info("post %s deleted by %s (was %s)", post.id, actor.label, status.value)

    async def unschedule(self, actor: Actor, post_id: int) -> Post:
        """Turn a scheduled (or failed, cancelled) post back into a draft."""
        post = await self.get(actor, post_id)
        return await self._person_moves(
            post, Status.DRAFT, action="made a draft", actor=actor, reason="back to draft"
        )

    async def duplicate(
        self, actor: Actor, post_id: int, *, scheduled_at: datetime | None = None
    ) -> Post:
        """A new post with the same content and media (a draft unless ``scheduled_at``)."""
        post = await self.get(actor, post_id)
        items = await PostMedia.filter(post_id=post.id).order_by("position")
        content = PostInput(
            kind=post.kind.value,
            media_ids=[item.asset_id for item in items],
            caption=post.caption,
            first_comment=post.first_comment,
            alt_text=post.alt_text,
            collaborators=list(post.collaborators),
            location_id=post.location_id,
            share_to_feed=post.share_to_feed,
            cover_id=post.cover_asset_id,
        )
        return await self.create(
            actor,
            account_id=post.account_id,
            content=content,
            scheduled_at=scheduled_at,
            source="duplicate",
        )

    # ---------------------------------------------------------------- helpers for people

    async def _validated(
        self, workspace_id: int, content: PostInput
    ) -> tuple[PostContent, list[MediaAsset], MediaAsset | None]:
        assets = await assets_for(Actor.system(workspace_id), list(content.media_ids))
        cover = None
        if content.cover_id is not None:
            cover = (await assets_for(Actor.system(workspace_id), [content.cover_id]))[0]
        cleaned = validate_content(
            PostContent(
                kind=Kind(content.kind),
                media=[facts_of(a) for a in assets],
                caption=content.caption,
                first_comment=content.first_comment,
                alt_text=content.alt_text,
                collaborators=tuple(content.collaborators),
                location_id=content.location_id,
                share_to_feed=content.share_to_feed,
                cover=facts_of(cover) if cover else None,
            )
        )
        return cleaned, assets, cover

    @staticmethod
    def _content_fields(content: PostContent, cover: MediaAsset | None) -> dict[str, Any]:
        return {
            "caption": content.caption,
            "first_comment": content.first_comment,
            "alt_text": content.alt_text,
            "collaborators": list(content.collaborators),
            "location_id": content.location_id,
            "share_to_feed": content.share_to_feed,
            "cover_asset_id": cover.id if cover else None,
        }

    @staticmethod
    async def _store_items(post_id: int, assets: Sequence[MediaAsset]) -> None:
        await PostMedia.bulk_create(
            [PostMedia(post_id=post_id, asset_id=a.id, position=n) for n, a in enumerate(assets)]
        )

    async def _person_moves(
        self,
        post: Post,
        target: Status,
        *,
        action: str,
        actor: Actor,
        reason: str,
        scheduled_at: datetime | None = None,
    ) -> Post:
        check_transition(post.status, target, action)
        updates: dict[str, Any] = {
            "status": target,
            "version": post.version + 1,
            "next_attempt_at": None,
            "last_error": "",
            "attempts": 0,
        }
        if scheduled_at is not None:
            updates["scheduled_at"] = scheduled_at
        async with in_transaction():
            changed = await Post.filter(
                id=post.id, status=post.status, version=post.version
            ).update(**updates)
            if changed:
                await audit_move(post, target, actor=actor.label, reason=reason)
        if not changed:
            fresh = await self.get(actor, post.id)
            check_transition(fresh.status, target, action)
            raise Conflict("This post changed meanwhile; reload it and try again.")
        return await self.get(actor, post.id)


class Publishing(PostEditor):
    """The publishing service: people's actions, the publish job and the reconciler on the
    same ports."""

    def __init__(
        self,
        *,
        instagram: InstagramClient,
        queue: JobQueue,
        clock: Clock,
        account_ref: Callable[[InstagramAccount], AccountRef],
        media_url: Callable[[MediaAsset], str],
        policy: PublishPolicy | None = None,
        jitter: Callable[[], float] = random.random,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        redis: Redis | None = None,
    ) -> None:
        super().__init__(queue=queue, clock=clock)
        self.policy = policy or PublishPolicy()
        self.publisher = Publisher(
            instagram=instagram,
            queue=queue,
            clock=clock,
            account_ref=account_ref,
            media_url=media_url,
            policy=self.policy,
            jitter=jitter,
            sleep=sleep,
            redis=redis,
        )
        self.reconciler = Reconciler(queue=queue, clock=clock, policy=self.policy)

    @instance_level("a job: one post, by id and version, from the queue")
    async def run(self, post_id: int, version: int) -> None:
        """One run of the publish job for ``post_id`` at ``version`` (idempotent)."""
        await self.publisher.run(post_id, version)

    @instance_level("a cron over every workspace's posts")
    async def reconcile(self) -> int:
        """Queue due posts with no live job and resume abandoned ones; returns how many."""
        return await self.reconciler.reconcile()
