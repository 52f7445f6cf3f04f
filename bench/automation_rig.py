"""What the automation benchmarks need: Redis (REDIS_URL or embedded), a temporary migrated
database (SQLite, or PostgreSQL with DATABASE_URL set), the real panel served by uvicorn in a
child process, worker processes and a bare aiohttp HMAC server.

``python bench/automation_rig.py panel|worker|bare '<json>'`` runs one child process (used by
the benchmarks; not meant to be run by hand).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from calibration import APP_SECRET, free_port, serve, sign, wait_port  # noqa: E402
from cryptography.fernet import Fernet  # noqa: E402
from databases import bench_database, engine_of  # noqa: E402

from core.adapters.redis_server import RedisLocation, locate_redis  # noqa: E402
from core.settings import Settings  # noqa: E402
from reelay.event_loop import run as run_loop  # noqa: E402

__all__ = ["APP_SECRET", "Rig", "dm_accounts", "engine_of", "rig", "sign"]


def settings_for(config: dict[str, Any]) -> Settings:
    return Settings(  # type: ignore[call-arg]
        _env_file=None,
        var_dir=Path(config["var_dir"]),
        database_url=config["database_url"],
        redis_url=config.get("redis_url", ""),
        encryption_key=config["encryption_key"],
        secret_key=config["secret_key"],
        meta_app_secret=APP_SECRET,
        meta_verify_token="bench",
        sandbox_url=config.get("sandbox_url", "http://127.0.0.1:8010"),
        worker_poll_delay=config.get("poll_delay", 0.05),
        worker_max_jobs=config.get("max_jobs", 50),
        send_retry_base_s=config.get("send_retry_base_s", 5.0),
        log_level="WARNING",
    )


def location_for(config: dict[str, Any]) -> RedisLocation:
    return RedisLocation(
        url=config.get("redis_url", ""), unix_socket_path=config.get("redis_socket", "")
    )


@dataclass
class Rig:
    config: dict[str, Any]
    settings: Settings
    children: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def spawn(self, role: str, **extra: Any) -> subprocess.Popen[bytes]:
        child = subprocess.Popen(
            [
                sys.executable,
                str(Path(__file__).resolve()),
                role,
                json.dumps({**self.config, **extra}),
            ],
            cwd=ROOT,
        )
        self.children.append(child)
        return child

    async def panel(self) -> int:
        port = free_port()
        self.spawn("panel", port=port)
        await wait_port(port)
        return port

    async def bare(self) -> int:
        port = free_port()
        self.spawn("bare", port=port)
        await wait_port(port)
        return port

    def workers(self, count: int) -> None:
        for _ in range(count):
            self.spawn("worker")

    async def workers_ready(self, count: int, timeout_s: float = 120) -> None:
        """Wait until ``count`` workers have started (imports done, polling the queue)."""
        ready = Path(self.config["var_dir"]) / "ready"
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if ready.is_dir() and len(list(ready.iterdir())) >= count:
                return
            await asyncio.sleep(0.1)
        raise RuntimeError(f"{count} workers not ready after {timeout_s:.0f}s")

    def stop(self) -> None:
        for child in self.children:
            child.terminate()
        for child in self.children:
            try:
                child.wait(15)
            except subprocess.TimeoutExpired:
                child.kill()
        self.children.clear()


async def dm_accounts(
    rig: Rig, sandbox: Any, workspace: Any, count: int, *, first_id: int, name: str
) -> list[str]:
    """``count`` sandbox accounts of ``workspace``, each with a rule answering "price" in DMs
    (paced far above any benchmark's rate); their Instagram ids. The database must be open."""
    from core.adapters.crypto import SecretBox
    from core.db.models import AutomationRule, InstagramAccount, LoginKind, MatchMode, Trigger

    box = SecretBox(rig.config["encryption_key"])
    ig_ids = []
    for n in range(count):
        ig_id = str(first_id + n)
        sandbox.state.add_account(ig_id, f"{name}{n}")
        account = await InstagramAccount.create(
            workspace=workspace,
            ig_id=ig_id,
            username=f"{name}{n}",
            login_kind=LoginKind.SANDBOX,
            token_encrypted=box.encrypt(sandbox.state.issue_token(ig_id)),
            dm_pace_per_hour=360_000,
        )
        await AutomationRule.create(
            workspace=workspace,
            account=account,
            trigger=Trigger.DM,
            keywords=["price", "menu"],
            match_mode=MatchMode.WHOLE_WORD,
            config={"message_variations": ["Hi {username}! Prices: https://shop.example"]},
        )
        ig_ids.append(ig_id)
    return ig_ids


@asynccontextmanager
async def rig(*, postgres_only: bool = False, **config_extra: Any) -> AsyncIterator[Rig]:
    """Redis and a migrated database (SQLite, or a database of its own on the PostgreSQL
    server of ``DATABASE_URL``: ``bench/databases.py``); children are stopped at the end of
    the block."""
    from core.db import migrate_database

    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="reelay-bench-") as tmp:
        var = Path(tmp)
        async with bench_database(var, postgres_only=postgres_only) as database_url:
            location = locate_redis(os.environ.get("REDIS_URL", ""), var / "redis")
            config: dict[str, Any] = {
                "var_dir": str(var / "var"),
                "database_url": database_url,
                "redis_url": location.url,
                "redis_socket": location.unix_socket_path,
                "encryption_key": Fernet.generate_key().decode(),
                "secret_key": "bench-secret-key-" + "x" * 32,
                **config_extra,
            }
            await migrate_database(config["database_url"])
            built = Rig(config, settings_for(config))
            try:
                yield built
            finally:
                built.stop()
                location.stop()


