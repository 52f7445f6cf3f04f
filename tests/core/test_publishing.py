"""The publishing service against in-memory Instagram, queue and clock (real database)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from core.adapters.storage import DiskStorage
from core.db.models import (
    AccountStatus,
    AuditLog,
    DomainEvent,
    InstagramAccount,
    LoginKind,
    MediaAsset,
    Post,
    PublishJob,
    Workspace,
)
from core.domain.graph_errors import ErrorKind
from core.domain.posts import Status
from core.domain.scope import Actor, Role
from core.errors import Conflict, NotFound, ValidationFailed
from core.ports.instagram import AccountRef
from core.services import media
from core.services.post_versions import PREFETCH, PublishPolicy, main_job_id
from core.services.publishing import PostInput, Publishing
from tests.fake_publishing import FakeClock, FakeInstagram, FakeQueue, graph_error
from tests.media_samples import image_bytes, video_bytes


class WorkerKilled(BaseException):
    """Stands for the process dying: nothing after it runs."""


@dataclass
class World:
    workspace: Workspace
    account: InstagramAccount
    image: MediaAsset
    image2: MediaAsset
    video: MediaAsset
    clock: FakeClock
    queue: FakeQueue
    ig: FakeInstagram
    service: Publishing

    @property
    def actor(self) -> Actor:
        return Actor(self.workspace.id, Role.EDITOR, "user:1")

    async def post(self, kind: str = "image", *, in_s: float | None = 60, **content: Any) -> Post:
        media_ids = content.pop(
            "media_ids",
            {
                "image": [self.image.id],
                "reel": [self.video.id],
                "story": [self.video.id],
                "carousel": [self.image.id, self.video.id, self.image2.id],
            }[kind],
        )
        when = self.clock.now() + timedelta(seconds=in_s) if in_s is not None else None
        return await self.service.create(
            self.actor,
            account_id=self.account.id,
            content=PostInput(kind=kind, media_ids=media_ids, **content),
            scheduled_at=when,
        )

    async def drain(self, max_jobs: int = 500) -> int:
        """Run queued jobs in time order, moving the clock to each one's time."""
        ran = 0
        while (job := self.queue.pop_next()) is not None and ran < max_jobs:
            if job.at is not None and job.at > self.clock.now():
                self.clock.current = job.at
            self.queue.done.add(job.job_id)
            await self.service.run(*job.args)
            ran += 1
        return ran


@pytest.fixture
async def world(sqlite_db: str, tmp_path: Path, request: pytest.FixtureRequest) -> World:
    """``@pytest.mark.parametrize("world", [{...}], indirect=True)`` changes the policy."""
    workspace = await Workspace.create(name="Shop", timezone="Europe/Berlin")
    account = await InstagramAccount.create(
        workspace=workspace,
        ig_id="17841400000000001",
        username="shop",
        login_kind=LoginKind.SANDBOX,
        token_encrypted="unused",
    )
    storage = DiskStorage(tmp_path / "media")
    image = await media.upload_bytes(Actor.system(workspace.id), storage, image_bytes())
    image2 = await media.upload_bytes(Actor.system(workspace.id), storage, image_bytes(1080, 1080))
    video = await media.upload_bytes(Actor.system(workspace.id), storage, video_bytes(12))
    clock, queue, ig = FakeClock(), FakeQueue(), FakeInstagram()
    service = Publishing(
        instagram=ig,
        queue=queue,
        clock=clock,
        account_ref=lambda a: AccountRef(ig_id=a.ig_id, token="t", account_id=a.id),
        media_url=lambda a: f"http://media.test/media/{a.storage_key}",
        policy=PublishPolicy(
            **{
                "retry_base_s": 10,
                "retry_max_s": 120,
                "status_interval_s": 5,
                **getattr(request, "param", {}),
            }
        ),
        jitter=lambda: 0.5,
        sleep=clock.sleep,
    )
    return World(workspace, account, image, image2, video, clock, queue, ig, service)


