"""Made-up followers' profiles: what the user-profile API shows of a person to an account."""

from __future__ import annotations

from typing import Any

from sandbox.state import SandboxState

_FIRST_NAMES = ("Ana", "Ben", "Chiara", "Dev", "Emre", "Farah", "Gus", "Hana", "Ivo", "Jun")
_LAST_NAMES = ("Adler", "Brandt", "Costa", "Dahl", "Evans", "Fischer", "Garcia", "Hoang")


def follower_profile(state: SandboxState, ig_id: str, igsid: str) -> dict[str, Any] | None:
    """What the user-profile API shows of ``igsid`` to account ``ig_id``: a made-up but
    steady profile. None when the person never wrote to the account; like Meta, the
    profile is shown only once they messaged it (their consent)."""
    commented = [c for c in state.comments.values() if c.ig_id == ig_id and c.from_id == igsid]
    if (ig_id, igsid) not in state.last_inbound and not commented:
        return None
    seed = sum(igsid.encode()) * 7919 + len(igsid)
    first = _FIRST_NAMES[seed % len(_FIRST_NAMES)]
    last = _LAST_NAMES[(seed // 7) % len(_LAST_NAMES)]
    username = commented[-1].username if commented else f"{first.lower()}.{igsid[-4:]}"
    return {
        "id": igsid,
        "name": f"{first} {last}",
        "username": username,
        "profile_pic": f"https://sandbox.invalid/avatars/{igsid}.jpg",
        "follower_count": (seed * 37) % 25_000,
        # Nobody follows until they follow on the sandbox page (``state.set_following``).
        "is_user_follow_business": igsid in state.followers.get(ig_id, set()),
        "is_business_follow_user": False,
        "is_verified_user": seed % 11 == 0,
        "consented": (ig_id, igsid) in state.last_inbound,
    }
