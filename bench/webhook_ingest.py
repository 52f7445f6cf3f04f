"""Webhook ingest: the real endpoint (uvicorn, signature check, durable insert, enqueue) against
the bare aiohttp server that only checks the HMAC (bench/calibration.py), on the same machine in
the same run.

Throughput: closed loop, 32 connections, 8 s each, signed single-event bodies and 50-event
batches (every event new). Ack latency: open loop at bare_rps * 0.1 (500 req/s where the bare
server does 5000) for 10 s, single events.
Runs on SQLite, or on PostgreSQL with DATABASE_URL set (``bench/databases.py``).
Last line: {"ratio": rps / bare_rps (single events), "rps", "bare_rps", "database", "rate",
"p50_ms", "p99_ms", "batch_rps", "batch_bare_rps"}. Targets: ratio >= 0.35, p99_ms < 50.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time

import aiohttp
from automation_rig import engine_of, rig
from calibration import closed_loop, post, signed_comments

DURATION_S = 8.0
RATE_SHARE = 0.1
RATE_DURATION_S = 10.0


async def open_loop(url: str, rate: int) -> list[float]:
    source = signed_comments(1, "rate")
    prepared = [next(source) for _ in range(int(rate * RATE_DURATION_S))]
    latencies: list[float] = []
    connector = aiohttp.TCPConnector(limit=200)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def one(body: bytes, signature: str) -> None:
            start = time.perf_counter()
            await post(session, url, body, signature)
            latencies.append((time.perf_counter() - start) * 1000)

        tasks = []
        start = time.perf_counter()
        for n, (body, signature) in enumerate(prepared):
            due = start + n / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(body, signature)))
        await asyncio.gather(*tasks)
    return latencies


async def main() -> dict[str, float | str]:
    async with rig() as bench:
        database = engine_of(bench.config["database_url"])
        real_port = await bench.panel()
        bare_port = await bench.bare()
        real = f"http://127.0.0.1:{real_port}/webhooks/meta"
        bare = f"http://127.0.0.1:{bare_port}/webhooks/meta"
        await closed_loop(real, 1, "warm", 2.0)  # first requests open connections and caches
        bare_rps = await closed_loop(bare, 1, "bare", DURATION_S)
        rps = await closed_loop(real, 1, "single", DURATION_S)
        batch_bare = await closed_loop(bare, 50, "bare-batch", DURATION_S)
        batch_rps = await closed_loop(real, 50, "batch", DURATION_S)
        rate = max(10, round(bare_rps * RATE_SHARE))
        print(f"single: endpoint {rps:.0f} req/s, bare {bare_rps:.0f} req/s")
        print(f"50-event batches: endpoint {batch_rps:.0f} req/s, bare {batch_bare:.0f} req/s")
        print(f"ack latency at {rate} req/s (bare x {RATE_SHARE})")
        latencies = await open_loop(real, rate)
    q = statistics.quantiles(latencies, n=100, method="inclusive")
    return {
        "ratio": round(rps / bare_rps, 3),
        "rps": round(rps, 1),
        "bare_rps": round(bare_rps, 1),
        "database": database,
        "rate": rate,
        "p50_ms": round(q[49], 2),
        "p99_ms": round(q[98], 2),
        "batch_rps": round(batch_rps, 1),
        "batch_bare_rps": round(batch_bare, 1),
    }


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main())))
