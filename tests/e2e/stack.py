"""What the end-to-end tests share: a free local port, and the services and the sandbox
Instagram they run against, with a burst arq worker that runs every queued job."""

from __future__ import annotations

import asyncio
import socket
import warnings
from collections.abc import Awaitable, Callable
from typing import Any

import uvicorn
from arq.worker import Worker

from jobs import events as event_jobs
from jobs.worker import worker_settings
from reelay.queue import arq_settings


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


async def serve(app: Any, port: int) -> Callable[[], Awaitable[None]]:
    """Serve ``app`` (the real panel) with uvicorn on ``port``; await the function returned
    to stop it."""
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_config=None, access_log=False, lifespan="on"
    )
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)

    async def stop() -> None:
        server.should_exit = True
        await serving

    return stop


async def run_until_idle(worker: Worker) -> None:
    """Run a burst worker until no job is queued or deferred, then close it."""
    try:
        await worker.main()
    finally:
        with warnings.catch_warnings():
            # arq 0.28 closes its pool with redis' deprecated close().
            warnings.simplefilter("ignore", DeprecationWarning)
            await worker.close()


class Stack:
    def __init__(self, settings: Any, services: Any, sandbox: Any) -> None:
        self.settings = settings
        self.services = services
        self.sandbox = sandbox

    async def drain(self) -> None:
        """Run a burst worker until no job is left."""
        options = worker_settings(
            self.settings,
            services=self.services,
            redis_settings=arq_settings(self.services.container.redis_location),
        )
        options.update(functions=event_jobs.FUNCTIONS, cron_jobs=[], poll_delay=0.01)
        await run_until_idle(Worker(**options, burst=True))

    def sent(self, kind: str) -> list[Any]:
        return [s for s in self.sandbox.state.sent if s.kind == kind]
