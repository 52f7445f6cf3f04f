"""The bare reference every benchmark sets its load and targets from, measured in the same run.

The reference is an aiohttp server that does nothing but check a webhook's HMAC (the least
any webhook endpoint must do), in a child process, driven closed loop by 32 connections with
signed single-comment bodies. Its requests per second (`bare_rps`) say how fast this machine
is at the work Reelay does, so a figure stated against it holds on any machine:

- loads are a share of it (reply latency runs at ``bare_rps * 0.04``);
- capacities are divided by it (``capacity_ratio``);
- a time target stated for the machine the targets were first set on (where the bare server
  did ``REFERENCE_BARE_RPS``) is scaled by ``REFERENCE_BARE_RPS / bare_rps`` on a slower
  machine, and never tightened on a faster one (``scaled_target``).

``python bench/calibration.py`` prints the bare rate alone; ``python bench/calibration.py
serve PORT`` runs the bare server (used by the benchmarks).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import itertools
import json
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp

APP_SECRET = "bench-app-secret"
ACCOUNT = "17841400000000001"
CONNECTIONS = 32
# The bare server's rate on the 2-core machine where the benchmarks' targets were stated.
REFERENCE_BARE_RPS = 5000.0


def sign(body: bytes, secret: str = APP_SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def signed_comments(batch: int, tag: str) -> Iterator[tuple[bytes, str]]:
    """Signed webhook bodies of ``batch`` new comments each, never repeating a comment id."""
    for n in itertools.count():
        entries = [
            {
                "id": ACCOUNT,
                "time": 1755779280,
                "changes": [
                    {
                        "field": "comments",
                        "value": {
                            "id": f"{tag}.{n}.{k}",
                            "from": {"id": f"p{n}", "username": "bench"},
                            "text": "what's the price?",
                            "media": {"id": "m1", "media_product_type": "FEED"},
                        },
                    }
                ],
            }
            for k in range(batch)
        ]
        body = json.dumps({"object": "instagram", "entry": entries}).encode()
        yield body, sign(body)


async def post(session: aiohttp.ClientSession, url: str, body: bytes, signature: str) -> None:
    async with session.post(
        url,
        data=body,
        headers={"Content-Type": "application/json", "X-Hub-Signature-256": signature},
    ) as response:
        await response.read()
        if response.status != 200:
            raise RuntimeError(f"{url} answered {response.status}")


async def closed_loop(url: str, batch: int, tag: str, duration_s: float) -> float:
    """Requests per second that ``CONNECTIONS`` clients get from ``url``, each sending its next
    signed body as soon as the last is answered."""
    source = signed_comments(batch, tag)
    prepared = [next(source) for _ in range(4000 if batch == 1 else 400)]
    feed = iter(itertools.chain(prepared, source))
    done = 0
    connector = aiohttp.TCPConnector(limit=CONNECTIONS)
    async with aiohttp.ClientSession(connector=connector) as session:
        deadline = time.perf_counter() + duration_s

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


async def wait_port(port: int, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.05)
            continue
        writer.close()
        await writer.wait_closed()
        return
    raise RuntimeError(f"nothing listens on port {port}")


@asynccontextmanager
async def bare_server() -> AsyncIterator[str]:
    """The bare server in a child process; yields its webhook URL."""
    port = free_port()
    child = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "serve", str(port)])
    try:
        await wait_port(port)
        yield f"http://127.0.0.1:{port}/webhooks/meta"
    finally:
        child.terminate()
        try:
            child.wait(10)
        except subprocess.TimeoutExpired:
            child.kill()


async def measure_bare_rps(duration_s: float = 5.0) -> float:
    """This machine's bare rate, now (after a one-second warm-up)."""
    async with bare_server() as url:
        await closed_loop(url, 1, "bare-warm", 1.0)
        return await closed_loop(url, 1, "bare", duration_s)


def scaled_target(target: float, bare_rps: float) -> float:
    """A time target stated for the reference machine, on this one (never tighter)."""
    return round(target * max(1.0, REFERENCE_BARE_RPS / bare_rps), 3)


async def serve(port: int) -> None:
    from aiohttp import web

    secret = APP_SECRET.encode()

    async def receive(request: web.Request) -> web.Response:
        body = await request.read()
        sent = request.headers.get("X-Hub-Signature-256", "").removeprefix("sha256=")
        expected = hmac.new(secret, body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, sent):
            return web.Response(status=403)
        return web.Response(text="ok")

    app = web.Application(client_max_size=10 * 1024 * 1024)
    app.router.add_post("/webhooks/meta", receive)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    await asyncio.Event().wait()


if __name__ == "__main__":
    if sys.argv[1:2] == ["serve"]:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(serve(int(sys.argv[2])))
    else:
        print(json.dumps({"bare_rps": round(asyncio.run(measure_bare_rps()), 1)}))