async def actions(post_id: int) -> list[str]:
    rows = await AuditLog.filter(target_type="post", target_id=str(post_id)).order_by("id")
    return [row.action for row in rows]


async def events(kind: str) -> list[dict[str, Any]]:
    return [e.payload for e in await DomainEvent.filter(kind=kind).order_by("id")]


# ---------------------------------------------------------------- the happy paths


async def test_image_post_publishes_at_its_second_with_first_comment(world: World) -> None:
    post = await world.post(caption="Hello #shop", first_comment="Link in bio")
    assert post.status == Status.SCHEDULED
    [job] = world.queue.jobs
    assert job.job_id == main_job_id(post.id, 1)
    assert post.scheduled_at is not None and job.at == post.scheduled_at - PREFETCH
    assert await PublishJob.filter(post_id=post.id, version=1, job_id=job.job_id).exists()

    await world.drain()
    post = await Post.get(id=post.id)
    assert post.status == Status.PUBLISHED
    assert post.ig_media_id and post.permalink and post.published_at == post.scheduled_at
    assert world.ig.published_captions() == ["Hello #shop"]
    assert world.ig.comments == [(post.ig_media_id, "Link in bio")]
    # Meta's flow: container -> status -> publish (the status is read even for an image).
    steps = {"create_image_container", "container_status", "publish_container"}
    flow = [call for call in world.ig.calls if call in steps]
    assert flow == ["create_image_container", "container_status", "publish_container"]
    assert await actions(post.id) == ["post.created", "post.publishing", "post.published"]
    claim = await AuditLog.get(action="post.publishing", target_id=str(post.id))
    assert claim.details["late_by_s"] == 0 and claim.details["reason"] == "scheduled time reached"
    [published] = await events("post.published")
    assert published["post_id"] == post.id and published["permalink"] == post.permalink


async def test_reel_stays_in_progress_and_is_checked_by_new_jobs(world: World) -> None:
    world.ig.video_polls = 4
    post = await world.post("reel", caption="New reel", share_to_feed=False)
    ran = await world.drain()
    post = await Post.get(id=post.id)
    assert post.status == Status.PUBLISHED
    assert ran == 5  # the first run, then one job per status check
    assert world.ig.calls.count("container_status") == 5
    assert world.ig.calls.count("create_video_container") == 1
    assert world.ig.calls.count("publish_container") == 1


async def test_video_that_never_finishes_fails_after_the_timeout(world: World) -> None:
    world.ig.video_polls = 10_000
    post = await world.post("reel")
    await world.drain()
    post = await Post.get(id=post.id)
    assert post.status == Status.FAILED
    assert "still processing the media after 3" in post.last_error
    assert world.ig.feed == []
    [failed] = await events("post.failed")
    assert "still processing" in failed["reason"]


async def test_carousel_and_story(world: World) -> None:
    world.ig.video_polls = 2
    carousel = await world.post("carousel", caption="Three things")
    story = await world.post("story", media_ids=[world.image.id])
    await world.drain()
    carousel = await Post.get(id=carousel.id)
    assert carousel.status == Status.PUBLISHED
    assert len(carousel.child_container_ids) == 3
    parent = world.ig.containers[str(carousel.container_id)]
    assert list(parent.children) == carousel.child_container_ids
    assert (await Post.get(id=story.id)).status == Status.PUBLISHED
    assert world.ig.calls.count("create_carousel_container") == 1


async def test_carousel_with_a_failing_child_fails_naming_it(world: World) -> None:
    world.ig.video_polls = 1
    world.ig.error_children = {2}
    post = await world.post("carousel")
    world.ig.before = lambda name: world.ig.fail_children() if name == "container_status" else None
    await world.drain()
    post = await Post.get(id=post.id)
    assert post.status == Status.FAILED
    assert (
        post.last_error == "Instagram could not process item 2 of the carousel: Unsupported codec"
    )
    assert post.container_id is None and post.child_container_ids == []
    assert world.ig.feed == []


# ---------------------------------------------------------------- people racing the job


