"""Parsing Meta webhook payloads into events (both comment shapes, every messaging kind)."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from hypothesis import given, settings, strategies as st

from core.domain.webhooks import (
    EventKind,
    from_stored,
    parse_body,
    parse_payload,
    stored_fields,
)
from tests.automation_world import (
    ACCOUNT_IG_ID,
    comment_payload,
    dm_payload,
    echo_payload,
    messaging_payload,
    postback_payload,
    quick_reply_payload,
    story_mention_payload,
    story_reply_payload,
)


def test_comment_in_changes_and_on_the_entry_parse_alike() -> None:
    wrapped = parse_payload(comment_payload("c1", "Price?", shape="changes"))
    flat = parse_payload(comment_payload("c1", "Price?", shape="entry"))
    by_comment_id = parse_payload(comment_payload("c1", "Price?", id_field="comment_id"))
    for events in (wrapped, flat, by_comment_id):
        assert len(events) == 1
        event = events[0]
        assert event.kind is EventKind.COMMENT
        assert event.trigger == "comment"
        assert (event.comment_id, event.text, event.media_id) == ("c1", "Price?", "media-1")
        assert (event.sender_id, event.sender_username) == ("igsid-1", "alice")
        assert event.account_id == ACCOUNT_IG_ID
        assert event.dedupe_key == f"{ACCOUNT_IG_ID}:comment:c1"


def test_batches_split_into_one_event_each_with_a_replayable_raw_payload() -> None:
    entries = [
        *comment_payload("c1", "a")["entry"],
        *dm_payload("m1", "b")["entry"],
        *postback_payload("p1", "Yes", "YES")["entry"],
    ]
    events = parse_payload({"object": "instagram", "entry": entries})
    assert [e.kind for e in events] == [EventKind.COMMENT, EventKind.MESSAGE, EventKind.POSTBACK]
    for event in events:
        again = parse_payload(event.raw)
        assert len(again) == 1 and again[0] == event


def test_stored_fields_give_back_the_parsed_event_without_parsing_again() -> None:
    entries = [
        *comment_payload("c1", "Price?")["entry"],
        *story_reply_payload("m1", "wow")["entry"],
        *story_mention_payload("m2")["entry"],
        *quick_reply_payload("m3", "Yes", "YES")["entry"],
    ]
    events = parse_payload({"object": "instagram", "entry": entries})
    assert any(e.attachment_types for e in events) and all(e.timestamp for e in events)
    for event in events:
        kept = json.loads(json.dumps(stored_fields(event)))
        assert from_stored(kept) == replace(event, raw={})


def test_fields_that_are_not_a_stored_event_read_as_none() -> None:
    kept = stored_fields(parse_payload(dm_payload("m1", "hi"))[0])
    for damaged in (None, [], "x", {}, {**kept, "kind": "nonsense"}, {**kept, "timestamp": "?"}):
        assert from_stored(damaged) is None


def test_messaging_kinds() -> None:
    def one(payload: dict[str, Any]) -> Any:
        (event,) = parse_payload(payload)
        return event

    dm = one(dm_payload("m1", "hello"))
    assert (dm.kind, dm.trigger, dm.mid, dm.text) == (EventKind.MESSAGE, "dm", "m1", "hello")
    assert dm.timestamp is not None and dm.timestamp.year >= 2024
    quick = one(quick_reply_payload("m2", "Yes", "YES_PAYLOAD"))
    assert (quick.kind, quick.payload, quick.trigger) == (
        EventKind.QUICK_REPLY,
        "YES_PAYLOAD",
        "postback",
    )
    postback = one(postback_payload("p1", "Get it", "GET"))
    assert (postback.kind, postback.payload, postback.dedupe_key) == (
        EventKind.POSTBACK,
        "GET",
        f"{ACCOUNT_IG_ID}:postback:p1",
    )
    story = one(story_reply_payload("m3", "wow"))
    assert (story.kind, story.trigger, story.story_id) == (
        EventKind.STORY_REPLY,
        "story_reply",
        "story-1",
    )
    mention = one(story_mention_payload("m4"))
    assert (mention.kind, mention.trigger) == (EventKind.STORY_MENTION, "story_mention")
    echo = one(echo_payload("m5", "our own"))
    assert echo.kind is EventKind.ECHO and echo.trigger is None
    assert echo.dedupe_key != one(dm_payload("m5", "x")).dedupe_key
    reaction = one(messaging_payload({"reaction": {"mid": "m1", "action": "react", "emoji": "x"}}))
    read = one(messaging_payload({"read": {"mid": "m1"}}))
    edit = one(messaging_payload({"message_edit": {"mid": "m1", "text": "new", "num_edit": 1}}))
    assert [reaction.kind, read.kind, edit.kind] == [
        EventKind.REACTION,
        EventKind.READ,
        EventKind.EDIT,
    ]
    assert all(e.trigger is None for e in (reaction, read, edit))


def _shared(*types: str, media_id: str = "18139494541428835") -> dict[str, Any]:
    """A DM sharing a post, with Meta's attachments of ``types`` (payload as Meta sends it)."""
    payload = {"ig_post_media_id": media_id, "title": "Caption", "url": f"https://cdn/{media_id}"}
    attachments = [{"type": kind, "payload": payload} for kind in types]
    return messaging_payload({"message": {"mid": "m-share", "attachments": attachments}})


