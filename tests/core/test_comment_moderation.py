"""Comment moderation against the sandbox Instagram, on SQLite and PostgreSQL: a hide hides,
a delete whose answer was lost is checked and done once, replies go out once, and another
workspace's comments are not found."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from redis.asyncio import Redis

from core.adapters.graph import GraphClient
from core.db.models import (
    AuditLog,
    InstagramAccount,
    LoginKind,
    OutboundAction,
    Role,
    WebhookEvent,
    Workspace,
)
from core.domain.scope import Actor
from core.errors import Forbidden, NotFound, ValidationFailed
from core.ports.instagram import AccountRef
from core.services.comment_moderation import CommentModeration
from core.services.outbox import MAX_ATTEMPTS, Outbox
from sandbox.faults import Fault
from tests.automation_world import FakeClock, RecordingQueue

IG_ID = "17841400000000042"
SPAMMER = "9990001"


@dataclass
class World:
    sandbox: Any
    moderation: CommentModeration
    outbox: Outbox
    queue: RecordingQueue
    clock: FakeClock
    account: InstagramAccount
    editor: Actor
    media_id: str
    comment_id: str

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


@pytest.fixture
async def world(db: str, redis: Redis, sandbox: Any, settings_factory: Any) -> AsyncIterator[World]:
    settings = settings_factory(sandbox_url=sandbox.url)
    state = sandbox.state
    state.add_account(IG_ID, "sandbox_shop")
    token = state.issue_token(IG_ID)
    media = state.add_media(IG_ID, caption="New drop")
    comment = state.add_comment(
        media.id, from_id=SPAMMER, username="spam_bot", text="cheap followers at spam.example"
    )
    clock = FakeClock()
    workspace = await Workspace.create(name="Shop")
    account = await InstagramAccount.create(
        workspace=workspace,
        ig_id=IG_ID,
        username="sandbox_shop",
        login_kind=LoginKind.SANDBOX,
        token_encrypted="kept in the test",
    )
    queue = RecordingQueue()
    async with aiohttp.ClientSession() as http:
        graph = GraphClient(http, settings, timeout_s=0.5, sleep=_no_wait, jitter=lambda: 0.5)

        def ref(a: InstagramAccount) -> AccountRef:
            return AccountRef(ig_id=a.ig_id, token=token, login_kind="sandbox", account_id=a.id)

        outbox = Outbox(
            graph=graph,
            queue=queue,
            redis=redis,
            clock=clock,
            settings=settings,
            account_ref=ref,
            jitter=lambda: 0.5,
        )
        moderation = CommentModeration(graph=graph, outbox=outbox, clock=clock, account_ref=ref)
        editor = Actor(workspace.id, Role.EDITOR, "ed@example.com")
        yield World(
            sandbox, moderation, outbox, queue, clock, account, editor, media.id, comment.id
        )


async def _no_wait(_: float) -> None:
    return None


async def test_hide_hides_the_comment_on_instagram_and_show_brings_it_back(world: World) -> None:
    done = await world.moderation.hide(world.editor, world.comment_id)
    assert (done.status, done.ok) == ("sent", True)
    assert "Hidden" in done.words
    assert world.sandbox.state.comments[world.comment_id].hidden is True
    page = await world.moderation.comments(world.editor, world.media_id)
    assert [(c.id, c.hidden) for c in page.comments] == [(world.comment_id, True)]
    shown = await world.moderation.hide(world.editor, world.comment_id, hide=False)
    assert shown.status == "sent"
    assert world.sandbox.state.comments[world.comment_id].hidden is False
    entries = await AuditLog.filter(target_id=world.comment_id).order_by("id")
    assert [(e.action, e.actor, e.details["status"]) for e in entries] == [
        ("comment.hide", "ed@example.com", "sent"),
        ("comment.unhide", "ed@example.com", "sent"),
    ]


# A dropped connection is not among them: aiohttp itself repeats an idempotent DELETE once on a
# reused connection that the server closed, and the repeat finds the comment gone (done).
@pytest.mark.parametrize("how", ["502", "504", "timeout"])
async def test_a_delete_whose_answer_was_lost_is_checked_and_done_once(
    world: World, how: str
) -> None:
    path = rf"/{world.comment_id}$"
    world.sandbox.faults.lost_answer(how, method="DELETE", path=path, seconds=2)
    again = world.sandbox.faults.add(Fault(method="DELETE", path=path, fail=False, times=None))
    done = await world.moderation.delete(world.editor, world.comment_id)
    assert (done.status, done.ok) == ("pending", True)
    assert "did not answer" in done.words
    assert world.comment_id not in world.sandbox.state.comments  # Meta did delete it
    await world.run_sends()
    action = await OutboundAction.get(kind="delete_comment", target=world.comment_id)
    assert action.status.value == "sent"
    assert action.response == {"confirmed_by": "comment gone"}
    assert again.struck == 0  # checked by reading the comment, never deleted a second time
    # Pressing Delete again is told it is done, and sends nothing.
    repeat = await world.moderation.delete(world.editor, world.comment_id)
    assert repeat.status == "sent" and repeat.words.startswith("Already done")
    assert again.struck == 0


async def test_a_delete_of_a_comment_already_gone_is_recorded_done(world: World) -> None:
    # The comment is in Reelay's inbox (its webhook came), then someone deleted it in the app.
    await WebhookEvent.create(
        dedupe_key=f"{IG_ID}:comment:{world.comment_id}",
        account_ig_id=IG_ID,
        kind="comment",
        payload={},
        event={"comment_id": world.comment_id, "media_id": world.media_id, "text": "spam"},
    )
    world.sandbox.state.delete_comment(IG_ID, world.comment_id)
    done = await world.moderation.delete(world.editor, world.comment_id)
    assert (done.status, done.words) == ("sent", "Deleted from Instagram.")


async def test_public_and_private_replies_go_out_once(world: World) -> None:
    world.sandbox.state.note_inbound(IG_ID, SPAMMER)
    first = await world.moderation.reply(world.editor, world.comment_id, "Please stop.")
    second = await world.moderation.reply(world.editor, world.comment_id, "Please stop.")
    assert (first.status, second.status) == ("sent", "sent")
    assert second.words.startswith("Already done")
    replies = [s for s in world.sandbox.state.sent if s.kind == "comment_reply"]
    assert [s.payload for s in replies] == [{"message": "Please stop."}]
    private = await world.moderation.private_reply(world.editor, world.comment_id, "Hi there")
    assert private.status == "sent"
    sent = [s for s in world.sandbox.state.sent if s.kind == "private_reply"]
    assert [s.target for s in sent] == [world.comment_id]
    with pytest.raises(ValidationFailed):
        await world.moderation.reply(world.editor, world.comment_id, "   ")


async def test_viewers_read_but_do_not_act_and_other_workspaces_find_nothing(
    world: World,
) -> None:
    viewer = Actor(world.editor.workspace_id, Role.VIEWER, "vi@example.com")
    page = await world.moderation.comments(viewer, world.media_id)
    assert [c.id for c in page.comments] == [world.comment_id]
    with pytest.raises(Forbidden):
        await world.moderation.hide(viewer, world.comment_id)
    other = await Workspace.create(name="Other")
    stranger = Actor(other.id, Role.OWNER, "boss@other.example")
    with pytest.raises(NotFound):
        await world.moderation.hide(stranger, world.comment_id)
    with pytest.raises(NotFound):
        await world.moderation.comments(stranger, world.media_id)
    assert world.sandbox.state.comments[world.comment_id].hidden is False


async def test_recent_posts_count_the_comments_webhooks_and_the_sweep_brought(
    world: World,
) -> None:
    for n, source in enumerate(["webhook", "sweep", "webhook"]):
        await WebhookEvent.create(
            dedupe_key=f"{IG_ID}:comment:c{n}",
            account_ig_id=IG_ID,
            kind="comment",
            payload={},
            source=source,
            event={
                "comment_id": f"100{n}",
                "media_id": world.media_id,
                "text": f"comment {n}",
                "sender_username": f"fan{n}",
            },
        )
    posts = await world.moderation.recent_posts(world.editor)
    assert [(p.media_id, p.count, p.latest_text, p.latest_from) for p in posts] == [
        (world.media_id, 3, "comment 2", "fan2")
    ]
    other = await Workspace.create(name="Other")
    assert await world.moderation.recent_posts(Actor(other.id, Role.OWNER, "x")) == []