async def test_reschedule_racing_a_due_job_leaves_the_old_job_idle(world: World) -> None:
    post = await world.post(in_s=10)
    [old] = world.queue.jobs
    world.clock.advance(10)  # due now; the old job is about to run
    moved = await world.service.reschedule(
        world.actor, post.id, world.clock.now() + timedelta(hours=1)
    )
    assert moved.version == 2
    await world.service.run(*old.args)  # the old job runs anyway
    assert (await Post.get(id=post.id)).status == Status.SCHEDULED
    assert world.ig.calls == []
    world.queue.jobs = [j for j in world.queue.jobs if j.job_id != old.job_id]
    await world.drain()
    post = await Post.get(id=post.id)
    assert post.status == Status.PUBLISHED and len(world.ig.feed) == 1
    assert post.published_at == moved.scheduled_at


async def test_cancel_racing_a_due_job(world: World) -> None:
    post = await world.post(in_s=5)
    world.clock.advance(5)
    await world.service.cancel(world.actor, post.id, reason="changed our mind")
    await world.drain()
    post = await Post.get(id=post.id)
    assert post.status == Status.CANCELLED and world.ig.calls == []
    entry = await AuditLog.get(action="post.cancelled", target_id=str(post.id))
    assert entry.details["reason"] == "changed our mind"


async def test_cancel_loses_to_a_job_that_already_took_the_post(world: World) -> None:
    post = await world.post(in_s=0)
    world.ig.video_polls = 0
    started = asyncio.Event()
    release = asyncio.Event()

    original = world.ig.publishing_limit

    async def held(account: AccountRef) -> Any:
        started.set()
        await release.wait()
        return await original(account)

    world.ig.publishing_limit = held  # type: ignore[method-assign]
    job = world.queue.pop_next()
    assert job is not None
    running = asyncio.create_task(world.service.run(*job.args))
    await started.wait()
    with pytest.raises(Conflict, match="being published right now"):
        await world.service.cancel(world.actor, post.id)
    release.set()
    await running
    assert (await Post.get(id=post.id)).status == Status.PUBLISHED


async def test_two_workers_running_the_same_job_publish_once(world: World) -> None:
    posts = [await world.post(in_s=0, caption=f"post {n}") for n in range(5)]
    jobs = list(world.queue.jobs)
    world.queue.jobs.clear()
    await asyncio.gather(*(world.service.run(*j.args) for j in jobs + jobs))
    await world.drain()
    assert sorted(world.ig.published_captions()) == [f"post {n}" for n in range(5)]
    for post in posts:
        assert (await Post.get(id=post.id)).status == Status.PUBLISHED


# ---------------------------------------------------------------- errors


async def test_transient_errors_retry_with_backoff_then_publish(world: World) -> None:
    world.ig.faults["create_image_container"] = [
        graph_error(ErrorKind.TRANSIENT, "Instagram is temporarily unavailable") for _ in range(2)
    ]
    post = await world.post()
    start = post.scheduled_at
    assert start is not None
    await world.drain()
    post = await Post.get(id=post.id)
    assert post.status == Status.PUBLISHED and post.attempts == 2
    assert await actions(post.id) == [
        "post.created",
        "post.publishing",
        "post.retrying",
        "post.publishing",
        "post.retrying",
        "post.publishing",
        "post.published",
    ]
    # back-off with equal jitter at 0.5: 10 s * 0.75, then 20 s * 0.75
    assert post.published_at == start + timedelta(seconds=7.5 + 15)


async def test_transient_errors_give_up_after_five_attempts(world: World) -> None:
    world.ig.faults["create_image_container"] = [
        graph_error(ErrorKind.TRANSIENT, "Instagram is temporarily unavailable") for _ in range(9)
    ]
    post = await world.post()
    await world.drain()
    post = await Post.get(id=post.id)
    assert post.status == Status.FAILED and post.attempts == 5
    assert post.last_error == "Instagram is temporarily unavailable; gave up after 5 attempts"
    assert world.ig.calls.count("create_image_container") == 5


