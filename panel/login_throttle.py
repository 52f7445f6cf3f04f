"""Login throttling in Redis: per client address, per account, and per known device.

Every sign-in attempt is reserved (counted) atomically, in one Lua script, before the
password is hashed, so parallel guesses cannot slip past the count. Each bucket lets a few
attempts through freely; after that each further attempt must wait a delay that doubles
with every failure up to ``MAX_DELAY_S``, so an account is slowed down but never locked
for good. A success clears the account's bucket and gives its reservation on the address
back. A browser that signed in to the account before carries a signed device cookie: its
attempts count in its own bucket, so a stranger's guessing does not lock the owner out,
even when everyone reaches the panel through one proxy address. Buckets expire a day
after their last attempt.
"""

from __future__ import annotations

import hashlib
import math

from redis.asyncio import Redis

ADDRESS_FREE = 20
ACCOUNT_FREE = 5
DEVICE_FREE = 10
BASE_DELAY_S = 30
MAX_DELAY_S = 15 * 60
BUCKET_TTL_S = 24 * 3600

# KEYS: the buckets; ARGV: now, base delay, max delay, ttl, then each bucket's free count.
# Returns 0 when the attempt is reserved in every bucket, else the seconds to wait.
_RESERVE = """
local now, base, cap, ttl = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
local wait = 0
for i, key in ipairs(KEYS) do
  local free = tonumber(ARGV[4 + i])
  local n = tonumber(redis.call('HGET', key, 'n') or '0')
  if n >= free then
    local at = tonumber(redis.call('HGET', key, 'at') or '0')
    wait = math.max(wait, at + math.min(base * 2 ^ (n - free), cap) - now)
  end
end
if wait > 0 then return math.ceil(wait) end
for _, key in ipairs(KEYS) do
  redis.call('HINCRBY', key, 'n', 1)
  redis.call('HSET', key, 'at', ARGV[1])
  redis.call('EXPIRE', key, ttl)
end
return 0
"""

# KEYS[1]: the address bucket, handed its reservation back; KEYS[2]: the bucket to clear.
_SUCCEED = """
if tonumber(redis.call('HGET', KEYS[1], 'n') or '0') > 0 then
  redis.call('HINCRBY', KEYS[1], 'n', -1)
end
redis.call('DEL', KEYS[2])
return 0
"""


def _digest(text: str) -> str:
    # Hashed so addresses and emails do not sit in Redis in clear text.
    return hashlib.sha256(text.encode()).hexdigest()


def account_tag(email: str) -> str:
    """What identifies an account in bucket keys and device cookies."""
    return _digest(email.strip().lower())


def _address_key(address: str) -> str:
    return f"reelay:login:address:{_digest(address)}"


def _account_key(email: str) -> str:
    return f"reelay:login:account:{account_tag(email)}"


def _device_key(device: str) -> str:
    return f"reelay:login:device:{_digest(device)}"


def _buckets(address: str, email: str, device: str | None) -> list[tuple[str, int]]:
    if device is not None:
        return [(_device_key(device), DEVICE_FREE)]
    return [(_address_key(address), ADDRESS_FREE), (_account_key(email), ACCOUNT_FREE)]


async def reserve(redis: Redis, address: str, email: str, device: str | None, now: float) -> int:
    """Count one attempt before the password is checked: 0 when it may go ahead, else the
    seconds to wait (nothing is counted then). ``device``: the browser's known-device id
    for this account, if it has one."""
    buckets = _buckets(address, email, device)
    wait = await redis.eval(  # type: ignore[misc]
        _RESERVE,
        len(buckets),
        *[key for key, _ in buckets],
        repr(now),
        str(BASE_DELAY_S),
        str(MAX_DELAY_S),
        str(BUCKET_TTL_S),
        *[str(free) for _, free in buckets],
    )
    return max(0, math.ceil(float(wait)))


async def succeed(redis: Redis, address: str, email: str, device: str | None) -> None:
    """The password was right: the device, or else the account, starts over (and the
    address gets its reservation back)."""
    if device is not None:
        await redis.delete(_device_key(device))
        return
    await redis.eval(_SUCCEED, 2, _address_key(address), _account_key(email))  # type: ignore[misc]


async def unlock(redis: Redis, email: str) -> None:
    """Lift the delay on an account (``reelay admin unlock``, a completed password reset)."""
    await redis.delete(_account_key(email))
