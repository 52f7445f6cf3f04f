"""Sandbox contract: each scenario runs against Meta's documented answers (aioresponses stubs)
and against the sandbox, and Reelay's client must see the same results from both."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from aioresponses import aioresponses

from core.adapters.graph import GraphClient
from core.domain.graph_errors import GraphError, object_gone
from core.ports.instagram import AccountRef, Recipient
from core.settings import Settings
from tests.core.media_files import media_server

IG_ID = "17841400000000001"
META = "https://graph.instagram.com/v25.0"


@dataclass
class Env:
    """What a scenario acts on: the account, public media URLs, a comment id."""

    graph: GraphClient
    account: AccountRef
    media: str
    comment_id: str = "18000000000000001"
    person: str = "555"


Outcome = tuple[Any, ...]
Run = Callable[[Env], Awaitable[Outcome]]
Stub = Callable[[Any], None]


def error_of(exc: GraphError) -> Outcome:
    return ("error", exc.code, exc.subcode, exc.kind.value)


async def outcome(run: Run, env: Env) -> Outcome:
    try:
        return await run(env)
    except GraphError as exc:
        return error_of(exc)


def meta_error(code: int, subcode: int | None = None, message: str = "x") -> dict[str, Any]:
    error: dict[str, Any] = {"message": message, "type": "OAuthException", "code": code}
    if subcode is not None:
        error["error_subcode"] = subcode
    error["fbtrace_id"] = "A1b2C3"
    return {"error": error}


def q(path: str) -> re.Pattern[str]:
    return re.compile(rf"^{re.escape(META)}/{path}(\?.*)?$")


# ------------------------------------------------------------------ scenarios


async def publish_image(env: Env) -> Outcome:
    container = await env.graph.create_image_container(
        env.account, f"{env.media}/square.jpg", caption="Hi"
    )
    status = await env.graph.container_status(env.account, container)
    media_id = await env.graph.publish_container(env.account, container)
    fields = await env.graph.media_fields(env.account, media_id)
    comment = await env.graph.post_comment(env.account, media_id, "first")
    again = await env.graph.container_status(env.account, container)
    return (
        status.status_code,
        bool(media_id),
        "permalink" in fields,
        bool(comment),
        again.status_code,
    )


def publish_image_stub(meta: Any) -> None:
    meta.post(q(f"{IG_ID}/media"), payload={"id": "17889455560051444"})
    meta.get(q("17889455560051444"), payload={"status_code": "FINISHED", "id": "17889455560051444"})
    meta.post(q(f"{IG_ID}/media_publish"), payload={"id": "17920238422030506"})
    meta.get(
        q("17920238422030506"),
        payload={
            "permalink": "https://www.instagram.com/p/abc/",
            "timestamp": "2025-06-01T12:00:00+0000",
            "id": "17920238422030506",
        },
    )
    meta.post(q("17920238422030506/comments"), payload={"id": "17870913679156914"})
    meta.get(
        q("17889455560051444"), payload={"status_code": "PUBLISHED", "id": "17889455560051444"}
    )


async def reel_not_ready(env: Env) -> Outcome:
    container = await env.graph.create_video_container(env.account, f"{env.media}/clip.mp4")
    first = (await env.graph.container_status(env.account, container)).status_code
    try:
        await env.graph.publish_container(env.account, container)
    except GraphError as exc:
        return (first, *error_of(exc))
    return (first, "published")


def reel_not_ready_stub(meta: Any) -> None:
    meta.post(q(f"{IG_ID}/media"), payload={"id": "c9"})
    meta.get(q("c9"), payload={"status_code": "IN_PROGRESS", "id": "c9"})
    meta.post(q(f"{IG_ID}/media_publish"), status=400, payload=meta_error(9007, 2207027))


async def png_refused(env: Env) -> Outcome:
    await env.graph.create_image_container(env.account, f"{env.media}/photo.png")
    return ("created",)


def png_refused_stub(meta: Any) -> None:
    meta.post(q(f"{IG_ID}/media"), status=400, payload=meta_error(36001, 2207005))


async def url_not_public(env: Env) -> Outcome:
    await env.graph.create_image_container(env.account, f"{env.media}/gone.jpg")
    return ("created",)


def url_not_public_stub(meta: Any) -> None:
    meta.post(q(f"{IG_ID}/media"), status=400, payload=meta_error(9004, 2207052))


async def quota(env: Env) -> Outcome:
    limit = await env.graph.publishing_limit(env.account)
    return (limit.quota_usage, limit.quota_duration_s)


def quota_stub(meta: Any) -> None:
    meta.get(
        q(f"{IG_ID}/content_publishing_limit"),
        payload={
            "data": [{"quota_usage": 0, "config": {"quota_total": 50, "quota_duration": 86400}}]
        },
    )


async def dm_outside_window(env: Env) -> Outcome:
    sent = await env.graph.send_message(env.account, Recipient(igsid="31337"), {"text": "hi"})
    return (sent.recipient_id,)


def dm_outside_window_stub(meta: Any) -> None:
    meta.post(
        q(f"{IG_ID}/messages"),
        status=400,
        payload=meta_error(10, 2534022, "This message is sent outside of allowed window."),
    )


async def dm_inside_window(env: Env) -> Outcome:
    sent = await env.graph.send_message(
        env.account,
        Recipient(igsid=env.person),
        {"text": "Pick", "quick_replies": [{"content_type": "text", "title": "S", "payload": "S"}]},
    )
    return (sent.recipient_id, bool(sent.message_id))


def dm_inside_window_stub(meta: Any) -> None:
    meta.post(q(f"{IG_ID}/messages"), payload={"recipient_id": "555", "message_id": "aWdf1"})


async def private_reply_twice(env: Env) -> Outcome:
    to = Recipient(comment_id=env.comment_id)
    first = await env.graph.send_message(env.account, to, {"text": "Sent you a DM"})
    try:
        await env.graph.send_message(env.account, to, {"text": "again"})
    except GraphError as exc:
        return (bool(first.message_id), *error_of(exc))
    return (bool(first.message_id), "sent twice")


def private_reply_twice_stub(meta: Any) -> None:
    meta.post(q(f"{IG_ID}/messages"), payload={"recipient_id": "555", "message_id": "aWdf2"})
    meta.post(q(f"{IG_ID}/messages"), status=400, payload=meta_error(10, 2534025))


async def comment_moderation(env: Env) -> Outcome:
    reply = await env.graph.reply_to_comment(env.account, env.comment_id, "Thanks!")
    await env.graph.hide_comment(env.account, env.comment_id)
    hidden = (await env.graph.comment(env.account, env.comment_id))["hidden"]
    await env.graph.hide_comment(env.account, env.comment_id, hide=False)
    await env.graph.delete_comment(env.account, env.comment_id)
    try:
        await env.graph.comment(env.account, env.comment_id)
    except GraphError as exc:
        return (bool(reply), hidden, "gone", object_gone(exc))
    return (bool(reply), hidden, "still there")


def comment_moderation_stub(meta: Any) -> None:
    meta.post(q("18000000000000001/replies"), payload={"id": "18000000000000002"})
    meta.post(q("18000000000000001"), payload={"success": True})
    meta.get(q("18000000000000001"), payload={"id": "18000000000000001", "hidden": True})
    meta.post(q("18000000000000001"), payload={"success": True})
    meta.delete(q("18000000000000001"), payload={"success": True})
    gone = "Unsupported get request. Object with ID '18000000000000001' does not exist"
    meta.get(q("18000000000000001"), status=400, payload=meta_error(100, 33, gone))


async def read_back_a_reply_and_a_dm(env: Env) -> Outcome:
    """What the checks after a lost answer read: the comment's replies, the conversation."""
    await env.graph.reply_to_comment(env.account, env.comment_id, "Thanks!")
    await env.graph.send_message(env.account, Recipient(igsid=env.person), {"text": "Hi there"})
    replies = await env.graph.comment_replies(env.account, env.comment_id)
    messages = await env.graph.conversation_messages(env.account, env.person)
    ours = [m for m in messages if m["from"]["id"] == env.account.ig_id]
    return (
        [(r["text"], r["from"]["id"], bool(r["timestamp"])) for r in replies],
        [(m["message"], bool(m["id"]), bool(m["created_time"])) for m in ours],
    )


