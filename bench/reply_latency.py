"""Reply latency: 200 DMs per second for 30 s from the sandbox Instagram, through the real
webhook endpoint (uvicorn, child process) and one worker process, back to the sandbox.

Latency = when the worker's send call reaches the sandbox, minus when the sandbox started
sending the signed webhook (so it covers the endpoint, the queue, the worker and the call).
DMs come from distinct people to 10 accounts (20/s each, inside the per-account DM pace);
the sandbox echoes every sent message back as Meta does, so the endpoint sees ~400 req/s.
Worker poll delay: 0.01 s (WORKER_POLL_DELAY).
Last line: {"p50_ms", "p99_ms", "sent", "expected"}. Targets: p50_ms < 50, p99_ms < 300,
sent = expected.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from datetime import UTC, datetime

from automation_rig import APP_SECRET, rig

RATE = 200
DURATION_S = 30
ACCOUNTS = 10
WORKERS = 1


async def main() -> dict[str, float]:
    from core.db import close_database, open_database
    from core.db.models import (
        AutomationRule,
        InstagramAccount,
        LoginKind,
        MatchMode,
        Trigger,
        Workspace,
    )
    from sandbox.server import Sandbox
    from sandbox.state import SandboxState

    sandbox = Sandbox(SandboxState(secret="bench-sandbox", app_secret=APP_SECRET), echoes=True)
    await sandbox.start()
    try:
        async with rig(sandbox_url=sandbox.url, poll_delay=0.01, max_jobs=100) as bench:
            from core.adapters.crypto import SecretBox

            box = SecretBox(bench.config["encryption_key"])
            await open_database(bench.config["database_url"], run_migrations=False)
            workspace = await Workspace.create(name="Bench")
            ig_ids = []
            for n in range(ACCOUNTS):
                ig_id = f"1784160000{n:07d}"
                sandbox.state.add_account(ig_id, f"bench{n}")
                account = await InstagramAccount.create(
                    workspace=workspace,
                    ig_id=ig_id,
                    username=f"bench{n}",
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
            await close_database()
            port = await bench.panel()
            bench.workers(WORKERS)
            sandbox.state.webhook_url = f"http://127.0.0.1:{port}/webhooks/meta"
            await bench.workers_ready(WORKERS)

            started: dict[str, datetime] = {}
            acks: list[float] = []
            failures = 0

            async def one(n: int) -> None:
                nonlocal failures
                igsid = f"{5500000000 + n}"
                started[igsid] = datetime.now(UTC)
                _, delivery = await sandbox.dm(
                    ig_ids[n % ACCOUNTS], "what's the price?", from_id=igsid
                )
                acks.append((datetime.now(UTC) - started[igsid]).total_seconds() * 1000)
                if delivery.status != 200:
                    failures += 1

            total = RATE * DURATION_S
            tasks = []
            start = time.perf_counter()
            for n in range(total):
                delay = start + n / RATE - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                tasks.append(asyncio.create_task(one(n)))
            await asyncio.gather(*tasks)
            ack = statistics.quantiles(acks, n=100, method="inclusive")
            print(
                f"sent {total} webhooks in {time.perf_counter() - start:.1f}s ({failures} failed);"
                f" webhook answered in p50 {ack[49]:.1f} ms, p99 {ack[98]:.1f} ms"
            )
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                answered = [s for s in sandbox.state.sent if s.kind == "message"]
                if len(answered) >= total:
                    break
                await asyncio.sleep(0.5)
            answered = [s for s in sandbox.state.sent if s.kind == "message"]
            latencies = sorted(
                (s.at - started[s.target]).total_seconds() * 1000
                for s in answered
                if s.target in started
            )
    finally:
        await sandbox.stop()
    q = (
        statistics.quantiles(latencies, n=100, method="inclusive")
        if len(latencies) > 1
        else [0] * 99
    )
    echoed = sum(1 for d in sandbox.deliveries if b'"is_echo"' in d.body)
    print(
        f"answered {len(answered)}; max {latencies[-1] if latencies else 0:.0f} ms;"
        f" {len(sandbox.deliveries)} webhooks delivered, {echoed} of them echoes"
    )
    return {
        "p50_ms": round(q[49], 1),
        "p99_ms": round(q[98], 1),
        "sent": len({s.target for s in answered}),
        "expected": RATE * DURATION_S,
    }


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main())))
