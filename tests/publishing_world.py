"""End-to-end publishing rig: the real panel serving media, the sandbox Instagram, arq workers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from arq.worker import Worker
from hypercorn.asyncio import serve
from hypercorn.config import Config

from core.bootstrap import Container
from core.db.models import InstagramAccount, LoginKind, Workspace
from core.settings import Settings
from core.wiring import assemble_services
from jobs import publishing as publishing_jobs
from jobs.worker import worker_settings
from reelay.queue import arq_settings
from tests.e2e.stack import run_until_idle


@asynccontextmanager
async def serve_panel(settings: Settings, container: Container, port: int) -> AsyncIterator[str]:
    """The real panel (media files included) on ``port`` until the block ends."""
    from panel.app import create_app

    app = create_app(settings, services=assemble_services(container))
    config = Config()
    config.bind = [f"127.0.0.1:{port}"]
    config.accesslog = None
    config.errorlog = None
    stop = asyncio.Event()
    task = asyncio.create_task(serve(app, config, shutdown_trigger=stop.wait))  # type: ignore[arg-type]
    for _ in range(200):
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.02)
            continue
        writer.close()
        await writer.wait_closed()
        break
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        stop.set()
        await task


async def sandbox_account(
    container: Container, sandbox: Any, workspace: Workspace, ig_id: str, username: str
) -> InstagramAccount:
    """A connected account that exists in the sandbox, with a real (encrypted) token."""
    sandbox.state.add_account(ig_id, username)
    token = sandbox.state.issue_token(ig_id)
    return await InstagramAccount.create(
        workspace=workspace,
        ig_id=ig_id,
        username=username,
        login_kind=LoginKind.SANDBOX,
        token_encrypted=container.secrets.encrypt(token),
    )


def make_worker(settings: Settings, container: Container, *, burst: bool = True) -> Worker:
    """A worker running only the publishing jobs (other crons would keep a burst going), over
    ``container`` as it is now (its Graph client and clock)."""
    options = worker_settings(
        settings,
        services=assemble_services(container),
        redis_settings=arq_settings(container.redis_location),
    )
    options.update(functions=publishing_jobs.FUNCTIONS, cron_jobs=publishing_jobs.CRON_JOBS)
    return Worker(**options, burst=burst)


async def run_worker_until_idle(settings: Settings, container: Container) -> None:
    """Run one arq worker in burst mode: it stops once no job is queued or deferred."""
    await run_until_idle(make_worker(settings, container))
