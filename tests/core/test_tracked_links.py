"""Tracked links through the engine: rewritten sends, counted clicks, reads and the funnel."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from core.db.models import EventStatus, InstagramAccount, Lead, TrackedLink
from core.domain.scope import Actor
from core.domain.webhooks import parse_body
from core.services.inbox import record_events
from core.services.tracked_links import LinkTracker, Sending
from tests.automation_world import (
    PUBLIC_BASE_URL,
    FakeClock,
    FakeMessaging,
    RecordingQueue,
    body_of,
    build_engine,
    comment_payload,
    dm_payload,
    make_account,
    make_rule,
    messaging_payload,
)

BROWSER = "Mozilla/5.0 (iPhone) Instagram 300.0"
PREVIEW = "facebookexternalhit/1.1"


class World:
    def __init__(self, container: Any) -> None:
        self.graph = FakeMessaging()
        self.queue = RecordingQueue()
        self.clock = FakeClock()
        self.engine = build_engine(container, self.graph, self.queue, self.clock)
        assert self.engine.links is not None
        self.links: LinkTracker = self.engine.links

    async def deliver(self, payload: dict[str, Any]) -> list[Any]:
        await record_events(parse_body(body_of(payload)), self.queue, self.clock.now())
        return [
            await self.engine.handle_event(*job.args) for job in self.queue.take("handle_event")
        ]


@pytest.fixture
async def world(container: Any) -> World:
    return World(container)


@pytest.fixture
async def account(container: Any) -> InstagramAccount:
    return await make_account(container)


def _code(url: str) -> str:
    assert url.startswith(PUBLIC_BASE_URL + "/l/"), url
    return url.rsplit("/", 1)[1]


TRACKED = {
    "comment_replies": ["Details: https://shop.example/info"],
    "message_variations": ["Prices: {link}"],
    "dmType": "text_button",
    "buttons": [{"text": "Shop", "url": "https://shop.example/shop"}],
    "link": "https://shop.example/prices",
    "track_links": True,
    "utm_tags": True,
}


async def test_a_tracked_rule_sends_short_links_that_count_clicks(
    world: World, account: Any
) -> None:
    rule = await make_rule(account, name="Spring sale", keywords=["price"], config=TRACKED)
    (outcome,) = await world.deliver(comment_payload("c1", "price?", sender="p1"))
    assert outcome.status is EventStatus.DONE
    (reply,) = world.graph.replies()
    (private,) = world.graph.messages()
    payload = private.payload["attachment"]["payload"]
    in_text = _code(payload["text"].removeprefix("Prices: "))
    in_button = _code(payload["buttons"][0]["url"])
    in_reply = _code(reply.payload["message"].removeprefix("Details: "))
    assert len({in_text, in_button, in_reply}) == 3
    link = await TrackedLink.get(code=in_text)
    assert (link.rule_id, link.step, link.variant, link.igsid) == (rule.id, "dm", "v1", "p1")
    query = parse_qs(urlsplit(link.target).query)
    assert query == {
        "utm_source": ["instagram"],
        "utm_medium": ["dm"],
        "utm_campaign": ["spring-sale"],
    }
    reply_link = await TrackedLink.get(code=in_reply)
    assert reply_link.step == "reply" and "utm_medium=comment" in reply_link.target

    now = world.clock.now()
    assert await world.links.click(in_text, user_agent=PREVIEW, now=now) == link.target
    assert (await TrackedLink.get(id=link.id)).clicks == 0
    assert await world.links.click(in_text, user_agent=BROWSER, now=now) == link.target
    assert await world.links.click(in_text, user_agent=BROWSER, now=now) == link.target
    clicked = await TrackedLink.get(id=link.id)
    assert clicked.clicks == 2 and clicked.first_clicked_at is not None
    assert await world.links.click("x" * 16, user_agent=BROWSER, now=now) is None
    assert await world.links.click("not a code", user_agent=BROWSER, now=now) is None

    actor = Actor.system(account.workspace_id)
    funnel = await world.links.funnel(actor, rule.id)
    assert (funnel.triggered, funnel.replied, funnel.opened, funnel.clicked, funnel.clicks) == (
        1,
        1,
        None,
        1,
        2,
    )


async def test_one_code_per_person_and_link_and_untracked_rules_send_links_as_they_are(
    world: World, account: Any
) -> None:
    config = {**TRACKED, "comment_replies": [], "utm_tags": False}
    await make_rule(account, keywords=["price"], config=config)
    await make_rule(
        account,
        keywords=["plain"],
        config={"message_variations": ["See https://shop.example/plain"]},
    )
    await world.deliver(comment_payload("c1", "price", sender="p1"))
    await world.deliver(comment_payload("c2", "price", sender="p1", media="media-2"))
    await world.deliver(comment_payload("c3", "price", sender="p2"))
    await world.deliver(comment_payload("c4", "plain", sender="p2"))
    first, again, other, plain = (m.payload for m in world.graph.messages())
    assert first == again and first != other
    assert plain == {"text": "See https://shop.example/plain"}
    assert await TrackedLink.filter(igsid="p1").count() == 2  # text link and button
    assert (await TrackedLink.filter(igsid="p1").first()).target.startswith("https://shop.example")


async def test_reads_and_leads_complete_the_funnel(world: World, account: Any) -> None:
    config = {
        "dmType": "lead_capture",
        "track_links": True,
        "lead_capture_flow": [
            {"step": 1, "type": "ask", "text": "Your email?", "field_type": "email"},
            {"step": 2, "type": "save"},
            {"step": 3, "type": "send", "message_variations": ["Your guide: {link}"]},
        ],
        "lead_capture_settings": {"link": "https://gift.example/guide"},
    }
    rule = await make_rule(account, keywords=["guide"], config=config)
    await world.deliver(comment_payload("c1", "guide", sender="p1"))
    (read,) = await world.deliver(messaging_payload({"read": {"mid": "mid.out.1"}}, sender="p1"))
    assert read.status is EventStatus.DONE
    (again,) = await world.deliver(
        messaging_payload({"read": {"mid": "mid.out.1"}, "timestamp": 1}, sender="p1")
    )
    assert again.status is EventStatus.IGNORED
    await world.deliver(dm_payload("m1", "p1@example.com", sender="p1"))
    last = world.graph.messages()[-1].payload["text"]
    code = _code(last.removeprefix("Your guide: "))
    link = await TrackedLink.get(code=code)
    assert link.step == "flow" and link.target == "https://gift.example/guide"
    await world.links.click(code, user_agent=BROWSER, now=world.clock.now())
    assert await Lead.filter(rule_id=rule.id).count() == 1
    funnel = await world.links.funnel(Actor.system(account.workspace_id), rule.id)
    assert [count for _, count in funnel.stages()] == [1, 1, 1, 1, 1]
    assert [name for name, _ in funnel.stages()][2] == "DM opened"


async def test_links_clicks_and_the_funnel_on_each_database(db: str) -> None:
    """The link tracker's own SQL (insert-or-keep, counts, distinct people) on SQLite and
    PostgreSQL."""
    from datetime import UTC, datetime

    from core.db.models import AutomationRule, Conversation, LoginKind, RuleStats, Workspace

    workspace = await Workspace.create(name="Shop")
    account = await InstagramAccount.create(
        workspace=workspace,
        ig_id="1784",
        username="shop",
        login_kind=LoginKind.SANDBOX,
        token_encrypted="x",
    )
    rule = await AutomationRule.create(
        workspace=workspace, account=account, name="Sale", trigger="comment", config={}
    )
    await RuleStats.create(rule=rule, total_triggers=2, total_dms_sent=2)
    tracker = LinkTracker(base_url=PUBLIC_BASE_URL)
    now = datetime.now(UTC)
    codes = []
    for igsid in ("p1", "p2", "p1"):
        conversation, _ = await Conversation.get_or_create(account=account, igsid=igsid)
        sending = Sending(
            workspace_id=workspace.id,
            account_id=account.id,
            rule_id=rule.id,
            rule_name=rule.name,
            conversation_id=conversation.id,
            igsid=igsid,
            step="dm",
            at=now,
        )
        sent = await tracker.track(sending, {"text": "Go https://shop.example/x"}, utm=False)
        codes.append(sent["text"].rsplit("/", 1)[1])
    assert codes[0] == codes[2] != codes[1]
    for code in (codes[0], codes[0], codes[1]):
        assert await tracker.click(code, user_agent=BROWSER, now=now) == "https://shop.example/x"
    funnel = await tracker.funnel(Actor.system(workspace.id), rule.id)
    assert (funnel.clicked, funnel.clicks, funnel.triggered) == (2, 3, 2)
