"""The Instagram port: everything Reelay does on Instagram goes through it.

The adapter is ``core.adapters.graph.GraphClient`` (Meta's Graph API or the sandbox, which
speaks the same wire format). Errors are raised as ``core.domain.graph_errors.GraphError``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Literal, Protocol

LoginFlavour = Literal["instagram", "facebook", "sandbox"]


@dataclass(frozen=True)
class AccountRef:
    """Who to act as: the professional account id, its token and how it logged in."""

    ig_id: str
    token: str = field(repr=False)
    login_kind: LoginFlavour = "instagram"
    account_id: int | None = None  # Reelay's row id, for per-account usage records
    page_id: str | None = None  # Facebook Login: the Page the account is linked to


@dataclass(frozen=True)
class Recipient:
    """A DM goes to a person (IGSID) or, as a private reply, to a comment."""

    igsid: str | None = None
    comment_id: str | None = None

    def as_json(self) -> dict[str, str]:
        if self.comment_id:
            return {"comment_id": self.comment_id}
        if self.igsid:
            return {"id": self.igsid}
        raise ValueError("a recipient needs an IGSID or a comment id")


@dataclass(frozen=True)
class ContainerStatus:
    status_code: str  # IN_PROGRESS, FINISHED, ERROR, EXPIRED, PUBLISHED
    status: str = ""


@dataclass(frozen=True)
class PublishingLimit:
    quota_usage: int
    quota_total: int
    quota_duration_s: int


@dataclass(frozen=True)
class Page:
    """One page of a Graph list: its items, and the cursor of the next page (None at the end)."""

    items: list[dict[str, Any]]
    after: str | None = None


@dataclass(frozen=True)
class SentMessage:
    recipient_id: str
    message_id: str


class InstagramClient(Protocol):
    # Publishing
    async def create_image_container(
        self,
        account: AccountRef,
        image_url: str,
        *,
        caption: str | None = None,
        alt_text: str | None = None,
        location_id: str | None = None,
        collaborators: Sequence[str] = (),
        is_carousel_item: bool = False,
    ) -> str: ...

    async def create_video_container(
        self,
        account: AccountRef,
        video_url: str,
        *,
        media_type: Literal["REELS", "VIDEO"] = "REELS",
        caption: str | None = None,
        share_to_feed: bool | None = None,
        cover_url: str | None = None,
        thumb_offset_ms: int | None = None,
        location_id: str | None = None,
        collaborators: Sequence[str] = (),
        is_carousel_item: bool = False,
    ) -> str: ...

    async def create_story_container(
        self, account: AccountRef, *, image_url: str | None = None, video_url: str | None = None
    ) -> str: ...

    async def create_carousel_container(
        self,
        account: AccountRef,
        children: Sequence[str],
        *,
        caption: str | None = None,
        location_id: str | None = None,
        collaborators: Sequence[str] = (),
    ) -> str: ...

    async def container_status(self, account: AccountRef, container_id: str) -> ContainerStatus: ...

    async def publish_container(self, account: AccountRef, container_id: str) -> str:
        """``media_publish``: returns the new media id. Never retried blindly by the client."""
        ...

    async def media_fields(
        self, account: AccountRef, media_id: str, fields: Sequence[str] = ("permalink", "timestamp")
    ) -> dict[str, Any]: ...

    async def post_comment(self, account: AccountRef, media_id: str, message: str) -> str: ...

    async def publishing_limit(self, account: AccountRef) -> PublishingLimit: ...

    # Messaging and comments
    async def send_message(
        self,
        account: AccountRef,
        recipient: Recipient,
        message: dict[str, Any],
        *,
        tag: str | None = None,
    ) -> SentMessage:
        """Send ``message`` (Meta's message object: text, attachment template, quick_replies);
        ``tag``: a message tag (``HUMAN_AGENT``: a teammate's reply up to 7 days)."""
        ...

    async def reply_to_comment(self, account: AccountRef, comment_id: str, message: str) -> str: ...

    async def comment_replies(self, account: AccountRef, comment_id: str) -> list[dict[str, Any]]:
        """The replies under a comment: ``id``, ``text``, ``from {id, username}``, ``timestamp``."""
        ...

    async def conversation_messages(self, account: AccountRef, igsid: str) -> list[dict[str, Any]]:
        """The messages of the account's conversation with ``igsid`` (newest first): ``id``,
        ``message`` (its text), ``from {id}``, ``created_time``."""
        ...

    async def recent_media(
        self, account: AccountRef, *, after: str | None = None, limit: int = 25
    ) -> Page:
        """The account's media, newest first: ``id``, ``timestamp``, ``comments_count``,
        ``media_product_type``; ``after`` is the cursor of the page wanted."""
        ...

    async def media_comments(
        self,
        account: AccountRef,
        media_id: str,
        *,
        after: str | None = None,
        limit: int = 50,
        moderation: bool = False,
    ) -> Page:
        """A media's top-level comments: ``id``, ``text``, ``timestamp``, ``from {id,
        username}``, ``username``, and ``replies {data: [...]}`` with the same fields and
        ``parent_id``; ``after`` is the cursor of the page wanted. ``moderation`` adds
        ``hidden`` and ``like_count``."""
        ...

    async def comment(self, account: AccountRef, comment_id: str) -> dict[str, Any]:
        """One comment (``id``, ``text``, ``hidden`` …); a deleted one raises GraphError 100/33."""
        ...

    async def hide_comment(self, account: AccountRef, comment_id: str, hide: bool = True) -> None:
        """``POST /{comment-id}?hide=true|false``: sets a state, so repeating it is harmless."""
        ...

    async def delete_comment(self, account: AccountRef, comment_id: str) -> None: ...

    # Profile and insights
    async def profile(self, account: AccountRef) -> dict[str, Any]: ...

    async def user_profile(self, account: AccountRef, igsid: str) -> dict[str, Any]:
        """A person's profile (user-profile API): allowed once they messaged the account."""
        ...

    async def media_list(self, account: AccountRef, limit: int = 25) -> list[dict[str, Any]]: ...

    async def account_insights(
        self,
        account: AccountRef,
        metrics: Sequence[str],
        since: date,
        until: date,
        *,
        period: str = "day",
        metric_type: str | None = "total_value",
    ) -> list[dict[str, Any]]: ...

    async def media_insights(
        self, account: AccountRef, media_id: str, metrics: Sequence[str]
    ) -> list[dict[str, Any]]: ...

    async def set_messenger_profile(self, account: AccountRef, fields: Mapping[str, Any]) -> bool:
        """Replace the ice breakers and/or persistent menu named in ``fields`` (Meta's
        messenger profile body, ``platform=instagram``); True when Meta confirmed it."""
        ...

    async def delete_messenger_profile(self, account: AccountRef, fields: Sequence[str]) -> bool:
        """Remove ``ice_breakers`` and/or ``persistent_menu``; True when Meta confirmed it."""
        ...

    async def subscribe_app(self, account: AccountRef, fields: Sequence[str]) -> bool: ...

    async def unsubscribe_app(self, account: AccountRef) -> bool:
        """Stop Meta sending the app webhooks for ``account``; True when Meta confirmed it."""
        ...
