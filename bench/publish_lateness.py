"""How late does a scheduled post start publishing? 200 image posts scheduled over one minute
against the sandbox, one worker process with default settings.

Lateness = the moment the publish job starts working on the post minus its scheduled time.
The target, 0.1 s on the machine where the bare reference (bench/calibration.py, measured first
in the same run) did 5000 req/s, is scaled by 5000 / bare_rps on a slower machine (``target_s``).
Runs on SQLite, or on PostgreSQL with DATABASE_URL set (``bench/databases.py``).
Last line: {"p50_s", "p99_s", "max_s", "target_s", "bare_rps", "database"}.
Target: p99_s < target_s.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from datetime import timedelta

from calibration import measure_bare_rps, scaled_target
from databases import engine_of
from publishing_rig import world

TARGET_S = 0.1
POSTS = 200
SPREAD_S = 60.0
ACCOUNTS = 10


async def main() -> dict[str, float | str]:
    from core.db.models import AuditLog, Post
    from core.domain.posts import Status
    from core.domain.scope import Actor
    from core.services.publishing import PostInput

    bare_rps = await measure_bare_rps()
    async with world() as rig:
        database = engine_of(rig.config["database_url"])
        await rig.start_workers(1)
        workspace, accounts = await rig.accounts(ACCOUNTS)
        image = await rig.image(workspace)
        service = rig.services.publishing
        bench = Actor.system(workspace.id, label="bench")
        # Posts go in as drafts first, then all are scheduled from a start a little ahead.
        drafts = [
            await service.create(
                bench,
                account_id=accounts[n % ACCOUNTS].id,
                content=PostInput(kind="image", media_ids=[image.id], caption=f"lateness {n}"),
            )
            for n in range(POSTS)
        ]
        start = rig.services.container.clock.now() + timedelta(seconds=8)
        for n, post in enumerate(drafts):
            when = start + timedelta(seconds=SPREAD_S * n / POSTS)
            await service.schedule(bench, post.id, when)
        deadline = time.monotonic() + 8 + SPREAD_S + 60
        while time.monotonic() < deadline:
            done = await Post.filter(status=Status.PUBLISHED).count()
            if done == POSTS:
                break
            await asyncio.sleep(0.5)
        claims = await AuditLog.filter(action="post.publishing")
        by_post = {int(c.target_id): float(c.details["late_by_s"]) for c in claims}
        late = sorted(by_post.values())
        published = await Post.filter(status=Status.PUBLISHED).count()
        print(f"published {published} of {POSTS}; {len(late)} publish jobs measured")
    q = statistics.quantiles(late, n=100, method="inclusive")
    return {
        "p50_s": round(q[49], 4),
        "p99_s": round(q[98], 4),
        "max_s": round(late[-1], 4),
        "target_s": scaled_target(TARGET_S, bare_rps),
        "bare_rps": round(bare_rps, 1),
        "database": database,
    }


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main())))
