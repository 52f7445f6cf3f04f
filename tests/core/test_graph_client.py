"""The Graph client against stubbed Meta endpoints: request shapes, parsing, errors, retries."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from datetime import date
from typing import Any

import aiohttp
import pytest
from aioresponses import aioresponses
from yarl import URL

from core.adapters.graph import GraphClient, MemoryUsageStore
from core.domain.graph_errors import ErrorKind, GraphError, Usage
from core.ports.instagram import AccountRef, Recipient
from core.settings import Settings

IG = "https://graph.instagram.com/v25.0"
FB = "https://graph.facebook.com/v25.0"
ACCOUNT = AccountRef(ig_id="1784", token="tok-123", account_id=7)


class Sleeps:
    def __init__(self) -> None:
        self.calls: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


@pytest.fixture
def settings_() -> Settings:
    return Settings(_env_file=None, meta_app_id="1")  # type: ignore[call-arg]


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def graph(http: aiohttp.ClientSession, settings_: Settings, sleeps: Sleeps) -> GraphClient:
    return GraphClient(http, settings_, sleep=sleeps, jitter=lambda: 0.5)


@pytest.fixture
def meta() -> Any:
    with aioresponses() as mocked:
        yield mocked


PUBLISH = re.compile(rf"{re.escape(IG)}/1784/media_publish\?.*")


def sent(meta: Any, method: str, url: str) -> list[Any]:
    """The calls made to ``url`` (without query) with ``method``."""
    found = []
    for (m, u), calls in meta.requests.items():
        if m == method and str(u.with_query(None)) == url:
            found.extend(calls)
    return found


def query_of(meta: Any, method: str, url: str) -> dict[str, str]:
    for (m, u), _ in meta.requests.items():
        if m == method and str(u.with_query(None)) == url:
            return dict(u.query)
    raise AssertionError(f"no {method} {url}")


def error_body(code: int, subcode: int | None = None, message: str = "nope") -> dict[str, Any]:
    error: dict[str, Any] = {"message": message, "type": "OAuthException", "code": code}
    if subcode:
        error["error_subcode"] = subcode
    error["fbtrace_id"] = "trace"
    return {"error": error}


# ------------------------------------------------------------------ hosts and auth


def test_host_follows_login_kind(settings_: Settings) -> None:
    assert settings_.graph_base_url("instagram") == "https://graph.instagram.com"
    assert settings_.graph_base_url("facebook") == "https://graph.facebook.com"
    assert settings_.graph_base_url("sandbox") == "http://127.0.0.1:8010"


async def test_token_goes_in_bearer_header_never_in_url(graph: GraphClient, meta: Any) -> None:
    meta.get(re.compile(rf"{IG}/1784\?.*"), payload={"id": "1784", "username": "shop"})
    profile = await graph.profile(ACCOUNT)
    assert profile["username"] == "shop"
    ((_, url),) = meta.requests.keys()
    assert "tok-123" not in str(url)
    call = next(iter(meta.requests.values()))[0]
    assert call.kwargs["headers"]["Authorization"] == "Bearer tok-123"
    assert "username" in url.query["fields"]
    assert "followers_count" in url.query["fields"]


async def test_facebook_login_accounts_use_the_facebook_host(graph: GraphClient, meta: Any) -> None:
    account = AccountRef(ig_id="1784", token="page-tok", login_kind="facebook", page_id="55")
    meta.post(re.compile(rf"{FB}/55/subscribed_apps\?.*"), payload={"success": True})
    assert await graph.subscribe_app(account, ["comments", "messages"]) is True
    # In the query string, as Meta documents it: subscribed_apps?subscribed_fields=...
    assert query_of(meta, "POST", f"{FB}/55/subscribed_apps") == {
        "subscribed_fields": "comments,messages"
    }


async def test_instagram_login_subscribes_the_account(graph: GraphClient, meta: Any) -> None:
    meta.post(re.compile(rf"{IG}/1784/subscribed_apps\?.*"), payload={"success": True})
    assert await graph.subscribe_app(ACCOUNT, ["comments"]) is True


async def test_unsubscribing_deletes_the_subscription_of_the_account_or_page(
    graph: GraphClient, meta: Any
) -> None:
    meta.delete(f"{IG}/1784/subscribed_apps", payload={"success": True})
    assert await graph.unsubscribe_app(ACCOUNT) is True
    (call,) = sent(meta, "DELETE", f"{IG}/1784/subscribed_apps")
    assert call.kwargs["headers"]["Authorization"] == "Bearer tok-123"
    page = AccountRef(ig_id="1784", token="page-tok", login_kind="facebook", page_id="55")
    meta.delete(f"{FB}/55/subscribed_apps", payload={"success": True})
    assert await graph.unsubscribe_app(page) is True
    assert len(sent(meta, "DELETE", f"{FB}/55/subscribed_apps")) == 1


async def test_unsubscribing_with_a_dead_token_raises_token_invalid(
    graph: GraphClient, meta: Any
) -> None:
    meta.delete(f"{IG}/1784/subscribed_apps", status=400, payload=error_body(190))
    with pytest.raises(GraphError) as caught:
        await graph.unsubscribe_app(ACCOUNT)
    assert (caught.value.code, caught.value.kind) == (190, ErrorKind.TOKEN_INVALID)


# ------------------------------------------------------------------ publishing


async def test_image_container(graph: GraphClient, meta: Any) -> None:
    meta.post(f"{IG}/1784/media", payload={"id": "c1"})
    container = await graph.create_image_container(
        ACCOUNT,
        "https://x.test/a.jpg",
        caption="Hello #x",
        alt_text="a cat",
        collaborators=["ann", "bob"],
    )
    assert container == "c1"
    (call,) = sent(meta, "POST", f"{IG}/1784/media")
    assert call.kwargs["data"] == {
        "image_url": "https://x.test/a.jpg",
        "caption": "Hello #x",
        "alt_text": "a cat",
        "collaborators": '["ann", "bob"]',
    }


async def test_carousel_children_then_parent(graph: GraphClient, meta: Any) -> None:
    meta.post(f"{IG}/1784/media", payload={"id": "k1"})
    meta.post(f"{IG}/1784/media", payload={"id": "k2"})
    meta.post(f"{IG}/1784/media", payload={"id": "parent"})
    first = await graph.create_image_container(
        ACCOUNT, "https://x.test/1.jpg", caption="ignored", is_carousel_item=True
    )
    second = await graph.create_video_container(
        ACCOUNT, "https://x.test/2.mp4", is_carousel_item=True
    )
    parent = await graph.create_carousel_container(ACCOUNT, [first, second], caption="Both")
    assert parent == "parent"
    calls = sent(meta, "POST", f"{IG}/1784/media")
    assert calls[0].kwargs["data"] == {
        "image_url": "https://x.test/1.jpg",
        "is_carousel_item": "true",
    }
    assert calls[1].kwargs["data"] == {
        "media_type": "VIDEO",
        "video_url": "https://x.test/2.mp4",
        "is_carousel_item": "true",
    }
    assert calls[2].kwargs["data"] == {
        "media_type": "CAROUSEL",
        "children": "k1,k2",
        "caption": "Both",
    }


async def test_reel_container(graph: GraphClient, meta: Any) -> None:
    meta.post(f"{IG}/1784/media", payload={"id": "r1"})
    await graph.create_video_container(
        ACCOUNT,
        "https://x.test/v.mp4",
        caption="Reel",
        share_to_feed=True,
        cover_url="https://x.test/c.jpg",
        thumb_offset_ms=1500,
    )
    (call,) = sent(meta, "POST", f"{IG}/1784/media")
    assert call.kwargs["data"] == {
        "media_type": "REELS",
        "video_url": "https://x.test/v.mp4",
        "caption": "Reel",
        "share_to_feed": "true",
        "cover_url": "https://x.test/c.jpg",
        "thumb_offset": "1500",
    }


async def test_story_container(graph: GraphClient, meta: Any) -> None:
    meta.post(f"{IG}/1784/media", payload={"id": "s1"})
    assert await graph.create_story_container(ACCOUNT, image_url="https://x.test/s.jpg") == "s1"
    (call,) = sent(meta, "POST", f"{IG}/1784/media")
    assert call.kwargs["data"] == {"media_type": "STORIES", "image_url": "https://x.test/s.jpg"}
    with pytest.raises(ValueError, match="exactly one of image_url or video_url"):
        await graph.create_story_container(ACCOUNT)


async def test_status_publish_permalink_and_first_comment(graph: GraphClient, meta: Any) -> None:
    meta.get(re.compile(rf"{IG}/c1\?.*"), payload={"status_code": "FINISHED", "id": "c1"})
    meta.post(PUBLISH, payload={"id": "m1"})
    meta.get(
        re.compile(rf"{IG}/m1\?.*"),
        payload={"permalink": "https://instagram.com/p/x", "timestamp": "2025-01-01T00:00:00+0000"},
    )
    meta.post(f"{IG}/m1/comments", payload={"id": "cm1"})

    status = await graph.container_status(ACCOUNT, "c1")
    assert (status.status_code, status.status) == ("FINISHED", "")
    assert query_of(meta, "GET", f"{IG}/c1") == {"fields": "status_code,status"}
    assert await graph.publish_container(ACCOUNT, "c1") == "m1"
    # In the query string, as Meta documents it: media_publish?creation_id=...
    assert query_of(meta, "POST", f"{IG}/1784/media_publish") == {"creation_id": "c1"}
    fields = await graph.media_fields(ACCOUNT, "m1")
    assert fields["permalink"] == "https://instagram.com/p/x"
    assert await graph.post_comment(ACCOUNT, "m1", "first!") == "cm1"
    (call,) = sent(meta, "POST", f"{IG}/m1/comments")
    assert call.kwargs["data"] == {"message": "first!"}


async def test_publishing_limit(graph: GraphClient, meta: Any) -> None:
    meta.get(
        re.compile(rf"{IG}/1784/content_publishing_limit\?.*"),
        payload={
            "data": [{"quota_usage": 2, "config": {"quota_total": 50, "quota_duration": 86400}}]
        },
    )
    limit = await graph.publishing_limit(ACCOUNT)
    assert (limit.quota_usage, limit.quota_total, limit.quota_duration_s) == (2, 50, 86400)
    assert query_of(meta, "GET", f"{IG}/1784/content_publishing_limit") == {
        "fields": "quota_usage,config"
    }


# ------------------------------------------------------------------ messaging and comments


async def test_send_text_dm(graph: GraphClient, meta: Any) -> None:
    meta.post(f"{IG}/1784/messages", payload={"recipient_id": "u1", "message_id": "mid.1"})
    result = await graph.send_message(ACCOUNT, Recipient(igsid="u1"), {"text": "Hi"})
    assert (result.recipient_id, result.message_id) == ("u1", "mid.1")
    (call,) = sent(meta, "POST", f"{IG}/1784/messages")
    assert call.kwargs["json"] == {"recipient": {"id": "u1"}, "message": {"text": "Hi"}}


async def test_a_human_agent_reply_carries_the_message_tag(graph: GraphClient, meta: Any) -> None:
    meta.post(f"{IG}/1784/messages", payload={"recipient_id": "u1", "message_id": "mid.9"})
    await graph.send_message(ACCOUNT, Recipient(igsid="u1"), {"text": "Hi"}, tag="HUMAN_AGENT")
    (call,) = sent(meta, "POST", f"{IG}/1784/messages")
    assert call.kwargs["json"] == {
        "recipient": {"id": "u1"},
        "message": {"text": "Hi"},
        "messaging_type": "MESSAGE_TAG",
        "tag": "HUMAN_AGENT",
    }


async def test_private_reply_with_buttons(graph: GraphClient, meta: Any) -> None:
    meta.post(f"{IG}/1784/messages", payload={"recipient_id": "u1", "message_id": "mid.2"})
    template = {
        "attachment": {
            "type": "template",
            "payload": {
                "template_type": "button",
                "text": "Pick one",
                "buttons": [{"type": "postback", "title": "Price", "payload": "PRICE"}],
            },
        }
    }
    await graph.send_message(ACCOUNT, Recipient(comment_id="cmt9"), template)
    (call,) = sent(meta, "POST", f"{IG}/1784/messages")
    assert call.kwargs["json"]["recipient"] == {"comment_id": "cmt9"}
    assert call.kwargs["json"]["message"] == template


async def test_quick_replies(graph: GraphClient, meta: Any) -> None:
    meta.post(f"{IG}/1784/messages", payload={"recipient_id": "u1", "message_id": "mid.3"})
    message = {
        "text": "Size?",
        "quick_replies": [{"content_type": "text", "title": "S", "payload": "S"}],
    }
    await graph.send_message(ACCOUNT, Recipient(igsid="u1"), message)
    (call,) = sent(meta, "POST", f"{IG}/1784/messages")
    assert call.kwargs["json"]["message"]["quick_replies"][0]["payload"] == "S"


async def test_comment_reply_hide_and_delete(graph: GraphClient, meta: Any) -> None:
    meta.post(f"{IG}/cm1/replies", payload={"id": "r1"})
    meta.post(f"{IG}/cm1?hide=true", payload={"success": True})
    meta.post(f"{IG}/cm1?hide=false", payload={"success": True})
    meta.delete(f"{IG}/cm1", payload={"success": True})
    assert await graph.reply_to_comment(ACCOUNT, "cm1", "Thanks!") == "r1"
    (call,) = sent(meta, "POST", f"{IG}/cm1/replies")
    assert call.kwargs["data"] == {"message": "Thanks!"}
    # Hiding is ``POST /{comment-id}?hide=true``: the query string, no body.
    await graph.hide_comment(ACCOUNT, "cm1")
    await graph.hide_comment(ACCOUNT, "cm1", hide=False)
    hide, unhide = sent(meta, "POST", f"{IG}/cm1")
    assert (hide.kwargs["params"], hide.kwargs["data"]) == ({"hide": "true"}, None)
    assert (unhide.kwargs["params"], unhide.kwargs["data"]) == ({"hide": "false"}, None)
    await graph.delete_comment(ACCOUNT, "cm1")
    (call,) = sent(meta, "DELETE", f"{IG}/cm1")
    assert call.kwargs["data"] is None and call.kwargs["params"] is None


async def test_comments_for_moderation_ask_whether_each_is_hidden(
    graph: GraphClient, meta: Any
) -> None:
    url = re.compile(rf"{re.escape(IG)}/m1/comments\?.*")
    meta.get(url, payload={"data": [{"id": "c1", "hidden": True}], "paging": {}})
    page = await graph.media_comments(ACCOUNT, "m1", moderation=True, after="cur", limit=20)
    assert page.items == [{"id": "c1", "hidden": True}] and page.after is None
    query = query_of(meta, "GET", f"{IG}/m1/comments")
    assert query["after"] == "cur" and query["limit"] == "20"
    fields = query["fields"]
    assert fields.startswith("id,text,timestamp,from,username,parent_id,hidden,like_count,")
    assert fields.endswith("replies{id,text,timestamp,from,username,parent_id,hidden,like_count}")


async def test_one_comment_is_read_with_its_hidden_flag(graph: GraphClient, meta: Any) -> None:
    meta.get(re.compile(rf"{re.escape(IG)}/cm1\?.*"), payload={"id": "cm1", "hidden": False})
    assert (await graph.comment(ACCOUNT, "cm1"))["hidden"] is False
    assert "hidden" in query_of(meta, "GET", f"{IG}/cm1")["fields"].split(",")


# ------------------------------------------------------------------ profile and insights


async def test_media_list(graph: GraphClient, meta: Any) -> None:
    meta.get(
        re.compile(rf"{IG}/1784/media\?.*"),
        payload={"data": [{"id": "m1", "media_type": "IMAGE"}], "paging": {}},
    )
    media = await graph.media_list(ACCOUNT, limit=10)
    assert media == [{"id": "m1", "media_type": "IMAGE"}]
    query = query_of(meta, "GET", f"{IG}/1784/media")
    assert query["limit"] == "10"
    assert "permalink" in query["fields"] and "media_product_type" in query["fields"]


async def test_account_insights(graph: GraphClient, meta: Any) -> None:
    rows = [{"name": "reach", "total_value": {"value": 12}}]
    meta.get(re.compile(rf"{IG}/1784/insights\?.*"), payload={"data": rows})
    got = await graph.account_insights(
        ACCOUNT, ["reach", "views"], date(2025, 1, 1), date(2025, 1, 2)
    )
    assert got == rows
    assert query_of(meta, "GET", f"{IG}/1784/insights") == {
        "metric": "reach,views",
        "period": "day",
        "since": "1735689600",
        "until": "1735776000",
        "metric_type": "total_value",
    }


async def test_media_insights(graph: GraphClient, meta: Any) -> None:
    meta.get(re.compile(rf"{IG}/m1/insights\?.*"), payload={"data": [{"name": "views"}]})
    assert await graph.media_insights(ACCOUNT, "m1", ["views", "reach"]) == [{"name": "views"}]
    assert query_of(meta, "GET", f"{IG}/m1/insights") == {"metric": "views,reach"}


# ------------------------------------------------------------------ errors and retries


@pytest.mark.parametrize(
    ("status", "body", "kind"),
    [
        (400, error_body(9007, 2207027), ErrorKind.NOT_READY),
        (400, error_body(9004, 2207052), ErrorKind.PERMANENT),
        (400, error_body(9, 2207042), ErrorKind.QUOTA),
        (400, error_body(-2, 2207020), ErrorKind.NEW_CONTAINER),
        (400, error_body(25, 2207050), ErrorKind.RESTRICTED),
        (400, error_body(190), ErrorKind.TOKEN_INVALID),
        (400, error_body(17), ErrorKind.RATE_LIMITED),
        (400, error_body(10, 2534022), ErrorKind.WINDOW_CLOSED),
        (400, error_body(10, 2534025), ErrorKind.ALREADY_DONE),
        (500, error_body(2), ErrorKind.TRANSIENT),
        (503, None, ErrorKind.TRANSIENT),
    ],
)
async def test_writes_raise_classified_errors_and_are_not_retried(
    graph: GraphClient, meta: Any, status: int, body: Any, kind: ErrorKind
) -> None:
    if body is None:
        meta.post(PUBLISH, status=status, body="Service Unavailable")
    else:
        meta.post(PUBLISH, status=status, payload=body)
    with pytest.raises(GraphError) as caught:
        await graph.publish_container(ACCOUNT, "c1")
    assert caught.value.kind is kind
    assert caught.value.http_status == status
    assert len(sent(meta, "POST", f"{IG}/1784/media_publish")) == 1


async def test_reads_retry_transient_errors_with_backoff(
    graph: GraphClient, meta: Any, sleeps: Sleeps
) -> None:
    url = re.compile(rf"{IG}/c1\?.*")
    meta.get(url, status=502, body="Bad Gateway")
    meta.get(url, status=500, payload=error_body(1))
    meta.get(url, payload={"status_code": "IN_PROGRESS"})
    status = await graph.container_status(ACCOUNT, "c1")
    assert status.status_code == "IN_PROGRESS"
    assert sleeps.calls == [0.5, 1.0]  # exponential, jitter pinned to x1


async def test_reads_give_up_after_the_last_attempt(
    graph: GraphClient, meta: Any, sleeps: Sleeps
) -> None:
    meta.get(re.compile(rf"{IG}/c1\?.*"), status=500, body="", repeat=True)
    with pytest.raises(GraphError) as caught:
        await graph.container_status(ACCOUNT, "c1")
    assert caught.value.kind is ErrorKind.TRANSIENT
    assert len(sleeps.calls) == 2


async def test_reads_do_not_retry_permanent_errors(
    graph: GraphClient, meta: Any, sleeps: Sleeps
) -> None:
    meta.get(re.compile(rf"{IG}/m1\?.*"), status=400, payload=error_body(100), repeat=True)
    with pytest.raises(GraphError) as caught:
        await graph.media_fields(ACCOUNT, "m1")
    assert caught.value.kind is ErrorKind.PERMANENT
    assert sleeps.calls == []


async def test_read_timeout_is_retried_but_a_write_timeout_is_not(
    graph: GraphClient, meta: Any, sleeps: Sleeps
) -> None:
    meta.get(re.compile(rf"{IG}/c1\?.*"), exception=TimeoutError())
    meta.get(re.compile(rf"{IG}/c1\?.*"), payload={"status_code": "FINISHED"})
    assert (await graph.container_status(ACCOUNT, "c1")).status_code == "FINISHED"
    meta.post(f"{IG}/1784/messages", exception=aiohttp.ServerDisconnectedError())
    with pytest.raises(GraphError) as caught:
        await graph.send_message(ACCOUNT, Recipient(igsid="u1"), {"text": "Hi"})
    assert caught.value.kind is ErrorKind.TRANSIENT
    assert "may or may not" in caught.value.title
    assert len(sent(meta, "POST", f"{IG}/1784/messages")) == 1


async def test_html_error_page_is_classified(graph: GraphClient, meta: Any) -> None:
    meta.post(f"{IG}/1784/media", status=502, body="<html>bad gateway</html>")
    with pytest.raises(GraphError) as caught:
        await graph.create_image_container(ACCOUNT, "https://x.test/a.jpg")
    assert caught.value.kind is ErrorKind.TRANSIENT


# ------------------------------------------------------------------ usage headers


async def test_usage_headers_are_recorded_per_account(
    http: aiohttp.ClientSession, settings_: Settings, meta: Any
) -> None:
    store = MemoryUsageStore()
    graph = GraphClient(http, settings_, usage=store)
    meta.get(
        re.compile(rf"{IG}/1784\?.*"),
        payload={"id": "1784"},
        headers={
            "X-App-Usage": json.dumps({"call_count": 10, "total_time": 5, "total_cputime": 3}),
            "X-Business-Use-Case-Usage": json.dumps(
                {"1784": [{"type": "instagram", "call_count": 42, "total_time": 9}]}
            ),
        },
    )
    await graph.profile(ACCOUNT)
    assert await store.get("7") == Usage(app_pct=10, business_pct=42, regain_after_s=None)
    assert await store.get("ig:other") is None


async def test_client_slows_down_near_the_limit(
    graph: GraphClient, meta: Any, sleeps: Sleeps
) -> None:
    await graph.usage.put("7", Usage(business_pct=90))
    meta.get(re.compile(rf"{IG}/1784\?.*"), payload={"id": "1784"})
    await graph.profile(ACCOUNT)
    assert len(sleeps.calls) == 1 and 0 < sleeps.calls[0] <= 5


async def test_client_stops_calling_at_full_usage(
    graph: GraphClient, meta: Any, sleeps: Sleeps
) -> None:
    await graph.usage.put("7", Usage(business_pct=100, regain_after_s=600))
    with pytest.raises(GraphError) as caught:
        await graph.publish_container(ACCOUNT, "c1")
    assert caught.value.kind is ErrorKind.RATE_LIMITED
    assert caught.value.retry_after_s == 600
    assert meta.requests == {}


async def test_rate_limit_error_takes_wait_from_headers(graph: GraphClient, meta: Any) -> None:
    meta.post(
        f"{IG}/1784/messages",
        status=400,
        payload=error_body(80002),
        headers={
            "X-Business-Use-Case-Usage": json.dumps(
                {"1784": [{"call_count": 100, "estimated_time_to_regain_access": 3}]}
            )
        },
    )
    with pytest.raises(GraphError) as caught:
        await graph.send_message(ACCOUNT, Recipient(igsid="u1"), {"text": "Hi"})
    assert caught.value.kind is ErrorKind.RATE_LIMITED
    assert caught.value.retry_after_s == 180


def test_url_uses_version_setting(http: aiohttp.ClientSession) -> None:
    settings = Settings(_env_file=None, graph_version="v23.0")  # type: ignore[call-arg]
    graph = GraphClient(http, settings)
    assert URL(graph.url(ACCOUNT, "1784/media")) == URL(
        "https://graph.instagram.com/v23.0/1784/media"
    )


async def test_facebook_login_messages_go_through_the_page(graph: GraphClient, meta: Any) -> None:
    account = AccountRef(ig_id="1784", token="page-tok", login_kind="facebook", page_id="55")
    meta.post(f"{FB}/me/messages", payload={"recipient_id": "u1", "message_id": "mid.9"})
    sent_message = await graph.send_message(account, Recipient(comment_id="c1"), {"text": "Hi"})
    assert sent_message.message_id == "mid.9"
    (call,) = sent(meta, "POST", f"{FB}/me/messages")
    assert call.kwargs["headers"]["Authorization"] == "Bearer page-tok"
    assert call.kwargs["json"] == {"recipient": {"comment_id": "c1"}, "message": {"text": "Hi"}}


async def test_a_write_answered_without_an_id_is_a_classified_error(
    graph: GraphClient, meta: Any
) -> None:
    meta.post(f"{IG}/1784/media", payload={"success": True})
    meta.post(f"{IG}/cm1/replies", body="")
    with pytest.raises(GraphError) as caught:
        await graph.create_image_container(ACCOUNT, "https://x.test/a.jpg")
    assert caught.value.kind is ErrorKind.TRANSIENT
    assert "may or may not have gone through" in caught.value.title
    with pytest.raises(GraphError):
        await graph.reply_to_comment(ACCOUNT, "cm1", "thanks")


async def test_meta_error_body_with_user_message_is_classified(
    graph: GraphClient, meta: Any
) -> None:
    meta.post(
        f"{IG}/1784/media",
        status=400,
        payload={
            "error": {
                "message": "Only photo or video can be accepted as media type.",
                "type": "OAuthException",
                "code": 9004,
                "error_subcode": 2207052,
                "is_transient": False,
                "error_user_title": "Media download has failed",
                "error_user_msg": "The media could not be fetched from the URI provided.",
                "fbtrace_id": "AzWGYmYH0kdcz0mX0RHHdge",
            }
        },
    )
    with pytest.raises(GraphError) as caught:
        await graph.create_image_container(ACCOUNT, "https://x.test/a.jpg")
    error = caught.value
    assert (error.code, error.subcode, error.kind) == (9004, 2207052, ErrorKind.PERMANENT)
    assert "could not download the media" in error.title
    assert error.fbtrace_id == "AzWGYmYH0kdcz0mX0RHHdge"


async def test_html_with_200_is_transient_and_reads_are_retried(
    graph: GraphClient, meta: Any, sleeps: Sleeps
) -> None:
    meta.get(
        re.compile(rf"{IG}/1784\?.*"), status=200, body="<html>maintenance</html>", repeat=True
    )
    with pytest.raises(GraphError) as caught:
        await graph.profile(ACCOUNT)
    assert caught.value.kind is ErrorKind.TRANSIENT
    assert len(sleeps.calls) == 2  # three attempts


async def test_conversation_messages_are_read_with_the_token_in_the_header(
    graph: GraphClient, meta: Any
) -> None:
    url = re.compile(rf"{re.escape(IG)}/1784/conversations\?.*")
    messages = [{"id": "m2", "message": "Hi", "from": {"id": "1784"}, "created_time": "x"}]
    meta.get(url, payload={"data": [{"id": "conv", "messages": {"data": messages}}]})
    assert await graph.conversation_messages(ACCOUNT, "u1") == messages
    query = query_of(meta, "GET", f"{IG}/1784/conversations")
    assert query == {
        "platform": "instagram",
        "user_id": "u1",
        "fields": "messages{id,message,from,created_time}",
    }
    (call,) = sent(meta, "GET", f"{IG}/1784/conversations")
    assert call.kwargs["headers"]["Authorization"] == "Bearer tok-123"


# ------------------------------------------------------------------ messenger profile


async def test_the_messenger_profile_is_set_and_deleted_on_me_or_the_page(
    graph: GraphClient, meta: Any
) -> None:
    meta.post(f"{IG}/me/messenger_profile", payload={"result": "success"})
    body = {"platform": "instagram", "ice_breakers": [{"call_to_actions": [], "locale": "default"}]}
    assert await graph.set_messenger_profile(ACCOUNT, body) is True
    (call,) = sent(meta, "POST", f"{IG}/me/messenger_profile")
    assert call.kwargs["json"] == body
    page = AccountRef(ig_id="1784", token="page-tok", login_kind="facebook", page_id="55")
    meta.delete(f"{FB}/55/messenger_profile", payload={"result": "success"})
    assert await graph.delete_messenger_profile(page, ["persistent_menu"]) is True
    (call,) = sent(meta, "DELETE", f"{FB}/55/messenger_profile")
    assert call.kwargs["json"] == {"platform": "instagram", "fields": ["persistent_menu"]}


async def test_a_refused_messenger_profile_raises_a_classified_error(
    graph: GraphClient, meta: Any
) -> None:
    meta.post(f"{IG}/me/messenger_profile", status=400, payload=error_body(100, message="bad"))
    with pytest.raises(GraphError) as caught:
        await graph.set_messenger_profile(ACCOUNT, {"platform": "instagram"})
    assert caught.value.code == 100 and caught.value.kind is not ErrorKind.TRANSIENT
    assert len(sent(meta, "POST", f"{IG}/me/messenger_profile")) == 1  # a write: not retried