def read_back_a_reply_and_a_dm_stub(meta: Any) -> None:
    meta.post(q("18000000000000001/replies"), payload={"id": "18000000000000002"})
    meta.post(q(f"{IG_ID}/messages"), payload={"recipient_id": "555", "message_id": "aWdf3"})
    reply = {
        "id": "18000000000000002",
        "text": "Thanks!",
        "from": {"id": IG_ID, "username": "shop"},
        "timestamp": "2025-06-01T12:00:00+0000",
    }
    meta.get(q("18000000000000001/replies"), payload={"data": [reply]})
    sent = {
        "id": "aWdf3",
        "message": "Hi there",
        "from": {"id": IG_ID, "username": "shop"},
        "created_time": "2025-06-01T12:00:01+0000",
    }
    asked = {**sent, "id": "aWdf1", "message": "price?", "from": {"id": "555"}}
    conversation = {"id": "aWdfConv", "messages": {"data": [sent, asked]}}
    meta.get(q(f"{IG_ID}/conversations"), payload={"data": [conversation]})


async def follower_profile(env: Env) -> Outcome:
    """The user-profile API for a person who messaged the account, then for a stranger."""
    person = await env.graph.user_profile(env.account, env.person)
    try:
        await env.graph.user_profile(env.account, "31337")
    except GraphError as exc:
        stranger = error_of(exc)
    else:
        stranger = ("found",)
    return (
        sorted(person),
        person["username"],
        isinstance(person["name"], str) and bool(person["name"]),
        isinstance(person["follower_count"], int),
        isinstance(person["is_user_follow_business"], bool),
        isinstance(person["is_verified_user"], bool),
        *stranger,
    )


