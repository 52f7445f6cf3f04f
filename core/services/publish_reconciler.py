"""The publishing reconciler: no due post is left without a live job.

``reconcile`` (a cron, every minute) queues due posts that have no live job and resumes
posts whose worker vanished, so a Redis flush or a killed worker loses nothing. It only
queues jobs: the publish job itself decides, by version and lease, whether there is work.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from tortoise.expressions import Q

from core.db.models import Post
from core.domain.posts import Status
from core.domain.scope import instance_level
from core.ports.clock import Clock
from core.ports.queue import JobQueue
from core.services.post_versions import PublishPolicy, enqueue, follow_up_job_id, main_job_id

logger = logging.getLogger(__name__)

# A post in "publishing" whose check is this overdue has lost its job: resume it.
RESUME_GRACE = timedelta(seconds=30)


class Reconciler:
    """Finds posts that lost their job. Ports come in; nothing here knows arq or Redis."""

    def __init__(self, *, queue: JobQueue, clock: Clock, policy: PublishPolicy) -> None:
        self.queue = queue
        self.clock = clock
        self.policy = policy

    @instance_level("a cron over every workspace's due posts")
    async def reconcile(self) -> int:
        """Queue due posts with no live job and resume abandoned ones; returns how many."""
        now = self.clock.now()
        horizon = now + timedelta(seconds=self.policy.lookahead_s)
        queued = 0
        waiting = await Post.filter(
            Q(status=Status.SCHEDULED, scheduled_at__lte=horizon)
            | Q(status=Status.RETRYING, next_attempt_at__lte=horizon)
        ).only("id", "version", "status", "scheduled_at", "next_attempt_at")
        for post in waiting:
            at = post.scheduled_at if post.status == Status.SCHEDULED else post.next_attempt_at
            if await self._job_alive(main_job_id(post.id, post.version)):
                continue
            if await enqueue(self.queue, post.id, post.version, at):
                queued += 1
                logger.info("reconciler queued post %s version %s", post.id, post.version)
        stuck = await Post.filter(
            Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now - RESUME_GRACE),
            status=Status.PUBLISHING,
        ).only("id", "version")
        for post in stuck:
            job_id = follow_up_job_id(post.id, post.version, "resume", now)
            if await enqueue(self.queue, post.id, post.version, None, job_id=job_id):
                queued += 1
                logger.warning("reconciler resumes post %s (its worker went away)", post.id)
        return queued

    async def _job_alive(self, job_id: str) -> bool:
        try:
            return await self.queue.job_exists(job_id)
        except Exception:
            logger.exception("cannot ask the queue about job %s", job_id)
            return True