# ---------------------------------------------------------------- child processes


async def _run_panel(config: dict[str, Any]) -> None:
    import uvicorn

    from panel.app import create_app
    from reelay.cli import open_services

    settings = settings_for(config)
    services = await open_services(
        settings, run_migrations=False, redis_location=location_for(config)
    )
    app = create_app(settings, services=services)
    server = uvicorn.Server(
        uvicorn.Config(
            app, host="127.0.0.1", port=config["port"], log_config=None, access_log=False
        )
    )
    try:
        await server.serve()
    finally:
        await services.close()


async def _run_bare(config: dict[str, Any]) -> None:
    await serve(config["port"])


async def _run_worker(config: dict[str, Any]) -> None:
    from arq.worker import Worker

    from jobs.worker import worker_settings
    from reelay.cli import open_services
    from reelay.queue import arq_settings

    settings = settings_for(config)
    location = location_for(config)
    services = await open_services(settings, run_migrations=False, redis_location=location)
    options = worker_settings(settings, services=services, redis_settings=arq_settings(location))
    # Every job a worker runs (replies queue others, e.g. follower profiles); no crons, whose
    # sweeps would only add noise to a measurement.
    options.update(cron_jobs=[])
    started = options["on_startup"]

    async def on_startup(ctx: dict[str, Any]) -> None:
        await started(ctx)
        ready = Path(config["var_dir"]) / "ready"
        ready.mkdir(parents=True, exist_ok=True)
        (ready / str(os.getpid())).touch()

    options["on_startup"] = on_startup
    worker = Worker(**options)
    try:
        await worker.main()
    finally:
        await worker.close()
        await services.close()


if __name__ == "__main__":
    role, raw = sys.argv[1], json.loads(sys.argv[2])
    logging.basicConfig(level=logging.WARNING)
    runner = {"panel": _run_panel, "bare": _run_bare, "worker": _run_worker}[role]
    with contextlib.suppress(KeyboardInterrupt):
        if role == "bare":  # the reference stays on asyncio's loop, as measured from the start
            asyncio.run(runner(raw))
        else:  # the panel and workers on the loop `reelay` runs them on
            run_loop(runner(raw))
