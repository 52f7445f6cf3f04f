"""What the publishing benchmarks need: Redis, a temporary database (SQLite, or PostgreSQL with
DATABASE_URL set: ``bench/databases.py``), the sandbox Instagram, the panel serving media,
and arq worker processes.

``python bench/publishing_rig.py worker '<json>'`` runs one worker process (used by the
benchmarks; not meant to be run by hand). For a closer look, BENCH_WORKER_LOG=path keeps
each worker's log and BENCH_WORKER_PROFILE=path its cProfile statistics.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import socket
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from cryptography.fernet import Fernet  # noqa: E402
from databases import bench_database  # noqa: E402
from PIL import Image  # noqa: E402

from core.adapters.redis_server import RedisLocation, locate_redis  # noqa: E402
from core.db.models import InstagramAccount, LoginKind, MediaAsset, Workspace  # noqa: E402
from core.settings import Settings  # noqa: E402
from core.wiring import Services  # noqa: E402
from reelay.event_loop import run as run_loop  # noqa: E402


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def jpeg(width: int = 1080, height: int = 1350) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (30, 120, 200)).save(out, "JPEG", quality=80)
    return out.getvalue()


def settings_for(config: dict[str, Any]) -> Settings:
    return Settings(  # type: ignore[call-arg]
        _env_file=None,
        var_dir=Path(config["var_dir"]),
        database_url=config["database_url"],
        encryption_key=config["encryption_key"],
        secret_key=config["secret_key"],
        sandbox_url=config["sandbox_url"],
        public_base_url=config["public_base_url"],
        worker_max_jobs=config.get("worker_max_jobs", 50),
        log_level="WARNING",
    )


def location_for(config: dict[str, Any]) -> RedisLocation:
    return RedisLocation(
        url=config.get("redis_url", ""), unix_socket_path=config.get("redis_socket", "")
    )


@asynccontextmanager
async def serve_panel(settings: Settings, services: Services, port: int) -> AsyncIterator[None]:
    """The real panel (it serves the media Instagram fetches) on ``port``."""
    from hypercorn.asyncio import serve
    from hypercorn.config import Config

    from panel.app import create_app

    config = Config()
    config.bind = [f"127.0.0.1:{port}"]
    config.accesslog = None
    config.errorlog = None
    stop = asyncio.Event()
    app = create_app(settings, services=services)
    task = asyncio.create_task(serve(app, config, shutdown_trigger=stop.wait))  # type: ignore[arg-type]
    for _ in range(250):
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.02)
            continue
        writer.close()
        await writer.wait_closed()
        break
    try:
        yield
    finally:
        stop.set()
        await task


@dataclass
class World:
    config: dict[str, Any]
    settings: Settings
    services: Services
    sandbox: Any
    workers: list[subprocess.Popen[bytes]]

    async def accounts(self, count: int) -> tuple[Workspace, list[InstagramAccount]]:
        workspace = await Workspace.create(name="Bench", timezone="UTC")
        made = []
        for n in range(count):
            ig_id = f"1784150000{n:07d}"
            self.sandbox.state.add_account(ig_id, f"bench{n}")
            token = self.sandbox.state.issue_token(ig_id)
            made.append(
                await InstagramAccount.create(
                    workspace=workspace,
                    ig_id=ig_id,
                    username=f"bench{n}",
                    login_kind=LoginKind.SANDBOX,
                    token_encrypted=self.services.container.secrets.encrypt(token),
                )
            )
        return workspace, made

    async def image(self, workspace: Workspace) -> MediaAsset:
        from core.domain.scope import Actor
        from core.services import media

        bench = Actor.system(workspace.id, label="bench")
        return await media.upload_bytes(bench, self.services.storage, jpeg())

    async def start_workers(self, count: int, settle_s: float = 3.0) -> None:
        """Start ``count`` worker processes and wait until each has beaten its heart."""
        from core.services.heartbeat import HEARTBEAT_KEY

        await self.services.container.redis.delete(HEARTBEAT_KEY)
        for _ in range(count):
            self.workers.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        str(Path(__file__).resolve()),
                        "worker",
                        json.dumps(self.config),
                    ],
                    cwd=ROOT,
                )
            )
        for _ in range(1200):
            if await self.services.container.redis.exists(HEARTBEAT_KEY):
                break
            await asyncio.sleep(0.05)
        else:
            raise RuntimeError("the workers did not start")
        # Let the startup crons (reconciler, insights dispatch, sweeps) run before measuring.
        await asyncio.sleep(settle_s)


@asynccontextmanager
async def world(
    *, sandbox_latency_s: float = 0.0, worker_max_jobs: int = 50
) -> AsyncIterator[World]:
    """Everything started, and stopped again at the end of the block."""
    from reelay.cli import open_services
    from sandbox.server import Sandbox
    from sandbox.state import SandboxState

    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="reelay-bench-") as tmp:
        var_dir = Path(tmp)
        async with bench_database(var_dir) as database_url:
            location = locate_redis(os.environ.get("REDIS_URL", ""), var_dir / "redis")
            sandbox = Sandbox(
                SandboxState(secret="bench", app_secret="bench-app"), fetch_timeout_s=30
            )
            await sandbox.start()
            sandbox.state.quota_total = 10_000
            sandbox.state.video_polls = 0
            if sandbox_latency_s:
                sandbox.faults.latency(sandbox_latency_s)
            port = free_port()
            config = {
                "var_dir": str(var_dir),
                "database_url": database_url,
                "encryption_key": Fernet.generate_key().decode(),
                "secret_key": "bench-secret-" + "x" * 32,
                "sandbox_url": sandbox.url,
                "public_base_url": f"http://127.0.0.1:{port}",
                "redis_url": location.url,
                "redis_socket": location.unix_socket_path,
                "worker_max_jobs": worker_max_jobs,
            }
            settings = settings_for(config)
            services = await open_services(settings, redis_location=location_for(config))
            await services.container.redis.flushdb()
            made = World(config, settings, services, sandbox, [])
            try:
                async with serve_panel(settings, services, port):
                    yield made
            finally:
                for process in made.workers:
                    process.terminate()
                for process in made.workers:
                    try:
                        process.wait(timeout=10)
                    except subprocess.TimeoutExpired:
                        process.kill()
                await services.container.redis.flushdb()
                await services.close()
                await sandbox.stop()
                location.stop()


async def run_worker(config: dict[str, Any]) -> None:
    from jobs.worker import create_worker
    from reelay.cli import open_services
    from reelay.queue import arq_settings

    settings = settings_for(config)
    location = location_for(config)
    services = await open_services(settings, run_migrations=False, redis_location=location)
    worker = create_worker(settings, services=services, redis_settings=arq_settings(location))
    try:
        await worker.async_run()
    finally:
        await services.close()


if __name__ == "__main__" and len(sys.argv) == 3 and sys.argv[1] == "worker":
    # BENCH_WORKER_LOG=path keeps each worker's full log for a closer look.
    log_path = os.environ.get("BENCH_WORKER_LOG")
    if log_path:
        logging.basicConfig(
            level=logging.INFO,
            filename=f"{log_path}.{os.getpid()}",
            format="%(asctime)s %(name)s %(message)s",
        )
    else:
        logging.basicConfig(level=logging.WARNING)
    profile_path = os.environ.get("BENCH_WORKER_PROFILE")
    if profile_path:
        import cProfile
        import signal

        profiler = cProfile.Profile()

        def stop(*_: object) -> None:
            profiler.disable()
            profiler.dump_stats(f"{profile_path}.{os.getpid()}")
            os._exit(0)

        signal.signal(signal.SIGTERM, stop)
        profiler.enable()
    run_loop(run_worker(json.loads(sys.argv[2])))
