"""Memory: the resident size of the panel and of a worker process, idle and under load.

The real panel (uvicorn, child process) and one worker process run on the embedded defaults
(SQLite, the embedded Redis; PostgreSQL with DATABASE_URL set, ``bench/databases.py``)
against the sandbox Instagram. Idle: 5 s after both are up.
Load, for 20 s: a webhook storm (32 people at a time writing DMs a keyword rule answers, each
sending the next as soon as Meta's webhook was answered; the sandbox echoes every reply) and,
at the same time, three parallel uploads of 6 MB photos through the JSON API, one after
another. RSS is sampled every 100 ms; the peak is reported.

Last line: {"database", "panel_idle_mb", "worker_idle_mb", "panel_rss_mb", "worker_rss_mb",
"dms", "uploads"}. Targets: idle <= 150 each, under load <= 300 each.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import time
from typing import Any

import aiohttp
import psutil
from automation_rig import APP_SECRET, dm_accounts, engine_of, rig
from PIL import Image

LOAD_S = 20.0
STORM = 32
UPLOADS = 3
ACCOUNTS = 4
MB = 1024 * 1024


def big_photo() -> bytes:
    """A 6 MB JPEG: noise does not compress."""
    out = io.BytesIO()
    Image.frombytes("RGB", (2400, 1800), os.urandom(2400 * 1800 * 3)).save(out, "JPEG", quality=95)
    return out.getvalue()


def rss_mb(process: psutil.Process) -> float:
    return float(process.memory_info().rss) / MB


async def main() -> dict[str, Any]:
    from core.db import close_database, open_database
    from core.db.models import (
        Role,
    )
    from core.domain.scope import Actor
    from core.services import api_tokens, users
    from sandbox.server import Sandbox
    from sandbox.state import SandboxState

    photo = big_photo()
    sandbox = Sandbox(SandboxState(secret="bench-sandbox", app_secret=APP_SECRET), echoes=True)
    await sandbox.start()
    try:
        async with rig(sandbox_url=sandbox.url, poll_delay=0.01) as bench:
            database = engine_of(bench.config["database_url"])
            await open_database(bench.config["database_url"], run_migrations=False)
            owner, workspace = await users.create_owner("bench@example.com", "bench-password-1")
            actor = Actor(workspace.id, Role.OWNER, owner.email, owner.id)
            token = (await api_tokens.create_token(actor, "bench", Role.EDITOR)).secret
            ig_ids = await dm_accounts(
                bench, sandbox, workspace, ACCOUNTS, first_id=17841700000000000, name="mem"
            )
            await close_database()
            port = await bench.panel()
            bench.workers(1)
            sandbox.state.webhook_url = f"http://127.0.0.1:{port}/webhooks/meta"
            await bench.workers_ready(1)
            panel_child, worker_child = bench.children
            panel, worker = psutil.Process(panel_child.pid), psutil.Process(worker_child.pid)
            await asyncio.sleep(5)
            panel_idle, worker_idle = rss_mb(panel), rss_mb(worker)
            print(f"idle: panel {panel_idle:.1f} MB, worker {worker_idle:.1f} MB")

            peaks = {"panel": panel_idle, "worker": worker_idle}
            counts = {"dms": 0, "uploads": 0}
            ends = time.monotonic() + LOAD_S

            async def sample() -> None:
                while time.monotonic() < ends + 2:
                    peaks["panel"] = max(peaks["panel"], rss_mb(panel))
                    peaks["worker"] = max(peaks["worker"], rss_mb(worker))
                    await asyncio.sleep(0.1)

            async def storm(lane: int) -> None:
                n = 0
                while time.monotonic() < ends:
                    person = f"{7700000000 + lane * 100_000 + n}"
                    _, delivery = await sandbox.dm(
                        ig_ids[n % ACCOUNTS], "what's the price?", from_id=person
                    )
                    if delivery.status != 200:
                        raise RuntimeError(f"webhook answered {delivery.status}")
                    counts["dms"] += 1
                    n += 1

            async def upload(session: aiohttp.ClientSession, lane: int) -> None:
                n = 0
                while time.monotonic() < ends:
                    form = aiohttp.FormData()
                    form.add_field(
                        "file", photo, filename=f"big-{lane}-{n}.jpg", content_type="image/jpeg"
                    )
                    async with session.post(
                        f"http://127.0.0.1:{port}/api/v1/media",
                        data=form,
                        headers={"Authorization": f"Bearer {token}"},
                    ) as response:
                        if response.status != 201:
                            raise RuntimeError(
                                f"upload answered {response.status}: {await response.text()}"
                            )
                    counts["uploads"] += 1
                    n += 1

            async with aiohttp.ClientSession() as session:
                await asyncio.gather(
                    sample(),
                    *(storm(lane) for lane in range(STORM)),
                    *(upload(session, lane) for lane in range(UPLOADS)),
                )
            print(
                f"under load: {counts['dms']} DMs, {counts['uploads']} uploads;"
                f" peak panel {peaks['panel']:.1f} MB, worker {peaks['worker']:.1f} MB"
            )
    finally:
        await sandbox.stop()
    return {
        "database": database,
        "panel_idle_mb": round(panel_idle, 1),
        "worker_idle_mb": round(worker_idle, 1),
        "panel_rss_mb": round(peaks["panel"], 1),
        "worker_rss_mb": round(peaks["worker"], 1),
        "dms": counts["dms"],
        "uploads": counts["uploads"],
    }


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main())))
