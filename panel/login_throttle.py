"""Login rate limiting in Redis, per client address and email.

Failed sign-ins count in a fixed window; once the limit is reached that address
may not try that email again until the window ends. A success clears the count.
"""

from __future__ import annotations

import hashlib

from redis.asyncio import Redis

MAX_FAILURES = 5
WINDOW_S = 15 * 60


def _key(address: str, email: str) -> str:
    # Hashed so emails do not sit in Redis in clear text.
    digest = hashlib.sha256(f"{address}|{email.strip().lower()}".encode()).hexdigest()
    return f"reelay:login-failures:{digest}"


async def retry_after(redis: Redis, address: str, email: str) -> int:
    """Seconds until this address may try this email again (0: it may now)."""
    key = _key(address, email)
    failures = await redis.get(key)
    if failures is None or int(failures) < MAX_FAILURES:
        return 0
    ttl = int(await redis.ttl(key))
    return max(ttl, 1)


async def record_failure(redis: Redis, address: str, email: str) -> None:
    key = _key(address, email)
    async with redis.pipeline(transaction=True) as pipe:
        pipe.incr(key)
        pipe.ttl(key)
        _, ttl = await pipe.execute()
    if int(ttl) < 0:  # the first failure of a window starts it
        await redis.expire(key, WINDOW_S)


async def clear(redis: Redis, address: str, email: str) -> None:
    await redis.delete(_key(address, email))
