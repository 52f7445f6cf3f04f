"""Publishing: posts from draft to published, exactly once, on time, surviving crashes.

Every status change is a conditional update on (id, status, version) so that only one
caller wins; each is recorded in the audit log with its reason. A post moves as follows:

- People create, edit, schedule (reschedule), cancel, publish now and duplicate posts. Each
  change bumps ``version``; the queued job carries the version it was made for, so a job for
  an older version finds a mismatch and does nothing.
- The ``publish_post`` job (deferred to the second) claims a due post, ``scheduled`` or
  ``retrying`` -> ``publishing``, taking a lease (``next_attempt_at``) that another worker may
  take over only once it has run out. Container ids are stored the moment Instagram returns
  them. Processing media is checked again by a new job, never by sleeping.
- Before ``media_publish`` the container's ``status_code`` is read: ``PUBLISHED`` means an
  earlier run published it and died before writing that down, so the media is looked up
  instead of being published twice. ``media_publish`` itself is never repeated blindly.
- Graph errors follow their classification: transient -> ``retrying`` with back-off (at most
  ``max_attempts``), rate limit and daily quota -> deferred, permanent -> ``failed`` with the
  message, dead token -> ``failed`` and the account ``needs_reconnect``.
- ``reconcile`` (a cron, every minute) queues due posts that have no live job and resumes
  posts whose worker vanished, so a Redis flush or a killed worker loses nothing.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from tortoise.expressions import Q
from tortoise.transactions import in_transaction

from core.db.models import (
    AccountStatus,
    DomainEvent,
    InstagramAccount,
    MediaAsset,
    Post,
    PostKind,
    PostMedia,
    PostStatus,
    PublishJob,
    Workspace,
)
from core.domain.graph_errors import ErrorKind, GraphError
from core.domain.posts import (
    Kind,
    PostContent,
    Status,
    backoff_s,
    check_editable,
    check_transition,
    local_time,
    validate_content,
    validate_schedule,
)
from core.errors import Conflict, NotFound
from core.ports.clock import Clock
from core.ports.instagram import AccountRef, InstagramClient
from core.ports.queue import JobQueue
from core.services import audit
from core.services.media import assets_for, facts_of
from core.settings import Settings

logger = logging.getLogger(__name__)

JOB_NAME = "publish_post"
# Jobs are queued this long before their time and wait for the exact moment themselves:
# the queue is polled, so a job queued for the second itself starts a poll interval late.
PREFETCH = timedelta(seconds=0.25)
# A job that starts earlier than PREFETCH plus this (clock skew) is queued again for later.
EARLY_SLACK = timedelta(seconds=1)
# A post in "publishing" whose check is this overdue has lost its job: resume it.
RESUME_GRACE = timedelta(seconds=30)
# Media found in the account's feed this long before the container was made is not ours.
MATCH_SLACK = timedelta(minutes=5)

IN_FLIGHT = (Status.SCHEDULED, Status.RETRYING, Status.PUBLISHING)


def main_job_id(post_id: int, version: int) -> str:
    """The id of a post version's publish job: a second enqueue of it is refused."""
    return f"publish:{post_id}:v{version}"


@dataclass(frozen=True)
class PublishPolicy:
    max_attempts: int = 5
    retry_base_s: float = 30.0
    retry_max_s: float = 1800.0
    status_interval_s: float = 10.0
    status_timeout_s: float = 1800.0
    # How long a worker owns a post it is publishing; longer than the job's timeout.
    lease_s: float = 180.0
    # The reconciler queues posts due within this window (so a flush loses no time).
    lookahead_s: float = 300.0
    # Waited when a rate limit gives no time of its own.
    rate_limit_wait_s: float = 300.0

    @classmethod
    def from_settings(cls, settings: Settings) -> PublishPolicy:
        return cls(
            max_attempts=settings.publish_max_attempts,
            retry_base_s=settings.publish_retry_base_s,
            retry_max_s=settings.publish_retry_max_s,
            status_interval_s=settings.publish_status_interval_s,
            status_timeout_s=settings.publish_status_timeout_s,
        )


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


# Instagram publishes a container within 24 h of its creation; after that it is EXPIRED.
CONTAINER_LIFETIME = timedelta(hours=24)


class _CheckLater(Exception):
    """Internal: media still processing; poll again later."""


