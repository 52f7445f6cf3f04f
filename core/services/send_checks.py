"""Settling a write whose answer was lost: did Instagram act on it?

A write is *maybe sent* when its request reached Meta and no answer said what happened
(``GraphError.maybe_sent``). Sending it again could give the person a second copy, so before
another attempt the outbox looks for the first one's effect:

- a public reply: among the comment's replies, one by the account with the same text;
- a DM (text, buttons, quick replies): in the person's conversation, a message from the
  account with the same text, made no earlier than the action;
- a private reply needs no read: Meta takes one per comment, so sending it again either
  delivers it or is refused with 2534025, which after a lost answer means it was delivered;
- hiding or showing a comment sets a state: setting it again is harmless, so no read;
- a delete: the comment is read; gone means the delete was done, present means it was not.

A check that cannot read what it needs answers *unknown*; the outbox tries it again later and,
after its last attempt, records the action *unconfirmed* instead of risking a second copy.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from core.domain.graph_errors import GraphError, object_gone
from core.domain.messages import message_text
from core.domain.scope import instance_level
from core.ports.instagram import AccountRef, InstagramClient

logger = logging.getLogger(__name__)

# Meta's clock and Reelay's differ a little: a match may be stamped this much before the action.
CLOCK_SLACK = timedelta(minutes=2)


class Found(StrEnum):
    DELIVERED = "delivered"  # the effect is on Instagram: record the write as sent
    ABSENT = "absent"  # no effect: sending it again is safe
    UNKNOWN = "unknown"  # could not tell: do not send again now


@dataclass(frozen=True)
class Check:
    found: Found
    reason: str
    response: dict[str, Any] = field(default_factory=dict)  # recorded like a send's answer


def _stamp(value: Any) -> datetime | None:
    """Meta's time (``2026-11-20T08:00:00+0000``), or None when it cannot be read."""
    if not isinstance(value, str):
        return None
    try:
        return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S%z")
    except ValueError:
        return None


def _author_id(item: Mapping[str, Any]) -> str:
    author = item.get("from")
    return str(author.get("id") or "") if isinstance(author, Mapping) else ""


def find_match(
    items: Iterable[Mapping[str, Any]],
    *,
    authors: set[str],
    text: str,
    text_field: str,
    time_field: str,
    since: datetime,
) -> Mapping[str, Any] | None:
    """The first of ``items`` written by one of ``authors`` with ``text``, not before
    ``since`` (an item without a readable time matches on author and text alone)."""
    wanted = text.strip()
    for item in items:
        if _author_id(item) not in authors:
            continue
        if str(item.get(text_field) or "").strip() != wanted:
            continue
        made = _stamp(item.get(time_field))
        if made is None or made >= since - CLOCK_SLACK:
            return item
    return None


def _authors(account: AccountRef) -> set[str]:
    # Facebook Login speaks as the Page linked to the account: either id may sign it.
    return {i for i in (account.ig_id, account.page_id) if i}


@instance_level("checks on Instagram a send the outbox already holds")
async def check_public_reply(
    graph: InstagramClient, account: AccountRef, comment_id: str, text: str, since: datetime
) -> Check:
    """Whether the account's reply ``text`` is under comment ``comment_id``."""
    if not text.strip():
        return Check(Found.UNKNOWN, "the reply has no text to look for")
    try:
        replies = await graph.comment_replies(account, comment_id)
    except GraphError as exc:
        return Check(Found.UNKNOWN, f"the comment's replies could not be read ({exc.title})")
    match = find_match(
        replies,
        authors=_authors(account),
        text=text,
        text_field="text",
        time_field="timestamp",
        since=since,
    )
    if match is None:
        return Check(Found.ABSENT, "no reply of the account's with this text under the comment")
    return Check(
        Found.DELIVERED,
        "found among the comment's replies",
        {"id": str(match.get("id") or ""), "confirmed_by": "comment replies"},
    )


@instance_level("checks on Instagram a send the outbox already holds")
async def check_direct_message(
    graph: InstagramClient, account: AccountRef, igsid: str, text: str, since: datetime
) -> Check:
    """Whether the account's message ``text`` is in its conversation with ``igsid``."""
    if not text.strip():
        return Check(Found.UNKNOWN, "the message has no text to look for")
    try:
        messages = await graph.conversation_messages(account, igsid)
    except GraphError as exc:
        return Check(Found.UNKNOWN, f"the conversation could not be read ({exc.title})")
    match = find_match(
        messages,
        authors=_authors(account),
        text=text,
        text_field="message",
        time_field="created_time",
        since=since,
    )
    if match is None:
        return Check(Found.ABSENT, "no message of the account's with this text in the conversation")
    return Check(
        Found.DELIVERED,
        "found in the conversation",
        {
            "recipient_id": igsid,
            "message_id": str(match.get("id") or ""),
            "confirmed_by": "conversation",
        },
    )


@instance_level("checks on Instagram a send the outbox already holds")
async def look_for_effect(
    graph: InstagramClient,
    account: AccountRef,
    kind: str,
    target: str,
    payload: Mapping[str, Any],
    since: datetime,
) -> Check:
    """What an earlier send of an outbox action (``kind``: public_reply, private_reply or dm;
    ``payload`` holds its ``message``) left on Instagram."""
    if kind == "private_reply":
        return Check(Found.ABSENT, "Meta refuses a second private reply to a comment")
    if kind in {"hide_comment", "unhide_comment"}:
        return Check(Found.ABSENT, "hiding sets a state: setting it again changes nothing more")
    if kind == "delete_comment":
        return await check_deleted(graph, account, target)
    text = message_text(payload.get("message") or {})
    if kind == "public_reply":
        return await check_public_reply(graph, account, target, text, since)
    return await check_direct_message(graph, account, target, text, since)


@instance_level("checks on Instagram a delete the outbox already holds")
async def check_deleted(graph: InstagramClient, account: AccountRef, comment_id: str) -> Check:
    """Whether comment ``comment_id`` is gone (the delete was done) or still there."""
    try:
        await graph.comment(account, comment_id)
    except GraphError as exc:
        if object_gone(exc):
            return Check(Found.DELIVERED, "the comment is gone", {"confirmed_by": "comment gone"})
        return Check(Found.UNKNOWN, f"the comment could not be read ({exc.title})")
    return Check(Found.ABSENT, "the comment is still there")


@instance_level("a moderation write of an action the outbox already holds")
async def moderate(
    graph: InstagramClient, account: AccountRef, kind: str, comment_id: str
) -> dict[str, Any]:
    """Hide, show or delete comment ``comment_id`` (``kind``: hide_comment, unhide_comment,
    delete_comment); the answer recorded with the action."""
    if kind == "delete_comment":
        await graph.delete_comment(account, comment_id)
        return {"deleted": comment_id}
    hide = kind == "hide_comment"
    await graph.hide_comment(account, comment_id, hide=hide)
    return {"hidden": hide}
