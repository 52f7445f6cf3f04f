"""Publishing is exactly once in effect when the sandbox Instagram publishes (or comments) and
then loses its answer, on SQLite and PostgreSQL: one post, one first comment."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from tortoise.backends.base.executor import EXECUTOR_CACHE

from core.adapters.graph import GraphClient, MemoryUsageStore
from core.adapters.redis_server import RedisLocation
from core.bootstrap import Container
from core.db.models import Post, Workspace
from core.domain.posts import Status
from core.domain.scope import Actor, Role
from core.services import media
from core.services.publishing import PostInput
from core.settings import Settings
from core.wiring import assemble_services
from reelay.cli import open_services
from tests.conftest import _truncate_postgres
from tests.e2e.stack import free_port
from tests.media_samples import image_bytes
from tests.publishing_world import run_worker_until_idle, sandbox_account, serve_panel

IG = "17841400000000778"
LOST = ["drop", "502", "504", "timeout"]


async def _published_once(
    settings: Settings, container: Container, port: int, sandbox: Any
) -> tuple[Post, list[str], list[Any]]:
    """Publish one image with a first comment; the post, the feed's captions and the comments
    the account made."""
    workspace = await Workspace.create(name="Shop")
    account = await sandbox_account(container, sandbox, workspace, IG, "shop")
    services = assemble_services(container)
    actor = Actor(workspace.id, Role.OWNER, "user:1")
    image = await media.upload_bytes(actor, services.storage, image_bytes(1080, 1350))
    # A short wait for answers, so a held answer times out quickly.
    container.graph = GraphClient(
        container.http, settings, usage=MemoryUsageStore(), timeout_s=0.5, backoff_s=0.01
    )
    post = await services.publishing.create(
        actor,
        account_id=account.id,
        content=PostInput(
            kind="image", media_ids=[image.id], caption="lost answers", first_comment="first!"
        ),
        scheduled_at=container.clock.now() + timedelta(seconds=0.2),
    )
    async with serve_panel(settings, container, port):
        await run_worker_until_idle(settings, container)
    captions = [m.caption for m in sandbox.state.feed(IG)]
    comments = [s for s in sandbox.state.sent if s.kind == "comment"]
    return await Post.get(id=post.id), captions, comments


@pytest.fixture
async def rig(
    any_database_url: str,
    settings_factory: Any,
    sandbox: Any,
    redis: Any,
    redis_location: RedisLocation,
) -> AsyncIterator[tuple[Settings, Container, int]]:
    if any_database_url.startswith("postgres"):
        await _truncate_postgres(any_database_url)
    # Tortoise caches SQL per table, not per dialect: forget it when the backend changes.
    EXECUTOR_CACHE.clear()
    port = free_port()
    settings = settings_factory(
        database_url=any_database_url,
        sandbox_url=sandbox.url,
        public_base_url=f"http://127.0.0.1:{port}",
        publish_status_interval_s=0.1,
        publish_retry_base_s=0.1,
        publish_retry_max_s=0.4,
        worker_poll_delay=0.01,
    )
    services = await open_services(settings, run_migrations=False, redis_location=redis_location)
    # The session-wide Redis outlives each test's services.
    services.container.redis_location = RedisLocation(
        url=redis_location.url, unix_socket_path=redis_location.unix_socket_path
    )
    yield settings, services.container, port
    await services.close()


@pytest.mark.parametrize("how", LOST)
async def test_a_publish_whose_answer_was_lost_is_published_once(
    rig: tuple[Settings, Container, int], sandbox: Any, how: str
) -> None:
    sandbox.faults.lost_answer(how, path=r"/media_publish$", seconds=1)
    post, captions, comments = await _published_once(*rig, sandbox)
    assert post.status == Status.PUBLISHED, post.last_error
    assert captions == ["lost answers"]
    assert post.ig_media_id == sandbox.state.feed(IG)[0].id
    assert [c.payload["message"] for c in comments] == ["first!"]


@pytest.mark.parametrize("how", LOST)
async def test_a_first_comment_whose_answer_was_lost_is_posted_once(
    rig: tuple[Settings, Container, int], sandbox: Any, how: str
) -> None:
    sandbox.faults.lost_answer(how, path=r"/comments$", seconds=1)
    post, captions, comments = await _published_once(*rig, sandbox)
    assert post.status == Status.PUBLISHED
    assert captions == ["lost answers"]
    assert [c.payload["message"] for c in comments] == ["first!"]
    assert "the first comment is unconfirmed" in post.last_error
