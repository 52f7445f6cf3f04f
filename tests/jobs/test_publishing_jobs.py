"""Publishing end to end: real Redis, real database, arq workers, the panel serving media and
the sandbox Instagram fetching it."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from redis.asyncio import Redis

from core.adapters.graph import GraphClient, MemoryUsageStore
from core.bootstrap import Container
from core.db.models import AuditLog, MediaAsset, Post, Workspace
from core.domain.graph_errors import ErrorKind, GraphError
from core.domain.posts import Status
from core.domain.scope import Actor
from core.services import media
from core.services.publishing import PostInput
from core.settings import Settings
from core.wiring import assemble_services
from jobs.publishing import publish_post, reconcile_publishing
from sandbox.faults import Fault
from tests.e2e.stack import free_port
from tests.fake_publishing import FakeClock
from tests.media_samples import image_bytes, video_bytes
from tests.publishing_world import run_worker_until_idle, sandbox_account, serve_panel

IG = "17841400000000777"


@pytest.fixture
def panel_port() -> int:
    return free_port()


@pytest.fixture
def settings(settings_factory: Any, sandbox: Any, panel_port: int) -> Settings:
    made: Settings = settings_factory(
        sandbox_url=sandbox.url,
        public_base_url=f"http://127.0.0.1:{panel_port}",
        publish_status_interval_s=0.1,
        publish_retry_base_s=0.1,
        publish_retry_max_s=0.4,
        worker_poll_delay=0.01,
    )
    return made


@dataclass
class Rig:
    settings: Settings
    container: Container
    sandbox: Any
    workspace: Workspace
    account_id: int
    image: MediaAsset
    square: MediaAsset
    video: MediaAsset

    async def post(self, kind: str, *, in_s: float = 0.5, **content: Any) -> Post:
        return await assemble_services(self.container).publishing.create(
            Actor.system(self.workspace.id),
            account_id=self.account_id,
            content=PostInput(kind=kind, **content),
            scheduled_at=self.container.clock.now() + timedelta(seconds=in_s),
        )

    def feed_captions(self) -> list[str]:
        return [m.caption for m in self.sandbox.state.feed(IG)]

    async def work(self) -> None:
        await run_worker_until_idle(self.settings, self.container)


@pytest.fixture
async def rig(
    settings: Settings, container: Container, sandbox: Any, panel_port: int
) -> AsyncIterator[Rig]:
    workspace = await Workspace.create(name="Shop", timezone="Europe/Paris")
    account = await sandbox_account(container, sandbox, workspace, IG, "shop")
    storage = assemble_services(container).storage
    upload = media.upload_bytes
    image = await upload(Actor.system(workspace.id), storage, image_bytes(1080, 1350))
    square = await upload(Actor.system(workspace.id), storage, image_bytes(1080, 1080))
    video = await upload(Actor.system(workspace.id), storage, video_bytes(9))
    async with serve_panel(settings, container, panel_port):
        yield Rig(settings, container, sandbox, workspace, account.id, image, square, video)


async def test_every_kind_publishes_end_to_end(rig: Rig) -> None:
    rig.sandbox.state.video_polls = 6  # the reel stays IN_PROGRESS for a while
    posts = [
        await rig.post("image", media_ids=[rig.image.id], caption="image #1", first_comment="hi"),
        await rig.post("reel", media_ids=[rig.video.id], caption="reel #2", share_to_feed=True),
        await rig.post(
            "carousel", media_ids=[rig.image.id, rig.video.id, rig.square.id], caption="carousel #3"
        ),
        await rig.post("story", media_ids=[rig.video.id]),
        await rig.post("story", media_ids=[rig.image.id]),
    ]
    await rig.work()
    for post in posts:
        fresh = await Post.get(id=post.id)
        assert fresh.status == Status.PUBLISHED, (fresh.kind, fresh.last_error)
        assert fresh.permalink == f"{rig.sandbox.url}/p/{fresh.ig_media_id}/"
        assert fresh.scheduled_at is not None and fresh.published_at is not None
        assert fresh.published_at >= fresh.scheduled_at
    assert sorted(rig.feed_captions()) == ["", "", "carousel #3", "image #1", "reel #2"]
    comments = [s for s in rig.sandbox.state.sent if s.kind == "comment"]
    assert [c.payload.get("message") for c in comments] == ["hi"]
    reel = await Post.get(id=posts[1].id)
    checks = await AuditLog.filter(target_id=str(reel.id), action="post.publishing").count()
    assert checks == 1  # the status checks were new jobs, not new claims


async def test_carousel_with_a_failing_child_fails_with_a_reason(rig: Rig) -> None:
    broken = await media.upload_bytes(
        Actor.system(rig.workspace.id), assemble_services(rig.container).storage, video_bytes(4)
    )
    # The file goes bad on disk after upload: Instagram fetches something that is no video.
    path = assemble_services(rig.container).storage.local_path(broken.storage_key)
    assert path is not None
    path.write_bytes(b"\x00" * 4096)
    post = await rig.post("carousel", media_ids=[rig.image.id, broken.id], caption="broken")
    await rig.work()
    post = await Post.get(id=post.id)
    assert post.status == Status.FAILED
    assert post.last_error.startswith("Instagram could not process item 2 of the carousel")
    assert rig.feed_captions() == []


async def test_reschedule_and_cancel_racing_due_jobs(rig: Rig) -> None:
    service = assemble_services(rig.container).publishing
    moved = await rig.post("image", media_ids=[rig.image.id], caption="moved", in_s=0.2)
    gone = await rig.post("image", media_ids=[rig.image.id], caption="gone", in_s=0.2)
    new_time = rig.container.clock.now() + timedelta(seconds=1.5)
    actor = Actor.system(rig.workspace.id)
    await service.reschedule(actor, moved.id, new_time)
    await service.cancel(actor, gone.id)
    # both version-1 jobs are still queued in Redis and run when due
    assert await rig.container.queue.job_exists(f"publish:{moved.id}:v1")
    assert await rig.container.queue.job_exists(f"publish:{gone.id}:v1")
    await rig.work()
    moved = await Post.get(id=moved.id)
    assert moved.status == Status.PUBLISHED and moved.version == 2
    assert moved.published_at is not None and moved.published_at >= new_time
    assert (await Post.get(id=gone.id)).status == Status.CANCELLED
    assert rig.feed_captions() == ["moved"]


class LostAnswers:
    """Wraps the Graph client: some media_publish calls take effect, then the answer is lost."""

    def __init__(self, inner: GraphClient, rate: float, rng: random.Random) -> None:
        self.inner = inner
        self.rate = rate
        self.rng = rng
        self.lost = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def publish_container(self, account: Any, container_id: str) -> str:
        media_id = await self.inner.publish_container(account, container_id)
        if self.rng.random() < self.rate:
            self.lost += 1
            raise GraphError(
                code=None,
                subcode=None,
                message="read timeout",
                kind=ErrorKind.TRANSIENT,
                title="No answer from Instagram; the request may or may not have gone through",
            )
        return media_id


async def test_thirty_percent_of_graph_calls_failing(rig: Rig) -> None:
    rng = random.Random(7)
    faults = rig.sandbox.faults
    failing = Fault(status=500, error={"message": "x", "type": "OAuthException", "code": 2})
    timing_out = Fault(status=504, delay_s=0.6, body="")

    def take(method: str, path: str) -> Fault | None:
        if "/_sandbox/" in path:
            return None
        roll = rng.random()
        if roll < 0.15:
            return failing
        if roll < 0.30:
            return timing_out
        return None

    faults.take = take
    graph = GraphClient(
        rig.container.http,
        rig.settings,
        usage=MemoryUsageStore(),
        timeout_s=0.3,
        backoff_s=0.01,
    )
    lossy = LostAnswers(graph, 0.3, rng)
    rig.container.graph = lossy
    rig.sandbox.state.video_polls = 1
    kinds = [
        ("image", [rig.image.id]),
        ("reel", [rig.video.id]),
        ("carousel", [rig.image.id, rig.square.id]),
    ]
    posts = []
    for n in range(18):
        kind, media_ids = kinds[n % 3]
        posts.append(await rig.post(kind, media_ids=media_ids, caption=f"fault test {n}"))
    await rig.work()

    captions = rig.feed_captions()
    assert len(captions) == len(set(captions)), "a post was published twice"
    outcomes = {Status.PUBLISHED: 0, Status.FAILED: 0}
    for post in posts:
        fresh = await Post.get(id=post.id)
        assert fresh.status in outcomes, (fresh.id, fresh.status)
        outcomes[fresh.status] += 1
        if fresh.status == Status.FAILED:
            assert fresh.last_error and fresh.caption not in captions
        else:
            assert captions.count(fresh.caption) == 1
            assert fresh.ig_media_id in {m.id for m in rig.sandbox.state.feed(IG)}
    assert outcomes[Status.PUBLISHED] >= 12
    assert lossy.lost > 0


class WorkerKilled(BaseException):
    """The worker process dies: nothing after this point runs."""


async def test_worker_killed_between_media_publish_and_db_write(rig: Rig, redis: Redis) -> None:
    clock = FakeClock(rig.container.clock.now())
    rig.container.clock = clock
    real = rig.container.graph

    class Dies:
        def __getattr__(self, name: str) -> Any:
            return getattr(real, name)

        async def publish_container(self, account: Any, container_id: str) -> str:
            await real.publish_container(account, container_id)
            raise WorkerKilled

    rig.container.graph = Dies()
    post = await rig.post("image", media_ids=[rig.image.id], caption="once", first_comment="c")
    clock.advance(1)
    ctx = {"services": assemble_services(rig.container)}
    with pytest.raises(WorkerKilled):
        await publish_post(ctx, post.id, 1)
    assert rig.feed_captions() == ["once"]
    assert (await Post.get(id=post.id)).status == Status.PUBLISHING
    await redis.flushdb()  # the dead worker's job is gone too

    rig.container.graph = real
    clock.advance(240)  # the dead worker's lease runs out
    await reconcile_publishing(ctx)
    await rig.work()
    post = await Post.get(id=post.id)
    assert post.status == Status.PUBLISHED
    assert rig.feed_captions() == ["once"]
    assert post.ig_media_id == rig.sandbox.state.feed(IG)[0].id
    comments = [s for s in rig.sandbox.state.sent if s.kind == "comment"]
    assert [(c.target, c.payload.get("message")) for c in comments] == [(post.ig_media_id, "c")]


async def test_redis_flushed_with_100_posts_scheduled(rig: Rig, redis: Redis) -> None:
    posts = [
        await rig.post("image", media_ids=[rig.image.id], caption=f"flush {n}", in_s=2)
        for n in range(100)
    ]
    await redis.flushdb()
    await reconcile_publishing({"services": assemble_services(rig.container)})
    await rig.work()
    assert sorted(rig.feed_captions()) == sorted(f"flush {n}" for n in range(100))
    for post in posts:
        fresh = await Post.get(id=post.id)
        assert fresh.status == Status.PUBLISHED
        claim = await AuditLog.get(target_id=str(post.id), action="post.publishing")
        assert claim.details["late_by_s"] >= 0  # not a moment early
