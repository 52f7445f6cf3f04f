"""Webhook ingest: the real endpoint (uvicorn, signature check, durable insert, enqueue) against
a bare aiohttp server that only checks the HMAC, on the same machine in the same run.

Throughput: closed loop, 32 connections, 8 s each, signed single-event bodies and 50-event
batches (every event new). Ack latency: open loop at 500 req/s for 10 s, single events.
Last line: {"ratio": rps / bare_rps (single events), "rps", "bare_rps", "p50_ms", "p99_ms",
"batch_rps", "batch_bare_rps"}. Targets: ratio ≥ 0.35, p99_ms < 50.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import statistics
import time
from collections.abc import Iterator

import aiohttp
from automation_rig import rig, sign

CONNECTIONS = 32
DURATION_S = 8.0
RATE = 500
RATE_DURATION_S = 10.0
ACCOUNT = "17841400000000001"


def bodies(batch: int, tag: str) -> Iterator[tuple[bytes, str]]:
    for n in itertools.count():
        entries = []
        for k in range(batch):
            mid = f"{tag}.{n}.{k}"
            entries.append(
                {
                    "id": ACCOUNT,
                    "time": 1755779280,
                    "changes": [
                        {
                            "field": "comments",
                            "value": {
                                "id": mid,
                                "from": {"id": f"p{n}", "username": "bench"},
                                "text": "what's the price?",
                                "media": {"id": "m1", "media_product_type": "FEED"},
                            },
                        }
                    ],
                }
            )
        body = json.dumps({"object": "instagram", "entry": entries}).encode()
        yield body, sign(body)


async def post(session: aiohttp.ClientSession, url: str, body: bytes, signature: str) -> None:
    async with session.post(
        url,
        data=body,
        headers={"X-Hub-Signature-256": signature, "Content-Type": "application/json"},
    ) as response:
        await response.read()
        if response.status != 200:
            raise RuntimeError(f"{url} answered {response.status}")


async def closed_loop(url: str, batch: int, tag: str) -> float:
    source = bodies(batch, tag)
    prepared = [next(source) for _ in range(4000 if batch == 1 else 400)]
    feed = iter(itertools.chain(prepared, source))
    done = 0
    connector = aiohttp.TCPConnector(limit=CONNECTIONS)
    async with aiohttp.ClientSession(connector=connector) as session:
        deadline = time.perf_counter() + DURATION_S

        async def client() -> None:
            nonlocal done
            while time.perf_counter() < deadline:
                body, signature = next(feed)
                await post(session, url, body, signature)
                done += 1

        start = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(CONNECTIONS)))
        elapsed = time.perf_counter() - start
    return done / elapsed


async def open_loop(url: str) -> list[float]:
    source = bodies(1, "rate")
    prepared = [next(source) for _ in range(int(RATE * RATE_DURATION_S))]
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
            due = start + n / RATE
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(body, signature)))
        await asyncio.gather(*tasks)
    return latencies


async def main() -> dict[str, float]:
    async with rig() as bench:
        real_port = await bench.panel()
        bare_port = await bench.bare()
        real = f"http://127.0.0.1:{real_port}/webhooks/meta"
        bare = f"http://127.0.0.1:{bare_port}/webhooks/meta"
        await closed_loop(real, 1, "warm")  # first requests open connections and caches
        bare_rps = await closed_loop(bare, 1, "bare")
        rps = await closed_loop(real, 1, "single")
        batch_bare = await closed_loop(bare, 50, "bare-batch")
        batch_rps = await closed_loop(real, 50, "batch")
        print(f"single: endpoint {rps:.0f} req/s, bare {bare_rps:.0f} req/s")
        print(f"50-event batches: endpoint {batch_rps:.0f} req/s, bare {batch_bare:.0f} req/s")
        latencies = await open_loop(real)
    q = statistics.quantiles(latencies, n=100, method="inclusive")
    return {
        "ratio": round(rps / bare_rps, 3),
        "rps": round(rps, 1),
        "bare_rps": round(bare_rps, 1),
        "p50_ms": round(q[49], 2),
        "p99_ms": round(q[98], 2),
        "batch_rps": round(batch_rps, 1),
        "batch_bare_rps": round(batch_bare, 1),
    }


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main())))
