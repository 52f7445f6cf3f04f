"""Follow-ups: a rule's message sent a while after its DM, unless the person answered.

- **Planned in a row** (``FollowUp``) in the engine's transaction, with when it is due and
  when Meta's 24-hour window closes (the person's last message + 24 h); a deferred job sends
  it. One due after the window is recorded ``expired`` with the reason and never sent.
- **Cancelled by an answer**: any message from the person after it was planned. The engine
  cancels it with the batch the message arrives in (:meth:`FollowUps.cancel_for`), and the
  send checks the conversation again before it goes.
- **Sent once**: through the outbox under its own key, ``follow_up:<id>``, claimed by a
  conditional update of the row; the outbox paces it and records it.
- **Rebuilt when lost**: a row still pending after its time is queued again by
  :meth:`FollowUps.requeue_lost` (the automations' recovery job, every minute).
"""

from __future__ import annotations

import logging
import random
from collections.abc import Mapping
from datetime import datetime, timedelta

from tortoise.transactions import in_transaction

from core.db.bulk import insert_returning
from core.db.models import (
    AutomationRule,
    Conversation,
    FollowUp,
    FollowUpStatus,
    InstagramAccount,
)
from core.domain.messages import Person, follow_up_message, pick, variant_label
from core.domain.rule_definition import RuleDefinition
from core.domain.scope import instance_level
from core.ports.clock import Clock
from core.services import conversation_log
from core.services.outbox import DM_WINDOW, ActionKind, Outbox
from core.services.tracked_links import LinkTracker

logger = logging.getLogger(__name__)

SEND_FOLLOW_UP = "send_follow_up"
STEP = "follow_up"
LOST_AFTER = timedelta(minutes=1)
NO_WINDOW = (
    "not sent: the person has not written to the account, and Meta allows no further "
    "message after a private reply until they answer (an answer cancels the follow-up)"
)


def job_id(follow_up_id: int, at: datetime, why: str = "at") -> str:
    """The send job of a follow-up at a time: a second enqueue of it is refused."""
    return f"follow_up:{follow_up_id}:{why}:{int(at.timestamp())}"


def _when(at: datetime) -> str:
    return at.strftime("%Y-%m-%d %H:%M UTC")


