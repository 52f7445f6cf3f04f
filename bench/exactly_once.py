"""Exactly once under loss: 1000 followers comment a keyword on 10 accounts of the sandbox
Instagram, through the real webhook endpoint (uvicorn, child process) and two worker
processes. The rule answers each comment with a public reply and a private reply with a
button; each follower who got it taps the button and receives a DM follow-up.

Meanwhile the sandbox loses the answer of 20 % of all writes after acting on them (a dropped
connection, a bare 502 or 504, a third each) and never delivers 30 % of the comment webhooks
(the comment sweep, run once as it would run minutes later, finds those). The sandbox
echoes every message it sends, as Meta does. Send retries and checks start after
0.2 s (SEND_RETRY_BASE_S) instead of 5 s.

Runs on SQLite, or on PostgreSQL with DATABASE_URL set (``bench/databases.py``).
Last line: {"database", "comments", "public_replies_once", "private_replies_once", "dms_once",
"duplicates", "missing", …}. Target: each *_once = comments, duplicates = missing = 0.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

from automation_rig import APP_SECRET, engine_of, location_for, rig

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

COMMENTS = 1000
ACCOUNTS = 10
WORKERS = 2
TIMEOUT_S = 180


async def main() -> dict[str, Any]:
    from core.adapters.crypto import SecretBox
    from core.db import close_database, open_database
    from core.db.models import InstagramAccount, LoginKind, Workspace
    from reelay.cli import open_services
    from sandbox.server import Sandbox
    from sandbox.state import SandboxState
    from tests.e2e import exactly_once_world as scenario

    sandbox = Sandbox(SandboxState(secret="bench-sandbox", app_secret=APP_SECRET))
    await sandbox.start()
    try:
        async with rig(
            sandbox_url=sandbox.url, poll_delay=0.01, max_jobs=100, send_retry_base_s=0.2
        ) as bench:
            box = SecretBox(bench.config["encryption_key"])
            database = engine_of(bench.config["database_url"])
            await open_database(bench.config["database_url"], run_migrations=False)
            workspace = await Workspace.create(name="Bench")
            ig_ids = []
            for n in range(ACCOUNTS):
                ig_id = f"1784170000{n:07d}"
                sandbox.state.add_account(ig_id, f"shop{n}")
                sandbox.state.add_media(ig_id, caption="New drop")
                account = await InstagramAccount.create(
                    workspace=workspace,
                    ig_id=ig_id,
                    username=f"shop{n}",
                    login_kind=LoginKind.SANDBOX,
                    token_encrypted=box.encrypt(sandbox.state.issue_token(ig_id)),
                    dm_pace_per_hour=360_000,
                )
                await scenario.make_rules(account)
                ig_ids.append(ig_id)
            await close_database()
            # This process's services: the comment sweep, and the database the drain reads.
            services = await open_services(
                bench.settings, run_migrations=False, redis_location=location_for(bench.config)
            )
            port = await bench.panel()
            bench.workers(WORKERS)
            sandbox.state.webhook_url = f"http://127.0.0.1:{port}/webhooks/meta"
            await bench.workers_ready(WORKERS)
            deadline = time.monotonic() + TIMEOUT_S

            async def drain() -> None:
                """Wait until every event is handled, every send settled, no echo on its way."""
                seen = -1
                while time.monotonic() < deadline:
                    await asyncio.sleep(0.5)
                    now_seen = len(sandbox.deliveries)
                    if now_seen == seen and await scenario.settled():
                        return
                    seen = now_seen
                raise RuntimeError(f"work still left after {TIMEOUT_S}s")

            counts = await scenario.run(
                sandbox,
                ig_ids,
                comments=COMMENTS,
                drain=drain,
                sweep=services.comment_sweep,
            )
            await services.close()
    finally:
        await sandbox.stop()
    print(
        f"{counts['comments']} comments, {counts['answers_lost']} answers lost,"
        f" {counts['webhooks_missing']} webhooks missing ({counts['caught_by_sweep']} caught"
        f" by the sweep), {counts['buttons_tapped']} buttons tapped in {counts['seconds']}s;"
        f" sends confirmed by {counts['confirmed_by']}"
    )
    return {"database": database, **counts}


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main())))
