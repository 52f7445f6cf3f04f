"""A burst: 1000 image posts due the same second across 100 accounts, the sandbox answering
every Graph call in 100 ms, two worker processes with default settings.

The target is stated for the machine where the bare reference (bench/calibration.py, measured
first in the same run) did 5000 req/s: 15 s there, scaled by 5000 / bare_rps on a slower machine
(``target_s``; never tighter on a faster one). ``capacity_ratio`` is the posts per second
sustained over the burst divided by bare_rps. (The sandbox's own call rate is not the
reference: it answers in 100 ms on purpose, as Meta does, so it measures that wait, not the
machine.)

Runs on SQLite, or on PostgreSQL with DATABASE_URL set (``bench/databases.py``).
Last line: {"total_s": due second -> last post published, "target_s", "bare_rps", "database",
"posts_per_s", "capacity_ratio", "duplicates": posts Instagram got twice, "published": count}.
Targets: total_s <= target_s, duplicates = 0.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from datetime import timedelta

from calibration import measure_bare_rps, scaled_target
from databases import engine_of
from publishing_rig import world

TARGET_S = 15.0
POSTS = 1000
ACCOUNTS = 100
WORKERS = 2


async def main() -> dict[str, float | int | str]:
    from core.db.models import Post
    from core.domain.posts import Status
    from core.domain.scope import Actor
    from core.services.publishing import PostInput

    bare_rps = await measure_bare_rps()
    async with world(sandbox_latency_s=0.1) as rig:
        database = engine_of(rig.config["database_url"])
        await rig.start_workers(WORKERS)
        workspace, accounts = await rig.accounts(ACCOUNTS)
        image = await rig.image(workspace)
        service = rig.services.publishing
        bench = Actor.system(workspace.id, label="bench")
        drafts = [
            await service.create(
                bench,
                account_id=accounts[n % ACCOUNTS].id,
                content=PostInput(kind="image", media_ids=[image.id], caption=f"burst {n}"),
            )
            for n in range(POSTS)
        ]
        # Schedule every post for one second a little ahead (time to schedule them all).
        began = time.monotonic()
        far = rig.services.container.clock.now() + timedelta(hours=1)
        for post in drafts[:50]:
            await service.schedule(bench, post.id, far)
        per_post = (time.monotonic() - began) / 50
        due = rig.services.container.clock.now() + timedelta(seconds=per_post * POSTS * 1.3 + 2)
        for post in drafts:
            await service.schedule(bench, post.id, due)
        print(f"{POSTS} posts scheduled for {due:%H:%M:%S.%f} UTC")
        deadline = time.monotonic() + 150
        while time.monotonic() < deadline:
            open_posts = await Post.filter(
                status__in=[Status.SCHEDULED, Status.PUBLISHING, Status.RETRYING]
            ).count()
            if open_posts == 0 and rig.services.container.clock.now() > due:
                break
            await asyncio.sleep(0.25)
        published = await Post.filter(status=Status.PUBLISHED).order_by("-published_at")
        last = published[0].published_at if published else due
        counts = Counter(
            media.caption for account in accounts for media in rig.sandbox.state.feed(account.ig_id)
        )
        failed = await Post.filter(status=Status.FAILED).values_list("last_error", flat=True)
        if failed:
            print(f"{len(failed)} failed, e.g. {failed[0]!r}")
    assert last is not None
    total_s = (last - due).total_seconds()
    return {
        "total_s": round(total_s, 3),
        "target_s": scaled_target(TARGET_S, bare_rps),
        "bare_rps": round(bare_rps, 1),
        "database": database,
        "posts_per_s": round(len(published) / total_s, 1),
        "capacity_ratio": round(len(published) / total_s / bare_rps, 4),
        "duplicates": sum(1 for n in counts.values() if n > 1),
        "published": len(published),
    }


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main())))
