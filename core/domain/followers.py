"""Who wrote: a follower as the team reads them, "@username · Name · 12.3k followers".

Pure. The facts come from Instagram's user-profile API (cached on the conversation) or from
the webhook (a comment carries the username); whatever is unknown is left out, down to
"a follower (id …)" when only the Instagram-scoped id is known.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

# How long a fetched profile is trusted before it is fetched again.
PROFILE_TTL = timedelta(days=1)
# After a failed fetch, wait this long before trying again (the call budget is shared).
RETRY_AFTER_FAILURE = timedelta(hours=1)


@dataclass(frozen=True)
class Follower:
    igsid: str = ""
    username: str = ""
    name: str = ""
    follower_count: int | None = None
    verified: bool = False


def compact_count(count: int) -> str:
    """950 → "950", 12_345 → "12.3k", 999_950 → "1M", 2_500_000 → "2.5M"."""
    if count < 1000:
        return str(max(count, 0))
    for size, unit in ((1_000, "k"), (1_000_000, "M")):
        value = round(count / size, 1)
        if value < 1000:
            return f"{value:g}{unit}"
    return f"{round(count / 1_000_000_000, 1):g}B"


def follower_label(person: Follower) -> str:
    """ "@username · Name · 12.3k followers", leaving out what is unknown."""
    parts: list[str] = []
    if person.username:
        parts.append(f"@{person.username}" + (" ✓" if person.verified else ""))
    if person.name and person.name.strip() and person.name.strip() != person.username:
        parts.append(" ".join(person.name.split()))
    if not parts:
        return f"a follower (id {person.igsid})" if person.igsid else "a follower"
    if person.follower_count is not None:
        noun = "follower" if person.follower_count == 1 else "followers"
        parts.append(f"{compact_count(person.follower_count)} {noun}")
    return " · ".join(parts)


def profile_due(fetched_at: datetime | None, failed_at: datetime | None, now: datetime) -> bool:
    """Whether a profile should be fetched now: never fetched, older than a day, and not
    refused within the last hour."""
    if failed_at is not None and now - failed_at < RETRY_AFTER_FAILURE:
        return False
    return fetched_at is None or now - fetched_at >= PROFILE_TTL