async def test_publish_whose_answer_was_lost_is_recorded_not_repeated(world: World) -> None:
    def lose_answer() -> None:
        raise graph_error(ErrorKind.TRANSIENT, "Instagram is temporarily unavailable")

    world.ig.after["publish_container"] = lose_answer
    post = await world.post(caption="only once", first_comment="hi")
    await world.drain()
    post = await Post.get(id=post.id)
    assert post.status == Status.PUBLISHED
    assert world.ig.published_captions() == ["only once"]
    assert world.ig.calls.count("publish_container") == 1
    assert post.ig_media_id == world.ig.feed[0]["id"]
    assert world.ig.comments == [(post.ig_media_id, "hi")]


async def test_a_live_post_instagram_cannot_list_yet_is_looked_up_again(world: World) -> None:
    def lose_answer() -> None:
        raise graph_error(ErrorKind.TRANSIENT, "Instagram is temporarily unavailable")

    world.ig.after["publish_container"] = lose_answer
    world.ig.faults["media_list"] = [
        graph_error(ErrorKind.TRANSIENT, "Instagram is temporarily unavailable"),
        graph_error(ErrorKind.RATE_LIMITED, "Too many calls"),
    ]
    post = await world.post(caption="find me")
    await world.drain()
    post = await Post.get(id=post.id)
    assert post.status == Status.PUBLISHED
    assert world.ig.calls.count("publish_container") == 1
    assert world.ig.calls.count("media_list") == 3
    assert post.ig_media_id == world.ig.feed[0]["id"] and post.permalink


async def test_a_post_instagram_will_not_confirm_is_never_failed_while_it_may_be_live(
    world: World,
) -> None:
    unavailable = graph_error(ErrorKind.TRANSIENT, "Instagram is temporarily unavailable")

    def lose_answer_then_go_quiet() -> None:
        world.ig.faults["container_status"] = [unavailable] * 8
        raise unavailable

    world.ig.after["publish_container"] = lose_answer_then_go_quiet
    post = await world.post(caption="went out?")
    await world.drain()
    post = await Post.get(id=post.id)
    assert world.service.policy.max_attempts < 8
    assert post.status == Status.PUBLISHED
    assert world.ig.calls.count("publish_container") == 1
    assert post.ig_media_id == world.ig.feed[0]["id"]


# Retries about an hour apart: a day of them is dozens of jobs, not 1,440.
@pytest.mark.parametrize("world", [{"retry_base_s": 600, "retry_max_s": 3600}], indirect=True)
async def test_a_post_unconfirmed_for_a_day_fails_saying_so(world: World) -> None:
    unavailable = graph_error(ErrorKind.TRANSIENT, "Instagram is temporarily unavailable")

    def lose_answer() -> None:
        raise unavailable

    def silent_after_publishing(name: str) -> None:
        if name == "container_status" and "publish_container" in world.ig.calls:
            world.ig.faults[name] = [unavailable]

    world.ig.after["publish_container"] = lose_answer
    world.ig.before = silent_after_publishing
    post = await world.post(caption="lost in space")
    await world.drain(max_jobs=2000)
    post = await Post.get(id=post.id)
    assert post.status == Status.FAILED
    assert "gave up after" in post.last_error
    assert world.clock.now() - post.container_created_at > timedelta(hours=24)
    assert world.ig.calls.count("publish_container") == 1


async def test_worker_killed_after_media_publish_resumes_without_posting_again(
    world: World,
) -> None:
    def die() -> None:
        raise WorkerKilled

    world.ig.after["publish_container"] = die
    post = await world.post(caption="crash test")
    with pytest.raises(WorkerKilled):
        await world.drain()
    stuck = await Post.get(id=post.id)
    assert stuck.status == Status.PUBLISHING and stuck.ig_media_id is None
    world.queue.flush()  # the job is gone with the worker

    assert await world.service.reconcile() == 0  # the dead worker's lease still runs
    world.clock.advance(world.service.policy.lease_s + 31)
    assert await world.service.reconcile() == 1
    await world.drain()
    post = await Post.get(id=post.id)
    assert post.status == Status.PUBLISHED
    assert world.ig.published_captions() == ["crash test"]
    assert world.ig.calls.count("publish_container") == 1
    assert post.ig_media_id == world.ig.feed[0]["id"]


