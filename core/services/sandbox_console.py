"""The sandbox console: act as a made-up follower of a sandbox account and watch Reelay answer.

A comment, DM or button tap goes to the sandbox Instagram, which signs it and delivers it to
Reelay's ``/webhooks/meta`` like Meta would, so it takes the path a real event takes. The
conversation is read back from the sandbox's record of what each side said, and each of the
follower's events is explained from the ``WebhookEvent`` it left (which rule acted, or why
nothing did) and the ``OutboundAction`` rows that did not go out.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

from core.bootstrap import Container
from core.db.models import (
    EventStatus,
    InstagramAccount,
    LoginKind,
    OutboundAction,
    OutboundStatus,
    WebhookEvent,
)
from core.domain.messages import message_text
from core.domain.scope import Actor
from core.errors import NotFound, ValidationFailed
from core.ports.sandbox import Delivered
from core.services.messenger_profiles import stored_profile

USERNAME = re.compile(r"[A-Za-z0-9._]{1,30}")
COMMENT_MAX_CHARS = 2200  # Instagram's comment limit
DM_MAX_CHARS = 1000  # Meta's message text limit
PAYLOAD_MAX_CHARS = 1000
TAP_KINDS = ("postback", "quick_reply")
# Where a follower comments, and the follower console's event for it.
COMMENT_PLACES = {"post": "comment", "ad": "ad_comment", "live": "live_comment"}
RECENT_ACTIONS = 500


async def sandbox_accounts(actor: Actor) -> list[InstagramAccount]:
    """The workspace's accounts connected to the sandbox Instagram."""
    return await InstagramAccount.filter(
        workspace_id=actor.workspace_id, login_kind=LoginKind.SANDBOX
    ).order_by("username", "id")


async def sandbox_account(actor: Actor, account_id: int | None) -> InstagramAccount:
    """One of the workspace's sandbox accounts (the first when ``account_id`` is None)."""
    accounts = await sandbox_accounts(actor)
    if not accounts:
        raise NotFound("This workspace has no sandbox account yet.")
    if account_id is None:
        return accounts[0]
    for account in accounts:
        if account.id == account_id:
            return account
    raise NotFound("That account is not one of this workspace's sandbox accounts.")


def follower_id(username: str) -> str:
    """The made-up follower's Instagram-scoped id: the same username is the same person."""
    digest = hashlib.sha256(username.lower().encode()).hexdigest()
    return "77" + str(int(digest[:16], 16))[:14].rjust(14, "0")


def check_username(raw: str) -> str:
    """``raw`` without a leading @, refused unless it could be an Instagram username."""
    username = raw.strip().removeprefix("@")
    if not USERNAME.fullmatch(username):
        raise ValidationFailed(
            "Check the follower's username.",
            {"username": "1 to 30 letters, digits, periods or underscores (like ana.silva_2)."},
        )
    return username


def _check_text(text: str, limit: int, what: str) -> str:
    if not text.strip():
        raise ValidationFailed(f"Write the {what}.", {"text": "Write what the follower says."})
    if len(text) > limit:
        raise ValidationFailed(
            f"The {what} is too long.",
            {"text": f"At most {limit} characters ({len(text)} now)."},
        )
    return text


def _account_fields(account: InstagramAccount, username: str) -> dict[str, Any]:
    return {
        "ig_id": account.ig_id,
        "account_username": account.username,
        "from_id": follower_id(username),
        "username": username,
    }


async def posts(actor: Actor, container: Container, account_id: int) -> list[dict[str, Any]]:
    """The account's posts a follower can comment on (stories take no comments)."""
    return await _posts(container, await sandbox_account(actor, account_id))


async def _posts(container: Container, account: InstagramAccount) -> list[dict[str, Any]]:
    feed = await container.follower_console().feed(account.ig_id)
    return [m for m in feed if m.get("media_product_type") != "STORY"]


def _check_follower_says(
    username: str, text: str, max_chars: int, noun: str
) -> tuple[str, dict[str, str]]:
    """The cleaned username and every field error of what a follower would send."""
    errors: dict[str, str] = {}
    try:
        username = check_username(username)
    except ValidationFailed as exc:
        errors.update(exc.fields)
    try:
        _check_text(text, max_chars, noun)
    except ValidationFailed as exc:
        errors.update(exc.fields)
    return username, errors


async def comment(
    actor: Actor,
    container: Container,
    account_id: int,
    *,
    username: str,
    text: str,
    media_id: str,
    place: str = "post",
) -> Delivered:
    """The follower comments on one of the account's posts, on an ad made of it
    (``place`` ``ad``) or on the account's Live broadcast (``live``)."""
    account = await sandbox_account(actor, account_id)
    username, errors = _check_follower_says(username, text, COMMENT_MAX_CHARS, "comment")
    if place not in COMMENT_PLACES:
        errors["place"] = "Choose where the follower comments."
    elif place != "live":
        known = {str(m.get("id")) for m in await _posts(container, account)}
        if media_id not in known:
            errors["media_id"] = "Choose one of the account's posts."
    if errors:
        raise ValidationFailed("Check the comment.", errors)
    fields = {**_account_fields(account, username), "text": text, "media_id": media_id}
    return await container.follower_console().act(COMMENT_PLACES[place], fields)


