"""Meta's own documented webhook samples, signed with the app secret, through the real
endpoint and the worker: each becomes the right event and fires the right rule, or is
ignored with a recorded reason; none is recorded as failed.

The samples are copied as Meta prints them (placeholders included); where a placeholder
stands for a number (``<TIME_META_SENT_THIS_NOTIFICATION>``) a real value from another of
Meta's samples is used, since the placeholder is not JSON. The comment above each names
the page it comes from.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest

from core.db.models import EventStatus, InstagramAccount, LoginKind, Trigger, WebhookEvent
from core.domain.webhooks import EventKind, parse_body
from core.wiring import assemble_services
from tests.automation_world import FakeMessaging, make_account, make_rule, sign

# https://developers.facebook.com/docs/instagram-platform/webhooks/examples/
# ("Business Login for Instagram"); every sample there is printed inside [ ... ].
IG_EXAMPLES = "instagram-platform/webhooks/examples"
# https://developers.facebook.com/docs/instagram-messaging/webhooks (Messenger API for
# Instagram: entry id is the IG professional account, time and timestamp in ms).
IG_MESSAGING = "instagram-messaging/webhooks"
IG_ACCOUNT = "<YOUR_APP_USERS_INSTAGRAM_ACCOUNT_ID>"
META_TIME_S = 1755779280  # a comment delivery's entry.time (seconds), as Meta documents it
META_TIME_MS = 1569262486134  # entry.time of the messaging samples (milliseconds)


def ig_messaging(item: dict[str, Any]) -> dict[str, Any]:
    """The messaging envelope of the Instagram Messaging webhooks page around ``item``."""
    return {
        "object": "instagram",
        "entry": [
            {
                "id": "IGID",
                "time": 1569262486134,
                "messaging": [
                    {
                        "sender": {"id": "IGSID"},
                        "recipient": {"id": "IGID"},
                        "timestamp": 1569262485349,
                        **item,
                    }
                ],
            }
        ],
    }


@dataclass(frozen=True)
class Sample:
    name: str
    document: Any
    account: str  # the entry id Meta puts on it: the connected account's id
    kind: EventKind
    fires: Trigger | None = None  # the rule trigger it must fire
    ignored: str = ""  # else: words of the reason recorded on the inbox row
    handled: str = ""  # or: words of the outcome when handled without a rule


SAMPLES = [
    # Meta's comment sample (Facebook Login shape, changes[]).
    Sample(
        "comment in changes[]",
        {
            "object": "instagram",
            "entry": [
                {
                    "id": "<IG_ACCOUNT_ID>",
                    "time": 1755779280,
                    "changes": [
                        {
                            "field": "comments",
                            "value": {
                                "id": "<COMMENT_ID>",
                                "from": {"id": "<IGSID>", "username": "<USERNAME>"},
                                "text": "<TEXT>",
                                "parent_id": "<PARENT if a reply>",
                                "media": {
                                    "id": "<MEDIA_ID>",
                                    "media_product_type": "FEED|REELS|STORY|AD",
                                },
                            },
                        }
                    ],
                }
            ],
        },
        "<IG_ACCOUNT_ID>",
        EventKind.COMMENT,
        fires=Trigger.COMMENT,
    ),
    # IG_EXAMPLES, "Comments payload" (field/value right on the entry).
    Sample(
        "comment on the entry, as printed in [ ]",
        [
            {
                "object": "instagram",
                "entry": [
                    {
                        "id": "<YOUR_APP_USERS_INSTAGRAM_ACCOUNT_ID>",
                        "time": META_TIME_S,
                        "field": "comments",
                        "value": {
                            "id": "<COMMENT_ID>",
                            "from": {
                                "id": "<INSTAGRAM_SCOPED_USER_ID>",
                                "username": "<USERNAME>",
                            },
                            "text": "<COMMENT_TEXT>",
                            "media": {
                                "id": "<MEDIA_ID>",
                                "media_product_type": "<MEDIA_PRODUCT_TYPE>",
                            },
                        },
                    }
                ],
            }
        ],
        IG_ACCOUNT,
        EventKind.COMMENT,
        fires=Trigger.COMMENT,
    ),
    # IG_EXAMPLES, "Comments payload": field set to comments or live_comments; a Live
    # comment fires the rules of the live_comment trigger.
    Sample(
        "live comment",
        {
            "object": "instagram",
            "entry": [
                {
                    "id": "<YOUR_APP_USERS_INSTAGRAM_ACCOUNT_ID>",
                    "time": META_TIME_S,
                    "field": "live_comments",
                    "value": {
                        "id": "<COMMENT_ID>",
                        "from": {"id": "<INSTAGRAM_SCOPED_USER_ID>", "username": "<USERNAME>"},
                        "text": "<COMMENT_TEXT>",
                        "media": {"id": "<MEDIA_ID>", "media_product_type": "<MEDIA_PRODUCT_TYPE>"},
                    },
                }
            ],
        },
        IG_ACCOUNT,
        EventKind.COMMENT,
        fires=Trigger.LIVE_COMMENT,
    ),
    # A delivered comment quoted by a vendor (support.huaweicloud.com cec_07_1142): the
    # account's own comment (from.id is the entry id, with self_ig_scoped_id).
    Sample(
        "the account's own comment",
        {
            "entry": [
                {
                    "id": "17841474524784050",
                    "time": 1755779280,
                    "changes": [
                        {
                            "value": {
                                "from": {
                                    "id": "17841474524784050",
                                    "username": "jiangwenwen1213",
                                    "self_ig_scoped_id": "2105722729836161",
                                },
                                "media": {"id": "18172143295349192", "media_product_type": "FEED"},
                                "id": "17919697626119712",
                                "text": "<TEXT>",
                            },
                            "field": "comments",
                        }
                    ],
                }
            ],
            "object": "instagram",
        },
        "17841474524784050",
        EventKind.COMMENT,
        ignored="own activity",
    ),
    # IG_MESSAGING, "messages": a text message.
    Sample(
        "text message",
        ig_messaging({"message": {"mid": "MESSAGE-ID", "text": "MESSAGE-TEXT"}}),
        "IGID",
        EventKind.MESSAGE,
        fires=Trigger.DM,
    ),
    # IG_MESSAGING, "messages": attachments (image|video|audio|file|share|ig_reel|reel).
    Sample(
        "message with an attachment",
        ig_messaging(
            {
                "message": {
                    "mid": "MESSAGE-ID",
                    "attachments": [{"type": "image", "payload": {"url": "<ATTACHMENT_URL>"}}],
                }
            }
        ),
        "IGID",
        EventKind.MESSAGE,
        fires=Trigger.DM,
    ),
    # https://developers.facebook.com/docs/instagram-platform/webhooks/new : a shared post
    # (share attachment with ig_post_media_id, from November 2025).
    Sample(
        "shared post",
        {
            "object": "instagram",
            "entry": [
                {
                    "time": 1761287298065,
                    "id": "{PAGE_ID}",
                    "messaging": [
                        {
                            "sender": {"id": "{SENDER_ID}"},
                            "recipient": {"id": "{PAGE_ID}"},
                            "timestamp": 1761287294014,
                            "message": {
                                "mid": "{MESSAGE_ID}",
                                "attachments": [
                                    {
                                        "type": "share",
                                        "payload": {
                                            "ig_post_media_id": "18139494541428835",
                                            "title": "Build a workspace that attracts talent "
                                            "and supports your team with solutions made for "
                                            "growing businesses.",
                                            "url": "https://lookaside.fbsbx.com/ig_messaging_cdn/"
                                            "?asset_id=18139494541428835={SIGNATURE}",
                                        },
                                    }
                                ],
                            },
                        }
                    ],
                }
            ],
        },
        "{PAGE_ID}",
        EventKind.MESSAGE,
        fires=Trigger.DM,
    ),
    # IG_MESSAGING, "messages": a reply to one of the account's stories.
    Sample(
        "story reply",
        ig_messaging(
            {
                "message": {
                    "mid": "MESSAGE-ID",
                    "text": "MESSAGE-TEXT",
                    "reply_to": {"story": {"url": "<CDN_URL>", "id": "<STORY_ID>"}},
                }
            }
        ),
        "IGID",
        EventKind.STORY_REPLY,
        fires=Trigger.STORY_REPLY,
    ),
    # IG_MESSAGING, "messages": a story mention is an attachment of type story_mention.
    Sample(
        "story mention",
        ig_messaging(
            {
                "message": {
                    "mid": "MESSAGE-ID",
                    "attachments": [{"type": "story_mention", "payload": {"url": "<CDN_URL>"}}],
                }
            }
        ),
        "IGID",
        EventKind.STORY_MENTION,
        fires=Trigger.STORY_MENTION,
    ),
    # IG_MESSAGING, "messages": a reply to a message.
    Sample(
        "reply to a message",
        ig_messaging(
            {
                "message": {
                    "mid": "MESSAGE-ID",
                    "text": "MESSAGE-TEXT",
                    "reply_to": {"mid": "<MID_OF_REPLIED_TO_MESSAGE>"},
                }
            }
        ),
        "IGID",
        EventKind.MESSAGE,
        fires=Trigger.DM,
    ),
    # IG_MESSAGING, "messages": a quick reply tap.
    Sample(
        "quick reply",
        ig_messaging(
            {
                "message": {
                    "mid": "MESSAGE-ID",
                    "text": "MESSAGE-TEXT",
                    "quick_reply": {"payload": "<DEVELOPER_DEFINED_PAYLOAD>"},
                }
            }
        ),
        "IGID",
        EventKind.QUICK_REPLY,
        fires=Trigger.POSTBACK,
    ),
    # IG_MESSAGING, "messages": media Instagram cannot pass on.
    Sample(
        "unsupported message",
        ig_messaging({"message": {"mid": "MESSAGE-ID", "is_unsupported": True}}),
        "IGID",
        EventKind.MESSAGE,
        fires=Trigger.DM,
    ),
    # IG_MESSAGING, "messages": the person deleted their message.
    Sample(
        "deleted message",
        ig_messaging({"message": {"mid": "MESSAGE-ID", "is_deleted": True}}),
        "IGID",
        EventKind.MESSAGE,
        ignored="deleted message",
    ),
    # IG_MESSAGING, "messages": an echo of what the account sent (sender is the account).
    Sample(
        "echo",
        {
            "object": "instagram",
            "entry": [
                {
                    "id": "IGID",
                    "time": 1569262486134,
                    "messaging": [
                        {
                            "sender": {"id": "IGID"},
                            "recipient": {"id": "IGSID"},
                            "timestamp": 1569262485349,
                            "message": {
                                "mid": "MESSAGE-ID",
                                "text": "MESSAGE-TEXT",
                                "is_echo": True,
                            },
                        }
                    ],
                }
            ],
        },
        "IGID",
        EventKind.ECHO,
        # Reelay never sent this text: it was written in the Instagram app, so it is stored
        # and a teammate has the conversation (an echo of Reelay's own send stays ignored).
        handled="sent from the Instagram app",
    ),
    # IG_MESSAGING, "messaging_postbacks": an icebreaker or button tap.
    Sample(
        "postback",
        ig_messaging(
            {
                "postback": {
                    "mid": "MESSAGE-ID",
                    "title": "SELECTED-ICEBREAKER-REPLY-OR-CTA-BUTTON",
                    "payload": "CUSTOMER-RESPONSE-PAYLOAD",
                }
            }
        ),
        "IGID",
        EventKind.POSTBACK,
        fires=Trigger.POSTBACK,
    ),
    # https://developers.facebook.com/docs/messenger-platform/reference/webhook-events/
    # message-reactions (the same item on Instagram, field message_reactions).
    Sample(
        "reaction",
        ig_messaging(
            {
                "reaction": {
                    "reaction": "love",
                    "emoji": "\u2764\ufe0f",
                    "action": "react",
                    "mid": "<MID_OF_ReactedTo_Message>",
                }
            }
        ),
        "IGID",
        EventKind.REACTION,
        ignored="reactions trigger nothing",
    ),
    Sample(
        "reaction removed",
        ig_messaging({"reaction": {"mid": "<MID_OF_ReactedTo_Message>", "action": "unreact"}}),
        "IGID",
        EventKind.REACTION,
        ignored="reactions trigger nothing",
    ),
    # IG_MESSAGING, "messaging_seen".
    Sample(
        "seen",
        ig_messaging({"read": {"mid": "<LAST_MESSAGE_ID_READ>"}}),
        "IGID",
        EventKind.READ,
        ignored="read receipt for no rule's message",
    ),
    # IG_MESSAGING, "messaging_referral": an ig.me link with ref opened in a conversation.
    Sample(
        "referral",
        ig_messaging(
            {
                "referral": {
                    "ref": "<IGME_LINK_REF_PARAMETER_VALUE>",
                    "source": "<IGME_SOURCE_LINK>",
                    "type": "OPEN_THREAD",
                }
            }
        ),
        "IGID",
        EventKind.REFERRAL,
        fires=Trigger.REF_LINK,
    ),
    # IG_EXAMPLES, "message_edit".
    Sample(
        "message edit",
        ig_messaging(
            {"message_edit": {"mid": "<MESSAGE_ID>", "text": "<NEW_TEXT>", "num_edit": 1}}
        ),
        "IGID",
        EventKind.EDIT,
        ignored="edits trigger nothing",
    ),
    # IG_MESSAGING, "standby": another app controls the conversation.
    Sample(
        "standby",
        {
            "object": "instagram",
            "entry": [
                {
                    "id": "IGID",
                    "time": 1569262486134,
                    "standby": [
                        {
                            "sender": {"id": "IGSID"},
                            "recipient": {"id": "IGID"},
                            "timestamp": 1569262485349,
                            "message": {"mid": "MESSAGE-ID", "text": "MESSAGE-TEXT"},
                        }
                    ],
                }
            ],
        },
        "IGID",
        EventKind.OTHER,
        ignored="another app controls this conversation",
    ),
    # https://developers.facebook.com/docs/graph-api/webhooks/reference/instagram ,
    # "mentions" (an @mention in a comment or caption on someone else's media).
    Sample(
        "mention",
        {
            "object": "instagram",
            "entry": [
                {
                    "id": "17841405726653026",
                    "time": 1520622968,
                    "changes": [
                        {
                            "field": "mentions",
                            "value": {
                                "media_id": "17887498072083520",
                                "comment_id": "17887498072083520",
                            },
                        }
                    ],
                }
            ],
        },
        "17841405726653026",
        EventKind.OTHER,
        ignored="field 'mentions' not handled",
    ),
    # https://developers.facebook.com/docs/instagram-api/guides/webhooks , "story_insights".
    Sample(
        "story insights",
        [
            {
                "entry": [
                    {
                        "changes": [
                            {
                                "field": "story_insights",
                                "value": {
                                    "media_id": "18023345989012587",
                                    "exits": 1,
                                    "replies": 0,
                                    "reach": 17,
                                    "taps_forward": 12,
                                    "taps_back": 0,
                                    "impressions": 28,
                                },
                            }
                        ],
                        "id": "17841405309211844",
                        "time": 1547687043,
                    }
                ],
                "object": "instagram",
            }
        ],
        "17841405309211844",
        EventKind.OTHER,
        ignored="field 'story_insights' not handled",
    ),
    # https://developers.facebook.com/docs/graph-api/webhooks/reference/instagram , the
    # "messages" field as the App Dashboard's Test button sends it (changes[], string time).
    Sample(
        "dashboard test message",
        {
            "object": "instagram",
            "entry": [
                {
                    "id": "0",
                    "time": META_TIME_S,
                    "changes": [
                        {
                            "field": "messages",
                            "value": {
                                "sender": {"id": "12334"},
                                "recipient": {"id": "23245"},
                                "timestamp": "1527459824",
                                "message": {"mid": "random_mid", "text": "random_text"},
                            },
                        }
                    ],
                }
            ],
        },
        "0",
        EventKind.MESSAGE,
        fires=Trigger.DM,
    ),
    # https://developers.facebook.com/docs/messenger-platform/reference/webhook-events/
    # messaging_postbacks (field/value; the chat plugin's sender has a user_ref, no id).
    Sample(
        "postback from a chat plugin",
        {
            "object": "instagram",
            "entry": [
                {
                    "id": "PAGE-ID",
                    "time": META_TIME_MS,
                    "changes": [
                        {
                            "field": "messaging_postbacks",
                            "value": {
                                "sender": {"user_ref": "USER-REF-ID"},
                                "recipient": {"id": "PAGE-ID"},
                                "timestamp": "1527459824",
                                "postback": {
                                    "mid": "m_MESSAGE-ID",
                                    "title": "TITLE-FOR-THE-CTA",
                                    "payload": "USER-DEFINED-PAYLOAD",
                                    "referral": {
                                        "ref": "USER-DEFINED-REFERRAL-PARAM",
                                        "source": "SHORT-URL",
                                        "type": "OPEN_THREAD",
                                    },
                                },
                            },
                        }
                    ],
                }
            ],
        },
        "PAGE-ID",
        EventKind.POSTBACK,
        ignored="without a sender",
    ),
]


@pytest.mark.parametrize("sample", SAMPLES, ids=[s.name for s in SAMPLES])
async def test_meta_sample_is_parsed_and_handled(
    client: Any, container: Any, sample: Sample
) -> None:
    container.graph = FakeMessaging()
    account = await make_account(container, ig_id=sample.account, username="reelay_shop")
    rules = {
        trigger: await make_rule(
            account,
            trigger=trigger,
            keywords=[],
            config={"message_variations": ["Here you go!"], "comment_replies": ["Thanks!"]},
        )
        for trigger in Trigger
    }
    body = json.dumps(sample.document, ensure_ascii=False).encode()

    (event,) = parse_body(body)
    assert event.kind is sample.kind, event

    for _ in range(2):  # Meta retries: the same event is recorded once
        response = await client.post(
            "/webhooks/meta",
            data=body,
            headers={"Content-Type": "application/json", "X-Hub-Signature-256": sign(body)},
        )
        assert response.status_code == 200
    (row,) = await WebhookEvent.all()
    outcome = None
    if row.status is EventStatus.PENDING:
        outcome = await assemble_services(container).automations.handle_event(row.id)
        await row.refresh_from_db()
    assert row.status is not EventStatus.FAILED, row.error
    if sample.fires is not None:
        assert outcome is not None and row.status is EventStatus.DONE, row.error
        assert outcome.rule_id == rules[sample.fires].id
    elif sample.handled:
        assert row.status is EventStatus.DONE and sample.handled in row.error
    else:
        assert row.status is EventStatus.IGNORED
        assert sample.ignored in row.error


async def test_facebook_login_events_resolve_the_page(client: Any, container: Any) -> None:
    """Facebook Login deliveries carry the Page id as entry id."""
    container.graph = FakeMessaging()
    account = await make_account(container, ig_id="1784100", page_id="PAGE-ID")
    await InstagramAccount.filter(id=account.id).update(login_kind=LoginKind.FACEBOOK)
    rule = await make_rule(account, trigger=Trigger.DM, keywords=[])
    body = json.dumps(
        {
            "object": "instagram",
            "entry": [
                {
                    "id": "PAGE-ID",
                    "time": META_TIME_MS,
                    "messaging": [
                        {
                            "sender": {"id": "IGSID"},
                            "recipient": {"id": "1784100"},
                            "timestamp": META_TIME_MS,
                            "message": {"mid": "m1", "text": "hello"},
                        }
                    ],
                }
            ],
        }
    ).encode()
    response = await client.post(
        "/webhooks/meta",
        data=body,
        headers={"Content-Type": "application/json", "X-Hub-Signature-256": sign(body)},
    )
    assert response.status_code == 200
    (row,) = await WebhookEvent.all()
    outcome = await assemble_services(container).automations.handle_event(row.id)
    assert (outcome.status, outcome.rule_id) == (EventStatus.DONE, rule.id)