async def test_daily_quota_defers_with_a_visible_reason(world: World) -> None:
    world.ig.quota_usage = world.ig.quota_total = 50
    post = await world.post()
    job = world.queue.pop_next()
    assert job is not None
    world.clock.current = job.at  # type: ignore[assignment]
    await world.service.run(*job.args)
    post = await Post.get(id=post.id)
    assert post.status == Status.RETRYING and post.attempts == 0
    assert "limit of 50 posts in 24 hours" in post.last_error
    assert "(Europe/Berlin)" in post.last_error
    [deferred] = await events("post.deferred")
    assert deferred["until"] == post.next_attempt_at.isoformat()  # type: ignore[union-attr]
    world.ig.quota_usage = 10
    await world.drain()
    assert (await Post.get(id=post.id)).status == Status.PUBLISHED


async def test_rate_limit_defers_by_the_wait_meta_gives(world: World) -> None:
    world.ig.faults["publish_container"] = [
        graph_error(ErrorKind.RATE_LIMITED, "Too many requests", retry_after_s=120)
    ]
    post = await world.post()
    await world.drain()
    post = await Post.get(id=post.id)
    assert post.status == Status.PUBLISHED and post.attempts == 0
    assert post.scheduled_at is not None
    assert post.published_at == post.scheduled_at + timedelta(seconds=120)
    assert len(await events("post.deferred")) == 1


async def test_permanent_error_fails_with_the_message(world: World) -> None:
    title = "The image's shape is not allowed: use an aspect ratio between 4:5 and 1.91:1"
    world.ig.faults["create_image_container"] = [graph_error(ErrorKind.PERMANENT, title)]
    post = await world.post()
    await world.drain()
    post = await Post.get(id=post.id)
    assert post.status == Status.FAILED and post.last_error == title
    entry = await AuditLog.get(action="post.failed", target_id=str(post.id))
    assert entry.level == "warning" and entry.details["reason"] == title


async def test_dead_token_fails_and_asks_to_reconnect(world: World) -> None:
    title = "The Instagram connection expired: reconnect the account"
    world.ig.faults["create_image_container"] = [graph_error(ErrorKind.TOKEN_INVALID, title)]
    first = await world.post()
    second = await world.post(in_s=120)
    await world.drain()
    account = await InstagramAccount.get(id=world.account.id)
    assert account.status == AccountStatus.NEEDS_RECONNECT and account.status_reason == title
    assert (await Post.get(id=first.id)).last_error == title
    second = await Post.get(id=second.id)
    assert second.status == Status.FAILED and "@shop needs to be reconnected" in second.last_error
    assert len(await events("account.needs_reconnect")) == 1


# ---------------------------------------------------------------- the reconciler


async def test_flushed_queue_still_publishes_everything_on_time(world: World) -> None:
    posts = [await world.post(in_s=30 + n, caption=f"p{n}") for n in range(100)]
    world.queue.flush()
    assert await world.service.reconcile() == 100
    assert await world.service.reconcile() == 0  # jobs are live now
    await world.drain()
    assert sorted(world.ig.published_captions()) == sorted(f"p{n}" for n in range(100))
    for post in posts:
        fresh = await Post.get(id=post.id)
        assert fresh.status == Status.PUBLISHED
        assert fresh.published_at == post.scheduled_at


async def test_reconciler_leaves_far_future_posts_to_later_runs(world: World) -> None:
    await world.post(in_s=3600)
    world.queue.flush()
    assert await world.service.reconcile() == 0
    world.clock.advance(3600 - 200)
    assert await world.service.reconcile() == 1


# ---------------------------------------------------------------- people's actions