def follower_profile_stub(meta: Any) -> None:
    meta.get(
        q("555"),
        payload={
            "name": "Ann Adler",
            "username": "ann",
            "profile_pic": "https://scontent.example/ann.jpg",
            "follower_count": 12345,
            "is_user_follow_business": True,
            "is_verified_user": False,
            "id": "555",
        },
    )
    meta.get(q("31337"), status=400, payload=meta_error(100, 33))


async def read_recent_comments(env: Env) -> Outcome:
    """What the comment sweep reads: the media list, then a media's comments, page by page."""
    media = await env.graph.recent_media(env.account, limit=1)
    (first,) = media.items
    comments = await env.graph.media_comments(env.account, str(first["id"]), limit=1)
    return (
        media.after,
        first["comments_count"],
        bool(first["timestamp"]),
        [
            (c["id"] == env.comment_id, c["text"], c["from"], c["username"], bool(c["timestamp"]))
            for c in comments.items
        ],
        comments.after,
    )


def read_recent_comments_stub(meta: Any) -> None:
    post = {
        "id": "17920238422030506",
        "timestamp": "2025-06-01T12:00:00+0000",
        "comments_count": 1,
        "media_product_type": "FEED",
    }
    last_page = {"cursors": {"before": "QVFIUm", "after": "QVFIUn"}}
    meta.get(q(f"{IG_ID}/media"), payload={"data": [post], "paging": last_page})
    comment = {
        "id": "18000000000000001",
        "text": "price?",
        "timestamp": "2025-06-01T12:05:00+0000",
        "from": {"id": "555", "username": "ann"},
        "username": "ann",
    }
    meta.get(q("17920238422030506/comments"), payload={"data": [comment], "paging": last_page})


async def bad_token(env: Env) -> Outcome:
    stranger = AccountRef(ig_id=IG_ID, token="EAAbad", login_kind=env.account.login_kind)
    await env.graph.profile(stranger)
    return ("profile",)


def bad_token_stub(meta: Any) -> None:
    meta.get(
        q(IG_ID),
        status=400,
        payload=meta_error(190, None, "Invalid OAuth access token - Cannot parse access token"),
    )


async def removed_metric(env: Env) -> Outcome:
    from datetime import date

    await env.graph.account_insights(
        env.account, ["impressions"], date(2025, 6, 1), date(2025, 6, 2)
    )
    return ("insights",)


def removed_metric_stub(meta: Any) -> None:
    meta.get(q(f"{IG_ID}/insights"), status=400, payload=meta_error(100))


async def subscribe(env: Env) -> Outcome:
    return (await env.graph.subscribe_app(env.account, ["comments", "messages"]),)


def subscribe_stub(meta: Any) -> None:
    meta.post(q(f"{IG_ID}/subscribed_apps"), payload={"success": True})


async def unsubscribe(env: Env) -> Outcome:
    subscribed = await env.graph.subscribe_app(env.account, ["comments", "messages"])
    return (subscribed, await env.graph.unsubscribe_app(env.account))


def unsubscribe_stub(meta: Any) -> None:
    meta.post(q(f"{IG_ID}/subscribed_apps"), payload={"success": True})
    meta.delete(q(f"{IG_ID}/subscribed_apps"), payload={"success": True})


async def follow_check(env: Env) -> Outcome:
    """The user-profile API for a person who wrote: are they following the account?"""
    profile = await env.graph.user_profile(env.account, env.person)
    return (profile["is_user_follow_business"],)


def follow_check_stub(meta: Any) -> None:
    meta.get(
        q("555"),
        payload={"id": "555", "username": "ann", "is_user_follow_business": False},
    )


def ice_breakers(count: int) -> dict[str, Any]:
    questions = [{"question": f"Question {n}?", "payload": f"Q{n}"} for n in range(count)]
    return {
        "platform": "instagram",
        "ice_breakers": [{"call_to_actions": questions, "locale": "default"}],
        "persistent_menu": [
            {
                "locale": "default",
                "call_to_actions": [
                    {"type": "postback", "title": "Talk to us", "payload": "HUMAN"}
                ],
            }
        ],
    }


async def messenger_profile(env: Env) -> Outcome:
    """Set the ice breakers and menu, then delete the menu."""
    set_ = await env.graph.set_messenger_profile(env.account, ice_breakers(4))
    deleted = await env.graph.delete_messenger_profile(env.account, ["persistent_menu"])
    return (set_, deleted)