async def direct_message(
    actor: Actor, container: Container, account_id: int, *, username: str, text: str
) -> Delivered:
    """The follower sends the account a DM."""
    account = await sandbox_account(actor, account_id)
    username, errors = _check_follower_says(username, text, DM_MAX_CHARS, "message")
    if errors:
        raise ValidationFailed("Check the message.", errors)
    fields = {**_account_fields(account, username), "text": text}
    return await container.follower_console().act("dm", fields)


async def app_reply(
    actor: Actor, container: Container, account_id: int, *, username: str, text: str
) -> Delivered:
    """The account's owner answers the follower from the Instagram app: Reelay hears of it
    only by the echo, and a teammate has the conversation from then on."""
    account = await sandbox_account(actor, account_id)
    username, errors = _check_follower_says(username, text, DM_MAX_CHARS, "message")
    if errors:
        raise ValidationFailed("Check the message.", errors)
    fields = {**_account_fields(account, username), "text": text}
    return await container.follower_console().act("app_reply", fields)


async def tap(
    actor: Actor,
    container: Container,
    account_id: int,
    *,
    username: str,
    kind: str,
    payload: str,
    title: str,
) -> Delivered:
    """The follower taps a button (postback) or a quick reply Reelay sent them."""
    account = await sandbox_account(actor, account_id)
    username = check_username(username)
    if kind not in TAP_KINDS or not payload or len(payload) > PAYLOAD_MAX_CHARS:
        raise ValidationFailed("That button cannot be tapped.", {"payload": "Unknown button."})
    fields = _account_fields(account, username)
    if kind == "postback":
        return await container.follower_console().act(
            "postback", {**fields, "payload": payload, "title": title}
        )
    return await container.follower_console().act(
        "dm", {**fields, "text": title or payload, "quick_reply": payload}
    )


async def ice_breaker(
    actor: Actor, container: Container, account_id: int, *, username: str, index: str
) -> Delivered:
    """The follower taps one of the account's ice breakers (Instagram sends a postback)."""
    account = await sandbox_account(actor, account_id)
    username = check_username(username)
    shown = stored_profile(account).ice_breakers
    if not (index.isascii() and index.isdigit() and int(index) < len(shown)):
        raise ValidationFailed("That ice breaker is not shown.", {"index": "Unknown ice breaker."})
    fields = {**_account_fields(account, username), "index": int(index)}
    return await container.follower_console().act("ice_breaker", fields)


async def follow(
    actor: Actor, container: Container, account_id: int, *, username: str, following: bool
) -> None:
    """The follower follows (or unfollows) the account in the sandbox."""
    account = await sandbox_account(actor, account_id)
    fields = _account_fields(account, check_username(username))
    await container.follower_console().act("follow" if following else "unfollow", fields)


async def open_link(
    actor: Actor, container: Container, account_id: int, *, username: str, link: str
) -> Delivered:
    """The follower opens an ig.me link with a ref (Instagram sends a referral webhook)."""
    account = await sandbox_account(actor, account_id)
    username = check_username(username)
    ref = parse_qs(urlsplit(link.strip()).query).get("ref", [""])[0]
    if not link.strip().startswith("https://ig.me/m/") or not ref:
        raise ValidationFailed(
            "Paste a rule's ig.me link.", {"link": "Like https://ig.me/m/<username>?ref=<ref>."}
        )
    return await container.follower_console().act(
        "ig_me", {**_account_fields(account, username), "ref": ref}
    )


# ---------------------------------------------------------------- reading the conversation


@dataclass(frozen=True)
class Choice:
    """A button or quick reply the follower can tap (``url`` for a link button)."""

    kind: str  # postback, quick_reply or url
    title: str
    payload: str = ""
    url: str = ""


@dataclass(frozen=True)
class Outcome:
    """What Reelay did with one of the follower's events."""

    finished: bool
    status: str  # waiting, pending, processing, done, ignored, failed
    rule_name: str = ""
    reason: str = ""
    problems: tuple[str, ...] = ()  # answers that did not go out, and why


@dataclass(frozen=True)
class Line:
    """One thing said: by the follower (with Reelay's ``outcome``) or by the account."""

    by_follower: bool
    kind: str
    text: str
    choices: tuple[Choice, ...] = ()
    media_id: str = ""
    outcome: Outcome | None = None


@dataclass
class Conversation:
    lines: list[Line] = field(default_factory=list)
    # The buttons and quick replies of the last message the account sent the follower.
    choices: tuple[Choice, ...] = ()

    @property
    def finished(self) -> bool:
        return all(line.outcome is None or line.outcome.finished for line in self.lines)


_FOLLOWER_KINDS = {
    "comment": "Comment",
    "dm": "DM",
    "quick_reply": "Quick reply",
    "postback": "Button tap",
    "story_reply": "Story reply",
    "story_mention": "Story mention",
}
_ACCOUNT_KINDS = {
    "comment_reply": "Public reply",
    "private_reply": "Private reply",
    "message": "DM",
}
_OUTBOUND_KINDS = {
    "public_reply": "Public reply",
    "private_reply": "Private reply",
    "dm": "DM",
    "hide_comment": "Hid the comment",
}


