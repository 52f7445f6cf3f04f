"""Exactly once, end to end (issue 15's "done when", at a tenth of the bench's size): 100
followers comment a keyword while the sandbox Instagram loses 20 % of the write answers after
acting and 30 % of the comment webhooks never arrive (the comment sweep finds those). The
real webhook endpoint (uvicorn) and an arq worker answer through the Graph client; every
follower ends with exactly one public reply, one private reply and one DM follow-up after
tapping its button. On SQLite and PostgreSQL. ``bench/exactly_once.py`` plays the same with
1000 comments."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from tortoise.backends.base.executor import EXECUTOR_CACHE

from core.adapters.redis_server import RedisLocation
from core.db.models import InstagramAccount, LoginKind, Workspace
from panel.app import create_app
from reelay.cli import open_services
from tests.conftest import _truncate_postgres
from tests.e2e import exactly_once_world as scenario
from tests.e2e.stack import Stack, free_port, serve

IG_IDS = ["17841400000000151", "17841400000000152"]


class ExactlyOnceStack(Stack):
    async def drain(self) -> None:
        """Work until no job is left and no echo is still on its way."""
        for _ in range(50):
            seen = len(self.sandbox.deliveries)
            await super().drain()
            await asyncio.sleep(0.05)  # echoes the sandbox still sends
            if len(self.sandbox.deliveries) == seen and await scenario.settled():
                return
        raise AssertionError("work still left after 50 rounds")


@pytest.fixture(params=["database", "stream"])
def inbox(request: pytest.FixtureRequest) -> str:
    """Where the endpoint keeps deliveries: the stream is the default when Redis keeps an
    append-only file, on either database; the panel writes them otherwise."""
    return str(request.param)


@pytest.fixture
async def stack(
    inbox: str,
    sandbox: Any,
    settings_factory: Any,
    any_database_url: str,
    redis: Any,
    redis_location: RedisLocation,
) -> AsyncIterator[Stack]:
    if any_database_url.startswith("postgres"):
        await _truncate_postgres(any_database_url)
    # Tortoise caches SQL per table, not per dialect: forget it when the backend changes.
    EXECUTOR_CACHE.clear()
    settings = settings_factory(
        database_url=any_database_url,
        sandbox_url=sandbox.url,
        send_retry_base_s=0.05,
        webhook_inbox=inbox,
    )
    services = await open_services(settings, run_migrations=False, redis_location=redis_location)
    container = services.container
    port = free_port()
    stop_panel = await serve(create_app(settings, services=services), port)
    sandbox.state.webhook_url = f"http://127.0.0.1:{port}/webhooks/meta"
    workspace = await Workspace.create(name="Shop")
    for n, ig_id in enumerate(IG_IDS):
        sandbox.state.add_account(ig_id, f"shop{n}")
        sandbox.state.add_media(ig_id, caption="New drop")
        account = await InstagramAccount.create(
            workspace=workspace,
            ig_id=ig_id,
            username=f"shop{n}",
            login_kind=LoginKind.SANDBOX,
            token_encrypted=container.secrets.encrypt(sandbox.state.issue_token(ig_id)),
            dm_pace_per_hour=100_000,
        )
        await scenario.make_rules(account)
    yield ExactlyOnceStack(settings, services, sandbox)
    await stop_panel()
    container.redis_location = RedisLocation(
        url=redis_location.url, unix_socket_path=redis_location.unix_socket_path
    )
    await services.close()


async def test_every_follower_gets_each_answer_exactly_once(stack: Stack) -> None:
    counts = await scenario.run(
        stack.sandbox,
        IG_IDS,
        comments=100,
        drain=stack.drain,
        sweep=stack.services.comment_sweep,
    )
    assert counts["answers_lost"] > 20, counts
    assert counts["caught_by_sweep"] == counts["webhooks_missing"] > 10, counts
    assert counts["duplicates"] == 0 and counts["missing"] == 0, counts
    assert counts["public_replies_once"] == counts["private_replies_once"] == 100, counts
    assert counts["dms_once"] == 100, counts
    assert counts["confirmed_by"].get("echo"), counts