class FollowUps:
    def __init__(self, *, outbox: Outbox, links: LinkTracker, clock: Clock) -> None:
        self.outbox = outbox
        self.links = links
        self.clock = clock

    @instance_level("the engine's send path, for a rule it already holds")
    async def plan(
        self,
        *,
        rule: AutomationRule,
        actions: RuleDefinition,
        conversation: Conversation,
        event_key: str,
        person: Person,
        rng: random.Random,
    ) -> FollowUp | None:
        """Plan the rule's follow-up to ``conversation`` after the DM answering ``event_key``
        (None when the rule has none, or it was planned for this event before)."""
        step = actions.follow_up
        if step is None or not step.messages:
            return None
        index = pick(step.messages, rng)
        message = follow_up_message(actions, person, index)
        if message is None:
            return None
        now = self.clock.now()
        variant = variant_label(index)
        message = await self.links.rule_message(
            actions, rule, conversation, message, STEP, person=person, at=now, variant=variant
        )
        due = now + timedelta(seconds=actions.delay_s, minutes=step.wait_minutes)
        last = conversation.last_inbound_at
        window_ends = last + DM_WINDOW if last is not None else None
        status, reason = FollowUpStatus.PENDING, ""
        if window_ends is None:
            status, reason = FollowUpStatus.EXPIRED, NO_WINDOW
        elif due > window_ends:
            status, reason = (
                FollowUpStatus.EXPIRED,
                f"not sent: due {_when(due)}, after Meta's 24-hour window closes at "
                f"{_when(window_ends)}",
            )
        row = await insert_returning(
            FollowUp,
            {
                "account_id": rule.account_id,
                "rule_id": rule.id,
                "conversation_id": conversation.id,
                "dedupe_key": f"{rule.id}:{event_key}"[:255],
                "message": message,
                "variant": variant,
                "status": status,
                "reason": reason,
                "planned_at": now,
                "due_at": due,
                "window_ends_at": window_ends,
                "done_at": now if status is not FollowUpStatus.PENDING else None,
                "created_at": now,
            },
            conflict=("dedupe_key",),
        )
        if row is None:
            return None
        if status is FollowUpStatus.PENDING:
            await self.outbox.queue.enqueue(
                SEND_FOLLOW_UP, row.id, job_id=job_id(row.id, due), defer_until=due
            )
        else:
            logger.info("follow-up %s of rule %s %s", row.id, rule.id, reason)
        return row

    @instance_level("the engine: a message from a person it already holds")
    async def cancel_for(self, answered: Mapping[int, datetime]) -> int:
        """Cancel people's follow-ups planned before their messages: ``answered`` maps a
        conversation to its person's latest message time. One read for them all (most
        people have none pending), then one update per follow-up found."""
        if not answered:
            return 0
        pending = await FollowUp.filter(
            conversation_id__in=list(answered), status=FollowUpStatus.PENDING
        ).values_list("id", "conversation_id", "planned_at")
        cancelled = 0
        for follow_up_id, conversation_id, planned_at in pending:
            at = answered[conversation_id]
            if planned_at < at:
                cancelled += await FollowUp.filter(
                    id=follow_up_id, status=FollowUpStatus.PENDING
                ).update(
                    status=FollowUpStatus.CANCELLED,
                    reason=f"cancelled: they answered at {_when(at)}",
                    done_at=at,
                )
        return cancelled

    @instance_level("a job: one follow-up, by id, from the queue")
    async def send(self, follow_up_id: int) -> FollowUpStatus | None:
        """Send a follow-up that is due, unless the person answered or the window closed."""
        row = await FollowUp.get_or_none(id=follow_up_id)
        if row is None or row.status is not FollowUpStatus.PENDING:
            return row.status if row else None
        now = self.clock.now()
        if row.due_at > now + timedelta(seconds=1):
            await self.outbox.queue.enqueue(
                SEND_FOLLOW_UP, row.id, job_id=job_id(row.id, row.due_at), defer_until=row.due_at
            )
            return FollowUpStatus.PENDING
        conversation = await Conversation.get(id=row.conversation_id)
        rule = await AutomationRule.get_or_none(id=row.rule_id)
        last = conversation.last_inbound_at
        if last is not None and last > row.planned_at:
            return await self._end(row, FollowUpStatus.CANCELLED, f"they answered at {_when(last)}")
        if rule is None or not rule.active:
            return await self._end(row, FollowUpStatus.CANCELLED, "the rule was switched off")
        if conversation_log.paused(conversation, now):
            return await self._end(row, FollowUpStatus.CANCELLED, conversation_log.TEAMMATE_HAS_IT)
        if last is None:
            return await self._end(row, FollowUpStatus.EXPIRED, NO_WINDOW)
        if now > last + DM_WINDOW:
            reason = f"not sent: Meta's 24-hour window closed at {_when(last + DM_WINDOW)}"
            return await self._end(row, FollowUpStatus.EXPIRED, reason)
        account = await InstagramAccount.get(id=row.account_id)
        with self.outbox.holding() as held:
            async with in_transaction():
                won = await FollowUp.filter(id=row.id, status=FollowUpStatus.PENDING).update(
                    status=FollowUpStatus.SENT, done_at=now
                )
                if not won:
                    return None  # another worker has it
                submitted = await self.outbox.submit(
                    account=account,
                    kind=ActionKind.DM,
                    target=conversation.igsid,
                    message=row.message,
                    key=f"follow_up:{row.id}",
                    rule_id=row.rule_id,
                    conversation_id=conversation.id,
                    conversation=conversation,
                    step=STEP,
                    variant=row.variant,
                )
                if submitted.action is not None:
                    await FollowUp.filter(id=row.id).update(outbound_action_id=submitted.action.id)
        await self.outbox.send_held(held)
        logger.info("follow-up %s of rule %s handed to the outbox", row.id, row.rule_id)
        return FollowUpStatus.SENT

    async def _end(self, row: FollowUp, status: FollowUpStatus, reason: str) -> FollowUpStatus:
        changed = await FollowUp.filter(id=row.id, status=FollowUpStatus.PENDING).update(
            status=status, reason=reason[:2000], done_at=self.clock.now()
        )
        if changed:
            logger.info("follow-up %s of rule %s %s: %s", row.id, row.rule_id, status, reason)
        return status

    @instance_level("a sweep over every workspace's follow-ups whose job was lost")
    async def requeue_lost(self, older_than: timedelta = LOST_AFTER) -> int:
        """Queue the follow-ups still pending ``older_than`` after their time (their job was
        lost to a Redis flush or a dead worker); the send decides by the row."""
        now = self.clock.now()
        ids: list[int] = await FollowUp.filter(
            status=FollowUpStatus.PENDING, due_at__lt=now - older_than
        ).values_list("id", flat=True)  # type: ignore[assignment]
        for follow_up_id in ids:
            await self.outbox.queue.enqueue(
                SEND_FOLLOW_UP, follow_up_id, job_id=job_id(follow_up_id, now, "rq")
            )
        if ids:
            logger.info("follow-ups: %d whose job was lost queued again", len(ids))
        return len(ids)
