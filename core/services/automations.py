"""The automations engine: a recorded webhook event in, the right answer out (once).

Order for an event (ARCHITECTURE.md, "Data path 1"): resolve the account from the entry id; ignore
echoes and the account's own comments; record the person's conversation (the 24 h window
starts at their last message); then

1. a conversation waiting for a lead-flow answer gets it (see ``core.domain.lead_flow`` for
   what happens when a new keyword arrives mid-flow);
2. otherwise the account's rules for the event's trigger, best first, skipping a rule whose
   per-person cooldown runs or that only answers a person's first comment on a post;
3. otherwise the ``continuation`` hook (AI conversations) when one is installed.

A matched rule's actions go through the outbox with keys per (rule, event, action), each with
the variation it sent (``step``, ``variant``); a rule's follow-up is planned after its DM
(``core.services.follow_ups``), and any message from the person cancels theirs.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from redis.asyncio import Redis
from tortoise.transactions import in_transaction

from core.db.bulk import (
    GroupCommit,
    claim_events,
    update_many,
)
from core.db.models import (
    AccountStatus,
    AutomationRule,
    Conversation,
    EventStatus,
    InstagramAccount,
    WebhookEvent,
)
from core.domain import lead_flow
from core.domain.messages import (
    Person,
    comment_reply,
    dm_message,
    dm_variant,
    pick,
    variant_label,
)
from core.domain.rule_definition import RuleDefinition
from core.domain.rules import RuleSpec
from core.domain.scope import instance_level
from core.domain.webhooks import (
    FLOW_ANSWER_KINDS,
    EventKind,
    InboundEvent,
    from_stored,
    match_inputs,
)
from core.errors import ReelayError
from core.ports.clock import Clock
from core.services import comment_alerts, conversation_log, echoes, follow_gate, followers
from core.services.account_changes import ACCOUNTS_VERSION_KEY
from core.services.batch_people import BatchPeople
from core.services.event_webhooks import announce_comment
from core.services.follow_ups import FollowUps
from core.services.inbox import HANDLE_EVENT, event_job_id
from core.services.leads import Leads
from core.services.outbox import ActionKind, Held, Outbox
from core.services.rule_cache import RuleCache
from core.services.rule_changes import RULES_VERSION_KEY
from core.services.send_records import SentAction, bump_stats, write_sent
from core.services.smart_replies import EngineHooks, unanswered_note
from core.services.tracked_links import LinkTracker

logger = logging.getLogger(__name__)

FLOW_TTL = timedelta(hours=24)
# How long a worker trusts what it read about an account (other writes show up within this
# time; an announced change of an account's state is seen by the next batch).
ACCOUNT_CACHE_S = 5.0
FIRST_COMMENT_TTL_S = 90 * 24 * 3600
STUCK_AFTER = timedelta(minutes=5)
MAX_EVENT_BATCH = 50
# One event on its own: tries before a failure that may pass is recorded as failed.
HANDLE_TRIES = 3
HANDLE_RETRY_S = 0.05
# Asks for the profiles of these conversations' people (``followers.queue_refreshes``).
ALREADY_CLAIMED = "already handled or being handled"
ECHO = "echo of a message the account sent"


class Continuation(Protocol):
    async def __call__(
        self, account: InstagramAccount, conversation: Conversation, event: InboundEvent
    ) -> bool:
        """Answer an event no rule matched (AI conversations); True when it did."""
        ...


@dataclass(frozen=True)
class Outcome:
    status: EventStatus
    reason: str = ""
    rule_id: int | None = None
    rule_name: str | None = None  # kept on the event: the log names the rule after deletion


# A claimed event with its account, or why it is not acted on.
Gated = tuple[InboundEvent, InstagramAccount] | Outcome


class Automations:
    def __init__(
        self,
        *,
        outbox: Outbox,
        leads: Leads,
        redis: Redis,
        clock: Clock,
        rng: random.Random | None = None,
        continuation: Continuation | None = None,
        ai_replies: EngineHooks | None = None,
        links: LinkTracker,
        profiles: followers.ProfileHook | None = None,
        profiles_gather_s: float = followers.PROFILES_GATHER_S,
    ) -> None:
        self.outbox = outbox
        self.leads = leads
        self.redis = redis
        self.clock = clock
        self.rng = rng or random.Random()
        self.rules = RuleCache()
        # Events whose jobs run at the same time are handled together (one transaction, one
        # claim): their sends go out while the next batch is written.
        self._events: GroupCommit[int, tuple[Outcome, asyncio.Task[None]]] = GroupCommit(
            self._handle_batch, limit=MAX_EVENT_BATCH
        )
        self._sending: set[asyncio.Task[None]] = set()
        self.continuation = continuation
        self._accounts: dict[str, tuple[float, InstagramAccount | None]] = {}
        self._accounts_version: bytes | None = None
        self.ai_replies = ai_replies
        self.links = links
        self.follow_ups = FollowUps(outbox=outbox, links=links, clock=clock)
        # People whose profile is due, asked for after the sends (never before the reply).
        self.profiles = followers.DueProfiles(profiles, profiles_gather_s)

    # ---------------------------------------------------------------- entry point

    @instance_level("jobs: webhook events, by id, from the queue")
    async def handle_events(
        self, event_ids: Sequence[int], *, wait_for_sends: bool = True
    ) -> list[Outcome]:
        """Act on recorded events, each at most once (a claim makes other workers back off).

        Events whose jobs run at the same time in this process are handled together: one
        transaction, one claim and one finish for the lot. Returns after the events' sends,
        or with ``wait_for_sends=False`` once they are handled (:meth:`finish_sends` waits
        for the sends under way).
        """
        handled = await asyncio.gather(*(self._events.submit(i) for i in event_ids))
        if wait_for_sends:
            await asyncio.shield(asyncio.gather(*{sending for _, sending in handled}))
        return [outcome for outcome, _ in handled]

    @instance_level("the sends of this process's engine, whatever their accounts")
    async def finish_sends(self) -> None:
        """Wait for the sends under way (started by batches handled so far), and queue the
        profile reads still gathering."""
        while self._sending:
            await asyncio.wait(list(self._sending))
        await self.profiles.queue_now()

    @instance_level("a job: one webhook event, by id, from the queue")
    async def handle_event(self, event_id: int) -> Outcome:
        """:meth:`handle_events` for one event."""
        (outcome,) = await self.handle_events([event_id])
        return outcome

    @instance_level("the inbox stream's writer: new webhook events, by id, as it stores them")
    async def store_and_handle(self, store: Callable[[], Awaitable[list[int]]]) -> None:
        """Store new events and handle them in one transaction: ``store`` writes them and
        returns the ids to handle. For a database with one connection (SQLite), where the
        store and the handling would otherwise each wait for a turn. Nothing of a failed
        transaction is kept: the events are then stored on their own and handled one at a
        time. Returns once they are handled (:meth:`finish_sends` waits for their sends)."""
        await self._handle_batch([], store=store)

    async def _handle_batch(
        self,
        event_ids: list[int],
        *,
        store: Callable[[], Awaitable[list[int]]] | None = None,
    ) -> list[tuple[Outcome, asyncio.Task[None]]]:
        """Handle a batch in one transaction: the claim (a write first: SQLite takes its write
        lock at once; ``store``'s insert, when given, comes before it), the events' writes and
        their "done" commit together; the sends follow the commit, in a task of their own."""
        await self._follow_changes()
        outcomes: dict[int, Outcome] = {}
        try:
            with self.outbox.holding() as held:
                async with in_transaction():
                    if store is not None:
                        event_ids = await store()
                    unique = list(dict.fromkeys(event_ids))
                    claimed = await claim_events(unique, self.clock.now())
                    gated = {i: await self._gate(from_stored(*row)) for i, row in claimed.items()}
                    people = BatchPeople(self.clock, self.follow_ups, self.profiles.due)
                    await people.read(g for g in gated.values() if not isinstance(g, Outcome))
                    for event_id in unique:
                        outcomes[event_id] = (
                            await self._handle(event_id, gated[event_id], people)
                            if event_id in gated
                            else Outcome(EventStatus.IGNORED, ALREADY_CLAIMED)
                        )
                    await people.write()
                    await self.outbox.insert_added()
                    await self._finish_many({i: o for i, o in outcomes.items() if i in claimed})
        except Exception:
            # Rolled back as a whole (the store too): each event again on its own, so one bad
            # event fails alone while the others go through.
            if store is not None:
                event_ids = await store()
            unique = list(dict.fromkeys(event_ids))
            logger.info("handling %d events together failed: one at a time", len(unique))
            outcomes = {event_id: await self._handle_alone(event_id) for event_id in unique}
            held = []
        for event_id, outcome in outcomes.items():
            if outcome.status is EventStatus.IGNORED:
                logger.debug("event %s ignored: %s", event_id, outcome.reason)
        sending = asyncio.create_task(self._send(held))
        self._sending.add(sending)
        sending.add_done_callback(self._sending.discard)
        return [(outcomes[event_id], sending) for event_id in event_ids]

    async def _follow_changes(self) -> None:
        """Forget the rules and accounts announced changed since the last batch (one MGET)."""
        rules, accounts = await self.redis.mget(RULES_VERSION_KEY, ACCOUNTS_VERSION_KEY)
        self.rules.follow(int(rules or 0))
        if accounts != self._accounts_version:
            self._accounts.clear()
            self._accounts_version = accounts

    async def _handle_alone(self, event_id: int) -> Outcome:
        """Handle one event in a transaction of its own. A failure that may pass (PostgreSQL
        ends a deadlock by failing one side; a lock waited for too long) is tried again: the
        writes were rolled back and the sends start only after a commit, so a second try acts
        once. A ``ReelayError``, or a failure every try, is recorded as failed, with its reason."""
        for attempt in range(1, HANDLE_TRIES + 1):
            try:
                return await self._handle_alone_once(event_id)
            except ReelayError as exc:
                logger.warning("event %s failed: %s", event_id, exc)
                outcome = Outcome(EventStatus.FAILED, str(exc))
                break
            except Exception as exc:
                if attempt < HANDLE_TRIES:
                    logger.warning(
                        "event %s failed (%s: %s); trying again",
                        event_id,
                        type(exc).__name__,
                        exc,
                    )
                    await asyncio.sleep(HANDLE_RETRY_S * attempt)
                    continue
                # Recorded and logged with its traceback (its writes were rolled back).
                logger.exception("event %s failed unexpectedly", event_id)
                outcome = Outcome(EventStatus.FAILED, f"{type(exc).__name__}: {exc}")
        await self._finish(event_id, outcome)
        return outcome

    async def _handle_alone_once(self, event_id: int) -> Outcome:
        with self.outbox.holding() as held:
            async with in_transaction():
                claimed = await claim_events([event_id], self.clock.now())
                if event_id not in claimed:
                    return Outcome(EventStatus.IGNORED, ALREADY_CLAIMED)
                gated = await self._gate(from_stored(*claimed[event_id]))
                people = BatchPeople(self.clock, self.follow_ups, self.profiles.due)
                outcome = await self._handle(event_id, gated, people)
                await people.write()
                await self.outbox.insert_added()
                await self._finish(event_id, outcome)
        await self._send(held)
        return outcome

    async def _send(self, held: Sequence[Held]) -> None:
        """Send the held answers (never raises), then ask for the profiles that are due:
        at once, or with those of the next ``profiles_gather_s``."""
        await self.outbox.send_held(held)
        await self.profiles.queue()

    async def _finish(self, event_id: int, outcome: Outcome) -> None:
        await self._finish_many({event_id: outcome})

    async def _finish_many(self, outcomes: dict[int, Outcome]) -> None:
        """Record the outcomes with the rule that acted: one statement for the batch."""
        now = self.clock.now()
        await update_many(
            WebhookEvent,
            {
                event_id: {
                    "status": outcome.status,
                    "error": outcome.reason[:2000],
                    "processed_at": now,
                    "rule_id": outcome.rule_id,
                    "rule_name": outcome.rule_name[:120] if outcome.rule_name is not None else None,
                }
                for event_id, outcome in outcomes.items()
            },
        )

    async def _handle(self, event_id: int, gated: Gated, people: BatchPeople) -> Outcome:
        if isinstance(gated, Outcome):
            return gated
        event, account = gated
        if event.kind is EventKind.ECHO:
            return await self._echo(account, event, people)
        if event.kind is EventKind.COMMENT:
            await announce_comment(account, event)
            await comment_alerts.announce(account, event)
        conversation = await people.conversation(account, event)
        if event.kind is not EventKind.READ and conversation_log.paused(
            conversation, self.clock.now()
        ):
            return Outcome(EventStatus.IGNORED, conversation_log.TEAMMATE_HAS_IT)
        if event.kind in FLOW_ANSWER_KINDS and conversation.flow_state:
            outcome = await self._flow_answer(account, conversation, event, event_id)
            if outcome is not None:
                return outcome
        if event.kind is EventKind.READ:
            return await self._read(conversation, event)
        rule = await self._match(account, event, event_id)
        if rule is not None:
            note = await self._run_rule(rule, account, conversation, event, event_id)
            return Outcome(EventStatus.DONE, note, rule.id, rule.name)
        if self.continuation is not None and await self.continuation(account, conversation, event):
            return Outcome(EventStatus.DONE, "continued conversation")
        return Outcome(EventStatus.IGNORED, "no rule matched")

    async def _gate(self, event: InboundEvent | None) -> Gated:
        """The claimed event and its account, or why it is not acted on."""
        if event is None:
            return Outcome(EventStatus.FAILED, "stored payload is not one event")
        account = await self._account(event.account_id)
        if event.kind is EventKind.ECHO and account is not None:
            return event, account  # settles a send whose answer was lost, if any
        if event.kind is EventKind.ECHO:
            return Outcome(EventStatus.IGNORED, ECHO)
        if account is None:
            reason = f"no active account for entry {event.account_id!r}"
            return Outcome(EventStatus.IGNORED, reason)
        if account.status is AccountStatus.NEEDS_RECONNECT:
            reason = f"@{account.username} needs reconnecting: kept until then"
            return Outcome(EventStatus.WAITING, reason)
        if not event.sender_id:
            return Outcome(EventStatus.IGNORED, "event without a sender")
        if event.sender_id == account.ig_id or (
            event.kind is EventKind.COMMENT
            and event.sender_username
            and event.sender_username.casefold() == account.username.casefold()
        ):
            return Outcome(EventStatus.IGNORED, "the account's own activity")
        if event.is_deleted:
            return Outcome(EventStatus.IGNORED, "deleted message")
        return event, account

    async def _echo(
        self, account: InstagramAccount, event: InboundEvent, people: BatchPeople
    ) -> Outcome:
        """An echo of a message the account sent settles the DM or private reply whose
        answer was lost that waited for it: recorded sent, never sent again. An echo of a
        message Reelay did not send was written in the Instagram app: stored, and a teammate
        has the conversation."""
        now = self.clock.now()
        awaited = await echoes.awaiting(self.redis, account.id, event, now)
        for action in awaited:
            response = {"recipient_id": event.recipient_id, "message_id": event.mid}
            response["confirmed_by"] = "echo"
            if await write_sent([SentAction(action, ActionKind(action.kind), response, {}, now)]):
                logger.info("outbox: %s %s confirmed by its echo", action.kind, action.id)
                return Outcome(EventStatus.DONE, f"echo: the {action.kind} {action.id} arrived")
        if awaited or not event.recipient_id or await echoes.sent_by_reelay(self.redis, event):
            return Outcome(EventStatus.IGNORED, ECHO)
        await people.write()  # the person's messages so far come before the teammate's
        await conversation_log.app_echo(account, event, now)
        return Outcome(EventStatus.DONE, "sent from the Instagram app: a teammate has it")

    # ---------------------------------------------------------------- lookups

    async def _account(self, entry_id: str) -> InstagramAccount | None:
        if not entry_id:
            return None
        now = time.monotonic()
        cached = self._accounts.get(entry_id)
        if cached is not None and cached[0] > now:
            return cached[1]
        found = await self._load_account(entry_id)
        if found is None or found.status is AccountStatus.ACTIVE:
            self._accounts[entry_id] = (now + ACCOUNT_CACHE_S, found)
        return found

    @staticmethod
    async def _load_account(entry_id: str) -> InstagramAccount | None:
        """The active account of a webhook entry, else one waiting for a reconnect.

        A waiting account is not cached: its reconnect shows up with the next event.
        """
        statuses = (AccountStatus.ACTIVE, AccountStatus.NEEDS_RECONNECT)
        found = await InstagramAccount.filter(ig_id=entry_id, status__in=statuses).first()
        if found is None:
            found = await InstagramAccount.filter(page_id=entry_id, status__in=statuses).first()
        return found

    async def _match(
        self, account: InstagramAccount, event: InboundEvent, event_id: int
    ) -> AutomationRule | None:
        cached = await self.rules.get(account.id)
        for trigger, text in match_inputs(event):
            for spec in cached.index.match(trigger, text, event.media_id, is_ad=event.is_ad):
                if await self._allowed(spec, event, event_id):
                    return cached.rules.get(spec.id)
        return None

    async def _allowed(self, spec: RuleSpec, event: InboundEvent, event_id: int) -> bool:
        """First-comment-only and cooldown checks; a replay of the same event passes them."""
        mine = str(event_id)
        if spec.first_comment_only and event.kind is EventKind.COMMENT:
            key = f"reelay:first:{spec.id}:{event.media_id}:{event.sender_id}"
            if not await self._hold(key, mine, FIRST_COMMENT_TTL_S):
                return False
        if spec.cooldown_s > 0:
            key = f"reelay:cool:{spec.id}:{event.sender_id}"
            if not await self._hold(key, mine, spec.cooldown_s):
                return False
        return True

    async def _hold(self, key: str, owner: str, ttl_s: int) -> bool:
        if await self.redis.set(key, owner, nx=True, ex=ttl_s):
            return True
        current = await self.redis.get(key)
        return current is not None and current.decode() == owner

    # ---------------------------------------------------------------- actions

    async def _run_rule(
        self,
        rule: AutomationRule,
        account: InstagramAccount,
        conversation: Conversation,
        event: InboundEvent,
        event_id: int,
    ) -> str:
        """Act on a matched rule; returns the event's note (why an AI action sent nothing)."""
        now = self.clock.now()
        # Counted with the first action's own counters (one update), or alone.
        trigger_stats: dict[str, Any] | None = {"total_triggers": 1, "last_triggered_at": now}
        actions = self.rules.definition(rule)
        person = Person(
            username=event.sender_username or conversation.username,
            first_name=conversation.first_name,
            link=actions.reply_link,
        )
        logger.info(
            "rule %s matched event %s (account %s, %s)", rule.id, event_id, account.id, event.kind
        )
        if event.kind is EventKind.COMMENT:
            n = pick(actions.comment_replies, self.rng) if actions.comment_replies else None
            reply = comment_reply(actions, person, self.rng, variant=n)
            if reply:
                variant = variant_label(n)
                public = await self.links.rule_message(
                    actions,
                    rule,
                    conversation,
                    {"text": reply},
                    "reply",
                    person=person,
                    at=now,
                    variant=variant,
                )
                await self.outbox.add(
                    account=account,
                    kind=ActionKind.PUBLIC_REPLY,
                    target=event.comment_id,
                    message=public,
                    key=f"{rule.id}:{event.dedupe_key}:public_reply",
                    rule_id=rule.id,
                    conversation_id=conversation.id,
                    event_id=event_id,
                    delay_s=actions.delay_s,
                    step="reply",
                    variant=variant,
                )
            if actions.hide_comment:  # at once, whatever the delay: spam should not linger
                await self.outbox.add(
                    account=account,
                    kind=ActionKind.HIDE_COMMENT,
                    target=event.comment_id,
                    message={},
                    key=f"{rule.id}:{event.dedupe_key}:hide_comment",
                    rule_id=rule.id,
                    event_id=event_id,
                )
        if self.ai_replies is not None:
            answered = await self.ai_replies.run_rule(rule, actions, conversation, event, event_id)
            if answered is not None:  # the rule's AI action answers instead of a static DM
                return unanswered_note(answered)
        message: dict[str, Any] | None
        variant = ""
        if actions.starts_flow:
            consented = event.kind is not EventKind.COMMENT
            turn = lead_flow.start(actions.flow(), rule.id, person, self.rng, consented=consented)
            await self._save_flow(conversation, turn.state, now)
            if turn.lead is not None:
                await self.leads.capture(
                    account=account, rule=rule, conversation=conversation, answers=turn.lead
                )
            message = turn.message()
            step = "flow"
        else:
            n = dm_variant(actions, self.rng)
            message = dm_message(actions, person, self.rng, variant=n)
            step, variant = "dm", variant_label(n)
        if message is None:
            if trigger_stats:
                await bump_stats(rule.id, **trigger_stats)
            return ""
        message = await self.links.rule_message(
            actions, rule, conversation, message, step, person=person, at=now, variant=variant
        )
        await self.outbox.add(
            account=account,
            **_answer_to(event, conversation, now),
            message=message,
            key=f"{rule.id}:{event.dedupe_key}:dm",
            rule_id=rule.id,
            conversation_id=conversation.id,
            event_id=event_id,
            delay_s=actions.delay_s,
            conversation=conversation,
            extra_stats=trigger_stats,
            step=step,
            variant=variant,
        )
        await self.follow_ups.plan(
            rule=rule,
            actions=actions,
            conversation=conversation,
            event_key=event.dedupe_key,
            person=person,
            rng=self.rng,
        )
        return ""

    async def _read(self, conversation: Conversation, event: InboundEvent) -> Outcome:
        """Meta's read receipt: the rule whose message was read counts a DM opened."""
        if await self.links.record_read(conversation.id, event.mid, self.clock.now()):
            return Outcome(EventStatus.DONE, "message read")
        return Outcome(EventStatus.IGNORED, "read receipt for no rule's message")

    # ---------------------------------------------------------------- lead flows

    async def _save_flow(
        self, conversation: Conversation, state: dict[str, Any] | None, now: datetime
    ) -> None:
        if state is not None:
            state = {**state, "updated_at": now.isoformat()}
        await Conversation.filter(id=conversation.id).update(flow_state=state)
        conversation.flow_state = state
        if state is not None and state.get("check_follow"):  # Meta is asked after the commit
            await follow_gate.queue_check(self.outbox.queue, conversation.id, now)

    async def _flow_answer(
        self,
        account: InstagramAccount,
        conversation: Conversation,
        event: InboundEvent,
        event_id: int,
    ) -> Outcome | None:
        """Feed the event to the waiting flow; None when the flow did not take it."""
        state = conversation.flow_state or {}
        now = self.clock.now()
        updated = _parse_time(state.get("updated_at"))
        rule_id = state.get("rule_id")
        rule = await AutomationRule.get_or_none(id=rule_id, active=True) if rule_id else None
        actions = RuleDefinition.from_stored(rule) if rule else None
        if (
            rule is None
            or actions is None
            or not actions.starts_flow
            or updated is None
            or now - updated > FLOW_TTL
        ):
            await self._save_flow(conversation, None, now)
            return None
        flow = actions.flow()
        person = Person(
            username=event.sender_username or conversation.username,
            first_name=conversation.first_name,
            link=actions.reply_link,
        )
        turn = lead_flow.answer(flow, state, event.text, person, self.rng, payload=event.payload)
        if turn.status == "invalid" and await self._names_a_keyword(account, event):
            logger.info(
                "conversation %s left its lead flow (rule %s) for a new keyword",
                conversation.id,
                rule.id,
            )
            await self._save_flow(conversation, None, now)
            return None
        await self._save_flow(conversation, turn.state, now)
        if turn.lead is not None:
            await self.leads.capture(
                account=account, rule=rule, conversation=conversation, answers=turn.lead
            )
        message = turn.message()
        if message is not None:
            message = await self.links.rule_message(
                actions, rule, conversation, message, "flow", person=person, at=now
            )
            await self.outbox.add(
                account=account,
                **_answer_to(event, conversation, now),
                message=message,
                key=f"flow:{conversation.id}:{event.dedupe_key}",
                rule_id=rule.id,
                conversation_id=conversation.id,
                event_id=event_id,
                conversation=conversation,
                step="flow",
            )
        return Outcome(EventStatus.DONE, f"lead flow {turn.status}", rule.id, rule.name)

    async def _names_a_keyword(self, account: InstagramAccount, event: InboundEvent) -> bool:
        cached = await self.rules.get(account.id)
        return any(
            cached.index.match_keywords(trigger, text, event.media_id, is_ad=event.is_ad)
            for trigger, text in match_inputs(event)
        )

    # ---------------------------------------------------------------- recovery

    @instance_level("a sweep over every workspace's stuck events")
    async def requeue_stuck(self, enqueue: Callable[..., Awaitable[bool]]) -> int:
        """Queue events still pending (or abandoned mid-way) after ``STUCK_AFTER``."""
        cutoff = self.clock.now() - STUCK_AFTER
        await WebhookEvent.filter(status=EventStatus.PROCESSING, processed_at__lt=cutoff).update(
            status=EventStatus.PENDING
        )
        ids: list[int] = await WebhookEvent.filter(
            status=EventStatus.PENDING, received_at__lt=cutoff
        ).values_list("id", flat=True)  # type: ignore[assignment]
        for event_id in ids:
            await enqueue(HANDLE_EVENT, event_id, job_id=event_job_id(event_id))
        return len(ids)


def _answer_to(event: InboundEvent, conversation: Conversation, now: datetime) -> dict[str, Any]:
    """Where a message answering ``event`` goes: a comment gets a private reply (its 7-day
    window runs from the comment), anything else a DM in the person's conversation."""
    if event.kind is EventKind.COMMENT:
        return {
            "kind": ActionKind.PRIVATE_REPLY,
            "target": event.comment_id,
            "anchor_at": event.timestamp or now,
        }
    return {"kind": ActionKind.DM, "target": conversation.igsid}


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None