class _Failed(Exception):
    """Internal: fail the post with ``message`` (containers dead when ``drop_containers``)."""

    def __init__(self, message: str, *, drop_containers: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.drop_containers = drop_containers


class Publishing:
    """The publishing service. Ports come in; nothing here knows arq, Redis or HTTP."""

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
    ) -> None:
        self.instagram = instagram
        self.queue = queue
        self.clock = clock
        self.account_ref = account_ref
        self.media_url = media_url
        self.policy = policy or PublishPolicy()
        self.jitter = jitter
        self.sleep = sleep

    # ================================================================ people's actions

    async def create(
        self,
        *,
        workspace_id: int,
        account_id: int,
        content: PostInput,
        actor: str,
        scheduled_at: datetime | None = None,
        user_id: int | None = None,
        source: str = "panel",
    ) -> Post:
        """Validate and store a post: a draft, or scheduled when ``scheduled_at`` is given."""
        workspace = await Workspace.get_or_none(id=workspace_id)
        account = await InstagramAccount.get_or_none(id=account_id, workspace_id=workspace_id)
        if workspace is None or account is None:
            raise NotFound("no such Instagram account in this workspace")
        cleaned, assets, cover = await self._validated(workspace_id, content)
        when = None
        if scheduled_at is not None:
            when = validate_schedule(scheduled_at, self.clock.now(), workspace.timezone)
        status = PostStatus.SCHEDULED if when is not None else PostStatus.DRAFT
        async with in_transaction():
            post = await Post.create(
                workspace_id=workspace_id,
                account_id=account_id,
                kind=PostKind(cleaned.kind.value),
                status=status,
                scheduled_at=when,
                source=source,
                created_by_id=user_id,
                **self._content_fields(cleaned, cover),
            )
            await self._store_items(post.id, assets)
            await audit.record(
                "post.created",
                actor=actor,
                workspace_id=workspace_id,
                target_type="post",
                target_id=post.id,
                status=status.value,
                kind=post.kind.value,
                scheduled_at=when.isoformat() if when else None,
                source=source,
            )
        if when is not None:
            await self._enqueue(post.id, post.version, when)
        return post

    async def edit(
        self, post_id: int, content: PostInput, *, actor: str, expected_version: int | None = None
    ) -> Post:
        """Replace a post's content (not while it is being published). Containers start over."""
        post = await self._get(post_id)
        check_editable(post.status)
        if expected_version is not None and post.version != expected_version:
            raise Conflict("Someone changed this post meanwhile; reload it and try again.")
        cleaned, assets, cover = await self._validated(
            post.workspace_id,  # type: ignore[attr-defined]
            content,
        )
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
                actor=actor,
                workspace_id=post.workspace_id,  # type: ignore[attr-defined]
                target_type="post",
                target_id=post.id,
                version=post.version + 1,
            )
        if post.status == PostStatus.SCHEDULED and post.scheduled_at is not None:
            await self._enqueue(post.id, post.version + 1, post.scheduled_at)
        return await self._get(post.id)

    async def schedule(self, post_id: int, when: datetime, *, actor: str) -> Post:
        """Schedule (or reschedule) a post for ``when``; the job queued before does nothing."""
        post = await self._get(post_id)
        workspace = await Workspace.get(id=post.workspace_id)  # type: ignore[attr-defined]
        when = validate_schedule(when, self.clock.now(), workspace.timezone)
        verb = "rescheduled" if post.status == PostStatus.SCHEDULED else "scheduled"
        moved = await self._person_moves(
            post,
            Status.SCHEDULED,
            action=verb,
            actor=actor,
            reason=f"{verb} for {local_time(when, workspace.timezone)}",
            scheduled_at=when,
        )
        await self._enqueue(moved.id, moved.version, when)
        return moved

    reschedule = schedule

    async def publish_now(self, post_id: int, *, actor: str) -> Post:
        """Publish as soon as a worker is free (the post is scheduled for now)."""
        post = await self._get(post_id)
        now = self.clock.now()
        moved = await self._person_moves(
            post,
            Status.SCHEDULED,
            action="published now",
            actor=actor,
            reason="publish now",
            scheduled_at=now,
        )
        await self._enqueue(moved.id, moved.version, now)
        return moved

    async def cancel(self, post_id: int, *, actor: str, reason: str = "cancelled") -> Post:
        """Cancel a post that is not being published; its queued job does nothing."""
        post = await self._get(post_id)
        return await self._person_moves(
            post, Status.CANCELLED, action="cancelled", actor=actor, reason=reason
        )

    async def delete(self, post_id: int, *, actor: str) -> None:
        """Delete a draft, scheduled, failed or cancelled post (its media stay in the library).

        A scheduled post is cancelled first, so its queued job finds nothing to publish.
        Raises Conflict while the post is being published or waits to retry, and for a
        published post: it is live on Instagram, and Reelay does not delete it there.
        """
        post = await self._get(post_id)
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
            post = await self.cancel(post_id, actor=actor, reason="cancelled to be deleted")
        async with in_transaction():
            deleted = await Post.filter(
                id=post.id, status=post.status, version=post.version
            ).delete()
            if deleted:
                await audit.record(
                    "post.deleted",
                    actor=actor,
                    workspace_id=post.workspace_id,  # type: ignore[attr-defined]
                    account_id=post.account_id,  # type: ignore[attr-defined]
                    target_type="post",
                    target_id=post.id,
                    from_status=status.value,
                    kind=post.kind.value,
                    caption=post.caption[:80],
                )
        if not deleted:
            raise Conflict("This post changed meanwhile; reload it and try again.")
        logger.info("post %s deleted by %s (was %s)", post.id, actor, status.value)

    async def unschedule(self, post_id: int, *, actor: str) -> Post:
        """Turn a scheduled (or failed, cancelled) post back into a draft."""
        post = await self._get(post_id)
        return await self._person_moves(
            post, Status.DRAFT, action="made a draft", actor=actor, reason="back to draft"
        )

    async def duplicate(
        self, post_id: int, *, actor: str, scheduled_at: datetime | None = None
    ) -> Post:
        """A new post with the same content and media (a draft unless ``scheduled_at``)."""
        post = await self._get(post_id)
        items = await PostMedia.filter(post_id=post.id).order_by("position")
        content = PostInput(
            kind=post.kind.value,
            media_ids=[item.asset_id for item in items],  # type: ignore[attr-defined]
            caption=post.caption,
            first_comment=post.first_comment,
            alt_text=post.alt_text,
            collaborators=list(post.collaborators),
            location_id=post.location_id,
            share_to_feed=post.share_to_feed,
            cover_id=post.cover_asset_id,  # type: ignore[attr-defined]
        )
        return await self.create(
            workspace_id=post.workspace_id,  # type: ignore[attr-defined]
            account_id=post.account_id,  # type: ignore[attr-defined]
            content=content,
            actor=actor,
            scheduled_at=scheduled_at,
            source="duplicate",
        )

    # ---------------------------------------------------------------- helpers for people

    async def _get(self, post_id: int) -> Post:
        post = await Post.get_or_none(id=post_id)
        if post is None:
            raise NotFound(f"post {post_id} does not exist")
        return post

    async def _validated(
        self, workspace_id: int, content: PostInput
    ) -> tuple[PostContent, list[MediaAsset], MediaAsset | None]:
        assets = await assets_for(workspace_id, list(content.media_ids))
        cover = None
        if content.cover_id is not None:
            cover = (await assets_for(workspace_id, [content.cover_id]))[0]
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
        actor: str,
        reason: str,
        scheduled_at: datetime | None = None,
    ) -> Post:
        check_transition(post.status, target, action)
        updates: dict[str, Any] = {
            "status": PostStatus(target.value),
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
                await self._audit_move(post, target, actor=actor, reason=reason)
        if not changed:
            fresh = await self._get(post.id)
            check_transition(fresh.status, target, action)
            raise Conflict("This post changed meanwhile; reload it and try again.")
        return await self._get(post.id)

    async def _audit_move(
        self, post: Post, target: Status, *, actor: str, reason: str, **details: Any
    ) -> None:
        await audit.record(
            f"post.{target.value}",
            actor=actor,
            workspace_id=post.workspace_id,  # type: ignore[attr-defined]
            target_type="post",
            target_id=post.id,
            level="warning" if target is Status.FAILED else "info",
            reason=reason,
            from_status=Status(post.status).value,
            **details,
        )

    async def _enqueue(
        self, post_id: int, version: int, at: datetime | None, *, job_id: str | None = None
    ) -> bool:
        """Queue the publish job; when Redis is away the reconciler queues it later."""
        jid = job_id or main_job_id(post_id, version)
        try:
            if job_id is None:
                await PublishJob.get_or_create(
                    post_id=post_id, version=version, defaults={"job_id": jid}
                )
            early = at - PREFETCH if at is not None else None
            return await self.queue.enqueue(
                JOB_NAME, post_id, version, job_id=jid, defer_until=early
            )
        except Exception:
            # The post is safely stored; the reconciler queues it within a minute.
            logger.exception("could not queue post %s version %s", post_id, version)
            return False

    # ================================================================ the job

    async def run(self, post_id: int, version: int) -> None:
        """One run of the publish job for ``post_id`` at ``version`` (idempotent)."""
        now = self.clock.now()
        # The account comes along (one query, not two); _advance checks its status.
        post = await Post.filter(id=post_id).select_related("account").first()
        if post is None or post.version != version:
            logger.info("post %s: job for version %s is stale, nothing to do", post_id, version)
            return
        status = Status(post.status)
        if status not in IN_FLIGHT:
            logger.info("post %s is %s, nothing to do", post_id, status.value)
            return
        due = post.scheduled_at if status is Status.SCHEDULED else post.next_attempt_at
        if due is not None and due > now:
            early = (due - now).total_seconds()
            if early > (PREFETCH + EARLY_SLACK).total_seconds():
                if status is not Status.PUBLISHING:
                    # Far too early (an odd clock): come back on time, never publish early.
                    job_id = f"{main_job_id(post.id, version)}:at{_ms(due)}"
                    await self._enqueue(post.id, version, due, job_id=job_id)
                return  # publishing: another worker holds the lease, or a check is not due
            # Jobs are queued a moment ahead (queue polling adds delay); wait for the second.
            await self.sleep(early)
            now = self.clock.now()
        lease_until = now + timedelta(seconds=self.policy.lease_s)
        claim = Post.filter(id=post.id, version=version, status=PostStatus(status.value))
        if status is Status.PUBLISHING:
            claim = claim.filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
        async with in_transaction():
            claimed = await claim.update(status=PostStatus.PUBLISHING, next_attempt_at=lease_until)
            if claimed and status is not Status.PUBLISHING:
                late = (now - due).total_seconds() if due else 0.0
                await self._audit_move(
                    post,
                    Status.PUBLISHING,
                    actor="worker",
                    reason="scheduled time reached" if status is Status.SCHEDULED else "retry",
                    late_by_s=round(late, 4),
                    attempt=post.attempts + 1,
                )
        if not claimed:
            logger.info("post %s version %s is being published by another worker", post_id, version)
            return
        post.status = PostStatus.PUBLISHING
        post.next_attempt_at = lease_until
        await self._work(post)

    async def _work(self, post: Post) -> None:
        try:
            await self._advance(post)
        except _CheckLater:
            await self._check_later(post)
        except _Failed as failure:
            await self._fail(post, failure.message, drop_containers=failure.drop_containers)
        except GraphError as exc:
            await self._on_graph_error(post, exc)
        except Conflict as exc:
            logger.warning("post %s: %s", post.id, exc)
        except Exception as exc:
            # A fault of Reelay's own or of its database: count it like a transient error
            # so a post cannot loop forever, and keep the trace in the log.
            logger.exception("post %s: unexpected error while publishing", post.id)
            await self._retry(post, f"Reelay hit an unexpected error ({type(exc).__name__})", None)

    # ---------------------------------------------------------------- steps

    async def _advance(self, post: Post) -> None:
        account = await _account_of(post)
        if account.status != AccountStatus.ACTIVE:
            raise _Failed(
                f"The Instagram account @{account.username} needs to be reconnected; "
                "reconnect it, then reschedule this post."
            )
        ref = self.account_ref(account)
        if post.ig_media_id:
            # Published and recorded, then the worker stopped before finishing: finish.
            await self._finish(post, ref, post.ig_media_id, comment=False)
            return
        if post.container_id is None:
            await self._create_containers(post, ref)
        assert post.container_id is not None
        # Meta's flow reads the status even for an image (usually FINISHED at once).
        status = await self.instagram.container_status(ref, post.container_id)
        code = status.status_code
        if code == "PUBLISHED":
            logger.warning("post %s: container already published, recording it", post.id)
            media_id = await self._find_published(post, ref)
            await self._finish(post, ref, media_id, comment=media_id is not None)
        elif code == "FINISHED":
            if not await self._quota_allows(post, ref):
                return
            media_id = await self.instagram.publish_container(ref, post.container_id)
            await self._save(post, ig_media_id=media_id)
            await self._finish(post, ref, media_id, comment=True)
        elif code == "ERROR":
            raise _Failed(
                "Instagram could not process the media"
                + (f": {status.status}" if status.status else ""),
                drop_containers=True,
            )
        elif code == "EXPIRED":
            await self._save(
                post, container_id=None, child_container_ids=[], container_created_at=None
            )
            raise GraphError(
                code=None,
                subcode=None,
                message="container expired",
                kind=ErrorKind.NEW_CONTAINER,
                title="The upload expired before it was published; trying again",
            )
        else:
            self._give_up_if_too_slow(post)
            raise _CheckLater()

    async def _create_containers(self, post: Post, ref: AccountRef) -> None:
        """Create (or finish creating) the post's containers."""
        items = await PostMedia.filter(post_id=post.id).order_by("position").select_related("asset")
        assets = [item.asset for item in items]
        if not assets:
            raise _Failed("The post has no media left in the library; add media and reschedule.")
        # Stored with the first container id (the timeout and the feed lookup count from it).
        started = post.container_created_at or self.clock.now()
        kind = Kind(post.kind.value)
        collaborators = list(post.collaborators)
        if kind is Kind.CAROUSEL:
            children = list(post.child_container_ids)
            for asset in assets[len(children) :]:
                if asset.mime.startswith("video/"):
                    child = await self.instagram.create_video_container(
                        ref, self.media_url(asset), media_type="VIDEO", is_carousel_item=True
                    )
                else:
                    child = await self.instagram.create_image_container(
                        ref, self.media_url(asset), is_carousel_item=True
                    )
                children.append(child)
                await self._save(
                    post, child_container_ids=list(children), container_created_at=started
                )
            statuses = [await self.instagram.container_status(ref, c) for c in children]
            for n, child_status in enumerate(statuses, start=1):
                if child_status.status_code == "ERROR":
                    raise _Failed(
                        f"Instagram could not process item {n} of the carousel"
                        + (f": {child_status.status}" if child_status.status else ""),
                        drop_containers=True,
                    )
                if child_status.status_code == "EXPIRED":
                    await self._save(post, child_container_ids=[], container_created_at=None)
                    raise GraphError(
                        code=None,
                        subcode=None,
                        message="carousel item expired",
                        kind=ErrorKind.NEW_CONTAINER,
                        title="The upload expired before it was published; trying again",
                    )
            if any(s.status_code != "FINISHED" for s in statuses):
                self._give_up_if_too_slow(post)
                raise _CheckLater()
            container = await self.instagram.create_carousel_container(
                ref,
                children,
                caption=post.caption or None,
                location_id=post.location_id,
                collaborators=collaborators,
            )
        elif kind is Kind.STORY:
            asset = assets[0]
            url = self.media_url(asset)
            if asset.mime.startswith("video/"):
                container = await self.instagram.create_story_container(ref, video_url=url)
            else:
                container = await self.instagram.create_story_container(ref, image_url=url)
        elif kind is Kind.REEL:
            cover = None
            if post.cover_asset_id is not None:  # type: ignore[attr-defined]
                cover = await MediaAsset.get_or_none(id=post.cover_asset_id)  # type: ignore[attr-defined]
            container = await self.instagram.create_video_container(
                ref,
                self.media_url(assets[0]),
                media_type="REELS",
                caption=post.caption or None,
                share_to_feed=post.share_to_feed,
                cover_url=self.media_url(cover) if cover else None,
                location_id=post.location_id,
                collaborators=collaborators,
            )
        else:
            container = await self.instagram.create_image_container(
                ref,
                self.media_url(assets[0]),
                caption=post.caption or None,
                alt_text=post.alt_text or None,
                location_id=post.location_id,
                collaborators=collaborators,
            )
        await self._save(post, container_id=container, container_created_at=started)

    def _waited_s(self, post: Post) -> float:
        """Seconds since the post's first container was made (0 before that)."""
        started = post.container_created_at
        return 0.0 if started is None else (self.clock.now() - started).total_seconds()

    def _waited_too_long(self, post: Post) -> bool:
        return self._waited_s(post) > self.policy.status_timeout_s

    def _give_up_if_too_slow(self, post: Post) -> None:
        if self._waited_too_long(post):
            raise _Failed(
                f"Instagram was still processing the media after {_duration(self._waited_s(post))};"
                " try a shorter or smaller video, or reschedule to try again.",
                drop_containers=True,
            )

    async def _quota_allows(self, post: Post, ref: AccountRef) -> bool:
        try:
            limit = await self.instagram.publishing_limit(ref)
        except GraphError as exc:
            # Meta refuses over-quota publishes with its own error, handled as a deferral.
            logger.info("post %s: could not read the publishing limit (%s)", post.id, exc.title)
            return True
        if limit.quota_usage < limit.quota_total:
            return True
        duration = timedelta(seconds=limit.quota_duration_s)
        until = await self._quota_frees_at(post, duration)
        workspace = await Workspace.get(id=post.workspace_id)  # type: ignore[attr-defined]
        await self._defer(
            post,
            until,
            f"The account reached Instagram's limit of {limit.quota_total} posts in "
            f"{limit.quota_duration_s // 3600} hours; it will be published at "
            f"{local_time(until, workspace.timezone)}",
        )
        return False

    async def _quota_frees_at(self, post: Post, duration: timedelta) -> datetime:
        now = self.clock.now()
        oldest = (
            await Post.filter(
                account_id=post.account_id,  # type: ignore[attr-defined]
                status=PostStatus.PUBLISHED,
                published_at__gte=now - duration,
            )
            .order_by("published_at")
            .first()
        )
        if oldest is not None and oldest.published_at is not None:
            return oldest.published_at + duration + timedelta(seconds=60)
        return now + timedelta(hours=1)

    async def _find_published(self, post: Post, ref: AccountRef) -> str | None:
        """The media an earlier run published from this post's container, if it can be found."""
        try:
            recent = await self.instagram.media_list(ref, limit=25)
        except GraphError as exc:
            # The post is live: look again later rather than record it without its link,
            # unless Instagram has not answered for as long as processing may take.
            if exc.kind in {ErrorKind.TRANSIENT, ErrorKind.RATE_LIMITED} and not (
                self._waited_too_long(post)
            ):
                logger.info("post %s: cannot list media yet (%s); later", post.id, exc.title)
                raise _CheckLater() from exc
            logger.warning("post %s: cannot list media to find it (%s)", post.id, exc.title)
            return None
        since = (post.container_created_at or post.created_at) - MATCH_SLACK
        for item in recent:
            if (item.get("caption") or "") != post.caption:
                continue
            stamp = _parse_time(item.get("timestamp"))
            if stamp is None or stamp >= since:
                return str(item["id"])
        return None

    async def _finish(
        self, post: Post, ref: AccountRef, media_id: str | None, *, comment: bool
    ) -> None:
        permalink = None
        notes: list[str] = []
        if media_id is not None:
            try:
                fields = await self.instagram.media_fields(ref, media_id)
                permalink = fields.get("permalink")
            except GraphError as exc:
                logger.warning("post %s: no permalink (%s)", post.id, exc.title)
            if comment and post.first_comment:
                try:
                    await self.instagram.post_comment(ref, media_id, post.first_comment)
                except GraphError as exc:
                    notes.append(f"the first comment could not be posted ({exc.title})")
            elif post.first_comment:
                notes.append("the first comment was not posted (the worker restarted mid-way)")
        else:
            notes.append("Instagram did not say which post it became")
        now = self.clock.now()
        note = "; ".join(notes)
        async with in_transaction():
            changed = await self._owned(post).update(
                status=PostStatus.PUBLISHED,
                ig_media_id=media_id,
                permalink=permalink,
                published_at=now,
                next_attempt_at=None,
                last_error=f"Published, but {note}." if note else "",
            )
            if changed:
                await self._audit_move(
                    post,
                    Status.PUBLISHED,
                    actor="worker",
                    reason=note or "published",
                    ig_media_id=media_id,
                    permalink=permalink,
                )
                await self._event(
                    post, "post.published", ig_media_id=media_id, permalink=permalink, note=note
                )
        if not changed:
            logger.error("post %s: lost ownership before recording its publication", post.id)

    # ---------------------------------------------------------------- outcomes

    def _owned(self, post: Post) -> Any:
        return Post.filter(id=post.id, version=post.version, status=PostStatus.PUBLISHING)

    async def _save(self, post: Post, **fields: Any) -> None:
        """Store progress at once (container ids, media id) while the post is ours."""
        changed = await self._owned(post).update(**fields)
        if not changed:
            raise Conflict(f"post {post.id} is no longer ours to publish")
        for name, value in fields.items():
            setattr(post, name, value)

    async def _check_later(self, post: Post) -> None:
        started = post.container_created_at or self.clock.now()
        waited = (self.clock.now() - started).total_seconds()
        # Quick first looks (images are ready at once), then calmer, at most once a minute.
        delay = min(60.0, max(self.policy.status_interval_s, waited / 4))
        at = self.clock.now() + timedelta(seconds=delay)
        await self._save(post, next_attempt_at=at)
        job_id = f"{main_job_id(post.id, post.version)}:check{_ms(at)}"
        await self._enqueue(post.id, post.version, at, job_id=job_id)

    async def _on_graph_error(self, post: Post, exc: GraphError) -> None:
        kind = exc.kind
        if kind is ErrorKind.NOT_READY:
            try:
                self._give_up_if_too_slow(post)
            except _Failed as failure:
                await self._fail(post, failure.message, drop_containers=True)
                return
            await self._check_later(post)
        elif kind in {ErrorKind.TRANSIENT, ErrorKind.NEW_CONTAINER}:
            if kind is ErrorKind.NEW_CONTAINER:
                await self._save(
                    post, container_id=None, child_container_ids=[], container_created_at=None
                )
            await self._retry(post, exc.title, exc.retry_after_s)
        elif kind is ErrorKind.RATE_LIMITED:
            wait = exc.retry_after_s or self.policy.rate_limit_wait_s
            await self._defer(post, self.clock.now() + timedelta(seconds=wait), exc.title)
        elif kind is ErrorKind.QUOTA:
            until = await self._quota_frees_at(post, timedelta(hours=24))
            await self._defer(post, until, exc.title)
        elif kind is ErrorKind.TOKEN_INVALID:
            await self._fail(post, exc.title)
            await self._needs_reconnect(post, exc.title)
        else:
            await self._fail(post, exc.title)

    async def _retry(self, post: Post, reason: str, retry_after_s: float | None) -> None:
        attempts = post.attempts + 1
        if attempts >= self.policy.max_attempts:
            published = await self._published_meanwhile(post) if post.container_id else False
            if published:
                return
            if published is None and not self._container_lapsed(post):
                # A media_publish may have gone through: failing now would invite the team
                # to post it again. Keep asking until Instagram answers or the container
                # could no longer be published anyway.
                reason = f"{reason}; Instagram has not confirmed whether the post went out"
                attempts = self.policy.max_attempts - 1
            else:
                await self._fail(
                    post, f"{reason}; gave up after {attempts} attempts", attempts=attempts
                )
                return
        wait = backoff_s(attempts, self.policy.retry_base_s, self.policy.retry_max_s, self.jitter())
        wait = max(wait, min(retry_after_s or 0.0, self.policy.retry_max_s))
        at = self.clock.now() + timedelta(seconds=wait)
        workspace = await Workspace.get(id=post.workspace_id)  # type: ignore[attr-defined]
        message = f"{reason}; trying again at {local_time(at, workspace.timezone)}"
        await self._leave(post, Status.RETRYING, message, next_attempt_at=at, attempts=attempts)
        await self._enqueue(post.id, post.version + 1, at)

    def _container_lapsed(self, post: Post) -> bool:
        """Past the 24 h in which Instagram publishes a container (then it is EXPIRED)."""
        started = post.container_created_at
        return started is None or self.clock.now() - started > CONTAINER_LIFETIME

    async def _published_meanwhile(self, post: Post) -> bool | None:
        """Last look before giving up: did an earlier ``media_publish`` go through after all?

        True when it did (the post is recorded), False when not, None when Instagram did not
        answer the question.
        """
        assert post.container_id is not None
        try:
            ref = self.account_ref(await InstagramAccount.get(id=post.account_id))  # type: ignore[attr-defined]
            status = await self.instagram.container_status(ref, post.container_id)
        except GraphError:
            return None
        if status.status_code != "PUBLISHED":
            return False
        try:
            media_id = await self._find_published(post, ref)
        except _CheckLater:
            await self._check_later(post)
            return True
        await self._finish(post, ref, media_id, comment=media_id is not None)
        return True

    async def _defer(self, post: Post, until: datetime, reason: str) -> None:
        await self._leave(
            post, Status.RETRYING, reason, next_attempt_at=until, event="post.deferred"
        )
        await self._enqueue(post.id, post.version + 1, until)

    async def _fail(
        self,
        post: Post,
        message: str,
        *,
        drop_containers: bool = False,
        attempts: int | None = None,
    ) -> None:
        extra: dict[str, Any] = {"next_attempt_at": None}
        if drop_containers:
            extra.update(container_id=None, child_container_ids=[], container_created_at=None)
        if attempts is not None:
            extra["attempts"] = attempts
        await self._leave(post, Status.FAILED, message, event="post.failed", **extra)

    async def _leave(
        self, post: Post, target: Status, reason: str, *, event: str | None = None, **fields: Any
    ) -> None:
        """Move an owned post out of ``publishing`` (bumping its version), audited."""
        async with in_transaction():
            changed = await self._owned(post).update(
                status=PostStatus(target.value),
                version=post.version + 1,
                last_error=reason,
                **fields,
            )
            if changed:
                await self._audit_move(
                    post,
                    target,
                    actor="worker",
                    reason=reason,
                    attempts=fields.get("attempts", post.attempts),
                )
                if event:
                    until = fields.get("next_attempt_at")
                    await self._event(
                        post, event, reason=reason, until=until.isoformat() if until else None
                    )
        if not changed:
            raise Conflict(f"post {post.id} is no longer ours to publish")
        logger.info("post %s -> %s: %s", post.id, target.value, reason)

    async def _event(self, post: Post, kind: str, **payload: Any) -> None:
        await DomainEvent.create(
            workspace_id=post.workspace_id,  # type: ignore[attr-defined]
            kind=kind,
            payload={
                "post_id": post.id,
                "account_id": post.account_id,  # type: ignore[attr-defined]
                "post_kind": post.kind.value,
                "scheduled_at": post.scheduled_at.isoformat() if post.scheduled_at else None,
                **payload,
            },
        )

    async def _needs_reconnect(self, post: Post, reason: str) -> None:
        account_id = post.account_id  # type: ignore[attr-defined]
        changed = await InstagramAccount.filter(id=account_id, status=AccountStatus.ACTIVE).update(
            status=AccountStatus.NEEDS_RECONNECT, status_reason=reason[:255]
        )
        if changed:
            await audit.record(
                "account.needs_reconnect",
                actor="worker",
                workspace_id=post.workspace_id,  # type: ignore[attr-defined]
                target_type="account",
                target_id=account_id,
                level="warning",
                reason=reason,
            )
            await DomainEvent.create(
                workspace_id=post.workspace_id,  # type: ignore[attr-defined]
                kind="account.disconnected",
                payload={"account_id": account_id, "reason": reason},
            )

    # ================================================================ the reconciler

    async def reconcile(self) -> int:
        """Queue due posts with no live job and resume abandoned ones; returns how many."""
        now = self.clock.now()
        horizon = now + timedelta(seconds=self.policy.lookahead_s)
        queued = 0
        waiting = await Post.filter(
            Q(status=PostStatus.SCHEDULED, scheduled_at__lte=horizon)
            | Q(status=PostStatus.RETRYING, next_attempt_at__lte=horizon)
        ).only("id", "version", "status", "scheduled_at", "next_attempt_at")
        for post in waiting:
            at = post.scheduled_at if post.status == PostStatus.SCHEDULED else post.next_attempt_at
            if await self._job_alive(main_job_id(post.id, post.version)):
                continue
            if await self._enqueue(post.id, post.version, at):
                queued += 1
                logger.info("reconciler queued post %s version %s", post.id, post.version)
        stuck = await Post.filter(
            Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now - RESUME_GRACE),
            status=PostStatus.PUBLISHING,
        ).only("id", "version")
        for post in stuck:
            job_id = f"{main_job_id(post.id, post.version)}:resume{_ms(now)}"
            if await self._enqueue(post.id, post.version, None, job_id=job_id):
                queued += 1
                logger.warning("reconciler resumes post %s (its worker went away)", post.id)
        return queued

    async def _job_alive(self, job_id: str) -> bool:
        try:
            return await self.queue.job_exists(job_id)
        except Exception:
            logger.exception("cannot ask the queue about job %s", job_id)
            return True


async def _account_of(post: Post) -> InstagramAccount:
    """The post's account: the row read along with the post, or read now."""
    loaded: object = post.account  # the row when read along, otherwise a pending query
    if isinstance(loaded, InstagramAccount):
        return loaded
    return await InstagramAccount.get(id=post.account_id)  # type: ignore[attr-defined]


def _duration(seconds: float) -> str:
    return f"{seconds / 60:.0f} minutes" if seconds >= 120 else f"{seconds:.0f} seconds"


def _ms(when: datetime) -> int:
    return int(when.timestamp() * 1000)


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    text = value.replace("Z", "+00:00")
    if len(text) > 5 and text[-5] in "+-" and text[-3] != ":":
        text = f"{text[:-2]}:{text[-2:]}"  # Graph writes +0000
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else None
