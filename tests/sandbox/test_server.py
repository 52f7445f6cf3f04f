"""The sandbox Instagram, driven through Reelay's real Graph client and by webhook receivers."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from core.adapters.graph import GraphClient
from core.domain.graph_errors import ErrorKind, GraphError, object_gone
from core.ports.instagram import AccountRef, Recipient
from core.services.sandbox_keys import sandbox_token
from core.settings import Settings
from tests.core.media_files import media_server

IG = "17841400000000001"


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock(sandbox: Any) -> Clock:
    clock = Clock()
    sandbox.state.now = clock
    return clock


@pytest.fixture
async def media() -> AsyncIterator[str]:
    async with media_server() as url:
        yield url


@pytest.fixture
async def graph(sandbox: Any) -> AsyncIterator[GraphClient]:
    settings = Settings(_env_file=None, sandbox_url=sandbox.url)  # type: ignore[call-arg]

    async def no_wait(_: float) -> None:
        return None

    async with aiohttp.ClientSession() as http:
        yield GraphClient(http, settings, sleep=no_wait, timeout_s=2)


@pytest.fixture
def account(sandbox: Any) -> AccountRef:
    sandbox.state.add_account(IG, "sandbox_shop")
    return AccountRef(ig_id=IG, token=sandbox.state.issue_token(IG), login_kind="sandbox")


async def graph_error(call: Any) -> GraphError:
    with pytest.raises(GraphError) as caught:
        await call
    return caught.value


# ------------------------------------------------------------------ publishing


async def test_image_post_lands_in_the_feed(
    graph: GraphClient, account: AccountRef, sandbox: Any, media: str
) -> None:
    container = await graph.create_image_container(
        account, f"{media}/square.jpg", caption="Hello #sandbox"
    )
    assert (await graph.container_status(account, container)).status_code == "FINISHED"
    media_id = await graph.publish_container(account, container)
    fields = await graph.media_fields(account, media_id)
    assert fields["permalink"] == f"{sandbox.url}/p/{media_id}/"
    assert await graph.post_comment(account, media_id, "Link in bio")
    feed = sandbox.state.feed(IG)
    assert feed[0].caption == "Hello #sandbox"
    assert [s.kind for s in sandbox.state.sent] == ["comment"]
    assert (await graph.container_status(account, container)).status_code == "PUBLISHED"
    listed = await graph.media_list(account)
    assert listed[0]["id"] == media_id and listed[0]["caption"] == "Hello #sandbox"
    limit = await graph.publishing_limit(account)
    assert (limit.quota_usage, limit.quota_total) == (1, 100)


async def test_reel_is_in_progress_then_finished(
    graph: GraphClient, account: AccountRef, sandbox: Any, media: str
) -> None:
    sandbox.state.video_polls = 2
    container = await graph.create_video_container(account, f"{media}/clip.mp4", caption="R")
    error = await graph_error(graph.publish_container(account, container))
    assert (error.code, error.subcode, error.kind) == (9007, 2207027, ErrorKind.NOT_READY)
    statuses = [(await graph.container_status(account, container)).status_code for _ in range(3)]
    assert statuses == ["IN_PROGRESS", "IN_PROGRESS", "FINISHED"]
    media_id = await graph.publish_container(account, container)
    assert sandbox.state.media[media_id].media_product_type == "REELS"


async def test_bad_video_format_ends_in_error_status(
    graph: GraphClient, account: AccountRef, sandbox: Any, media: str
) -> None:
    sandbox.state.video_polls = 0
    container = await graph.create_video_container(account, f"{media}/clip.avi")
    status = await graph.container_status(account, container)
    assert status.status_code == "ERROR" and "2207026" in status.status


async def test_carousel(graph: GraphClient, account: AccountRef, sandbox: Any, media: str) -> None:
    sandbox.state.video_polls = 0
    first = await graph.create_image_container(
        account, f"{media}/square.jpg", is_carousel_item=True
    )
    second = await graph.create_video_container(account, f"{media}/clip.mp4", is_carousel_item=True)
    parent = await graph.create_carousel_container(account, [first, second], caption="Two")
    assert (await graph.container_status(account, parent)).status_code == "FINISHED"
    media_id = await graph.publish_container(account, parent)
    assert sandbox.state.media[media_id].media_type == "CAROUSEL_ALBUM"
    error = await graph_error(graph.create_carousel_container(account, [first]))
    assert error.kind is ErrorKind.PERMANENT


async def test_story(graph: GraphClient, account: AccountRef, sandbox: Any, media: str) -> None:
    container = await graph.create_story_container(account, image_url=f"{media}/tall.jpg")
    media_id = await graph.publish_container(account, container)
    assert sandbox.state.media[media_id].media_product_type == "STORY"


@pytest.mark.parametrize(
    ("path", "code", "subcode", "words"),
    [
        ("photo.png", 36001, 2207005, "JPEG"),
        ("panorama.jpg", 36003, 2207009, "aspect ratio"),
        ("missing.jpg", 9004, 2207052, "URL is not public"),
    ],
)
async def test_refused_images_carry_metas_codes(
    graph: GraphClient,
    account: AccountRef,
    media: str,
    path: str,
    code: int,
    subcode: int,
    words: str,
) -> None:
    error = await graph_error(graph.create_image_container(account, f"{media}/{path}"))
    assert (error.code, error.subcode, error.kind) == (code, subcode, ErrorKind.PERMANENT)
    assert words in error.title


async def test_unreachable_host_is_not_public(graph: GraphClient, account: AccountRef) -> None:
    error = await graph_error(graph.create_image_container(account, "http://127.0.0.1:9/x.jpg"))
    assert (error.code, error.subcode) == (9004, 2207052)


async def test_long_caption_and_too_many_mentions(
    graph: GraphClient, account: AccountRef, media: str
) -> None:
    url = f"{media}/square.jpg"
    error = await graph_error(graph.create_image_container(account, url, caption="x" * 2201))
    assert (error.code, error.subcode) == (36004, 2207010)
    mentions = " ".join(f"@user{i}" for i in range(21))
    error = await graph_error(graph.create_image_container(account, url, caption=mentions))
    assert (error.code, error.subcode) == (100, 2207040)


async def test_daily_cap(graph: GraphClient, account: AccountRef, sandbox: Any, media: str) -> None:
    sandbox.state.quota_total = 1
    for expected_ok in (True, False):
        container = await graph.create_image_container(account, f"{media}/square.jpg")
        if expected_ok:
            await graph.publish_container(account, container)
        else:
            error = await graph_error(graph.publish_container(account, container))
            assert (error.code, error.subcode, error.kind) == (9, 2207042, ErrorKind.QUOTA)


async def test_unpublished_container_expires_after_a_day(
    graph: GraphClient, account: AccountRef, clock: Clock, media: str
) -> None:
    container = await graph.create_image_container(account, f"{media}/square.jpg")
    clock.now += timedelta(hours=25)
    assert (await graph.container_status(account, container)).status_code == "EXPIRED"
    error = await graph_error(graph.publish_container(account, container))
    assert (error.code, error.subcode, error.kind) == (-2, 2207020, ErrorKind.NEW_CONTAINER)


# ------------------------------------------------------------------ messaging and comments


async def test_dm_only_inside_the_24h_window(
    graph: GraphClient, account: AccountRef, sandbox: Any, clock: Clock
) -> None:
    person = Recipient(igsid="555")
    error = await graph_error(graph.send_message(account, person, {"text": "Hi"}))
    assert (error.code, error.subcode, error.kind) == (10, 2534022, ErrorKind.WINDOW_CLOSED)
    await sandbox.dm(IG, "hello?", from_id="555")
    sent = await graph.send_message(account, person, {"text": "Hi"})
    assert sent.recipient_id == "555" and sent.message_id
    clock.now += timedelta(hours=24, minutes=1)
    error = await graph_error(graph.send_message(account, person, {"text": "Still there?"}))
    assert error.kind is ErrorKind.WINDOW_CLOSED
    assert [s.payload["message"]["text"] for s in sandbox.state.sent_to("555")] == ["Hi"]


async def test_one_private_reply_per_comment_within_7_days(
    graph: GraphClient, account: AccountRef, sandbox: Any, clock: Clock
) -> None:
    first, _ = await sandbox.comment(IG, "price?", from_id="777", username="ann")
    old, _ = await sandbox.comment(IG, "me too", from_id="778")
    reply = await graph.send_message(account, Recipient(comment_id=first.id), {"text": "DM'd!"})
    assert reply.recipient_id == "777"
    error = await graph_error(
        graph.send_message(account, Recipient(comment_id=first.id), {"text": "again"})
    )
    assert (error.subcode, error.kind) == (2534025, ErrorKind.ALREADY_DONE)
    clock.now += timedelta(days=8)
    error = await graph_error(
        graph.send_message(account, Recipient(comment_id=old.id), {"text": "late"})
    )
    assert error.kind is ErrorKind.WINDOW_CLOSED
    assert [s.kind for s in sandbox.state.sent] == ["private_reply"]


async def test_message_limits(graph: GraphClient, account: AccountRef, sandbox: Any) -> None:
    await sandbox.dm(IG, "hi", from_id="555")
    person = Recipient(igsid="555")
    for message in (
        {"text": "é" * 501},
        {"text": "pick", "quick_replies": [{"content_type": "text", "title": "x"}] * 14},
        {
            "attachment": {
                "type": "template",
                "payload": {"template_type": "button", "text": "t", "buttons": [{}] * 4},
            }
        },
    ):
        error = await graph_error(graph.send_message(account, person, message))
        assert (error.code, error.kind) == (100, ErrorKind.PERMANENT)
    assert sandbox.state.sent == []


async def test_public_reply_hide_and_delete(
    graph: GraphClient, account: AccountRef, sandbox: Any
) -> None:
    comment, _ = await sandbox.comment(IG, "nice", from_id="777")
    reply_id = await graph.reply_to_comment(account, comment.id, "Thanks!")
    assert sandbox.state.comments[reply_id].parent_id == comment.id
    await graph.hide_comment(account, comment.id)
    assert sandbox.state.comments[comment.id].hidden is True
    await graph.delete_comment(account, comment.id)
    assert comment.id not in sandbox.state.comments


async def test_other_accounts_objects_are_invisible(
    graph: GraphClient, account: AccountRef, sandbox: Any
) -> None:
    sandbox.state.add_account("999", "other")
    post = sandbox.state.add_media("999", caption="theirs")
    error = await graph_error(graph.media_fields(account, post.id))
    assert (error.code, error.subcode) == (100, 33)


# ------------------------------------------------------------------ tokens, insights


async def test_unknown_token_is_error_190(graph: GraphClient) -> None:
    stranger = AccountRef(ig_id=IG, token="nope", login_kind="sandbox")
    error = await graph_error(graph.profile(stranger))
    assert (error.code, error.kind) == (190, ErrorKind.TOKEN_INVALID)


async def test_tokens_reelay_signs_need_no_registration(graph: GraphClient, sandbox: Any) -> None:
    token = sandbox_token("sandbox-secret", "1784140000000000042")
    demo = AccountRef(ig_id="1784140000000000042", token=token, login_kind="sandbox")
    profile = await graph.profile(demo)
    # A new account comes with its sample posts.
    assert profile["username"] == "reelay_demo" and profile["media_count"] == 3
    forged = AccountRef(ig_id="1784140000000000042", token=token[:-1] + "0", login_kind="sandbox")
    assert (await graph_error(graph.profile(forged))).kind is ErrorKind.TOKEN_INVALID


async def test_insights_and_subscription(
    graph: GraphClient, account: AccountRef, sandbox: Any
) -> None:
    day = datetime(2025, 6, 1, tzinfo=UTC).date()
    rows = await graph.account_insights(account, ["reach", "views"], day, day)
    assert [r["name"] for r in rows] == ["reach", "views"]
    assert isinstance(rows[0]["total_value"]["value"], int)
    error = await graph_error(graph.account_insights(account, ["impressions"], day, day))
    assert (error.code, error.kind) == (100, ErrorKind.PERMANENT)
    post = sandbox.state.add_media(IG)
    assert [r["name"] for r in await graph.media_insights(account, post.id, ["views"])] == ["views"]
    assert await graph.subscribe_app(account, ["comments", "messages"]) is True
    assert sandbox.state.accounts[IG].subscribed_fields == ["comments", "messages"]


async def test_follower_count_has_a_value_per_day_stamped_with_its_end_like_meta(
    graph: GraphClient, account: AccountRef
) -> None:
    from core.domain.insights import daily_values

    rows = await graph.account_insights(
        account, ["follower_count"], date(2026, 11, 18), date(2026, 11, 20), metric_type=None
    )
    (row,) = rows
    assert (row["name"], row["period"]) == ("follower_count", "day")
    assert [v["end_time"] for v in row["values"]] == [
        "2026-11-19T08:00:00+0000",  # midnight Pacific standard time
        "2026-11-20T08:00:00+0000",
    ]
    assert all(isinstance(v["value"], int) for v in row["values"])
    summer = await graph.account_insights(
        account, ["follower_count"], date(2026, 7, 1), date(2026, 7, 2), metric_type=None
    )
    assert [v["end_time"] for v in summer[0]["values"]] == ["2026-07-02T07:00:00+0000"]
    assert list(daily_values(rows, "follower_count")) == [date(2026, 11, 18), date(2026, 11, 19)]


# ------------------------------------------------------------------ faults


async def test_injected_5xx_is_retried_on_reads_only(
    graph: GraphClient, account: AccountRef, sandbox: Any, media: str
) -> None:
    sandbox.faults.fail(502, code=None, method="GET", times=2)
    assert (await graph.profile(account))["username"] == "sandbox_shop"
    sandbox.faults.fail(500, method="POST", path="/media$")
    error = await graph_error(graph.create_image_container(account, f"{media}/square.jpg"))
    assert (error.kind, error.http_status) == (ErrorKind.TRANSIENT, 500)
    assert sandbox.state.containers == {}


async def test_injected_rate_limit_and_usage(
    graph: GraphClient, account: AccountRef, sandbox: Any
) -> None:
    sandbox.faults.rate_limit(80002, regain_minutes=4)
    error = await graph_error(graph.profile(account))
    assert (error.code, error.kind, error.retry_after_s) == (80002, ErrorKind.RATE_LIMITED, 240)
    error = await graph_error(graph.profile(account))  # the client stops calling
    assert (error.code, error.retry_after_s) == (None, 240)

    other = AccountRef(ig_id=IG, token=account.token, login_kind="sandbox", account_id=2)
    sandbox.faults.usage(business_pct=100, regain_minutes=2)
    await graph.media_list(other)
    error = await graph_error(graph.media_list(other))
    assert error.kind is ErrorKind.RATE_LIMITED and error.retry_after_s == 120


async def test_injected_timeout(graph: GraphClient, account: AccountRef, sandbox: Any) -> None:
    sandbox.faults.timeout(5, method="POST", path="/messages$")
    await sandbox.dm(IG, "hi", from_id="555")
    error = await graph_error(graph.send_message(account, Recipient(igsid="555"), {"text": "x"}))
    assert error.kind is ErrorKind.TRANSIENT and "may or may not" in error.title


# ------------------------------------------------------------------ webhooks


@pytest.fixture
async def receiver(sandbox: Any) -> AsyncIterator[list[tuple[dict[str, Any], bool]]]:
    """A webhook endpoint recording each event and whether its signature checks out."""
    received: list[tuple[dict[str, Any], bool]] = []

    async def hook(request: web.Request) -> web.Response:
        raw = await request.read()
        expected = "sha256=" + hmac.new(b"app-secret", raw, hashlib.sha256).hexdigest()
        ok = hmac.compare_digest(expected, request.headers.get("X-Hub-Signature-256", ""))
        received.append((json.loads(raw), ok))
        return web.Response(text="EVENT_RECEIVED")

    app = web.Application()
    app.router.add_post("/webhooks/meta", hook)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    sandbox.state.webhook_url = f"http://127.0.0.1:{port}/webhooks/meta"
    yield received
    await runner.cleanup()


async def test_comment_webhooks_in_both_shapes(
    sandbox: Any, account: AccountRef, receiver: list[tuple[dict[str, Any], bool]]
) -> None:
    post = sandbox.state.add_media(IG, caption="Sale")
    first, delivery = await sandbox.comment(IG, "PRICE?", from_id="777", username="ann")
    second, _ = await sandbox.comment(IG, "info", shape="changes", id_key="comment_id")
    assert delivery.status == 200
    (event1, ok1), (event2, ok2) = receiver
    assert ok1 and ok2
    entry = event1["entry"][0]
    assert entry["id"] == IG and entry["field"] == "comments"
    assert entry["value"] == {
        "id": first.id,
        "from": {"id": "777", "username": "ann"},
        "text": "PRICE?",
        "media": {"id": post.id, "media_product_type": "FEED"},
    }
    change = event2["entry"][0]["changes"][0]
    assert change["field"] == "comments" and change["value"]["comment_id"] == second.id


async def test_live_and_ad_comments_from_the_follower_console(
    graph: GraphClient,
    sandbox: Any,
    account: AccountRef,
    receiver: list[tuple[dict[str, Any], bool]],
) -> None:
    from core.domain.webhooks import parse_payload
    from core.services.accounts import WEBHOOK_FIELDS

    assert await graph.subscribe_app(account, list(WEBHOOK_FIELDS)) is True
    assert "live_comments" in sandbox.state.accounts[IG].subscribed_fields
    post = sandbox.state.add_media(IG, caption="Sale")
    async with aiohttp.ClientSession() as http:
        for event in ("live_comment", "ad_comment"):
            body = {"ig_id": IG, "text": "price?", "username": "ann", "media_id": post.id}
            async with http.post(f"{sandbox.url}/_sandbox/{event}", json=body) as response:
                assert (await response.json())["webhook_status"] == 200
    (live, ok1), (ad, ok2) = receiver
    assert ok1 and ok2
    change = live["entry"][0]["changes"][0]
    assert change["field"] == "live_comments"
    assert set(change["value"]) == {"id", "from", "text", "media"}
    assert change["value"]["media"]["id"] != post.id  # the Live broadcast, not the post
    assert [m.id for m in sandbox.state.feed(IG)] == [post.id]  # a Live is no post
    media = ad["entry"][0]["value"]["media"]
    assert media == {
        "id": post.id,
        "media_product_type": "AD",
        "ad_id": f"ad_{post.id}",
        "ad_title": "Ad: Sale",
    }
    (live_event,) = parse_payload(live)
    (ad_event,) = parse_payload(ad)
    assert live_event.trigger == "live_comment" and not live_event.is_ad
    assert ad_event.trigger == "comment" and ad_event.is_ad and ad_event.ad_title == "Ad: Sale"


async def test_messaging_webhooks(
    sandbox: Any, account: AccountRef, receiver: list[tuple[dict[str, Any], bool]]
) -> None:
    mid, _ = await sandbox.dm(IG, "hello", from_id="555", quick_reply="SIZE_M")
    await sandbox.postback(IG, "PRICE", title="Price", from_id="555")
    await sandbox.story_reply(IG, "wow", from_id="555")
    await sandbox.story_mention(IG, from_id="555")
    assert all(ok for _, ok in receiver)
    items = [event["entry"][0]["messaging"][0] for event, _ in receiver]
    assert all(i["sender"] == {"id": "555"} and i["recipient"] == {"id": IG} for i in items)
    assert items[0]["message"] == {
        "mid": mid,
        "text": "hello",
        "quick_reply": {"payload": "SIZE_M"},
    }
    assert items[1]["postback"]["payload"] == "PRICE" and items[1]["postback"]["title"] == "Price"
    assert items[2]["message"]["reply_to"]["story"]["id"]
    assert items[3]["message"]["attachments"][0]["type"] == "story_mention"


async def test_no_webhooks_for_an_account_that_unsubscribed_the_app(
    graph: GraphClient, sandbox: Any, account: AccountRef, receiver: list[Any]
) -> None:
    assert await graph.unsubscribe_app(account) is True
    assert sandbox.state.accounts[IG].subscribed_fields == []
    _, delivery = await sandbox.comment(IG, "PRICE?")
    await sandbox.dm(IG, "hello")
    assert receiver == [] and delivery.status is None and "unsubscribed" in delivery.error
    other = "17841400000000002"
    sandbox.state.add_account(other, "other_shop")
    await sandbox.dm(other, "still here")  # other accounts are not silenced
    assert len(receiver) == 1 and receiver[0][0]["entry"][0]["id"] == other
    assert await graph.subscribe_app(account, ["comments"]) is True
    _, delivery = await sandbox.comment(IG, "back")
    assert delivery.status == 200 and len(receiver) == 2


async def test_control_endpoints_act_as_a_follower(
    sandbox: Any, receiver: list[tuple[dict[str, Any], bool]]
) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.post(
            f"{sandbox.url}/_sandbox/comment",
            json={"ig_id": IG, "text": "LINK please", "username": "bob"},
        ) as response:
            answer = await response.json()
        async with http.get(f"{sandbox.url}/_sandbox/state", params={"ig_id": IG}) as response:
            state = await response.json()
    assert answer["webhook_status"] == 200
    assert receiver[0][0]["entry"][0]["value"]["text"] == "LINK please"
    assert state["comments"][0]["id"] == answer["id"]
    assert any(media["caption"].startswith("Welcome") for media in state["feed"])


async def test_echoes_follow_sends_when_enabled(
    graph: GraphClient, account: AccountRef, sandbox: Any, receiver: list[Any]
) -> None:
    sandbox.echoes = True
    await sandbox.dm(IG, "hi", from_id="555")
    sent = await graph.send_message(account, Recipient(igsid="555"), {"text": "Hello"})
    for _ in range(100):
        if len(receiver) == 2:
            break
        await asyncio.sleep(0.01)
    echo = receiver[1][0]["entry"][0]["messaging"][0]
    assert echo["message"]["is_echo"] is True and echo["message"]["mid"] == sent.message_id
    assert echo["recipient"] == {"id": "555"}


# ------------------------------------------------------------------ lost answers and read-backs


async def test_a_conversation_lists_both_sides_newest_first(
    graph: GraphClient, account: AccountRef, sandbox: Any
) -> None:
    comment, _ = await sandbox.comment(IG, "price?", from_id="777")
    await sandbox.dm(IG, "hello", from_id="777")
    await graph.send_message(account, Recipient(comment_id=comment.id), {"text": "Our prices"})
    buttons = {"template_type": "button", "text": "Pick", "buttons": []}
    await graph.send_message(
        account, Recipient(igsid="777"), {"attachment": {"type": "template", "payload": buttons}}
    )
    messages = await graph.conversation_messages(account, "777")
    assert [(m["message"], m["from"]["id"]) for m in messages] == [
        ("Pick", IG),
        ("Our prices", IG),
        ("hello", "777"),
    ]
    assert await graph.conversation_messages(account, "888") == []


async def test_a_lost_answer_comes_after_the_effect_and_a_refusal_leaves_none(
    graph: GraphClient, account: AccountRef, sandbox: Any
) -> None:
    sandbox.faults.lost_answer("502", path=r"/messages$")
    error = await graph_error(graph.send_message(account, Recipient(igsid="777"), {"text": "x"}))
    assert error.maybe_sent  # refused (outside the window): nothing sent, the answer lost
    assert sandbox.state.sent == []
    await sandbox.dm(IG, "hello", from_id="777")
    sandbox.faults.lost_answer("502", path=r"/messages$")
    error = await graph_error(graph.send_message(account, Recipient(igsid="777"), {"text": "y"}))
    assert error.maybe_sent
    assert [s.payload for s in sandbox.state.sent] == [{"message": {"text": "y"}}]
    with pytest.raises(ValueError, match="unknown way"):
        sandbox.faults.lost_answer("lost")


async def test_a_follower_taps_an_ice_breaker_the_account_set(
    graph: GraphClient, account: AccountRef, sandbox: Any, receiver: list[Any]
) -> None:
    questions = [{"question": "Opening hours?", "payload": "HOURS"}]
    body = {"platform": "instagram", "ice_breakers": [{"call_to_actions": questions}]}
    async with aiohttp.ClientSession() as http:
        tap = {"ig_id": IG, "from_id": "555", "index": 0}
        async with http.post(f"{sandbox.url}/_sandbox/ice_breaker", json=tap) as response:
            assert response.status == 400  # none set yet: nothing to tap
        assert await graph.set_messenger_profile(account, body) is True
        async with http.post(f"{sandbox.url}/_sandbox/ice_breaker", json=tap) as response:
            answer = await response.json()
    assert answer["webhook_status"] == 200
    (item,) = [event["entry"][0]["messaging"][0] for event, _ in receiver]
    assert item["postback"]["payload"] == "HOURS"
    assert item["postback"]["title"] == "Opening hours?"
    refused = await graph_error(graph.set_messenger_profile(account, {"ice_breakers": []}))
    assert refused.code == 100  # no platform=instagram


async def test_a_hidden_comment_is_flagged_for_the_owner_and_a_deleted_one_is_gone(
    graph: GraphClient, account: AccountRef, sandbox: Any
) -> None:
    comment, _ = await sandbox.comment(IG, "buy followers at spam.example", from_id="777")
    reply, _ = await sandbox.comment(IG, "me too", from_id="778", parent_id=comment.id)
    await graph.hide_comment(account, comment.id)
    assert (await graph.comment(account, comment.id))["hidden"] is True
    page = await graph.media_comments(account, comment.media_id, moderation=True)
    assert [c["hidden"] for c in page.items if c["id"] == comment.id] == [True]
    url = f"{sandbox.url}/p/{comment.media_id}/"
    async with aiohttp.ClientSession() as http, http.get(url) as response:
        public = await response.json()
    assert public["comments_count"] == 1  # only the reply: others do not see a hidden comment
    await graph.hide_comment(account, comment.id, hide=False)
    assert sandbox.state.comments[comment.id].hidden is False
    await graph.delete_comment(account, comment.id)
    assert comment.id not in sandbox.state.comments
    assert reply.id not in sandbox.state.comments  # its replies go with it
    with pytest.raises(GraphError) as caught:
        await graph.delete_comment(account, comment.id)
    assert object_gone(caught.value)
