"""The outbox: every public reply, private reply and DM Reelay sends goes through here.

- **Exactly once per (rule, event, action)**: each action is a row with a unique idempotency
  key; submitting the same key again is a no-op. A private reply's key is the comment itself,
  so a comment gets at most one, whichever rule asks (Meta allows one).
- **Claimed before sending**: a compare-and-set on ``attempts`` lets one worker send it.
- **Meta's windows**: a DM only within 24 h of the person's last message, a private reply
  only within 7 days of the comment; otherwise the action is skipped with the reason logged.
- **Paced per account** in Redis (:class:`Pacer`): private replies ≤ ``PRIVATE_REPLY_PER_HOUR``,
  DMs at the account's (or the default) pace; an action over the pace waits for its slot in
  a deferred job, it is never dropped.
- **Graph errors** by classification: retried with back-off (transient, rate limits), skipped
  (private reply already used, window closed), failed with a human message (permanent), or
  the account marked ``needs_reconnect`` (token dead): then the action is kept ``waiting``
  and sent after the reconnect while Meta's window allows (``waiting_sends``).
- **Exactly once in effect**: a send whose answer was lost after it may have reached Meta is
  never repeated blindly. The next attempt first looks for its effect (:mod:`send_checks`):
  found, it is recorded sent; absent, it is sent again; unknown after the last attempt, it is
  recorded ``unconfirmed`` with the reason. A private reply refused with 2534025 after a lost
  answer was delivered, and is counted.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Required, TypedDict, Unpack

from redis.asyncio import Redis
from tortoise.expressions import Q
from tortoise.transactions import in_transaction

from core.db.bulk import GroupCommit, insert_many_returning
from core.db.models import (
    AccountStatus,
    Conversation,
    InstagramAccount,
    OutboundAction,
    OutboundStatus,
)
from core.domain.backoff import backoff_s
from core.domain.graph_errors import ErrorKind, GraphError, object_gone
from core.domain.outbound import (
    DM_WINDOW as DM_WINDOW,
    HUMAN_AGENT as HUMAN_AGENT,
    HUMAN_AGENT_WINDOW as HUMAN_AGENT_WINDOW,
    MODERATION as MODERATION,
    PACE_BUCKET as PACE_BUCKET,
    PRIVATE_REPLY_WINDOW as PRIVATE_REPLY_WINDOW,
    ActionKind as ActionKind,
)
from core.domain.scope import instance_level
from core.ports.clock import Clock
from core.ports.instagram import AccountRef, InstagramClient, Recipient
from core.ports.queue import JobQueue
from core.services import conversation_log, echoes
from core.services.pacer import Pacer
from core.services.reconnection import mark_needs_reconnect
from core.services.send_checks import Check, Found, look_for_effect, moderate
from core.services.send_records import SentAction, bump_stats, write_sent
from core.services.send_windows import teammate_has, window_closed
from core.settings import Settings

logger = logging.getLogger(__name__)

SEND_OUTBOUND = "send_outbound"
MAX_ATTEMPTS = 5
# Set in an action's payload once a send of it may have reached Meta without an answer.
ANSWER_LOST = "answer_lost_at"
# Tries at recording a send that has happened, and the pause before the next (times the try).
RECORD_TRIES = 4
RECORD_RETRY_S = 0.05


@dataclass(frozen=True)
class Held:
    """An action recorded for an inline send that waits for its transaction to commit."""

    action: OutboundAction
    account: InstagramAccount
    conversation: Conversation | None
    rule_id: int | None
    extra_stats: Mapping[str, Any] | None

    @property
    def line(self) -> str:
        """Who receives it: the person's conversation, else the comment replied to."""
        if self.conversation is not None:
            return f"c{self.conversation.id}"
        return f"t{self.action.target}"


_HELD: ContextVar[list[Held] | None] = ContextVar("reelay_outbox_held", default=None)


class SubmitFields(TypedDict, total=False):
    """What :meth:`Outbox.submit` and :meth:`Outbox.add` take, by keyword."""

    account: Required[InstagramAccount]
    kind: Required[ActionKind]
    target: Required[str]
    message: Required[Mapping[str, Any]]
    key: Required[str]
    rule_id: int | None
    conversation_id: int | None
    event_id: int | None
    anchor_at: datetime | None
    delay_s: float
    send_now: bool
    conversation: Conversation | None
    extra_stats: Mapping[str, Any] | None
    step: str
    variant: str
    extra: Mapping[str, Any] | None


