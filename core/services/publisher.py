"""The publish job: a due post version to ``published``, exactly once, surviving crashes.

- The ``publish_post`` job (deferred to the second) claims a due post, ``scheduled`` or
  ``retrying`` -> ``publishing``, with a conditional update on (id, status, version) that
  only one worker wins, taking a lease (``next_attempt_at``) that another worker may take
  over only once it has run out. Container ids are stored the moment Instagram returns
  them. Processing media is checked again by a new job, never by sleeping.
- Before ``media_publish`` the container's ``status_code`` is read: ``PUBLISHED`` means an
  earlier run published it and died before writing that down, so the media is looked up
  instead of being published twice. ``media_publish`` itself is never repeated blindly.
- Graph errors follow their classification: transient -> ``retrying`` with back-off (at most
  ``max_attempts``), rate limit and daily quota -> deferred, permanent -> ``failed`` with the
  message, dead token -> ``failed`` and the account ``needs_reconnect``.
- Every move out of ``publishing`` bumps the version and is audited with its reason.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

from redis.asyncio import Redis
from tortoise.expressions import Q
from tortoise.transactions import in_transaction

from core.db.models import (
    AccountStatus,
    DomainEvent,
    InstagramAccount,
    MediaAsset,
    Post,
    PostMedia,
    Workspace,
)
from core.domain.backoff import backoff_s
from core.domain.graph_errors import ErrorKind, GraphError
from core.domain.posts import Kind, Status, local_time
from core.domain.scope import instance_level
from core.errors import Conflict
from core.ports.clock import Clock
from core.ports.instagram import AccountRef, InstagramClient
from core.ports.queue import JobQueue
from core.services.next_post import bind_next_post
from core.services.post_versions import (
    PREFETCH,
    PublishPolicy,
    audit_move,
    enqueue,
    follow_up_job_id,
)
from core.services.reconnection import mark_needs_reconnect

logger = logging.getLogger(__name__)

# A job that starts earlier than PREFETCH plus this (clock skew) is queued again for later.
EARLY_SLACK = timedelta(seconds=1)
# Media found in the account's feed this long before the container was made is not ours.
MATCH_SLACK = timedelta(minutes=5)
# Instagram publishes a container within 24 h of its creation; after that it is EXPIRED.
CONTAINER_LIFETIME = timedelta(hours=24)

IN_FLIGHT = (Status.SCHEDULED, Status.RETRYING, Status.PUBLISHING)


class _CheckLater(Exception):
    """Internal: media still processing; poll again later."""


class _Failed(Exception):
    """Internal: fail the post with ``message`` (containers dead when ``drop_containers``)."""

    def __init__(self, message: str, *, drop_containers: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.drop_containers = drop_containers


class Publisher:
    """Runs the publish job. Ports come in; nothing here knows arq or HTTP, and Redis only
    to announce a dead token (``core.services.account_changes``)."""

    def __init__(
        self,
        *,
        instagram: InstagramClient,
        queue: JobQueue,
        clock: Clock,
        account_ref: Callable[[InstagramAccount], AccountRef],
        media_url: Callable[[MediaAsset], str],
        policy: PublishPolicy,
        jitter: Callable[[], float] = random.random,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        redis: Redis | None = None,
    ) -> None:
        self.redis = redis  # only to announce a dead token to every worker
        self.instagram = instagram
        self.queue = queue
        self.clock = clock
        self.account_ref = account_ref
        self.media_url = media_url
        self.policy = policy
        self.jitter = jitter
        self.sleep = sleep

    @instance_level("a job: publishes one post, by id, from the queue")
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
                    job_id = follow_up_job_id(post.id, version, "at", due)
                    await enqueue(self.queue, post.id, version, due, job_id=job_id)
                return  # publishing: another worker holds the lease, or a check is not due
            # Jobs are queued a moment ahead (queue polling adds delay); wait for the second.
            await self.sleep(early)
            now = self.clock.now()
        lease_until = now + timedelta(seconds=self.policy.lease_s)
        claim = Post.filter(id=post.id, version=version, status=status)
        if status is Status.PUBLISHING:
            claim = claim.filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
        async with in_transaction():
            claimed = await claim.update(status=Status.PUBLISHING, next_attempt_at=lease_until)
            if claimed and status is not Status.PUBLISHING:
                late = (now - due).total_seconds() if due else 0.0
                await audit_move(
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
        post.status = Status.PUBLISHING
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
        kind = post.kind
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
            if post.cover_asset_id is not None:
                cover = await MediaAsset.get_or_none(id=post.cover_asset_id)
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
        workspace = await Workspace.get(id=post.workspace_id)
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
                account_id=post.account_id,
                status=Status.PUBLISHED,
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
                    # Never posted twice: one whose answer was lost may well be under the post.
                    outcome = "is unconfirmed" if exc.maybe_sent else "could not be posted"
                    notes.append(f"the first comment {outcome} ({exc.title})")
            elif post.first_comment:
                notes.append("the first comment was not posted (the worker restarted mid-way)")
        else:
            notes.append("Instagram did not say which post it became")
        now = self.clock.now()
        note = "; ".join(notes)
        async with in_transaction():
            changed = await self._owned(post).update(
                status=Status.PUBLISHED,
                ig_media_id=media_id,
                permalink=permalink,
                published_at=now,
                next_attempt_at=None,
                last_error=f"Published, but {note}." if note else "",
            )
            if changed:
                await audit_move(
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
        elif media_id is not None and post.kind is not Kind.STORY:
            await bind_next_post(post.account_id, media_id, now, redis=self.redis)

    # ---------------------------------------------------------------- outcomes

    def _owned(self, post: Post) -> Any:
        return Post.filter(id=post.id, version=post.version, status=Status.PUBLISHING)

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
        job_id = follow_up_job_id(post.id, post.version, "check", at)
        await enqueue(self.queue, post.id, post.version, at, job_id=job_id)

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
            account = await _account_of(post)
            await mark_needs_reconnect(account, exc.title, redis=self.redis, actor="worker")
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
        # "Equal jitter": half the step fixed, half random.
        wait = backoff_s(
            attempts,
            base_s=self.policy.retry_base_s,
            cap_s=self.policy.retry_max_s,
            spread=(0.5, 1.0),
            rng=self.jitter,
        )
        wait = max(wait, min(retry_after_s or 0.0, self.policy.retry_max_s))
        at = self.clock.now() + timedelta(seconds=wait)
        workspace = await Workspace.get(id=post.workspace_id)
        message = f"{reason}; trying again at {local_time(at, workspace.timezone)}"
        await self._leave(post, Status.RETRYING, message, next_attempt_at=at, attempts=attempts)
        await enqueue(self.queue, post.id, post.version + 1, at)

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
            ref = self.account_ref(await InstagramAccount.get(id=post.account_id))
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
        await enqueue(self.queue, post.id, post.version + 1, until)

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
                status=target,
                version=post.version + 1,
                last_error=reason,
                **fields,
            )
            if changed:
                await audit_move(
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
            workspace_id=post.workspace_id,
            kind=kind,
            payload={
                "post_id": post.id,
                "account_id": post.account_id,
                "post_kind": post.kind.value,
                "scheduled_at": post.scheduled_at.isoformat() if post.scheduled_at else None,
                **payload,
            },
        )


async def _account_of(post: Post) -> InstagramAccount:
    """The post's account: the row read along with the post, or read now."""
    loaded: object = post.account  # the row when read along, otherwise a pending query
    if isinstance(loaded, InstagramAccount):
        return loaded
    return await InstagramAccount.get(id=post.account_id)


def _duration(seconds: float) -> str:
    return f"{seconds / 60:.0f} minutes" if seconds >= 120 else f"{seconds:.0f} seconds"


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
