"""Every send to Instagram is exactly once in effect: against the sandbox Instagram acting on
a write and then losing its answer (a dropped connection, a gateway's 502/504, a timeout), on
SQLite and PostgreSQL. Each case ends with one effect on the sandbox's side."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from redis.asyncio import Redis

from core.adapters.graph import GraphClient
from core.db.models import (
    AutomationRule,
    Conversation,
    InstagramAccount,
    LoginKind,
    OutboundAction,
    OutboundStatus,
    RuleStats,
    Trigger,
    Workspace,
)
from core.ports.instagram import AccountRef
from core.services.outbox import MAX_ATTEMPTS, ActionKind, Outbox
from tests.automation_world import FakeClock, RecordingQueue

IG_ID = "17841400000000042"
FOLLOWER = "9990001"
BUTTONS = {
    "attachment": {
        "type": "template",
        "payload": {
            "template_type": "button",
            "text": "Pick one",
            "buttons": [{"type": "postback", "title": "Talk to us", "payload": "TALK"}],
        },
    }
}
QUICK_REPLIES = {
    "text": "Shall we talk?",
    "quick_replies": [{"content_type": "text", "title": "Yes", "payload": "YES"}],
}


@dataclass
class World:
    sandbox: Any
    outbox: Outbox
    queue: RecordingQueue
    clock: FakeClock
    account: InstagramAccount
    rule: AutomationRule
    conversation: Conversation
    comment_id: str

    async def submit(self, kind: ActionKind, message: dict[str, Any]) -> OutboundAction:
        target = FOLLOWER if kind is ActionKind.DM else self.comment_id
        submitted = await self.outbox.submit(
            account=self.account,
            kind=kind,
            target=target,
            message=message,
            key=f"{kind.value}:{target}",
            rule_id=self.rule.id,
            conversation_id=self.conversation.id,
            anchor_at=self.clock.now(),
        )
        assert submitted.action is not None
        return submitted.action

    async def run_sends(self) -> None:
        """Run the queued sends, moving the clock to each, until none is left."""
        for _ in range(4 * MAX_ATTEMPTS):
            jobs = self.queue.take("send_outbound")
            if not jobs:
                return
            for job in jobs:
                if job.defer_until is not None and job.defer_until > self.clock.now():
                    self.clock.current = job.defer_until
                await self.outbox.send(*job.args)
        raise AssertionError("sends still queued")

    def effects(self, kind: ActionKind) -> list[Any]:
        sandbox_kind = {
            ActionKind.PUBLIC_REPLY: "comment_reply",
            ActionKind.PRIVATE_REPLY: "private_reply",
            ActionKind.DM: "message",
        }[kind]
        return [s for s in self.sandbox.state.sent if s.kind == sandbox_kind]


@pytest.fixture
async def world(db: str, redis: Redis, sandbox: Any, settings_factory: Any) -> AsyncIterator[World]:
    settings = settings_factory(sandbox_url=sandbox.url)
    state = sandbox.state
    state.add_account(IG_ID, "sandbox_shop")
    token = state.issue_token(IG_ID)
    media = state.add_media(IG_ID, caption="New drop")
    comment = state.add_comment(media.id, from_id=FOLLOWER, username="ann", text="price?")
    state.note_inbound(IG_ID, FOLLOWER)
    clock = FakeClock()
    workspace = await Workspace.create(name="Shop")
    account = await InstagramAccount.create(
        workspace=workspace,
        ig_id=IG_ID,
        username="sandbox_shop",
        login_kind=LoginKind.SANDBOX,
        token_encrypted="kept in the test",
    )
    rule = await AutomationRule.create(
        workspace=workspace, account=account, trigger=Trigger.COMMENT, keywords=["price"]
    )
    conversation = await Conversation.create(
        account=account, igsid=FOLLOWER, last_inbound_at=clock.now()
    )
    queue = RecordingQueue()
    async with aiohttp.ClientSession() as http:
        graph = GraphClient(http, settings, timeout_s=0.5, sleep=_no_wait, jitter=lambda: 0.5)
        outbox = Outbox(
            graph=graph,
            queue=queue,
            redis=redis,
            clock=clock,
            settings=settings,
            account_ref=lambda a: AccountRef(
                ig_id=a.ig_id, token=token, login_kind="sandbox", account_id=a.id
            ),
            jitter=lambda: 0.5,
        )
        yield World(sandbox, outbox, queue, clock, account, rule, conversation, comment.id)


async def _no_wait(_: float) -> None:
    return None


async def stats(rule: AutomationRule) -> tuple[int, int]:
    row = await RuleStats.get_or_none(rule_id=rule.id)
    return (row.total_comments_replied, row.total_dms_sent) if row else (0, 0)


WRITES = [
    pytest.param(ActionKind.PUBLIC_REPLY, {"text": "Check your DMs!"}, r"/replies$", id="reply"),
    pytest.param(ActionKind.PRIVATE_REPLY, {"text": "Here is the price"}, r"/messages$", id="pr"),
    pytest.param(ActionKind.DM, {"text": "Our prices: …"}, r"/messages$", id="dm"),
    pytest.param(ActionKind.DM, BUTTONS, r"/messages$", id="buttons"),
    pytest.param(ActionKind.DM, QUICK_REPLIES, r"/messages$", id="quick-replies"),
]


@pytest.mark.parametrize(("kind", "message", "path"), WRITES)
@pytest.mark.parametrize("how", ["drop", "502", "504", "timeout"])
async def test_a_send_whose_answer_was_lost_is_delivered_once_and_counted(
    world: World, kind: ActionKind, message: dict[str, Any], path: str, how: str
) -> None:
    world.sandbox.faults.lost_answer(how, path=path, seconds=1)
    action = await world.submit(kind, message)
    assert (await OutboundAction.get(id=action.id)).status is OutboundStatus.PENDING
    await world.run_sends()
    row = await OutboundAction.get(id=action.id)
    assert row.status is OutboundStatus.SENT, row.error
    assert len(world.effects(kind)) == 1
    expected = (1, 0) if kind is ActionKind.PUBLIC_REPLY else (0, 1)
    assert await stats(world.rule) == expected
    assert row.response is not None and row.response.get("confirmed_by")


@pytest.mark.parametrize(("kind", "message", "path"), WRITES)
async def test_a_gateway_error_before_instagram_acted_is_checked_then_sent_once(
    world: World, kind: ActionKind, message: dict[str, Any], path: str
) -> None:
    # A bare 502 may come after Meta acted or before: here it came before.
    world.sandbox.faults.fail(502, code=None, method="POST", path=path)
    action = await world.submit(kind, message)
    await world.run_sends()
    row = await OutboundAction.get(id=action.id)
    assert row.status is OutboundStatus.SENT, row.error
    assert len(world.effects(kind)) == 1
    assert "confirmed_by" not in (row.response or {})


@pytest.mark.parametrize(
    ("kind", "message", "path", "read"),
    [
        (ActionKind.PUBLIC_REPLY, {"text": "Check your DMs!"}, r"/replies$", r"/replies$"),
        (ActionKind.DM, {"text": "Our prices"}, r"/messages$", r"/conversations$"),
    ],
)
async def test_what_cannot_be_checked_is_unconfirmed_and_never_sent_again(
    world: World, kind: ActionKind, message: dict[str, Any], path: str, read: str
) -> None:
    world.sandbox.faults.lost_answer("drop", path=path)
    world.sandbox.faults.fail(500, code=None, method="GET", path=read, times=None)
    action = await world.submit(kind, message)
    await world.run_sends()
    row = await OutboundAction.get(id=action.id)
    assert row.status is OutboundStatus.UNCONFIRMED
    assert "not sent again" in row.error and "could not be read" in row.error
    assert row.attempts == MAX_ATTEMPTS
    assert len(world.effects(kind)) == 1
    assert await stats(world.rule) == (0, 0)


async def test_a_write_refused_by_meta_is_retried_without_a_check(world: World) -> None:
    world.sandbox.faults.fail(500, code=2, method="POST", path=r"/replies$")
    world.sandbox.faults.fail(500, code=None, method="GET", path=r"/replies$", times=None)
    action = await world.submit(ActionKind.PUBLIC_REPLY, {"text": "Thanks!"})
    await world.run_sends()
    assert (await OutboundAction.get(id=action.id)).status is OutboundStatus.SENT
    assert len(world.effects(ActionKind.PUBLIC_REPLY)) == 1


async def test_already_replied_after_a_lost_answer_is_delivered(world: World) -> None:
    world.sandbox.faults.lost_answer("504", path=r"/messages$")
    action = await world.submit(ActionKind.PRIVATE_REPLY, {"text": "Here is the price"})
    await world.run_sends()
    row = await OutboundAction.get(id=action.id)
    assert row.status is OutboundStatus.SENT
    assert row.response == {"confirmed_by": "already replied (2534025) after a lost answer"}
    assert await stats(world.rule) == (0, 1)


async def test_already_replied_without_a_lost_answer_is_still_skipped(world: World) -> None:
    world.sandbox.state.comments[world.comment_id].private_reply_sent = True  # from the app
    action = await world.submit(ActionKind.PRIVATE_REPLY, {"text": "Here is the price"})
    row = await OutboundAction.get(id=action.id)
    assert row.status is OutboundStatus.SKIPPED
    assert world.effects(ActionKind.PRIVATE_REPLY) == []


async def test_an_older_reply_with_the_same_text_is_not_taken_for_this_one(
    world: World,
) -> None:
    state = world.sandbox.state
    state.reply_publicly(state.accounts[IG_ID], world.comment_id, "Thanks!")
    world.clock.advance(minutes=10)
    state.now = lambda: world.clock.now()
    world.sandbox.faults.fail(502, code=None, method="POST", path=r"/replies$")
    action = await world.submit(ActionKind.PUBLIC_REPLY, {"text": "Thanks!"})
    await world.run_sends()
    assert (await OutboundAction.get(id=action.id)).status is OutboundStatus.SENT
    assert len(world.effects(ActionKind.PUBLIC_REPLY)) == 2


@pytest.mark.parametrize(("kind", "message", "path"), WRITES)
async def test_a_send_whose_worker_died_after_instagram_acted_is_not_repeated(
    world: World, kind: ActionKind, message: dict[str, Any], path: str
) -> None:
    """The worker sent, Meta acted, then the worker died before recording it: the action is
    still pending and claimed once. The reconciler's re-queued send checks first."""
    action = await world.submit(kind, message)
    await world.run_sends()
    assert len(world.effects(kind)) == 1
    # As a dead worker leaves it: claimed once, nothing recorded.
    await OutboundAction.filter(id=action.id).update(
        status=OutboundStatus.PENDING, attempts=1, response=None
    )
    world.clock.advance(minutes=10)
    assert await world.outbox.requeue_stuck() == 1
    await world.run_sends()
    row = await OutboundAction.get(id=action.id)
    assert row.status is OutboundStatus.SENT, row.error
    assert len(world.effects(kind)) == 1
    assert row.response is not None and row.response.get("confirmed_by")