def test_shared_posts_are_read_from_ig_post_and_legacy_share() -> None:
    for types in (("ig_post",), ("share", "ig_post"), ("share",)):
        (event,) = parse_payload(_shared(*types))
        assert (event.kind, event.attachment_types) == (EventKind.MESSAGE, types)
        assert event.shared_media_id == "18139494541428835"
        assert event.shared_url == "https://cdn/18139494541428835"
    (plain,) = parse_payload(dm_payload("m1", "hello"))
    assert (plain.shared_media_id, plain.shared_url) == ("", "")


def test_other_fields_are_recorded_but_trigger_nothing() -> None:
    payload = {"object": "instagram", "entry": [{"id": "1", "changes": [{"field": "mentions"}]}]}
    (event,) = parse_payload(payload)
    assert event.kind is EventKind.OTHER and event.trigger is None
    assert parse_payload(payload)[0].dedupe_key == event.dedupe_key


def test_unreadable_bodies_are_one_malformed_event_with_a_stable_key() -> None:
    for body in (b"{not json", b"[1,2]", b'"text"', b"\xff\xfe", b'{"entry": 5}'):
        (event,) = parse_body(body)
        assert event.kind is EventKind.MALFORMED and event.error
        assert parse_body(body)[0].dedupe_key == event.dedupe_key
    assert parse_body(b'{"object":"instagram","entry":[]}') == []


def test_long_or_odd_ids_still_give_short_keys() -> None:
    (event,) = parse_payload(dm_payload("m" * 500, "x", account="1\x00\ud800"))
    assert len(event.dedupe_key) <= 255 and event.dedupe_key.isascii()


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=30,
)
meta_keys = st.sampled_from(
    [
        "object",
        "entry",
        "id",
        "time",
        "changes",
        "field",
        "value",
        "messaging",
        "message",
        "postback",
        "sender",
        "recipient",
        "mid",
        "text",
        "from",
        "media",
        "comment_id",
        "quick_reply",
        "payload",
        "reply_to",
        "story",
        "attachments",
        "type",
        "is_echo",
    ]
)
meta_like = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(meta_keys, inner, max_size=5),
    max_leaves=40,
)


@settings(max_examples=300, deadline=None)
@given(document=st.one_of(json_values, meta_like))
def test_parser_never_raises_and_keys_fit(document: Any) -> None:
    body = json.dumps(document).encode()
    for event in parse_body(body):
        assert 0 < len(event.dedupe_key) <= 255
        assert isinstance(event.raw, dict)
        json.dumps(event.raw)
        assert from_stored(json.loads(json.dumps(stored_fields(event)))) == replace(event, raw={})


def test_a_comment_read_from_the_graph_api_is_the_event_its_webhook_would_be() -> None:
    from core.domain.webhooks import comment_from_graph, parse_payload

    webhook = {
        "object": "instagram",
        "entry": [
            {
                "id": "17841400000000001",
                "time": 1764835200,
                "changes": [
                    {
                        "field": "comments",
                        "value": {
                            "id": "c-77",
                            "from": {"id": "igsid-9", "username": "ann"},
                            "text": "price?",
                            "media": {"id": "m-1", "media_product_type": "REELS"},
                        },
                    }
                ],
            }
        ],
    }
    (sent,) = parse_payload(webhook)
    read = comment_from_graph(
        "17841400000000001",
        {
            "id": "c-77",
            "text": "price?",
            "timestamp": "2025-12-04T08:00:00+0000",
            "from": {"id": "igsid-9", "username": "ann"},
            "username": "ann",
        },
        {"id": "m-1", "media_product_type": "REELS"},
    )
    assert read is not None
    assert read.dedupe_key == sent.dedupe_key == "17841400000000001:comment:c-77"
    assert (read.sender_id, read.sender_username, read.text, read.media_id) == (
        "igsid-9",
        "ann",
        "price?",
        "m-1",
    )
    assert read.timestamp == sent.timestamp
    assert comment_from_graph("17841400000000001", {"text": "no id"}, {}) is None