async def test_validation_happens_before_anything_is_stored(world: World) -> None:
    with pytest.raises(ValidationFailed) as info:
        await world.post(caption="#tag " * 31)
    assert "31 hashtags" in info.value.fields["caption"]
    with pytest.raises(ValidationFailed) as info:
        await world.post(in_s=-3600)
    assert "in the past" in info.value.fields["scheduled_at"]
    assert await Post.all().count() == 0
    assert world.queue.jobs == []


async def test_edit_duplicate_publish_now_and_their_limits(world: World) -> None:
    post = await world.post(caption="first", in_s=600)
    edited = await world.service.edit(
        world.actor,
        post.id,
        PostInput(kind="image", media_ids=[world.image2.id], caption="second\x00"),
    )
    assert edited.version == 2 and edited.caption == "second"
    with pytest.raises(Conflict, match="kind cannot change"):
        await world.service.edit(
            world.actor, post.id, PostInput(kind="reel", media_ids=[world.video.id])
        )
    copy = await world.service.duplicate(world.actor, post.id)
    assert copy.status == Status.DRAFT and copy.caption == "second"
    now = await world.service.publish_now(world.actor, copy.id)
    assert now.status == Status.SCHEDULED and now.scheduled_at == world.clock.now()
    await world.drain()
    assert sorted(world.ig.published_captions()) == ["second", "second"]
    with pytest.raises(Conflict, match="already published"):
        await world.service.cancel(world.actor, post.id)
    with pytest.raises(Conflict, match="cannot be edited"):
        await world.service.edit(
            world.actor, post.id, PostInput(kind="image", media_ids=[world.image.id])
        )


async def test_a_job_started_too_early_comes_back_on_time(world: World) -> None:
    post = await world.post(in_s=600)
    world.queue.jobs.clear()
    await world.service.run(post.id, 1)  # e.g. a worker whose clock runs ahead
    assert world.ig.calls == []
    [again] = world.queue.jobs
    assert post.scheduled_at is not None and again.at == post.scheduled_at - PREFETCH
    await world.drain()
    post = await Post.get(id=post.id)
    assert post.status == Status.PUBLISHED and post.published_at == post.scheduled_at


# ---------------------------------------------------------------- workspace scope

PEOPLES_ACTIONS = {
    "get": lambda s, a, p, w: s.get(a, p.id),
    "edit": lambda s, a, p, w: s.edit(a, p.id, PostInput(kind="image", media_ids=[w.image.id])),
    "schedule": lambda s, a, p, w: s.schedule(a, p.id, w.clock.now() + timedelta(hours=2)),
    "publish_now": lambda s, a, p, w: s.publish_now(a, p.id),
    "cancel": lambda s, a, p, w: s.cancel(a, p.id),
    "unschedule": lambda s, a, p, w: s.unschedule(a, p.id),
    "delete": lambda s, a, p, w: s.delete(a, p.id),
    "duplicate": lambda s, a, p, w: s.duplicate(a, p.id),
}


@pytest.mark.parametrize("action", PEOPLES_ACTIONS)
async def test_another_workspaces_post_is_not_found_and_stays_as_it_was(
    world: World, action: str
) -> None:
    post = await world.post(caption="ours", in_s=600)
    jobs = list(world.queue.jobs)
    audited = await AuditLog.all().count()
    other = await Workspace.create(name="Other")
    stranger = Actor(other.id, Role.OWNER, "someone@other.test")
    with pytest.raises(NotFound):
        await PEOPLES_ACTIONS[action](world.service, stranger, post, world)
    after = await Post.get(id=post.id)
    assert (after.status, after.version, after.caption) == (Status.SCHEDULED, 1, "ours")
    assert await Post.all().count() == 1
    assert await AuditLog.all().count() == audited
    assert world.queue.jobs == jobs


async def test_a_post_is_created_only_on_an_account_of_the_actors_workspace(
    world: World,
) -> None:
    other = await Workspace.create(name="Other")
    with pytest.raises(NotFound):
        await world.service.create(
            Actor(other.id, Role.OWNER, "someone@other.test"),
            account_id=world.account.id,
            content=PostInput(kind="image", media_ids=[world.image.id]),
        )
    assert await Post.all().count() == 0
