"""A post version's publish job and its audited moves: what the post editor, the publisher
and the reconciler share.

Each post version has one main publish job, ``publish:{post}:v{version}``, so a second
enqueue of it is refused; a change bumps the version, and the job queued for the older one
finds a mismatch and does nothing. Follow-up jobs (a status check, a resume) carry their
time in the id. Queueing never fails the caller: a post is stored first, and when the queue
is away the reconciler queues it within a minute. Every status move is audited with its
reason.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from core.db.models import Post, PublishJob
from core.domain.posts import Status
from core.domain.scope import instance_level
from core.ports.queue import JobQueue
from core.services import audit
from core.settings import Settings

logger = logging.getLogger(__name__)

JOB_NAME = "publish_post"
# Jobs are queued this long before their time and wait for the exact moment themselves:
# the queue is polled, so a job queued for the second itself starts a poll interval late.
PREFETCH = timedelta(seconds=0.25)


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


def main_job_id(post_id: int, version: int) -> str:
    """The id of a post version's publish job: a second enqueue of it is refused."""
    return f"publish:{post_id}:v{version}"


def follow_up_job_id(post_id: int, version: int, purpose: str, at: datetime) -> str:
    """The id of a further job for a post version (``check``, ``resume``…) at ``at``."""
    return f"{main_job_id(post_id, version)}:{purpose}{int(at.timestamp() * 1000)}"


@instance_level("queues a publish job by post id for the editor and the reconciler")
async def enqueue(
    queue: JobQueue, post_id: int, version: int, at: datetime | None, *, job_id: str | None = None
) -> bool:
    """Queue the publish job; when Redis is away the reconciler queues it later."""
    jid = job_id or main_job_id(post_id, version)
    try:
        if job_id is None:
            await PublishJob.get_or_create(
                post_id=post_id, version=version, defaults={"job_id": jid}
            )
        early = at - PREFETCH if at is not None else None
        return await queue.enqueue(JOB_NAME, post_id, version, job_id=jid, defer_until=early)
    except Exception:
        # The post is safely stored; the reconciler queues it within a minute.
        logger.exception("could not queue post %s version %s", post_id, version)
        return False


@instance_level("records a move of a post its caller already loaded in scope")
async def audit_move(
    post: Post, target: Status, *, actor: str, reason: str, **details: Any
) -> None:
    """Record that ``post`` moves from its current status to ``target``, and why."""
    await audit.record(
        f"post.{target.value}",
        actor=actor,
        workspace_id=post.workspace_id,
        target_type="post",
        target_id=post.id,
        level="warning" if target is Status.FAILED else "info",
        reason=reason,
        from_status=Status(post.status).value,
        **details,
    )
