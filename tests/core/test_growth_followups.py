"""Follow-ups, variant results and the new comment triggers, through the engine, on SQLite and
PostgreSQL: what a follower receives, and what the rule's owner reads back."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from tortoise.backends.base.executor import EXECUTOR_CACHE

from core.db.models import (
    AutomationRule,
    Conversation,
    EventStatus,
    FollowUp,
    FollowUpStatus,
    InstagramAccount,
    Lead,
    OutboundAction,
    Trigger,
)
from core.domain.rule_definition import RuleDefinition
from core.domain.scope import Actor
from core.domain.webhooks import parse_body
from core.services import next_post
from core.services.follow_ups import SEND_FOLLOW_UP
from core.services.inbox import record_events
from core.services.variants import variant_results
from tests.automation_world import (
    ACCOUNT_IG_ID,
    FakeClock,
    FakeMessaging,
    RecordingQueue,
    body_of,
    build_engine,
    comment_payload,
    dm_payload,
    make_account,
    make_rule,
)
from tests.conftest import _truncate_postgres

BROWSER = "Mozilla/5.0 (iPhone) Instagram 300.0"
FOLLOW_UP = {"wait_minutes": 120, "messages": ["Still thinking about it?"]}


@pytest.fixture
async def settings(settings_factory: Any, any_database_url: str) -> Any:
    if any_database_url.startswith("postgres"):
        await _truncate_postgres(any_database_url)
    EXECUTOR_CACHE.clear()
    return settings_factory(database_url=any_database_url)


class World:
    def __init__(self, container: Any) -> None:
        self.container = container
        self.graph = FakeMessaging()
        self.queue = RecordingQueue()
        self.clock = FakeClock()
        self.engine = build_engine(container, self.graph, self.queue, self.clock)

    def stamp(self) -> int:
        return int(self.clock.now().timestamp() * 1000)

    async def deliver(self, payload: dict[str, Any]) -> list[Any]:
        await record_events(parse_body(body_of(payload)), self.queue, self.clock.now())
        return [
            await self.engine.handle_event(*job.args) for job in self.queue.take("handle_event")
        ]

    async def dm(self, mid: str, text: str, sender: str) -> list[Any]:
        return await self.deliver(dm_payload(mid, text, sender=sender, timestamp_ms=self.stamp()))

    async def run_follow_ups(self) -> list[Any]:
        """Run the queued follow-up jobs whose time has come (the clock moved past it)."""
        done = []
        for job in self.queue.take(SEND_FOLLOW_UP):
            if job.defer_until is not None and job.defer_until > self.clock.now():
                self.queue.jobs.append(job)
                continue
            done.append(await self.engine.follow_ups.send(*job.args))
        return done

    def texts(self) -> list[str]:
        return [str(m.payload.get("text", "")) for m in self.graph.messages()]


@pytest.fixture
async def world(container: Any) -> World:
    return World(container)


@pytest.fixture
async def account(container: Any) -> InstagramAccount:
    return await make_account(container)


def _dm_rule(follow_up: dict[str, Any] = FOLLOW_UP) -> dict[str, Any]:
    return {"message_variations": ["Prices are on our site."], "follow_up": follow_up}


async def test_a_follow_up_goes_out_after_the_wait_when_the_person_did_not_answer(
    world: World, account: InstagramAccount
) -> None:
    rule = await make_rule(account, trigger=Trigger.DM, config=_dm_rule())
    (outcome,) = await world.dm("m1", "price", "p1")
    assert outcome.status is EventStatus.DONE
    assert world.texts() == ["Prices are on our site."]
    (job,) = [j for j in world.queue.jobs if j.function == SEND_FOLLOW_UP]
    assert job.defer_until == world.clock.now() + timedelta(hours=2)

    world.clock.advance(minutes=119)
    assert await world.run_follow_ups() == []  # not yet: the job waits for its time
    world.clock.advance(minutes=1)
    assert await world.run_follow_ups() == [FollowUpStatus.SENT]
    assert world.texts() == ["Prices are on our site.", "Still thinking about it?"]
    sent = await OutboundAction.get(dedupe_key__startswith="follow_up:")
    assert (sent.rule_id, sent.step, sent.status.value) == (rule.id, "follow_up", "sent")
    # A second run of the same job sends nothing more.
    follow_up = await FollowUp.get(rule_id=rule.id)
    assert await world.engine.follow_ups.send(follow_up.id) is FollowUpStatus.SENT
    assert len(world.texts()) == 2


async def test_an_answer_cancels_the_follow_up(world: World, account: InstagramAccount) -> None:
    await make_rule(account, trigger=Trigger.DM, config=_dm_rule())
    await world.dm("m1", "price", "p1")
    world.clock.advance(minutes=30)
    await world.dm("m2", "thanks, ordering now", "p1")
    follow_up = await FollowUp.get()
    assert follow_up.status is FollowUpStatus.CANCELLED
    assert "they answered" in follow_up.reason
    world.clock.advance(hours=2)
    await world.run_follow_ups()
    assert world.texts() == ["Prices are on our site."]


async def test_a_follow_up_stays_unsent_while_a_teammate_has_the_conversation(
    world: World, account: InstagramAccount
) -> None:
    await make_rule(account, trigger=Trigger.DM, config=_dm_rule())
    await world.dm("m1", "price", "p1")
    world.clock.advance(minutes=30)
    await Conversation.filter(igsid="p1").update(
        paused_until=world.clock.now() + timedelta(hours=24)
    )
    world.clock.advance(minutes=90)
    assert await world.run_follow_ups() == [FollowUpStatus.CANCELLED]
    follow_up = await FollowUp.get()
    assert follow_up.reason == "a teammate has this conversation"
    assert world.texts() == ["Prices are on our site."]


async def test_a_follow_up_is_never_sent_outside_the_24_hour_window(
    world: World, account: InstagramAccount
) -> None:
    config = {
        "comment_replies": ["Sent you a DM"],
        "message_variations": ["Here are the prices."],
        "follow_up": {"wait_minutes": 23 * 60, "messages": ["Any questions?"]},
    }
    await make_rule(account, keywords=["price"], config=config)
    # A person who never wrote: after the private reply Meta allows nothing until they do.
    await world.deliver(comment_payload("c1", "price", sender="p1"))
    never = await FollowUp.get(conversation__igsid="p1")
    assert never.status is FollowUpStatus.EXPIRED and "has not written" in never.reason
    # A person who wrote three hours ago: due 23 h after the comment, past their window.
    await world.dm("m1", "hello", "p2")
    world.clock.advance(hours=3)
    await world.deliver(comment_payload("c2", "price", sender="p2"))
    late = await FollowUp.get(conversation__igsid="p2")
    assert late.status is FollowUpStatus.EXPIRED
    assert "after Meta's 24-hour window closes" in late.reason
    assert [j for j in world.queue.jobs if j.function == SEND_FOLLOW_UP] == []
    assert "Any questions?" not in world.texts()


async def test_a_follow_up_whose_job_ran_too_late_expires_with_the_reason(
    world: World, account: InstagramAccount
) -> None:
    await make_rule(account, trigger=Trigger.DM, config=_dm_rule())
    await world.dm("m1", "price", "p1")
    world.clock.advance(hours=25)  # the worker was down past the window
    assert await world.run_follow_ups() == [FollowUpStatus.EXPIRED]
    follow_up = await FollowUp.get()
    assert follow_up.reason.startswith("not sent: Meta's 24-hour window closed at")
    assert world.texts() == ["Prices are on our site."]


async def test_a_lost_follow_up_job_is_rebuilt_from_its_row(
    world: World, account: InstagramAccount
) -> None:
    await make_rule(account, trigger=Trigger.DM, config=_dm_rule())
    await world.dm("m1", "price", "p1")
    world.queue.take(SEND_FOLLOW_UP)  # Redis flushed: the delayed job is gone
    world.clock.advance(hours=2, minutes=5)
    assert await world.engine.follow_ups.requeue_lost() == 1
    assert await world.run_follow_ups() == [FollowUpStatus.SENT]
    assert world.texts()[-1] == "Still thinking about it?"
    assert await world.engine.follow_ups.requeue_lost() == 0


async def test_variant_results_count_sends_replies_clicks_and_leads_per_variant(
    world: World, account: InstagramAccount
) -> None:
    config = {
        "comment_replies": ["A: https://shop.example/a", "B: https://shop.example/b"],
        "track_links": True,
        "dmType": "lead_capture",
        "lead_capture_flow": [
            {"step": 1, "type": "ask", "text": "Your email?", "field_type": "email"},
            {"step": 2, "type": "save"},
        ],
    }
    rule = await make_rule(account, keywords=["price"], config=config)
    people = [f"p{n}" for n in range(8)]
    for n, person in enumerate(people):
        await world.deliver(comment_payload(f"c{n}", "price", sender=person))
    got: dict[str, tuple[str, str]] = {}
    for call, person in zip(world.graph.replies(), people, strict=True):
        text = call.payload["message"]
        got[person] = ("v1" if text.startswith("A:") else "v2", text.rsplit("/", 1)[1])
    assert {v for v, _ in got.values()} == {"v1", "v2"}  # both went out (seeded choice)

    world.clock.advance(minutes=5)
    for person in people[:3]:  # three answer with their email: replies and leads
        await world.dm(f"m-{person}", f"{person}@example.com", person)
    await world.dm("m-x", "not now", people[3])  # one answers without becoming a lead
    for person in people[2:6]:  # four open their link, one of them twice
        await world.engine.links.click(got[person][1], user_agent=BROWSER, now=world.clock.now())
    await world.engine.links.click(got[people[5]][1], user_agent=BROWSER, now=world.clock.now())
    assert await Lead.filter(rule_id=rule.id).count() == 3

    def expected(variant: str) -> tuple[int, int, int, int, int]:
        mine = [p for p in people if got[p][0] == variant]
        clicked = [p for p in mine if p in people[2:6]]
        clicks = len(clicked) + (1 if people[5] in mine else 0)
        return (
            len(mine),
            len([p for p in mine if p in people[:4]]),
            len(clicked),
            clicks,
            len([p for p in mine if p in people[:3]]),
        )

    rows = await variant_results(Actor.system(account.workspace_id), rule.id)
    found = {(r.step, r.variant): (r.sent, r.replied, r.clicked, r.clicks, r.leads) for r in rows}
    assert found == {("reply", "v1"): expected("v1"), ("reply", "v2"): expected("v2")}
    assert [r.text for r in rows] == config["comment_replies"]
    # Another workspace does not see them.
    with pytest.raises(Exception, match="rule not found"):
        await variant_results(Actor.system(account.workspace_id + 1), rule.id)


def _live_payload(comment_id: str, text: str, at: int, *, sender: str = "p1") -> dict[str, Any]:
    """A Live comment exactly as Meta sends it: the comment's shape, field ``live_comments``."""
    return {
        "object": "instagram",
        "entry": [
            {
                "id": ACCOUNT_IG_ID,
                "time": at,
                "changes": [
                    {
                        "field": "live_comments",
                        "value": {
                            "id": comment_id,
                            "from": {"id": sender, "username": "alice"},
                            "text": text,
                            "media": {"id": "live-1", "media_product_type": "FEED"},
                        },
                    }
                ],
            }
        ],
    }


