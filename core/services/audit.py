"""The audit log: who did what to which thing, and why."""

from __future__ import annotations

import logging
from typing import Any

from core.db.models import AuditLog
from core.domain.scope import instance_level

logger = logging.getLogger(__name__)


@instance_level("writes the entry it is given: the caller names the workspace, or none")
async def record(
    action: str,
    *,
    actor: str,
    workspace_id: int | None = None,
    target_type: str = "",
    target_id: object = "",
    level: str = "info",
    account_id: int | None = None,
    **details: Any,
) -> AuditLog:
    """Store one audit entry; ``details`` must hold no secrets.

    ``account_id`` names the Instagram account the entry concerns (the log pages filter on it).
    """
    entry = await AuditLog.create(
        workspace_id=workspace_id,
        account_id=account_id,
        actor=actor,
        action=action,
        target_type=target_type,
        target_id=str(target_id),
        level=level,
        details=details,
    )
    logger.info("audit %s by %s on %s:%s", action, actor, target_type, target_id)
    return entry