def messenger_profile_stub(meta: Any) -> None:
    meta.post(q("me/messenger_profile"), payload={"result": "success"})
    meta.delete(q("me/messenger_profile"), payload={"result": "success"})


async def five_ice_breakers(env: Env) -> Outcome:
    return (await env.graph.set_messenger_profile(env.account, ice_breakers(5)),)


def five_ice_breakers_stub(meta: Any) -> None:
    meta.post(q("me/messenger_profile"), status=400, payload=meta_error(100))


SCENARIOS: dict[str, tuple[Run, Stub, Outcome]] = {
    "follow_check": (follow_check, follow_check_stub, (False,)),
    "publish_image": (
        publish_image,
        publish_image_stub,
        ("FINISHED", True, True, True, "PUBLISHED"),
    ),
    "reel_not_ready": (
        reel_not_ready,
        reel_not_ready_stub,
        ("IN_PROGRESS", "error", 9007, 2207027, "not_ready"),
    ),
    "png_refused": (png_refused, png_refused_stub, ("error", 36001, 2207005, "permanent")),
    "url_not_public": (url_not_public, url_not_public_stub, ("error", 9004, 2207052, "permanent")),
    "quota": (quota, quota_stub, (0, 86400)),
    "dm_outside_window": (
        dm_outside_window,
        dm_outside_window_stub,
        ("error", 10, 2534022, "window_closed"),
    ),
    "dm_inside_window": (dm_inside_window, dm_inside_window_stub, ("555", True)),
    "private_reply_twice": (
        private_reply_twice,
        private_reply_twice_stub,
        (True, "error", 10, 2534025, "already_done"),
    ),
    "comment_moderation": (
        comment_moderation,
        comment_moderation_stub,
        (True, True, "gone", True),
    ),
    "read_back_a_reply_and_a_dm": (
        read_back_a_reply_and_a_dm,
        read_back_a_reply_and_a_dm_stub,
        (
            [("Thanks!", IG_ID, True)],
            [("Hi there", True, True)],
        ),
    ),
    "read_recent_comments": (
        read_recent_comments,
        read_recent_comments_stub,
        (None, 1, True, [(True, "price?", {"id": "555", "username": "ann"}, "ann", True)], None),
    ),
    "bad_token": (bad_token, bad_token_stub, ("error", 190, None, "token_invalid")),
    "follower_profile": (
        follower_profile,
        follower_profile_stub,
        (
            sorted(
                [
                    "follower_count",
                    "id",
                    "is_user_follow_business",
                    "is_verified_user",
                    "name",
                    "profile_pic",
                    "username",
                ]
            ),
            "ann",
            True,
            True,
            True,
            True,
            "error",
            100,
            33,
            "permanent",
        ),
    ),
    "removed_metric": (removed_metric, removed_metric_stub, ("error", 100, None, "permanent")),
    "subscribe": (subscribe, subscribe_stub, (True,)),
    "unsubscribe": (unsubscribe, unsubscribe_stub, (True, True)),
    "messenger_profile": (messenger_profile, messenger_profile_stub, (True, True)),
    "five_ice_breakers": (
        five_ice_breakers,
        five_ice_breakers_stub,
        ("error", 100, None, "permanent"),
    ),
}


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def no_wait(_: float) -> None:
    return None


@pytest.mark.parametrize("name", sorted(SCENARIOS))
async def test_scenario_against_meta_stubs(name: str, http: aiohttp.ClientSession) -> None:
    run, stub, expected = SCENARIOS[name]
    settings = Settings(_env_file=None, meta_app_id="1")  # type: ignore[call-arg]
    graph = GraphClient(http, settings, sleep=no_wait)
    account = AccountRef(ig_id=IG_ID, token="EAAtoken", login_kind="instagram")
    with aioresponses() as meta:
        stub(meta)
        result = await outcome(run, Env(graph, account, "https://cdn.example.com"))
    assert result == expected


@pytest.mark.parametrize("name", sorted(SCENARIOS))
async def test_scenario_against_the_sandbox(
    name: str, http: aiohttp.ClientSession, sandbox: Any
) -> None:
    run, _, expected = SCENARIOS[name]
    settings = Settings(_env_file=None, sandbox_url=sandbox.url)  # type: ignore[call-arg]
    graph = GraphClient(http, settings, sleep=no_wait)
    state = sandbox.state
    state.add_account(IG_ID, "sandbox_shop")
    account = AccountRef(ig_id=IG_ID, token=state.issue_token(IG_ID), login_kind="sandbox")
    post = state.add_media(IG_ID, caption="A post")
    comment = state.add_comment(post.id, from_id="555", username="ann", text="price?")
    state.note_inbound(IG_ID, "555")
    async with media_server() as media:
        result = await outcome(run, Env(graph, account, media, comment_id=comment.id))
    assert result == expected