async def test_actions_added_in_a_batch_are_inserted_together_and_sent_once_each(
    world: World,
) -> None:
    from tortoise.transactions import in_transaction

    def add(key: str, text: str) -> Any:
        return world.outbox.add(
            account=world.account,
            kind=ActionKind.DM,
            target=FOLLOWER,
            message={"text": text},
            key=key,
            rule_id=world.rule.id,
            conversation_id=world.conversation.id,
            conversation=world.conversation,
        )

    used = await world.submit(ActionKind.DM, {"text": "sent before"})
    with world.outbox.holding() as held:
        async with in_transaction():
            await add("first", "one")
            await add("second", "two")
            await add("first", "the same key again")  # the first one counts
            await add(used.dedupe_key, "a key used before")
            assert await OutboundAction.filter(dedupe_key__in=["first", "second"]).count() == 0
            await world.outbox.insert_added()
    assert [h.action.dedupe_key for h in held] == ["first", "second"]
    await world.outbox.send_held(held)

    texts = [s.payload.get("message", {}).get("text") for s in world.effects(ActionKind.DM)]
    # Once each, the person's in the order they were added; a key used before sends nothing.
    assert texts == ["sent before", "one", "two"]
    assert await OutboundAction.filter(status=OutboundStatus.SENT).count() == 3


async def test_actions_added_and_never_inserted_are_an_error_not_a_silent_loss(
    world: World,
) -> None:
    with pytest.raises(RuntimeError, match="never inserted"), world.outbox.holding():
        await world.outbox.add(
            account=world.account,
            kind=ActionKind.DM,
            target=FOLLOWER,
            message={"text": "lost?"},
            key="forgotten",
        )


async def test_a_send_whose_record_fails_once_is_recorded_not_sent_again(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # PostgreSQL ends a deadlock by failing one of the two transactions: here the send's.
    from core.services import outbox as outbox_module

    real = outbox_module.write_sent
    failures = ["deadlock detected"]

    async def write_sent_failing_once(batch: Any) -> Any:
        if failures:
            raise RuntimeError(failures.pop())
        return await real(batch)

    monkeypatch.setattr(outbox_module, "write_sent", write_sent_failing_once)
    monkeypatch.setattr(outbox_module, "RECORD_RETRY_S", 0.0)
    action = await world.submit(ActionKind.DM, {"text": "Our prices"})
    await world.run_sends()

    row = await OutboundAction.get(id=action.id)
    assert row.status is OutboundStatus.SENT
    assert len(world.effects(ActionKind.DM)) == 1
    assert not failures