def dedupe_key(ig_id: str, kind: str, ref: str) -> str:
    """The key Reelay files the event of a follower's action under (see core.domain.webhooks)."""
    if kind == "comment":
        return f"{ig_id}:comment:{ref}"
    if kind == "postback":
        return f"{ig_id}:postback:{ref}"
    return f"{ig_id}:message:{ref}"


def choices_of(message: dict[str, Any]) -> tuple[Choice, ...]:
    """The buttons (button template, or each card's) or quick replies of a message Reelay
    sent."""
    found: list[Choice] = []
    template = (message.get("attachment") or {}).get("payload") or {}
    buttons = list(template.get("buttons") or [])
    for card in template.get("elements") or []:
        if isinstance(card, dict):
            buttons.extend(card.get("buttons") or [])
    for button in buttons:
        if not isinstance(button, dict):
            continue
        title = str(button.get("title") or "")
        if button.get("type") == "web_url":
            found.append(Choice("url", title, url=str(button.get("url") or "")))
        else:
            found.append(Choice("postback", title, payload=str(button.get("payload") or title)))
    for reply in message.get("quick_replies") or []:
        if isinstance(reply, dict):
            title = str(reply.get("title") or "")
            found.append(Choice("quick_reply", title, payload=str(reply.get("payload") or title)))
    return tuple(found)


async def conversation(
    actor: Actor, container: Container, account_id: int, username: str
) -> Conversation:
    """The follower's exchange with the account, each of their events explained."""
    account = await sandbox_account(actor, account_id)
    items = await container.follower_console().conversation(account.ig_id, follower_id(username))
    keys = {
        dedupe_key(account.ig_id, str(i.get("kind")), str(i.get("ref")))
        for i in items
        if i.get("from") == "follower"
    }
    events = {e.dedupe_key: e for e in await WebhookEvent.filter(dedupe_key__in=keys)}
    problems = await _unsent(account, list(events.values()))
    result = Conversation()
    for item in items:
        kind = str(item.get("kind") or "")
        if item.get("from") == "follower":
            event = events.get(dedupe_key(account.ig_id, kind, str(item.get("ref"))))
            text = str(item.get("text") or "")
            if kind == "postback" or kind == "quick_reply":
                text = f"{text} (payload {item.get('payload')})"
            result.lines.append(
                Line(
                    by_follower=True,
                    kind=_FOLLOWER_KINDS.get(kind, kind),
                    text=text,
                    media_id=str(item.get("media_id") or ""),
                    outcome=_outcome(event, problems),
                )
            )
            continue
        sent = item.get("message")
        message: dict[str, Any] = sent if isinstance(sent, dict) else {}
        choices = choices_of(message)
        result.lines.append(
            Line(
                by_follower=False,
                kind=_ACCOUNT_KINDS.get(kind, kind),
                text=message_text(message),
                choices=choices,
            )
        )
        if kind in ("message", "private_reply"):
            result.choices = choices
    return result


def _outcome(event: WebhookEvent | None, problems: dict[int, list[str]]) -> Outcome:
    if event is None:
        return Outcome(False, "waiting", reason="Waiting for the webhook…")
    if event.status in (EventStatus.PENDING, EventStatus.PROCESSING):
        return Outcome(False, event.status.value, reason="Reelay is working on it…")
    return Outcome(
        True,
        event.status.value,
        rule_name=event.rule_name or "",
        reason=event.error,
        problems=tuple(problems.get(event.id, ())),
    )


async def _unsent(account: InstagramAccount, events: list[WebhookEvent]) -> dict[int, list[str]]:
    """Per event id, the answers that failed, were skipped, are unconfirmed or still wait
    (with why)."""
    if not events:
        return {}
    ids = {e.id for e in events}
    since = min(e.received_at for e in events) - timedelta(seconds=5)
    found: dict[int, list[str]] = {}
    actions = (
        await OutboundAction.filter(
            account_id=account.id,
            created_at__gte=since,
            status__in=[
                OutboundStatus.PENDING,
                OutboundStatus.FAILED,
                OutboundStatus.SKIPPED,
                OutboundStatus.UNCONFIRMED,
                OutboundStatus.WAITING,
                OutboundStatus.EXPIRED,
            ],
        )
        .order_by("id")
        .limit(RECENT_ACTIONS)
    )
    for action in actions:
        event_id = (action.payload or {}).get("event_id")
        if event_id not in ids:
            continue
        what = _OUTBOUND_KINDS.get(action.kind, action.kind.replace("_", " "))
        if action.status is OutboundStatus.PENDING:
            when = f" until {action.not_before:%H:%M:%S} UTC" if action.not_before else ""
            line = f"{what} waits{when}"
        else:
            line = f"{what} {action.status.value}: {action.error or 'no reason given'}"
        found.setdefault(int(event_id), []).append(line)
    return found
