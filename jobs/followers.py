"""Follower profile job: read one person's Instagram profile, off the reply's path."""

from __future__ import annotations

from typing import Any

from arq import func

from core.services import followers
from core.wiring import Services


async def refresh_follower_profile(
    ctx: dict[str, Any], conversation_id: int, *more_ids: int
) -> None:
    """Read and store the profiles of the people of these conversations that are due."""
    services: Services = ctx["services"]
    await followers.refresh_profiles(services.insights, [conversation_id, *more_ids])


FUNCTIONS = [func(refresh_follower_profile, max_tries=2, timeout=60)]
