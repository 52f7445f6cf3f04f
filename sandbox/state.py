"""The sandbox Instagram's in-memory world: accounts, containers, the feed, comments, messages.

Everything here is plain data and rules (no HTTP); ``sandbox.server`` puts Meta's wire
format around it. Rule breaks raise ``SandboxError`` carrying the code and subcode Meta uses.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sandbox.errors import SandboxError as SandboxError  # re-exported: the sandbox raises it
from sandbox.message_shapes import check_message

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
MESSAGE_WINDOW = DAY
HUMAN_AGENT_WINDOW = timedelta(days=7)
PRIVATE_REPLY_WINDOW = timedelta(days=7)
CONTAINER_TTL = DAY
LONG_LIVED_S = 60 * 24 * 3600
SHORT_LIVED_S = 3600
MAX_CAPTION = 2200
MAX_HASHTAGS = 30
MAX_MENTIONS = 20


def invalid_token() -> SandboxError:
    return SandboxError(
        "Invalid OAuth access token - Cannot parse access token", code=190, status=400
    )


def sandbox_token(secret: str, ig_id: str, *, generation: int = 0) -> str:
    """A token the sandbox accepts for ``ig_id`` without having seen it before."""
    mac = hmac.new(secret.encode(), f"{ig_id}:{generation}".encode(), hashlib.sha256)
    return f"SBX.{ig_id}.{generation}.{mac.hexdigest()[:32]}"


# The posts a new account starts with, oldest first (the welcome post is newest).
SAMPLE_POSTS = (
    ("Behind the scenes at the studio. Comment INFO for the details.", "VIDEO", "REELS"),
    ("Our spring collection is here. Comment PRICE for the price list.", "IMAGE", "FEED"),
    ("Welcome to the Reelay sandbox! Comment below to try.", "IMAGE", "FEED"),
)


@dataclass
class Account:
    ig_id: str
    username: str
    account_type: str = "BUSINESS"  # BUSINESS, MEDIA_CREATOR or PERSONAL
    name: str = ""
    page_id: str | None = None
    followers_count: int = 128
    follows_count: int = 12
    subscribed_fields: list[str] = field(default_factory=list)
    # The app removed its webhook subscription: Meta sends no events until it subscribes again.
    unsubscribed: bool = False
    # The messenger profile (ice breakers, persistent menu), as Meta was last told it.
    messenger_profile: dict[str, Any] = field(default_factory=dict)


@dataclass
class Token:
    ig_id: str
    issued_at: datetime
    expires_at: datetime | None
    long_lived: bool = True
    page: bool = False


@dataclass
class MediaContainer:
    id: str
    ig_id: str
    media_type: str  # IMAGE, VIDEO, REELS, STORIES, CAROUSEL
    fields: dict[str, str]
    created_at: datetime
    is_carousel_item: bool = False
    children: list[str] = field(default_factory=list)
    polls_left: int = 0
    status_code: str = "FINISHED"
    status: str = ""
    media_id: str | None = None


@dataclass
class Media:
    id: str
    ig_id: str
    media_type: str
    media_product_type: str
    caption: str
    media_url: str
    timestamp: datetime
    permalink: str
    children: list[str] = field(default_factory=list)


@dataclass
class Comment:
    id: str
    media_id: str
    ig_id: str  # the account whose media it is
    from_id: str
    username: str
    text: str
    created_at: datetime
    parent_id: str | None = None
    hidden: bool = False
    private_reply_sent: bool = False


@dataclass
class Sent:
    """Something Reelay made the account say: a DM, a private reply, a comment or reply."""

    kind: str  # message, private_reply, comment_reply, comment
    ig_id: str
    target: str  # IGSID, comment id or media id
    payload: dict[str, Any]
    id: str
    at: datetime
    seq: int = 0  # order among everything said on the account (ties in ``at`` happen)


@dataclass
class Inbound:
    """Something a follower did that the sandbox told Reelay about: a comment, DM or tap."""

    kind: str  # comment, dm, quick_reply, postback, story_reply, story_mention
    ig_id: str
    from_id: str
    text: str
    ref: str  # comment id or message mid (what Reelay's dedupe key is made of)
    at: datetime
    payload: str = ""  # the postback or quick reply payload
    media_id: str = ""
    seq: int = 0


@dataclass(frozen=True)
class DirectMessage:
    """One message of a conversation as the Conversations API lists it."""

    id: str
    from_id: str
    to_id: str
    text: str
    at: datetime


DM_KINDS = {"dm", "quick_reply", "postback", "story_reply", "story_mention"}


def _text_of(message: dict[str, Any]) -> str:
    if isinstance(message.get("text"), str):
        return str(message["text"])
    payload = (message.get("attachment") or {}).get("payload") or {}
    return str(payload.get("text") or "")


def _count(pattern: str, text: str) -> int:
    return len(re.findall(pattern, text))


class SandboxState:
    """The simulated Instagram. ``now`` is injectable to test the 24 h and 7 day windows."""

    def __init__(
        self,
        *,
        secret: str,
        app_secret: str,
        app_id: str = "1000000000",
        now: Callable[[], datetime] | None = None,
        base_url: str = "http://127.0.0.1:8010",
    ) -> None:
        self.secret = secret
        self.app_secret = app_secret
        self.app_id = app_id
        self.now: Callable[[], datetime] = now or (lambda: datetime.now(UTC))
        self.base_url = base_url
        self.webhook_url: str | None = None
        self.video_polls = 1  # status reads that answer IN_PROGRESS before FINISHED
        self.quota_total = 100
        self.token_shape = "data"  # code exchange answers {"data": [...]} or "flat"
        self.authorize_as: str | None = None  # ig_id the OAuth dialog signs in as
        self.accounts: dict[str, Account] = {}
        self.tokens: dict[str, Token] = {}
        self.codes: dict[str, str] = {}
        self.containers: dict[str, MediaContainer] = {}
        self.media: dict[str, Media] = {}
        self.comments: dict[str, Comment] = {}
        self.last_inbound: dict[tuple[str, str], datetime] = {}
        self.followers: dict[str, set[str]] = {}  # ig_id → IGSIDs following it
        self.sent: list[Sent] = []
        self.inbound: list[Inbound] = []
        self._seq = itertools.count(1)
        self.published_at: dict[str, list[datetime]] = {}
        self._ids = itertools.count(1)

    def new_id(self, prefix: str = "") -> str:
        return f"{prefix}{17900000000000000 + next(self._ids)}"

    # ------------------------------------------------------------------ accounts and tokens

    def add_account(
        self,
        ig_id: str,
        username: str,
        *,
        account_type: str = "BUSINESS",
        page_id: str | None = None,
    ) -> Account:
        account = Account(
            ig_id=ig_id, username=username, account_type=account_type, page_id=page_id
        )
        self.accounts[ig_id] = account
        return account

    def issue_token(
        self, ig_id: str, *, long_lived: bool = True, page: bool = False, age: timedelta = DAY * 0
    ) -> str:
        token = "IGSBX" + secrets.token_urlsafe(24)
        issued = self.now() - age
        lifetime = None if page else timedelta(seconds=LONG_LIVED_S if long_lived else 3600)
        self.tokens[token] = Token(
            ig_id=ig_id,
            issued_at=issued,
            expires_at=issued + lifetime if lifetime else None,
            long_lived=long_lived,
            page=page,
        )
        return token

    def account_for_token(self, token: str | None) -> Account:
        if not token:
            raise SandboxError("An active access token must be used", code=2500)
        found = self.tokens.get(token)
        if found is not None:
            if found.expires_at is not None and found.expires_at <= self.now():
                raise SandboxError(
                    "Error validating access token: Session has expired", code=190, subcode=463
                )
            return self.accounts[found.ig_id]
        parts = token.split(".")
        if len(parts) == 4 and parts[0] == "SBX":
            _, ig_id, generation, _ = parts
            if generation.isdigit() and hmac.compare_digest(
                token, sandbox_token(self.secret, ig_id, generation=int(generation))
            ):
                return self.ensure_account(ig_id)
        raise invalid_token()

    def ensure_account(self, ig_id: str, username: str = "reelay_demo") -> Account:
        """The account ``ig_id``, created with a few sample posts when the sandbox first sees
        it, so a follower has something to comment on at once."""
        found = self.accounts.get(ig_id)
        if found is not None:
            return found
        account = self.add_account(ig_id, username)
        for caption, media_type, product in SAMPLE_POSTS:
            self.add_media(ig_id, caption=caption, media_type=media_type, product=product)
        return account

    # ------------------------------------------------------------------ OAuth

    def authorize(self, ig_id: str) -> str:
        code = "AQ" + secrets.token_urlsafe(24)
        self.codes[code] = ig_id
        return code

    def exchange_code(self, code: str, client_secret: str) -> tuple[str, str]:
        """Code → short-lived token; returns (token, app-scoped user id)."""
        if client_secret != self.app_secret:
            raise SandboxError("Error validating client secret.", code=101, type_="OAuthException")
        ig_id = self.codes.pop(code, None)
        if ig_id is None:
            raise SandboxError(
                "Invalid authorization code", code=100, subcode=36007, type_="OAuthException"
            )
        return self.issue_token(ig_id, long_lived=False), f"app-{ig_id}"

    def long_lived(self, token: str, client_secret: str) -> tuple[str, int]:
        if client_secret != self.app_secret:
            raise SandboxError("Error validating client secret.", code=101)
        account = self.account_for_token(token)
        return self.issue_token(account.ig_id), LONG_LIVED_S

    def refresh(self, token: str) -> tuple[str, int]:
        account = self.account_for_token(token)
        found = self.tokens.get(token)
        if found is not None and self.now() - found.issued_at < DAY:
            raise SandboxError("Tokens can be refreshed only when at least 24 hours old", code=100)
        return self.issue_token(account.ig_id), LONG_LIVED_S

    # ------------------------------------------------------------------ publishing

    def _check_caption(self, caption: str) -> None:
        if len(caption) > MAX_CAPTION:
            raise SandboxError(
                "The caption is too long", code=36004, subcode=2207010, type_="OAuthException"
            )
        if _count(r"(?<!\w)#\w", caption) > MAX_HASHTAGS:
            raise SandboxError("Too many hashtags", code=100, subcode=2207040)
        if _count(r"(?<!\w)@[\w.]+", caption) > MAX_MENTIONS:
            raise SandboxError("Too many tags", code=100, subcode=2207040)

    def create_container(
        self, ig_id: str, fields: dict[str, str], *, video_ok: bool = True
    ) -> MediaContainer:
        media_type = fields.get("media_type", "IMAGE").upper()
        is_item = fields.get("is_carousel_item", "").lower() == "true"
        if media_type not in {"IMAGE", "VIDEO", "REELS", "STORIES", "CAROUSEL"}:
            raise SandboxError(
                f"(#100) The parameter media_type has an invalid value {media_type}", code=100
            )
        if media_type == "VIDEO" and not is_item:
            raise SandboxError(
                "The VIDEO media type is only for carousel items: use REELS",
                code=100,
                subcode=2207023,
            )
        self._check_caption(fields.get("caption", ""))
        children: list[str] = []
        if media_type == "CAROUSEL":
            children = [c for c in fields.get("children", "").split(",") if c]
            if not 2 <= len(children) <= 10:
                raise SandboxError("A carousel needs 2 to 10 children", code=100, subcode=2207028)
            for child in children:
                item = self.containers.get(child)
                if item is None or not item.is_carousel_item or item.ig_id != ig_id:
                    raise SandboxError(f"Invalid child container {child}", code=100)
        elif not (fields.get("image_url") or fields.get("video_url")):
            raise SandboxError("(#100) image_url or video_url is required", code=100)
        container = MediaContainer(
            id=self.new_id(),
            ig_id=ig_id,
            media_type=media_type,
            fields=dict(fields),
            created_at=self.now(),
            is_carousel_item=is_item,
            children=children,
        )
        if fields.get("video_url"):
            container.status_code = "IN_PROGRESS"
            container.polls_left = self.video_polls
            if not video_ok:
                container.status = "ERROR"
        self.containers[container.id] = container
        return container

    def container_status(self, container: MediaContainer, *, poll: bool = True) -> str:
        # Processing moves on only when someone reads the status, like a poll loop sees it.
        if container.status_code == "IN_PROGRESS" and poll:
            if container.polls_left > 0:
                container.polls_left -= 1
            else:
                if container.status == "ERROR":
                    container.status_code = "ERROR"
                    container.status = "Error: Media upload has failed with error code 2207026"
                else:
                    container.status_code = "FINISHED"
                    container.status = (
                        "Finished: Media has been uploaded and it is ready to be published."
                    )
        if container.status_code in {"IN_PROGRESS", "FINISHED"} and (
            self.now() - container.created_at >= CONTAINER_TTL
        ):
            container.status_code = "EXPIRED"
            container.status = "Expired: the container was not published within 24 hours"
        if container.media_type == "CAROUSEL" and container.status_code == "FINISHED":
            states = [
                self.container_status(self.containers[c], poll=poll) for c in container.children
            ]
            if "ERROR" in states:
                return "ERROR"
            if any(s != "FINISHED" for s in states):
                return "IN_PROGRESS"
        return container.status_code

    def publish(self, ig_id: str, creation_id: str) -> Media:
        container = self.containers.get(creation_id)
        if container is None or container.ig_id != ig_id:
            raise SandboxError(
                f"(#100) Invalid parameter creation_id {creation_id}", code=100, subcode=2207001
            )
        status = self.container_status(container, poll=False)
        if status == "PUBLISHED":
            raise SandboxError("The media has already been published", code=100, subcode=2207001)
        if status == "EXPIRED":
            raise SandboxError("The container has expired", code=-2, subcode=2207020)
        if status == "ERROR":
            raise SandboxError("The media upload failed", code=352, subcode=2207026)
        if status != "FINISHED":
            raise SandboxError("Media ID is not available", code=9007, subcode=2207027)
        if container.is_carousel_item:
            raise SandboxError("A carousel item cannot be published alone", code=100)
        window = [t for t in self.published_at.get(ig_id, []) if self.now() - t < DAY]
        if container.media_type != "STORIES" and len(window) >= self.quota_total:
            raise SandboxError(
                "Application request limit reached", code=9, subcode=2207042, type_="OAuthException"
            )
        product = {"REELS": "REELS", "STORIES": "STORY"}.get(container.media_type, "FEED")
        media_type = {
            "REELS": "VIDEO",
            "CAROUSEL": "CAROUSEL_ALBUM",
        }.get(container.media_type, "VIDEO" if container.fields.get("video_url") else "IMAGE")
        media = self.add_media(
            ig_id,
            caption=container.fields.get("caption", ""),
            media_type=media_type,
            product=product,
            media_url=container.fields.get("image_url") or container.fields.get("video_url", ""),
            children=list(container.children),
        )
        container.status_code = "PUBLISHED"
        container.status = "Published"
        container.media_id = media.id
        if container.media_type != "STORIES":
            window.append(self.now())
        self.published_at[ig_id] = window
        return media

    def add_media(
        self,
        ig_id: str,
        *,
        caption: str = "",
        media_type: str = "IMAGE",
        product: str = "FEED",
        media_url: str = "",
        children: list[str] | None = None,
    ) -> Media:
        media_id = self.new_id()
        media = Media(
            id=media_id,
            ig_id=ig_id,
            media_type=media_type,
            media_product_type=product,
            caption=caption,
            media_url=media_url,
            timestamp=self.now(),
            permalink=f"{self.base_url}/p/{media_id}/",
            children=children or [],
        )
        self.media[media_id] = media
        return media

    def live_broadcast(self, ig_id: str) -> Media:
        """The account's Live broadcast, started on first use (media type ``BROADCAST``)."""
        for media in self.media.values():
            if media.ig_id == ig_id and media.media_type == "BROADCAST":
                return media
        return self.add_media(ig_id, caption="Live", media_type="BROADCAST", product="LIVE")

    def feed(self, ig_id: str) -> list[Media]:
        """The account's posts, newest first (a running Live broadcast is not one)."""
        items = [m for m in self.media.values() if m.ig_id == ig_id and m.media_type != "BROADCAST"]
        return sorted(items, key=lambda m: (m.timestamp, m.id), reverse=True)

    def quota_usage(self, ig_id: str) -> int:
        return len([t for t in self.published_at.get(ig_id, []) if self.now() - t < DAY])

    # ------------------------------------------------------------------ comments

    def add_comment(
        self,
        media_id: str,
        *,
        from_id: str,
        username: str,
        text: str,
        parent_id: str | None = None,
    ) -> Comment:
        media = self.media.get(media_id)
        if media is None:
            raise SandboxError(f"Unknown media {media_id}", code=100, subcode=33)
        comment = Comment(
            id=self.new_id(),
            media_id=media_id,
            ig_id=media.ig_id,
            from_id=from_id,
            username=username,
            text=text,
            created_at=self.now(),
            parent_id=parent_id,
        )
        self.comments[comment.id] = comment
        return comment

    def comment_of(self, ig_id: str, comment_id: str) -> Comment:
        comment = self.comments.get(comment_id)
        if comment is None or comment.ig_id != ig_id:
            raise SandboxError(
                f"Unsupported request. Object with ID '{comment_id}' does not exist",
                code=100,
                subcode=33,
            )
        return comment

    def hide_comment(self, ig_id: str, comment_id: str, hide: bool) -> None:
        """Hide or show a comment on the account's media: hidden, only the owner sees it
        (flagged ``hidden``); setting the state it has is no error, as at Meta."""
        self.comment_of(ig_id, comment_id).hidden = hide

    def delete_comment(self, ig_id: str, comment_id: str) -> None:
        """Delete a comment on the account's media, and its replies with it; a comment
        already gone is unknown (100/33), as at Meta."""
        comment = self.comment_of(ig_id, comment_id)
        for reply in [c for c in self.comments.values() if c.parent_id == comment.id]:
            del self.comments[reply.id]
        del self.comments[comment.id]

    def reply_publicly(self, account: Account, comment_id: str, message: str) -> Comment:
        parent = self.comment_of(account.ig_id, comment_id)
        reply = self.add_comment(
            parent.media_id,
            from_id=account.ig_id,
            username=account.username,
            text=message,
            parent_id=parent.id,
        )
        self._record(
            Sent(
                "comment_reply",
                account.ig_id,
                comment_id,
                {"message": message},
                reply.id,
                self.now(),
            )
        )
        return reply

    def comment_as_account(self, account: Account, media_id: str, message: str) -> Comment:
        media = self.media.get(media_id)
        if media is None or media.ig_id != account.ig_id:
            raise SandboxError(f"Unknown media {media_id}", code=100, subcode=33)
        comment = self.add_comment(
            media_id, from_id=account.ig_id, username=account.username, text=message
        )
        self._record(
            Sent("comment", account.ig_id, media_id, {"message": message}, comment.id, self.now())
        )
        return comment

    # ------------------------------------------------------------------ messaging

    def note_inbound(self, ig_id: str, igsid: str) -> None:
        self.last_inbound[(ig_id, igsid)] = self.now()

    def set_following(self, ig_id: str, igsid: str, following: bool) -> None:
        """A follower follows (or unfollows) the account (``sandbox.people.follower_profile``
        answers ``is_user_follow_business`` from it)."""
        people = self.followers.setdefault(ig_id, set())
        if following:
            people.add(igsid)
        else:
            people.discard(igsid)

    def send_message(
        self, account: Account, recipient: dict[str, Any], message: dict[str, Any], tag: str | None
    ) -> Sent:
        check_message(message)
        now = self.now()
        comment_id = recipient.get("comment_id")
        if comment_id:
            comment = self.comment_of(account.ig_id, str(comment_id))
            if comment.private_reply_sent:
                raise SandboxError(
                    "A private reply was already sent for this comment", code=10, subcode=2534025
                )
            if now - comment.created_at > PRIVATE_REPLY_WINDOW:
                raise SandboxError(
                    "This message is sent outside of allowed window.", code=10, subcode=2534022
                )
            comment.private_reply_sent = True
            sent = Sent("private_reply", account.ig_id, comment.id, message, self._mid(), now)
            sent.payload = {"message": message, "recipient_id": comment.from_id}
            self._record(sent)
            return sent
        igsid = str(recipient.get("id") or "")
        if not igsid:
            raise SandboxError("(#100) The parameter recipient is required", code=100)
        last = self.last_inbound.get((account.ig_id, igsid))
        window = HUMAN_AGENT_WINDOW if tag == "HUMAN_AGENT" else MESSAGE_WINDOW
        if last is None or now - last > window:
            raise SandboxError(
                "This message is sent outside of allowed window.", code=10, subcode=2534022
            )
        sent = Sent("message", account.ig_id, igsid, {"message": message}, self._mid(), now)
        self._record(sent)
        return sent

    def app_message(self, account: Account, igsid: str, text: str) -> Sent:
        """The account's owner writes to ``igsid`` in the Instagram app (not through the API:
        no window applies, and Meta tells the app only by an echo)."""
        message = {"text": text}
        sent = Sent("message", account.ig_id, igsid, {"message": message}, self._mid(), self.now())
        sent.payload["from_app"] = True
        self._record(sent)
        return sent

    def _mid(self) -> str:
        return "aWdfZAG1faXRlbToxOklHTWVzc2FnZAU" + secrets.token_hex(8)

    def sent_to(self, target: str) -> list[Sent]:
        return [s for s in self.sent if s.target == target]

    def _record(self, sent: Sent) -> None:
        sent.seq = next(self._seq)
        self.sent.append(sent)

    # ------------------------------------------------------------------ what followers did

    def note_follower(
        self,
        kind: str,
        ig_id: str,
        from_id: str,
        *,
        text: str,
        ref: str,
        payload: str = "",
        media_id: str = "",
    ) -> Inbound:
        """Remember a follower's comment, message or tap (for the conversation view)."""
        inbound = Inbound(
            kind=kind,
            ig_id=ig_id,
            from_id=from_id,
            text=text,
            ref=ref,
            at=self.now(),
            payload=payload,
            media_id=media_id,
            seq=next(self._seq),
        )
        self.inbound.append(inbound)
        return inbound

    def people(self, ig_id: str) -> list[str]:
        """Everyone account ``ig_id`` has a direct conversation with."""
        found = [i.from_id for i in self.inbound if i.ig_id == ig_id and i.kind in DM_KINDS]
        for sent in self.sent:
            if sent.ig_id == ig_id and sent.kind == "message":
                found.append(sent.target)
            elif sent.ig_id == ig_id and sent.kind == "private_reply":
                found.append(str(sent.payload.get("recipient_id") or ""))
        return list(dict.fromkeys(p for p in found if p))

    def direct_messages(self, ig_id: str, igsid: str) -> list[DirectMessage]:
        """The direct messages between ``ig_id`` and ``igsid``, oldest first: theirs, the
        account's DMs and its private replies to their comments."""
        found: list[DirectMessage] = []
        for item in self.conversation(ig_id, igsid):
            if isinstance(item, Inbound):
                if item.kind in DM_KINDS:
                    found.append(DirectMessage(item.ref, igsid, ig_id, item.text, item.at))
            elif item.kind in {"message", "private_reply"}:
                text = _text_of(item.payload.get("message") or {})
                found.append(DirectMessage(item.id, ig_id, igsid, text, item.at))
        return found

    def conversation(self, ig_id: str, igsid: str) -> list[Inbound | Sent]:
        """What ``igsid`` did on account ``ig_id`` and what the account answered them,
        in order: DMs to them, private replies to their comments, public replies under them."""
        theirs = {c.id for c in self.comments.values() if c.ig_id == ig_id and c.from_id == igsid}
        said: list[Inbound | Sent] = [
            i for i in self.inbound if i.ig_id == ig_id and i.from_id == igsid
        ]
        for sent in self.sent:
            if sent.ig_id != ig_id:
                continue
            if (
                (sent.kind == "message" and sent.target == igsid)
                or (sent.kind == "private_reply" and sent.payload.get("recipient_id") == igsid)
                or (sent.kind == "comment_reply" and sent.target in theirs)
            ):
                said.append(sent)
        return sorted(said, key=lambda item: item.seq)
