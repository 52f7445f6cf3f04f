"""AI per workspace: the on/off switch, tokens used per month, and the monthly quota.

Every AI call a workspace makes goes through :func:`complete_for_workspace`: it refuses when
no AI server is configured or ``Workspace.ai_enabled`` is off (``AiDisabled``), refuses when
this month's tokens reached ``Workspace.ai_monthly_token_quota`` (``AiQuotaReached``, and a
``ai.quota_reached`` domain event once per workspace and month), then records the tokens
the answer cost in ``AiUsage`` (one row per workspace and UTC month, added to atomically).

The quota is checked before a call, so the call that crosses it completes (a quota is
overshot by at most one answer). A quota of 0 means no limit; switch AI off with
``ai_enabled`` instead.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from tortoise.expressions import F

from core.db.models import AiUsage, DomainEvent, Workspace
from core.domain.ai import AiDisabled, AiQuotaReached, ChatMessage
from core.domain.scope import Actor
from core.errors import NotFound
from core.ports.ai import AiClient, Completion

logger = logging.getLogger(__name__)

QUOTA_EVENT = "ai.quota_reached"


def month_of(now: datetime) -> str:
    """The usage month (``YYYY-MM``, UTC) that ``now`` falls in."""
    return now.astimezone(UTC).strftime("%Y-%m")


async def _workspace(actor: Actor) -> Workspace:
    workspace = await Workspace.get_or_none(id=actor.workspace_id)
    if workspace is None:
        raise NotFound(f"workspace {actor.workspace_id} does not exist")
    return workspace


async def tokens_used(actor: Actor, now: datetime) -> int:
    return await _tokens(actor.workspace_id, now)


async def _tokens(workspace_id: int, now: datetime) -> int:
    row = await AiUsage.get_or_none(workspace_id=workspace_id, month=month_of(now))
    return row.tokens if row else 0


async def ensure_ai_allowed(actor: Actor, now: datetime) -> None:
    """Raise ``AiDisabled`` or ``AiQuotaReached`` when this workspace may not call the AI."""
    await _ensure_allowed(await _workspace(actor), now)


async def _ensure_allowed(workspace: Workspace, now: datetime) -> None:
    if not workspace.ai_enabled:
        raise AiDisabled("AI is switched off for this workspace")
    quota = workspace.ai_monthly_token_quota
    if quota <= 0:
        return
    month = month_of(now)
    used = await _tokens(workspace.id, now)
    if used >= quota:
        await _announce_quota(workspace.id, used=used, quota=quota, month=month)
        raise AiQuotaReached(
            f"This workspace used its AI quota for {month} ({used} of {quota} tokens)",
            used=used,
            quota=quota,
            month=month,
        )


async def record_usage(actor: Actor, tokens: int, now: datetime) -> int:
    """Add ``tokens`` to this month's usage; returns the month's new total."""
    return await _record(await _workspace(actor), tokens, now)


async def _record(workspace: Workspace, tokens: int, now: datetime) -> int:
    month = month_of(now)
    row, _ = await AiUsage.get_or_create(workspace_id=workspace.id, month=month)
    if tokens > 0:
        await AiUsage.filter(id=row.id).update(tokens=F("tokens") + tokens)
    await row.refresh_from_db(fields=["tokens"])
    total = row.tokens
    quota = workspace.ai_monthly_token_quota
    if quota > 0 and total >= quota > total - tokens:
        await _announce_quota(workspace.id, used=total, quota=quota, month=month)
    return total


async def complete_for_workspace(
    actor: Actor,
    ai: AiClient | None,
    messages: Sequence[ChatMessage],
    *,
    now: datetime,
    **options: Any,
) -> Completion:
    """One AI completion on the actor's workspace: checks, calls, records the tokens.

    ``options`` go to ``AiClient.complete`` (``max_tokens`` is required). Raises
    ``AiError`` (``AiDisabled``, ``AiQuotaReached`` or the adapter's errors).
    """
    if ai is None:
        raise AiDisabled("No AI server is configured (set OPENAI_API_KEY or OPENAI_BASE_URL)")
    workspace = await _workspace(actor)
    await _ensure_allowed(workspace, now)
    completion = await ai.complete(messages, **options)
    total = await _record(workspace, completion.total_tokens, now)
    logger.debug(
        "workspace %s used %d AI tokens (%d this month)",
        workspace.id,
        completion.total_tokens,
        total,
    )
    return completion


async def _announce_quota(workspace_id: int, *, used: int, quota: int, month: str) -> None:
    """Record ``ai.quota_reached`` once per workspace and month."""
    latest = (
        await DomainEvent.filter(workspace_id=workspace_id, kind=QUOTA_EVENT)
        .order_by("-id")
        .first()
    )
    if latest is not None and latest.payload.get("month") == month:
        return
    await DomainEvent.create(
        workspace_id=workspace_id,
        kind=QUOTA_EVENT,
        payload={"month": month, "used": used, "quota": quota},
    )
    logger.warning(
        "workspace %s reached its AI quota for %s (%d of %d tokens)",
        workspace_id,
        month,
        used,
        quota,
    )
