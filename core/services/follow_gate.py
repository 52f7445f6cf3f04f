"""The follow gate: a lead flow's "must follow" step, checked with Meta's user-profile API.

The engine stops a flow at a follow step (``core.domain.lead_flow``) and queues
``check_follow`` once its transaction has committed, so no Graph call holds the database.
The check asks the user-profile API (``InstagramClient.user_profile``, the call the follower
profile job makes, whose answer it stores likewise) for ``is_user_follow_business`` and, in
one transaction, moves the flow on (past the step when the person follows, else "Follow us,
then tap Done" with a Done button) and records the DM in the outbox, sent after the commit.
A check that finds the conversation elsewhere (answered meanwhile, flow over) does nothing;
a failed profile call is logged and treated as "not following", so the person is asked to follow and
their Done tap checks again.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from datetime import datetime

from tortoise.transactions import in_transaction

from core.db.models import AutomationRule, Conversation, InstagramAccount
from core.domain import lead_flow
from core.domain.graph_errors import GraphError
from core.domain.messages import Person
from core.domain.rule_definition import RuleDefinition
from core.domain.scope import instance_level
from core.ports.clock import Clock
from core.ports.instagram import AccountRef, InstagramClient
from core.ports.queue import JobQueue
from core.services.followers import profile_columns
from core.services.leads import Leads
from core.services.outbox import ActionKind, Outbox
from core.services.tracked_links import LinkTracker

logger = logging.getLogger(__name__)

CHECK_FOLLOW = "check_follow"
# The engine queues the check inside its transaction: a moment later, the state it checks
# has been committed (a check that still finds the old state does nothing, and the person's
# next tap or message checks again).
CHECK_AFTER_S = 1.0


@instance_level("the engine's lead flows, for an account it already holds")
async def queue_check(queue: JobQueue, conversation_id: int, at: datetime) -> None:
    """Queue the follow check of a conversation whose flow waits at a follow step."""
    stamp = int(at.timestamp() * 1000)
    await queue.enqueue(
        CHECK_FOLLOW,
        conversation_id,
        at.isoformat(),
        job_id=f"follow:{conversation_id}:{stamp}",
        defer_by_s=CHECK_AFTER_S,
    )


class FollowGate:
    def __init__(
        self,
        *,
        graph: InstagramClient,
        account_ref: Callable[[InstagramAccount], AccountRef],
        outbox: Outbox,
        leads: Leads,
        links: LinkTracker,
        clock: Clock,
        rng: random.Random | None = None,
    ) -> None:
        self.graph = graph
        self.account_ref = account_ref
        self.outbox = outbox
        self.leads = leads
        self.links = links
        self.clock = clock
        self.rng = rng or random.Random()

    @instance_level("a job: one conversation's follow step, for any workspace's account")
    async def check(self, conversation_id: int, at: str) -> str:
        """Ask Meta whether the person follows, and move their flow on; returns what it did."""
        conversation = await Conversation.get_or_none(id=conversation_id)
        state = conversation.flow_state if conversation is not None else None
        if conversation is None or not state or not state.get("check_follow"):
            return "no follow step waiting"
        rule = await AutomationRule.get_or_none(id=state.get("rule_id"), active=True)
        account = await InstagramAccount.get_or_none(id=conversation.account_id)
        if rule is None or account is None:
            return "rule or account gone"
        try:
            profile = await self.graph.user_profile(self.account_ref(account), conversation.igsid)
        except GraphError as exc:
            logger.warning(
                "follow check of conversation %s (rule %s) failed: %s",
                conversation.id,
                rule.id,
                exc,
            )
            following = False
        else:
            # The same answer as the follower profile job's: stored, so the team sees it too.
            following = profile.get("is_user_follow_business") is True
            await Conversation.filter(id=conversation.id).update(
                **profile_columns(profile, self.clock.now())
            )
        actions = RuleDefinition.from_stored(rule)
        person = Person(
            username=conversation.username,
            first_name=conversation.first_name,
            link=actions.reply_link,
        )
        now = self.clock.now()
        with self.outbox.holding() as held:
            async with in_transaction():
                # Moved on only from the state the check was queued for.
                moved = await Conversation.filter(
                    id=conversation.id, flow_state__not_isnull=True
                ).first()
                if moved is None or (moved.flow_state or {}).get("updated_at") != at:
                    return "the conversation moved on meanwhile"
                turn = lead_flow.followed(actions.flow(), state, following, person, self.rng)
                new_state = None
                if turn.state is not None:
                    new_state = {**turn.state, "updated_at": now.isoformat()}
                await Conversation.filter(id=conversation.id).update(flow_state=new_state)
                if turn.lead is not None:
                    await self.leads.capture(
                        account=account, rule=rule, conversation=conversation, answers=turn.lead
                    )
                message = turn.message()
                if message is not None:
                    message = await self.links.rule_message(
                        actions, rule, conversation, message, "flow", person=person, at=now
                    )
                    await self.outbox.submit(
                        account=account,
                        kind=ActionKind.DM,
                        target=conversation.igsid,
                        message=message,
                        key=f"follow:{conversation.id}:{at}:{state.get('checks')}",
                        rule_id=rule.id,
                        conversation_id=conversation.id,
                        conversation=conversation,
                    )
        await self.outbox.send_held(held)
        return "following" if following else "asked to follow"