@dataclass(frozen=True)
class _Submission:
    """An action's row to insert, with what its submitter said about it."""

    row: dict[str, Any]
    account: InstagramAccount
    conversation: Conversation | None
    extra_stats: Mapping[str, Any] | None

    @property
    def inline(self) -> bool:
        return bool(self.row["attempts"])

    @property
    def rule_id(self) -> int | None:
        rule_id: int | None = self.row["rule_id"]
        return rule_id


# Submissions added in a holding() block, inserted together by Outbox.insert_added().
_ADDED: ContextVar[list[_Submission] | None] = ContextVar("reelay_outbox_added", default=None)


@dataclass(frozen=True)
class Submitted:
    action: OutboundAction | None  # None: the key was used before (duplicate)
    status: OutboundStatus | None = None


class Outbox:
    def __init__(
        self,
        *,
        graph: InstagramClient,
        queue: JobQueue,
        redis: Redis,
        clock: Clock,
        settings: Settings,
        account_ref: Callable[[InstagramAccount], AccountRef],
        retry_base_s: float = 5.0,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self.graph = graph
        self.queue = queue
        self.clock = clock
        self.settings = settings
        self.redis = redis
        self.pacer = Pacer(redis)
        self.echo_marks = echoes.Marks(redis)
        self._account_ref = account_ref
        self._retry_base_s = retry_base_s
        self._sent_writer: GroupCommit[SentAction, None] = GroupCommit(self._record_sent, limit=100)
        self._jitter = jitter

    # ---------------------------------------------------------------- submitting

    @contextmanager
    def holding(self) -> Iterator[list[Held]]:
        """Hold the inline sends of actions submitted in the block: the list they are put in
        is for the caller to pass to :meth:`send_held` once its transaction has committed (a
        Graph call never holds the database)."""
        held: list[Held] = []
        added: list[_Submission] = []
        token, adding = _HELD.set(held), _ADDED.set(added)
        try:
            yield held
            if added:
                raise RuntimeError(f"{len(added)} actions added and never inserted")
        finally:
            _HELD.reset(token)
            _ADDED.reset(adding)

    @instance_level("sends what the webhook-driven engines held back")
    async def send_held(self, held: Sequence[Held]) -> None:
        """Send held actions: one person's in order, different people's side by side.

        Never raises: the events that made them are handled, and an action whose send broke
        stays pending and is sent again by :meth:`requeue_stuck`; the failure is logged.
        """
        lines: dict[tuple[int, str], list[Held]] = {}
        for item in held:
            lines.setdefault((item.account.id, item.line), []).append(item)
        results = await asyncio.gather(
            *(self._send_line(line) for line in lines.values()), return_exceptions=True
        )
        for line, result in zip(lines.values(), results, strict=True):
            if isinstance(result, Exception):
                logger.error(
                    "outbox: sending %d actions (from action %s) failed",
                    len(line),
                    line[0].action.id,
                    exc_info=result,
                )
            elif isinstance(result, BaseException):
                raise result

    async def _send_line(self, items: Sequence[Held]) -> OutboundStatus | None:
        """Send actions created for an inline send, in order: the last one's status. The
        trigger counts an action carries are added here when it was not sent."""
        status = None
        for item in items:
            status = await self.send(
                item.action.id,
                account=item.account,
                action=item.action,
                conversation=item.conversation,
                claimed=True,
                extra_stats=item.extra_stats,
            )
            if status is not OutboundStatus.SENT and item.rule_id and item.extra_stats:
                await bump_stats(item.rule_id, **item.extra_stats)
        return status

    @instance_level("the outbox of the webhook-driven engines, for the account they hold")
    async def submit(self, **fields: Unpack[SubmitFields]) -> Submitted:
        """Record one action under idempotency ``key``; send it now (inline) unless delayed.

        ``target``: the comment id (public and private replies) or the person's IGSID (DM).
        ``anchor_at``: when the comment was made (private reply window).
        ``conversation``: the person's conversation as just read (saves a query).
        ``extra_stats``: more counters of the rule to add in the same update (trigger counts).
        ``step``, ``variant``: which part of the rule it is (``reply``, ``dm``, ``flow``,
        ``follow_up``) and which of its variations (``v2``): the rule's variant results.
        ``extra``: more of the payload: a teammate's reply's ``source``, ``author_id``, ``tag``.
        """
        submission = self._submission(fields)
        inserted = await insert_many_returning(
            OutboundAction, [submission.row], conflict=("dedupe_key",)
        )
        return await self._submitted(submission, inserted[0] if inserted else None)

    @instance_level("the webhook-driven engines, for the account they hold")
    async def add(self, **fields: Unpack[SubmitFields]) -> None:
        """:meth:`submit` (same arguments) without its answer: inside :meth:`holding`, the
        action waits for :meth:`insert_added`, which inserts the block's actions together."""
        added = _ADDED.get()
        if added is None:
            await self.submit(**fields)
        else:
            added.append(self._submission(fields))

    @instance_level("the webhook-driven engines, for the accounts they hold")
    async def insert_added(self) -> None:
        """Insert the actions :meth:`add` put aside in this :meth:`holding` block, in one
        statement, and go on with each as :meth:`submit` would (in the order added)."""
        added = _ADDED.get()
        if not added:
            return
        batch = list(added)
        added.clear()
        first: dict[str, _Submission] = {}
        for item in batch:  # a key used twice in the batch: the first one counts
            first.setdefault(item.row["dedupe_key"], item)
        inserted = await insert_many_returning(
            OutboundAction, [item.row for item in first.values()], conflict=("dedupe_key",)
        )
        by_key = {action.dedupe_key: action for action in inserted}
        for item in batch:
            mine = first[item.row["dedupe_key"]] is item
            await self._submitted(item, by_key.get(item.row["dedupe_key"]) if mine else None)

    def _submission(self, fields: SubmitFields) -> _Submission:
        account, kind, target = fields["account"], fields["kind"], fields["target"]
        rule_id = fields.get("rule_id")
        now = self.clock.now()
        anchor_at = fields.get("anchor_at")
        payload: dict[str, Any] = {
            "message": dict(fields["message"]),
            "rule_id": rule_id,
            "conversation_id": fields.get("conversation_id"),
            "event_id": fields.get("event_id"),
            "anchor_at": anchor_at.isoformat() if anchor_at else None,
            **(fields.get("extra") or {}),
        }
        delay_s = fields.get("delay_s", 0)
        not_before = now + timedelta(seconds=delay_s) if delay_s > 0 else None
        inline = not_before is None and fields.get("send_now", True)
        key = fields["key"]
        if kind is ActionKind.PRIVATE_REPLY:
            key = private_reply_key(account.id, target)
        row = {
            "account_id": account.id,
            "kind": kind.value,
            "dedupe_key": key[:255],
            "target": target[:128],
            "payload": payload,
            "status": OutboundStatus.PENDING,
            # Sent inline by its creator: claimed from the start.
            "attempts": 1 if inline else 0,
            "not_before": not_before,
            "error": "",
            "created_at": now,
            "rule_id": rule_id,
            "conversation_id": fields.get("conversation_id"),
            "step": fields.get("step", "")[:16],
            "variant": fields.get("variant", "")[:16],
        }
        return _Submission(row, account, fields.get("conversation"), fields.get("extra_stats"))

    async def _submitted(self, item: _Submission, action: OutboundAction | None) -> Submitted:
        """Go on with an action once inserted (``None``: its key was used before)."""
        rule_id, extra_stats = item.rule_id, item.extra_stats
        if action is None:
            logger.info(
                "outbox: %s %s already submitted (key %s, account %s): skipped",
                item.row["kind"],
                item.row["target"],
                item.row["dedupe_key"],
                item.account.id,
            )
            if rule_id and extra_stats:
                await bump_stats(rule_id, **extra_stats)
            return Submitted(action=None)
        if not item.inline:
            if rule_id and extra_stats:
                await bump_stats(rule_id, **extra_stats)
            await self.queue.enqueue(
                SEND_OUTBOUND,
                action.id,
                job_id=f"send:{action.id}",
                defer_until=item.row["not_before"],
            )
            return Submitted(action=action, status=OutboundStatus.PENDING)
        held = Held(action, item.account, item.conversation, rule_id, extra_stats)
        holding = _HELD.get()
        if holding is not None:
            holding.append(held)
            return Submitted(action=action, status=OutboundStatus.PENDING)
        status = await self._send_line([held])
        return Submitted(action=action, status=status)

    # ---------------------------------------------------------------- sending

    @instance_level("a job: sends one outbound action, by id, from the queue")
    async def send(
        self,
        action_id: int,
        *,
        account: InstagramAccount | None = None,
        action: OutboundAction | None = None,
        conversation: Conversation | None = None,
        claimed: bool = False,
        extra_stats: Mapping[str, Any] | None = None,
    ) -> OutboundStatus | None:
        """Send one pending action (or put it back in the queue for later). Returns its status.

        ``claimed``: the caller created the action for an inline send and owns its attempt.
        """
        if action is None:
            action = await OutboundAction.get_or_none(id=action_id)
        if action is None or action.status is not OutboundStatus.PENDING:
            return action.status if action else None
        if account is None or account.id != action.account_id:
            account = await InstagramAccount.get(id=action.account_id)
        kind = ActionKind(action.kind)
        not_yet = await self._not_yet(account, action, kind, conversation)
        if not_yet is not None:
            return not_yet
        if not claimed:
            attempt = action.attempts + 1
            won = await OutboundAction.filter(
                id=action.id, status=OutboundStatus.PENDING, attempts=action.attempts
            ).update(attempts=attempt)
            if not won:
                return None  # another worker has it
            action.attempts = attempt
        ref = self._account_ref(account)
        message = action.payload.get("message") or {}
        lost = bool(action.payload.get(ANSWER_LOST))
        try:
            # After a lost answer: what the earlier send left on Instagram, if it arrived.
            response = await self._settle(ref, kind, action) if lost else None
            if response is None and kind in MODERATION:
                response = await moderate(self.graph, ref, kind.value, action.target)
            elif response is None and kind is ActionKind.PUBLIC_REPLY:
                text = str(message.get("text", ""))
                response = {"id": await self.graph.reply_to_comment(ref, action.target, text)}
            elif response is None:
                recipient = (
                    Recipient(comment_id=action.target)
                    if kind is ActionKind.PRIVATE_REPLY
                    else Recipient(igsid=action.target)
                )
                await self.echo_marks.sending(account, action, conversation)
                tag = action.payload.get("tag") or None
                sent = await self.graph.send_message(ref, recipient, message, tag=tag)
                response = {"recipient_id": sent.recipient_id, "message_id": sent.message_id}
        except GraphError as exc:
            return await self._failed_call(account, action, exc)
        return await self._sent(action, kind, response, extra_stats, account)

    async def _not_yet(
        self,
        account: InstagramAccount,
        action: OutboundAction,
        kind: ActionKind,
        conversation: Conversation | None,
    ) -> OutboundStatus | None:
        """Why ``action`` is not sent now: put off to its time or its pace slot (pending), kept
        until a reconnect (waiting), or skipped (account not active, Meta's window closed);
        None when it may go."""
        now = self.clock.now()
        if action.not_before is not None and action.not_before > now + timedelta(seconds=1):
            await self._later(action, action.not_before, "d")
            return OutboundStatus.PENDING
        if account.status is AccountStatus.NEEDS_RECONNECT:
            return await self._wait(action, account)
        if account.status is not AccountStatus.ACTIVE:
            return await self._skip(action, f"account {account.username} is {account.status.value}")
        reason = await window_closed(action, now, conversation)
        if reason:
            return await self._skip(action, reason)
        if action.payload.get("rule_id") and await teammate_has(action, conversation, now):
            return await self._skip(action, conversation_log.TEAMMATE_HAS_IT)
        limit = self._limit(account, kind)
        slot = await self.pacer.reserve(
            account.id, PACE_BUCKET[kind], f"{action.id}:{action.attempts}", limit, now
        )
        if slot > now + timedelta(milliseconds=50):
            logger.info(
                "outbox: %s %s paced to %s (account %s, %d/h)",
                kind.value,
                action.id,
                slot.isoformat(),
                account.id,
                limit,
            )
            await self._later(action, slot, "p")
            return OutboundStatus.PENDING
        return None

    def _limit(self, account: InstagramAccount, kind: ActionKind) -> int:
        if kind is ActionKind.DM:
            return account.dm_pace_per_hour or self.settings.dm_pace_per_hour
        return self.settings.private_reply_per_hour

    async def _sent(
        self,
        action: OutboundAction,
        kind: ActionKind,
        response: dict[str, Any],
        extra_stats: Mapping[str, Any] | None = None,
        account: InstagramAccount | None = None,
    ) -> OutboundStatus:
        """Record a send: the action sent, the message in the conversation, the rule's counts
        (in one transaction with the other sends finishing at the same time)."""
        now = self.clock.now()
        sent = SentAction(action, kind, response, dict(extra_stats or {}), now, account)
        await self._sent_writer.submit(sent)
        logger.info(
            "outbox: sent %s %s to %s (account %s)",
            kind.value,
            action.id,
            action.target,
            action.account_id,
        )
        return OutboundStatus.SENT

    async def _record_sent(self, batch: list[SentAction]) -> list[None]:
        if len(batch) > 1:
            try:
                async with in_transaction():
                    await write_sent(batch)
                return [None] * len(batch)
            except Exception:
                logger.info("recording %d sends together failed: one at a time", len(batch))
        for sent in batch:
            await self._record_one(sent)
        return [None] * len(batch)

    async def _record_one(self, sent: SentAction) -> None:
        """Record one send, again after a failure that may pass (PostgreSQL ends a deadlock by
        failing one side): the send has reached Meta, and one left unrecorded would be sent
        again by its job's next try."""
        for attempt in range(1, RECORD_TRIES + 1):
            try:
                async with in_transaction():
                    await write_sent([sent])
                return
            except Exception as exc:
                if attempt == RECORD_TRIES:
                    raise
                logger.warning(
                    "outbox: recording the send of %s %s failed (%s: %s); trying again",
                    sent.kind.value,
                    sent.action.id,
                    type(exc).__name__,
                    exc,
                )
                await asyncio.sleep(RECORD_RETRY_S * attempt)

    async def _settle(
        self, ref: AccountRef, kind: ActionKind, action: OutboundAction
    ) -> dict[str, Any] | None:
        """Before sending again what may have been sent: what the earlier send left on
        Instagram (the answer to record), or None when sending again is safe. Raises a
        maybe-sent ``GraphError`` when it cannot tell yet."""
        mid = await echoes.seen(self.redis, action)
        if mid is not None:
            echo = {"message_id": mid, "confirmed_by": "echo"}
            check = Check(Found.DELIVERED, "its echo came", echo)
        else:
            check = await look_for_effect(
                self.graph, ref, kind.value, action.target, action.payload, action.created_at
            )
        logger.info(
            "outbox: %s %s after a lost answer: %s, %s (account %s)",
            action.kind,
            action.id,
            check.found.value,
            check.reason,
            action.account_id,
        )
        if check.found is Found.DELIVERED:
            return check.response
        if check.found is Found.ABSENT:
            return None
        raise GraphError(
            code=None,
            subcode=None,
            message=check.reason,
            kind=ErrorKind.TRANSIENT,
            title=f"Instagram may have received it, and {check.reason}",
            maybe_sent=True,
        )

    async def _failed_call(
        self, account: InstagramAccount, action: OutboundAction, exc: GraphError
    ) -> OutboundStatus:
        if exc.maybe_sent:
            return await self._answer_lost(action, exc)
        if action.kind == ActionKind.DELETE_COMMENT and object_gone(exc):
            # Deleting what is already gone leaves what was asked for.
            response = {"confirmed_by": "the comment is gone"}
            return await self._sent(action, ActionKind.DELETE_COMMENT, response)
        if exc.kind is ErrorKind.ALREADY_DONE and action.payload.get(ANSWER_LOST):
            # The earlier send whose answer was lost is the one Meta counts.
            response = {"confirmed_by": "already replied (2534025) after a lost answer"}
            return await self._sent(action, ActionKind(action.kind), response)
        if exc.kind in {ErrorKind.ALREADY_DONE, ErrorKind.WINDOW_CLOSED}:
            return await self._skip(action, exc.title)
        if exc.kind is ErrorKind.TOKEN_INVALID:
            await mark_needs_reconnect(account, exc.title, redis=self.redis, actor="worker")
            return await self._wait(action, account)
        retry = exc.retryable or exc.kind is ErrorKind.QUOTA
        if retry and action.attempts < MAX_ATTEMPTS:
            delay = backoff_s(
                action.attempts,
                base_s=self._retry_base_s,
                spread=(0.75, 1.25),
                rng=self._jitter,
                requested_s=exc.retry_after_s,
            )
            when = self.clock.now() + timedelta(seconds=delay)
            await OutboundAction.filter(id=action.id).update(error=exc.title[:2000])
            logger.info(
                "outbox: %s %s failed (%s), retry %d in %.1fs",
                action.kind,
                action.id,
                exc.title,
                action.attempts,
                delay,
            )
            await self._later(action, when, "r")
            return OutboundStatus.PENDING
        return await self._fail(action, exc.title)

    async def _answer_lost(self, action: OutboundAction, exc: GraphError) -> OutboundStatus:
        """A send that may have reached Meta: check before the next attempt, or give up as
        unconfirmed once the attempts are used (never a blind second copy)."""
        if action.attempts >= MAX_ATTEMPTS:
            return await self._unconfirmed(
                action,
                f"{exc.title}; not sent again after {action.attempts} tries so the person "
                "cannot get it twice: look on Instagram whether it arrived",
            )
        changes: dict[str, Any] = {"error": exc.title[:2000]}
        if not action.payload.get(ANSWER_LOST):
            action.payload = {**action.payload, ANSWER_LOST: self.clock.now().isoformat()}
            changes["payload"] = action.payload
            await echoes.expect(self.redis, action)
        await OutboundAction.filter(id=action.id).update(**changes)
        delay = backoff_s(
            action.attempts, base_s=self._retry_base_s, spread=(0.75, 1.25), rng=self._jitter
        )
        logger.info(
            "outbox: %s %s may have been sent (%s): check %d in %.1fs",
            action.kind,
            action.id,
            exc.title,
            action.attempts,
            delay,
        )
        await self._later(action, self.clock.now() + timedelta(seconds=delay), "v")
        return OutboundStatus.PENDING

    async def _unconfirmed(self, action: OutboundAction, reason: str) -> OutboundStatus:
        return await self._end(action, OutboundStatus.UNCONFIRMED, "unconfirmed", reason)

    async def _wait(self, action: OutboundAction, account: InstagramAccount) -> OutboundStatus:
        """Keep ``action`` until the account is reconnected (``core.services.waiting_sends``)."""
        reason = f"@{account.username} needs reconnecting: sent after it if Meta's window allows"
        return await self._end(action, OutboundStatus.WAITING, "waits", reason)

    async def _skip(self, action: OutboundAction, reason: str) -> OutboundStatus:
        return await self._end(action, OutboundStatus.SKIPPED, "not sent", reason)

    async def _fail(self, action: OutboundAction, reason: str) -> OutboundStatus:
        return await self._end(action, OutboundStatus.FAILED, "failed", reason)

    async def _end(
        self, action: OutboundAction, status: OutboundStatus, words: str, reason: str
    ) -> OutboundStatus:
        """Record that ``action`` ends without a send, and why."""
        await OutboundAction.filter(id=action.id).update(status=status, error=reason[:2000])
        logger.warning(
            "outbox: %s %s to %s %s: %s", action.kind, action.id, action.target, words, reason
        )
        return status

    @instance_level("a sweep over every workspace's overdue actions")
    async def requeue_stuck(self, older_than: timedelta = timedelta(minutes=5)) -> int:
        """Queue pending actions overdue by ``older_than`` (job lost to a Redis flush or crash).

        Sending is claimed and idempotent, so a duplicate job is harmless. An action already
        claimed for a send (attempts > 0) may have reached Meta before its worker died, so it
        is marked as such: the next send checks Instagram before repeating it.
        """
        cutoff = self.clock.now() - older_than
        rows = await OutboundAction.filter(
            status=OutboundStatus.PENDING, created_at__lt=cutoff
        ).filter(Q(not_before__isnull=True) | Q(not_before__lt=cutoff))
        for action in rows:
            if action.attempts and not action.payload.get(ANSWER_LOST):
                action.payload = {**action.payload, ANSWER_LOST: self.clock.now().isoformat()}
                await OutboundAction.filter(id=action.id).update(payload=action.payload)
                await echoes.expect(self.redis, action)
            await self.queue.enqueue(
                SEND_OUTBOUND, action.id, job_id=f"send:{action.id}:rq{action.attempts}"
            )
        return len(rows)

    async def _later(self, action: OutboundAction, when: datetime, why: str) -> None:
        await OutboundAction.filter(id=action.id).update(not_before=when)
        stamp = int(when.timestamp() * 1000)
        await self.queue.enqueue(
            SEND_OUTBOUND,
            action.id,
            job_id=f"send:{action.id}:{why}{action.attempts}:{stamp}",
            defer_until=when,
        )


def private_reply_key(account_id: int, comment_id: str) -> str:
    """One private reply per comment, whichever rule or flow sends it."""
    return f"private_reply:{account_id}:{comment_id}"
