"""Scale-out: how the reply path grows with worker processes on PostgreSQL and Redis.

PostgreSQL from DATABASE_URL (default postgres://postgres@127.0.0.1:5432/test: the bench makes
its own database on that server and drops it at the end); Redis from REDIS_URL, else the
embedded one. Two panel processes take the webhooks (alternately, as behind a load balancer);
the sandbox Instagram answers every Graph call in 100 ms, as Meta roughly does.

For 1, 2 and 4 worker processes in turn: a burst of DMs from new people (each a keyword a rule
answers), sent by 32 connections as fast as the panels take them, then the time until the last
reply reached the sandbox. The burst is sized from the bare reference measured first in the
same run (bench/calibration.py): bare_rps * 0.4 DMs (2000 where the bare server does 5000).

Last line: {"bare_rps", "burst", "rate_1", "rate_2", "rate_4" (replies per second),
"scaling_ratio": rate_4 / rate_1, "duplicates": people answered more than once}. Target:
scaling_ratio >= 2.5, duplicates 0. The test suite runs a short variant on PostgreSQL
(``tests/e2e/test_scale_out.py``: a small burst, 1 and 2 workers, every person answered once).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import shutil
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
from automation_rig import APP_SECRET, dm_accounts, rig, sign
from calibration import measure_bare_rps, post

BURST_SHARE = 0.4
SIZES = (1, 2, 4)
PANELS = 2
CONNECTIONS = 32
ACCOUNTS = 10
GRAPH_LATENCY_S = 0.1


async def main(burst: int | None = None, sizes: tuple[int, ...] = SIZES) -> dict[str, Any]:
    """``burst``: DMs per size (default: from the bare reference, measured first)."""
    from core.db import close_database, open_database
    from core.db.models import (
        Workspace,
    )
    from sandbox.server import Sandbox
    from sandbox.state import SandboxState
    from sandbox.webhooks import messaging_event

    bare_rps = await measure_bare_rps() if burst is None else 0.0
    burst = burst or max(200, round(bare_rps * BURST_SHARE))
    print(f"bare reference {bare_rps:.0f} req/s -> bursts of {burst} DMs")
    sandbox = Sandbox(SandboxState(secret="bench-sandbox", app_secret=APP_SECRET))
    sandbox.faults.latency(GRAPH_LATENCY_S)
    await sandbox.start()
    rates: dict[int, float] = {}
    try:
        async with rig(postgres_only=True, sandbox_url=sandbox.url, poll_delay=0.01) as bench:
            await open_database(bench.config["database_url"], run_migrations=False)
            workspace = await Workspace.create(name="Bench")
            ig_ids = await dm_accounts(
                bench, sandbox, workspace, ACCOUNTS, first_id=17841800000000000, name="scale"
            )
            await close_database()
            ports = [await bench.panel() for _ in range(PANELS)]
            urls = itertools.cycle(f"http://127.0.0.1:{p}/webhooks/meta" for p in ports)
            people = itertools.count(8800000000)
            ready = Path(bench.config["var_dir"]) / "ready"

            def dm_body(ig_id: str, person: str) -> tuple[bytes, str]:
                sandbox.state.note_inbound(ig_id, person)
                message = {"mid": f"aWdfZAG1fbench{person}", "text": "what's the price?"}
                event = messaging_event(ig_id, person, {"message": message}, sandbox.state.now())
                body = json.dumps(event).encode()
                return body, sign(body)

            async with aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=CONNECTIONS)
            ) as session:
                for size in sizes:
                    shutil.rmtree(ready, ignore_errors=True)
                    workers = [bench.spawn("worker") for _ in range(size)]
                    await bench.workers_ready(size)
                    targets = [str(next(people)) for _ in range(burst)]
                    bodies = iter([dm_body(ig_ids[n % ACCOUNTS], p) for n, p in enumerate(targets)])
                    wanted = set(targets)
                    cursor = len(sandbox.state.sent)
                    start = time.perf_counter()
                    began = datetime.now(UTC)

                    async def client() -> None:
                        for body, signature in bodies:  # noqa: B023 - each size's own bodies
                            await post(session, next(urls), body, signature)

                    await asyncio.gather(*(client() for _ in range(CONNECTIONS)))
                    sent_in = time.perf_counter() - start
                    deadline = time.monotonic() + 150
                    answered: dict[str, datetime] = {}
                    while time.monotonic() < deadline and len(answered) < burst:
                        end = len(sandbox.state.sent)
                        for sent in sandbox.state.sent[cursor:end]:
                            if sent.kind == "message" and sent.target in wanted:
                                answered.setdefault(sent.target, sent.at)
                        cursor = end
                        if len(answered) < burst:
                            await asyncio.sleep(0.1)
                    last = max(answered.values(), default=began)
                    elapsed = max((last - began).total_seconds(), 0.001)
                    rates[size] = len(answered) / elapsed
                    print(
                        f"{size} worker(s): {len(answered)}/{burst} answered in {elapsed:.1f} s"
                        f" ({rates[size]:.0f}/s; webhooks taken in {sent_in:.1f} s)"
                    )
                    for worker in workers:
                        worker.terminate()
                        worker.wait(30)
                        bench.children.remove(worker)
        replies = Counter(s.target for s in sandbox.state.sent if s.kind == "message")
    finally:
        await sandbox.stop()
    return {
        "bare_rps": round(bare_rps, 1),
        "burst": burst,
        **{f"rate_{size}": round(rate, 1) for size, rate in rates.items()},
        "scaling_ratio": round(rates[sizes[-1]] / rates[sizes[0]], 2),
        "answered": sum(1 for count in replies.values() if count),
        "duplicates": sum(1 for count in replies.values() if count > 1),
    }


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main())))
