"""Members of a workspace as the services' scope, for tests that call services directly."""

from __future__ import annotations

from core.db.models import Membership, User
from core.domain.scope import Actor


async def acting(membership: Membership) -> Actor:
    """``membership``'s user acting with its role, labelled with their email."""
    user = await User.get(id=membership.user_id)
    return Actor(membership.workspace_id, membership.role, user.email, user_id=user.id)
