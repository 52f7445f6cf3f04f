"""Reply latency: DMs from the sandbox Instagram through the real webhook endpoint (uvicorn,
child process) and one worker process, back to the sandbox, at a rate set from this machine.

The load is a share of the bare reference measured first in the same run (bench/calibration.py):
``rate = bare_rps * 0.04`` (200 DMs/s where the bare server does 5000 req/s), for 20 s.
Then a capacity search: 8-second steps at rising rates (x1.4 from ``rate``; downwards x0.7 when
``rate`` itself misses) until p99 goes over 300 ms or a step leaves replies unanswered; the
highest rate that held is ``capacity_rps`` and ``capacity_ratio = capacity_rps / bare_rps``.

The CPU the panel and the worker spent per DM during the main step (`panel_cpu_ms_per_dm`,
`worker_cpu_ms_per_dm`, user + system time of each process over DMs sent) holds better than
latency on a noisy machine: it says what a change costs, whatever else the machine does.

Latency = when the worker's send call reaches the sandbox, minus when the sandbox started
sending the signed webhook (so it covers the endpoint, the queue, the worker and the call); a
reply still missing 20 s after a step counts as infinitely late. DMs come from distinct people
to 10 accounts (inside the per-account DM pace); the sandbox echoes every sent message back as
Meta does, so the endpoint sees about twice the rate. Worker poll delay: 0.01 s.
Runs on SQLite, or on PostgreSQL with DATABASE_URL set (``bench/databases.py``).
Last line: {"rate", "bare_rps", "database", "p50_ms", "p99_ms", "sent", "expected", "capacity_rps",
"capacity_ratio", "panel_cpu_ms_per_dm", "worker_cpu_ms_per_dm"}.
Targets: p50_ms < 50, p99_ms < 300, sent = expected, capacity_ratio >= 0.1.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psutil
from automation_rig import APP_SECRET, dm_accounts, engine_of, rig
from calibration import measure_bare_rps

RATE_SHARE = 0.04
DURATION_S = 20
STEP_S = 8
DRAIN_S = 20
P99_LIMIT_MS = 300.0
SEARCH_BUDGET_S = 110
ACCOUNTS = 10
WORKERS = 1


def cpu_s(process: psutil.Process) -> float:
    """User + system CPU seconds of ``process`` so far."""
    times = process.cpu_times()
    return float(times.user + times.system)


def percentile(values: list[float], share: float) -> float:
    """Nearest-rank percentile; infinite values (never answered) sort last."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


@dataclass
class Step:
    rate: int
    expected: int
    latencies: list[float]  # ms, math.inf for a DM never answered

    @property
    def answered(self) -> int:
        return sum(1 for v in self.latencies if v != math.inf)

    @property
    def p50(self) -> float:
        return percentile(self.latencies, 0.50)

    @property
    def p99(self) -> float:
        return percentile(self.latencies, 0.99)

    @property
    def held(self) -> bool:
        return self.answered == self.expected and self.p99 <= P99_LIMIT_MS

    def line(self) -> str:
        return (
            f"{self.rate} DMs/s: {self.answered}/{self.expected} answered,"
            f" p50 {self.p50:.1f} ms, p99 {self.p99:.1f} ms"
        )


async def main() -> dict[str, Any]:
    bare_rps = await measure_bare_rps()
    rate = max(5, round(bare_rps * RATE_SHARE))
    print(f"bare reference {bare_rps:.0f} req/s -> {rate} DMs/s (x {RATE_SHARE})")
    from core.db import close_database, open_database
    from core.db.models import (
        Workspace,
    )
    from sandbox.server import Sandbox
    from sandbox.state import SandboxState

    sandbox = Sandbox(SandboxState(secret="bench-sandbox", app_secret=APP_SECRET), echoes=True)
    await sandbox.start()
    try:
        async with rig(sandbox_url=sandbox.url, poll_delay=0.01, max_jobs=100) as bench:
            database = engine_of(bench.config["database_url"])
            await open_database(bench.config["database_url"], run_migrations=False)
            workspace = await Workspace.create(name="Bench")
            ig_ids = await dm_accounts(
                bench, sandbox, workspace, ACCOUNTS, first_id=17841600000000000, name="bench"
            )
            await close_database()
            port = await bench.panel()
            bench.workers(WORKERS)
            sandbox.state.webhook_url = f"http://127.0.0.1:{port}/webhooks/meta"
            await bench.workers_ready(WORKERS)
            panel, worker = (psutil.Process(child.pid) for child in bench.children[:2])

            people = 0

            async def step(at_rate: int, seconds: float) -> Step:
                """DMs from new people at ``at_rate`` for ``seconds``; latencies once drained."""
                nonlocal people
                first = people
                total = int(at_rate * seconds)
                people += total
                started: dict[str, datetime] = {}

                async def one(n: int) -> None:
                    igsid = f"{5500000000 + n}"
                    started[igsid] = datetime.now(UTC)
                    _, delivery = await sandbox.dm(
                        ig_ids[n % ACCOUNTS], "what's the price?", from_id=igsid
                    )
                    if delivery.status != 200:
                        print(f"webhook {igsid} answered {delivery.status}")

                tasks = []
                begin = time.perf_counter()
                for k in range(total):
                    delay = begin + k / at_rate - time.perf_counter()
                    if delay > 0:
                        await asyncio.sleep(delay)
                    tasks.append(asyncio.create_task(one(first + k)))
                await asyncio.gather(*tasks)
                deadline = time.monotonic() + DRAIN_S
                while time.monotonic() < deadline:
                    if len(answered_at(started)) >= total:
                        break
                    await asyncio.sleep(0.25)
                done = answered_at(started)
                latencies = [
                    (done[who] - at).total_seconds() * 1000 if who in done else math.inf
                    for who, at in started.items()
                ]
                return Step(at_rate, total, latencies)

            def answered_at(started: dict[str, datetime]) -> dict[str, datetime]:
                return {
                    s.target: s.at
                    for s in sandbox.state.sent
                    if s.kind == "message" and s.target in started
                }

            cpu_before = cpu_s(panel), cpu_s(worker)
            main_step = await step(rate, DURATION_S)
            panel_cpu, worker_cpu = (
                1000 * (cpu_s(p) - before) / main_step.expected
                for p, before in zip((panel, worker), cpu_before, strict=True)
            )
            print(main_step.line())
            print(f"CPU per DM: panel {panel_cpu:.2f} ms, worker {worker_cpu:.2f} ms")
            held = [main_step] if main_step.held else []
            factor = 1.4 if main_step.held else 0.7
            trying = max(1, round(rate * factor))
            search_ends = time.monotonic() + SEARCH_BUDGET_S
            while time.monotonic() < search_ends and trying >= 1:
                result = await step(trying, STEP_S)
                print(result.line())
                if result.held:
                    held.append(result)
                    if factor < 1:
                        break
                elif factor > 1 or trying == 1:
                    break
                trying = max(1, round(trying * factor)) if trying > 1 else 0
    finally:
        await sandbox.stop()
    capacity = max((s.rate for s in held), default=0)
    return {
        "rate": rate,
        "bare_rps": round(bare_rps, 1),
        "database": database,
        "p50_ms": round(main_step.p50, 1),
        "p99_ms": round(main_step.p99, 1) if main_step.p99 != math.inf else None,
        "sent": main_step.answered,
        "expected": main_step.expected,
        "capacity_rps": capacity,
        "capacity_ratio": round(capacity / bare_rps, 4),
        "panel_cpu_ms_per_dm": round(panel_cpu, 3),
        "worker_cpu_ms_per_dm": round(worker_cpu, 3),
    }


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main())))