async def test_a_live_comment_is_answered_by_a_live_rule_only(
    world: World, account: InstagramAccount
) -> None:
    await make_rule(account, keywords=["price"], config={"comment_replies": ["Post answer"]})
    live = await make_rule(
        account,
        trigger=Trigger.LIVE_COMMENT,
        keywords=["price"],
        config={"comment_replies": ["Live answer"], "message_variations": ["Link in DM"]},
    )
    (outcome,) = await world.deliver(_live_payload("lc1", "price please", world.stamp() // 1000))
    assert (outcome.status, outcome.rule_id) == (EventStatus.DONE, live.id)
    assert [c.payload["message"] for c in world.graph.replies()] == ["Live answer"]
    assert world.graph.messages()[0].recipient == {"comment_id": "lc1"}
    (post,) = await world.deliver(comment_payload("c1", "price", sender="p2"))
    assert post.rule_id != live.id
    assert [c.payload["message"] for c in world.graph.replies()][-1] == "Post answer"


def _ad_payload(comment_id: str, text: str, sender: str) -> dict[str, Any]:
    payload = comment_payload(comment_id, text, sender=sender, media="media-ad")
    media = payload["entry"][0]["changes"][0]["value"]["media"]
    media.update(media_product_type="AD", ad_id="120200000001", ad_title="Spring ad")
    return payload


async def test_ad_comments_reach_the_rules_that_take_them(
    world: World, account: InstagramAccount
) -> None:
    ads = await make_rule(
        account, keywords=["price"], config={"comment_replies": ["Ad"], "ad_comments": "only"}
    )
    posts = await make_rule(
        account, keywords=["price"], config={"comment_replies": ["Post"], "ad_comments": "skip"}
    )
    (on_ad,) = await world.deliver(_ad_payload("c1", "price?", "p1"))
    (on_post,) = await world.deliver(comment_payload("c2", "price?", sender="p2"))
    assert (on_ad.rule_id, on_post.rule_id) == (ads.id, posts.id)
    assert [c.payload["message"] for c in world.graph.replies()] == ["Ad", "Post"]


async def test_the_next_post_rule_waits_then_answers_that_post_only(
    world: World, account: InstagramAccount
) -> None:
    actor = Actor.system(account.workspace_id)
    redis, secrets = world.container.redis, world.container.secrets
    rule = await next_post.create_next_post_rule(actor, account.id, redis=redis, secrets=secrets)
    assert RuleDefinition.from_stored(rule).waiting_for_post
    (before,) = await world.deliver(comment_payload("c1", "love it", media="media-old"))
    assert before.status is EventStatus.IGNORED
    assert await next_post.bind_next_post(account.id, "media-new", world.clock.now(), redis=redis)
    bound = await AutomationRule.get(id=rule.id)
    assert bound.media_ids == ["media-new"]
    assert not RuleDefinition.from_stored(bound).waiting_for_post
    (on_new,) = await world.deliver(comment_payload("c2", "love it", media="media-new"))
    (on_old,) = await world.deliver(comment_payload("c3", "love it", media="media-old"))
    assert (on_new.rule_id, on_old.status) == (rule.id, EventStatus.IGNORED)
    assert [c.recipient for c in world.graph.replies()] == [{"comment_id": "c2"}]
    # A second post does not move it.
    assert (
        await next_post.bind_next_post(account.id, "media-3", world.clock.now(), redis=redis) == []
    )
