"""What a send leaves behind, written together for the sends finishing at the same time: the
action marked sent with Meta's answer, the message in the person's conversation, and the
rule's counters (``RuleStats``). An action recorded sent before (its echo came first, or its
answer did) is not recorded or counted again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tortoise.exceptions import IntegrityError
from tortoise.expressions import F
from tortoise.transactions import in_transaction

from core.db.bulk import bump_many_stats, mark_sent
from core.db.conversations import MessageSource
from core.db.models import InstagramAccount, OutboundAction, RuleStats
from core.domain.messages import message_media_url, message_text
from core.domain.outbound import MODERATION, ActionKind
from core.domain.scope import instance_level
from core.services import conversation_log


def _stat_field(kind: str) -> str | None:
    if kind in MODERATION:
        return None  # a rule's counters count what it said, not what it hid
    return "total_comments_replied" if kind == ActionKind.PUBLIC_REPLY else "total_dms_sent"


@instance_level("counts for a rule the webhook-driven engines already hold")
async def bump_stats(rule_id: int, **changes: Any) -> None:
    """Add to a rule's counters atomically (F expressions), creating its row on first use."""
    updates: dict[str, Any] = {}
    for name, value in changes.items():
        updates[name] = F(name) + value if name.startswith("total_") else value
    if await RuleStats.filter(rule_id=rule_id).update(**updates):
        return
    try:
        async with in_transaction():  # a savepoint when inside a transaction
            await RuleStats.create(rule_id=rule_id, **changes)
    except IntegrityError:
        await RuleStats.filter(rule_id=rule_id).update(**updates)


@dataclass(frozen=True)
class SentAction:
    action: OutboundAction
    kind: ActionKind
    response: dict[str, Any]
    extra_stats: dict[str, Any]
    at: datetime
    # The action's account when the sender holds it (saves reading it again).
    account: InstagramAccount | None = None


@instance_level("records sends of actions the outbox or the engine already holds")
async def write_sent(batch: Sequence[SentAction]) -> list[SentAction]:
    """Mark ``batch`` sent, add their messages and the rules' counts: three statements
    whatever the batch size. Returns the sends recorded now: one recorded before (by its
    echo, or by its answer when the echo came first) is not recorded or counted again."""
    if not batch:
        return []
    at = max(s.at for s in batch)
    marked = await mark_sent({s.action.id: s.response for s in batch}, at)
    batch = [s for s in batch if s.action.id in marked]
    await conversation_log.sent(
        [
            {
                "conversation_id": s.action.payload["conversation_id"],
                "account_id": s.action.account_id,
                "account": s.account,
                "direction": "out",
                "source": s.action.payload.get("source") or MessageSource.AUTOMATION.value,
                "author_id": s.action.payload.get("author_id"),
                "mid": s.response.get("message_id") or None,
                "text": message_text(s.action.payload.get("message") or {}),
                "media_url": message_media_url(s.action.payload.get("message") or {}),
                "rule_id": s.action.payload.get("rule_id") or None,
                "variant": s.action.variant,
            }
            for s in batch
            if s.kind is not ActionKind.PUBLIC_REPLY and s.action.payload.get("conversation_id")
        ],
        at,
    )
    counts: dict[int, dict[str, Any]] = {}
    for s in batch:
        rule_id = s.action.payload.get("rule_id")
        if not rule_id:
            continue
        merged = counts.setdefault(int(rule_id), {})
        said = _stat_field(s.kind)
        for name, value in {**({said: 1} if said else {}), **s.extra_stats}.items():
            if name.startswith("total_"):
                merged[name] = merged.get(name, 0) + value
            elif name not in merged or value > merged[name]:
                merged[name] = value  # the latest time
    if counts:
        await bump_many_stats(counts)
    return batch
