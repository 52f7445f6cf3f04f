"""Comment moderation: a team reads a post's recent comments and replies to them in public or
in private, hides, shows or deletes them, from the panel, the JSON API and a chat alert.

- **Scoped**: every call takes the ``Actor``; an account, post or comment that is not one of
  the workspace's accounts' is not found. Viewers read; editors and up act.
- **Through the outbox**: every write to Instagram is an ``OutboundAction`` under a dedupe
  key, so a write whose answer was lost is checked before it is made again, never repeated
  blindly (hiding sets a state; a delete is checked by reading the comment: gone is done).
- **Audited and told**: each write is an audit entry, and its result comes back as a
  ``Moderated`` in words a person reads.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from core.db.models import (
    AccountStatus,
    Conversation,
    InstagramAccount,
    MediaInsight,
    OutboundAction,
    OutboundStatus,
    Post,
    Role,
    WebhookEvent,
)
from core.domain.graph_errors import GraphError, object_gone
from core.domain.scope import Actor
from core.errors import Forbidden, NotFound, ValidationFailed
from core.ports.clock import Clock
from core.ports.instagram import AccountRef, InstagramClient
from core.services import audit
from core.services.outbox import ANSWER_LOST, ActionKind, Outbox, private_reply_key

logger = logging.getLogger(__name__)

# How far back the posts list looks for comments (Meta's private-reply window).
RECENT = timedelta(days=7)
# A comment whose webhook came this recently may not be in Meta's list yet: shown anyway.
LIST_LAG = timedelta(minutes=10)
MAX_EVENTS = 2000
MAX_TEXT_BYTES = 1000
# Refused outright: nothing happened on Instagram, so a new press may try again.
ENDED_UNDONE = frozenset({OutboundStatus.FAILED, OutboundStatus.SKIPPED})
VERBS = {
    ActionKind.HIDE_COMMENT: "hide",
    ActionKind.UNHIDE_COMMENT: "unhide",
    ActionKind.DELETE_COMMENT: "delete",
    ActionKind.PUBLIC_REPLY: "reply",
    ActionKind.PRIVATE_REPLY: "private_reply",
}
DONE_WORDS = {
    ActionKind.HIDE_COMMENT: "Hidden on Instagram: the account's followers no longer see it.",
    ActionKind.UNHIDE_COMMENT: "Shown again on Instagram.",
    ActionKind.DELETE_COMMENT: "Deleted from Instagram.",
    ActionKind.PUBLIC_REPLY: "Replied in public under the comment.",
    ActionKind.PRIVATE_REPLY: "Sent as a private reply to the comment's author.",
}


@dataclass(frozen=True)
class CommentView:
    """One comment as the team sees it."""

    id: str
    text: str
    username: str
    from_id: str
    at: datetime | None
    hidden: bool = False
    parent_id: str = ""
    like_count: int = 0
    handled_by: str = ""  # the rule that acted on it, when one did
    replies: tuple[CommentView, ...] = ()


@dataclass(frozen=True)
class PostComments:
    """A post with recent comments, for the list of posts."""

    account_id: int
    username: str
    media_id: str
    count: int
    latest_at: datetime
    latest_text: str
    latest_from: str
    caption: str = ""
    permalink: str = ""


@dataclass(frozen=True)
class CommentPage:
    """A post's comments, newest first as Meta lists them, and the cursor of the next page."""

    account_id: int
    username: str
    media_id: str
    comments: list[CommentView]
    after: str | None = None
    notice: str = ""  # why only what Reelay stored is shown (Instagram could not be read)


@dataclass(frozen=True)
class Moderated:
    """What became of one moderation write."""

    comment_id: str
    action: str  # hide, unhide, delete, reply, private_reply
    status: str  # sent, pending, skipped, failed, waiting, unconfirmed
    words: str
    account_id: int = 0

    @property
    def ok(self) -> bool:
        return self.status in {OutboundStatus.SENT.value, OutboundStatus.PENDING.value}


@dataclass(frozen=True)
class Target:
    """A comment found on one of the workspace's accounts."""

    account: InstagramAccount
    comment_id: str
    media_id: str = ""
    from_id: str = ""
    at: datetime | None = None
    facts: Mapping[str, Any] = field(default_factory=dict)


def _stamp(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not value:
        return None
    for parse in (datetime.fromisoformat, _meta_time):
        try:
            found = parse(value)
        except ValueError:
            continue
        return found if found.tzinfo is not None else found.replace(tzinfo=UTC)
    return None


def _meta_time(value: str) -> datetime:
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S%z")


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _view(item: Mapping[str, Any], handled: Mapping[str, str]) -> CommentView:
    author = _mapping(item.get("from"))
    replies = _mapping(item.get("replies"))
    comment_id = str(item.get("id") or "")
    return CommentView(
        id=comment_id,
        text=str(item.get("text") or ""),
        username=str(item.get("username") or author.get("username") or ""),
        from_id=str(author.get("id") or ""),
        at=_stamp(item.get("timestamp")),
        hidden=item.get("hidden") is True,
        parent_id=str(item.get("parent_id") or ""),
        like_count=int(item.get("like_count") or 0),
        handled_by=handled.get(comment_id, ""),
        replies=tuple(
            _view(r, handled) for r in replies.get("data") or [] if isinstance(r, Mapping)
        ),
    )


def _stored_view(row: WebhookEvent) -> CommentView:
    facts = row.event or {}
    return CommentView(
        id=str(facts.get("comment_id") or ""),
        text=str(facts.get("text") or ""),
        username=str(facts.get("sender_username") or ""),
        from_id=str(facts.get("sender_id") or ""),
        at=_stamp(facts.get("timestamp")) or row.received_at,
        parent_id=str(facts.get("parent_id") or ""),
        handled_by=row.rule_name or "",
    )


def _entries(accounts: list[InstagramAccount]) -> dict[str, InstagramAccount]:
    """The webhook entry ids of ``accounts``: the account's own id, or its Page's."""
    found: dict[str, InstagramAccount] = {}
    for account in accounts:
        found[account.ig_id] = account
        if account.page_id:
            found[account.page_id] = account
    return found


class CommentModeration:
    """Reads and moderates the comments on the workspace's accounts' posts."""

    def __init__(
        self,
        *,
        graph: InstagramClient,
        outbox: Outbox,
        clock: Clock,
        account_ref: Callable[[InstagramAccount], AccountRef],
    ) -> None:
        self.graph = graph
        self.outbox = outbox
        self.clock = clock
        self._account_ref = account_ref

    # ---------------------------------------------------------------- reading

    async def recent_posts(self, actor: Actor, *, limit: int = 50) -> list[PostComments]:
        """Posts with comments in the last 7 days (as webhooks and the sweep brought them),
        the most recently commented first, with how many came."""
        accounts = await InstagramAccount.filter(workspace_id=actor.workspace_id)
        entries = _entries(accounts)
        if not entries:
            return []
        rows = (
            await WebhookEvent.filter(
                kind="comment",
                account_ig_id__in=list(entries),
                received_at__gte=self.clock.now() - RECENT,
            )
            .order_by("-id")
            .limit(MAX_EVENTS)
        )
        posts: dict[str, PostComments] = {}
        counts: dict[str, int] = {}
        for row in rows:
            facts = row.event or {}
            media_id = str(facts.get("media_id") or "")
            if not media_id:
                continue
            counts[media_id] = counts.get(media_id, 0) + 1
            if media_id in posts:
                continue
            account = entries[row.account_ig_id]
            posts[media_id] = PostComments(
                account_id=account.id,
                username=account.username,
                media_id=media_id,
                count=0,
                latest_at=_stamp(facts.get("timestamp")) or row.received_at,
                latest_text=str(facts.get("text") or ""),
                latest_from=str(facts.get("sender_username") or ""),
            )
        found = sorted(posts.values(), key=lambda p: p.latest_at, reverse=True)[:limit]
        shown = await self._post_details(actor, [p.media_id for p in found])
        return [
            replace(
                p,
                count=counts[p.media_id],
                caption=shown.get(p.media_id, {}).get("caption", ""),
                permalink=shown.get(p.media_id, {}).get("permalink", ""),
            )
            for p in found
        ]

    async def _post_details(self, actor: Actor, media_ids: list[str]) -> dict[str, dict[str, str]]:
        """The caption and permalink Reelay knows of each media (its own posts, insights)."""
        details: dict[str, dict[str, str]] = {}
        seen = await MediaInsight.filter(
            account__workspace_id=actor.workspace_id, ig_media_id__in=media_ids
        )
        for insight in seen:
            details.setdefault(insight.ig_media_id, {"permalink": insight.permalink or ""})
        for post in await Post.filter(workspace_id=actor.workspace_id, ig_media_id__in=media_ids):
            flat = " ".join(post.caption.split())
            details[str(post.ig_media_id)] = {
                "caption": flat if len(flat) <= 80 else flat[:79] + "…",
                "permalink": post.permalink
                or details.get(str(post.ig_media_id), {}).get("permalink", ""),
            }
        return details

    async def comments(
        self, actor: Actor, media_id: str, *, after: str | None = None, limit: int = 50
    ) -> CommentPage:
        """The post's comments with their replies: Meta's list (whether each is hidden),
        with the rule that acted on each and the comments whose webhook came a moment ago
        that Meta does not list yet. When Instagram cannot be read, what Reelay stored."""
        account = await self._media_account(actor, media_id)
        stored = await self._stored_comments(account, media_id)
        handled = {v.id: v.handled_by for v in stored if v.handled_by}
        deleted = await self._deleted(account, [v.id for v in stored])
        try:
            page = await self.graph.media_comments(
                self._account_ref(account), media_id, after=after, limit=limit, moderation=True
            )
        except GraphError as exc:
            logger.warning("comments of media %s (account %s): %s", media_id, account.id, exc)
            kept = [v for v in stored if not v.parent_id and v.id not in deleted]
            return CommentPage(
                account.id,
                account.username,
                media_id,
                kept,
                notice=f"Instagram could not be read ({exc.title}): these are the comments "
                "Reelay received, without replies or whether they are hidden.",
            )
        views = [_view(item, handled) for item in page.items]
        if after is None:
            listed = {v.id for v in views} | {r.id for v in views for r in v.replies}
            fresh = self.clock.now() - LIST_LAG
            views = [
                *(
                    v
                    for v in stored
                    if v.id not in listed
                    and v.id not in deleted
                    and not v.parent_id
                    and v.at is not None
                    and v.at >= fresh
                ),
                *views,
            ]
        return CommentPage(account.id, account.username, media_id, views, page.after)

    async def _stored_comments(self, account: InstagramAccount, media_id: str) -> list[CommentView]:
        """The comments on ``media_id`` that webhooks or the sweep brought, newest first."""
        rows = (
            await WebhookEvent.filter(
                kind="comment",
                account_ig_id__in=list(_entries([account])),
                received_at__gte=self.clock.now() - RECENT,
            )
            .order_by("-id")
            .limit(MAX_EVENTS)
        )
        return [
            _stored_view(row) for row in rows if str((row.event or {}).get("media_id")) == media_id
        ]

    @staticmethod
    async def _deleted(account: InstagramAccount, comment_ids: list[str]) -> set[str]:
        """Which of ``comment_ids`` Reelay deleted."""
        if not comment_ids:
            return set()
        done = await OutboundAction.filter(
            account_id=account.id,
            kind=ActionKind.DELETE_COMMENT.value,
            target__in=comment_ids,
            status=OutboundStatus.SENT,
        ).values_list("target", flat=True)
        return {str(t) for t in done}

    async def _media_account(self, actor: Actor, media_id: str) -> InstagramAccount:
        """The workspace's account ``media_id`` belongs to; NotFound for any other media."""
        media_id = media_id.strip()
        accounts = await InstagramAccount.filter(workspace_id=actor.workspace_id)
        by_id = {a.id: a for a in accounts}
        post = await Post.filter(workspace_id=actor.workspace_id, ig_media_id=media_id).first()
        if post is not None and post.account_id in by_id:
            return by_id[post.account_id]
        seen = await MediaInsight.filter(account_id__in=list(by_id), ig_media_id=media_id).first()
        if seen is not None:
            return by_id[seen.account_id]
        for account in accounts:
            if await self._stored_comments(account, media_id):
                return account
        for account in accounts:
            if account.status is not AccountStatus.ACTIVE or not media_id.isdigit():
                continue
            try:
                found = await self.graph.media_fields(
                    self._account_ref(account), media_id, ("id", "username")
                )
            except GraphError:
                continue
            owner = str(found.get("username") or "")
            if owner.casefold() == account.username.casefold():
                return account
        raise NotFound(f"There is no post {media_id} on this workspace's accounts.")

    async def find(self, actor: Actor, comment_id: str, *, media_id: str = "") -> Target:
        """The comment ``comment_id`` on one of the workspace's accounts (on ``media_id``
        when given); NotFound otherwise."""
        comment_id = comment_id.strip()
        if not comment_id.isdigit():
            raise NotFound(f"There is no comment {comment_id!r}.")
        accounts = await InstagramAccount.filter(workspace_id=actor.workspace_id)
        entries = _entries(accounts)
        keys = [f"{entry}:comment:{comment_id}" for entry in entries]
        row = await WebhookEvent.filter(dedupe_key__in=keys).first() if keys else None
        target: Target | None = None
        if row is not None:
            facts = row.event or {}
            target = Target(
                account=entries[row.account_ig_id],
                comment_id=comment_id,
                media_id=str(facts.get("media_id") or ""),
                from_id=str(facts.get("sender_id") or ""),
                at=_stamp(facts.get("timestamp")) or row.received_at,
                facts=facts,
            )
        else:
            target = await self._acted_on(accounts, comment_id) or await self._read_comment(
                accounts, comment_id
            )
        if target is None or (media_id and target.media_id and target.media_id != media_id):
            raise NotFound(f"There is no comment {comment_id} on this workspace's accounts.")
        return target

    @staticmethod
    async def _acted_on(accounts: list[InstagramAccount], comment_id: str) -> Target | None:
        """A comment Reelay answered or moderated before (it may be gone from Instagram)."""
        by_id = {a.id: a for a in accounts}
        earlier = await OutboundAction.filter(
            account_id__in=list(by_id), target=comment_id, kind__in=[k.value for k in VERBS]
        ).first()
        if earlier is None:
            return None
        return Target(account=by_id[earlier.account_id], comment_id=comment_id)

    async def _read_comment(
        self, accounts: list[InstagramAccount], comment_id: str
    ) -> Target | None:
        """A comment Reelay never stored, read from Instagram as each account."""
        unread = ""
        for account in accounts:
            if account.status is not AccountStatus.ACTIVE:
                continue
            try:
                item = await self.graph.comment(self._account_ref(account), comment_id)
            except GraphError as exc:
                if not object_gone(exc):
                    logger.warning("comment %s (account %s): %s", comment_id, account.id, exc)
                    unread = exc.title
                continue
            media = _mapping(item.get("media"))
            author = _mapping(item.get("from"))
            return Target(
                account=account,
                comment_id=comment_id,
                media_id=str(media.get("id") or ""),
                from_id=str(author.get("id") or ""),
                at=_stamp(item.get("timestamp")),
                facts={"text": item.get("text") or "", "sender_username": item.get("username")},
            )
        if unread:
            raise NotFound(f"Comment {comment_id} could not be read on Instagram ({unread}).")
        return None

    # ---------------------------------------------------------------- acting

    async def hide(
        self, actor: Actor, comment_id: str, *, hide: bool = True, media_id: str = ""
    ) -> Moderated:
        """Hide (or show again) a comment: the account's followers no longer see it."""
        target = await self._editable(actor, comment_id, media_id)
        kind = ActionKind.HIDE_COMMENT if hide else ActionKind.UNHIDE_COMMENT
        # Each press is its own write: hide, show, hide again are three.
        key = f"{kind.value}:{target.account.id}:{comment_id}:{self._press_id()}"
        return await self._submit(actor, target, kind, key, {})

    async def delete(self, actor: Actor, comment_id: str, *, media_id: str = "") -> Moderated:
        """Delete a comment (and its replies) from Instagram, for good."""
        target = await self._editable(actor, comment_id, media_id)
        key = f"delete_comment:{target.account.id}:{comment_id}"
        return await self._submit(actor, target, ActionKind.DELETE_COMMENT, key, {})

    async def reply(
        self, actor: Actor, comment_id: str, text: str, *, media_id: str = ""
    ) -> Moderated:
        """Reply in public under a comment. The same text twice is sent once."""
        text = _checked_text(text)
        target = await self._editable(actor, comment_id, media_id)
        digest = hashlib.sha256(text.encode()).hexdigest()[:16]
        key = f"public_reply:{target.account.id}:{comment_id}:{digest}"
        return await self._submit(actor, target, ActionKind.PUBLIC_REPLY, key, {"text": text})

    async def private_reply(
        self, actor: Actor, comment_id: str, text: str, *, media_id: str = ""
    ) -> Moderated:
        """Reply in private to a comment's author (Meta allows one, within 7 days)."""
        text = _checked_text(text)
        target = await self._editable(actor, comment_id, media_id)
        key = private_reply_key(target.account.id, comment_id)
        return await self._submit(actor, target, ActionKind.PRIVATE_REPLY, key, {"text": text})

    async def _editable(self, actor: Actor, comment_id: str, media_id: str) -> Target:
        if not actor.allows(Role.EDITOR):
            raise Forbidden("Viewers read comments; replying, hiding and deleting need an editor.")
        return await self.find(actor, comment_id, media_id=media_id)

    def _press_id(self) -> str:
        return str(int(self.clock.now().timestamp() * 1_000_000))

    async def _submit(
        self,
        actor: Actor,
        target: Target,
        kind: ActionKind,
        key: str,
        message: dict[str, Any],
    ) -> Moderated:
        account = target.account
        if kind is not ActionKind.PRIVATE_REPLY:
            earlier = await OutboundAction.get_or_none(dedupe_key=key[:255])
            if earlier is not None and earlier.status in ENDED_UNDONE:
                key = f"{key}:{self._press_id()}"  # what failed before may be tried again
        conversation = None
        if kind is ActionKind.PRIVATE_REPLY and target.from_id:
            conversation = await Conversation.get_or_none(
                account_id=account.id, igsid=target.from_id
            )
        submitted = await self.outbox.submit(
            account=account,
            kind=kind,
            target=target.comment_id,
            message=message,
            key=key,
            conversation_id=conversation.id if conversation else None,
            anchor_at=target.at,
        )
        action = submitted.action or await OutboundAction.get_or_none(dedupe_key=key[:255])
        if action is not None:
            await action.refresh_from_db()
        result = _result(target, kind, action, duplicate=submitted.action is None)
        await audit.record(
            f"comment.{result.action}",
            actor=actor.label,
            workspace_id=actor.workspace_id,
            account_id=account.id,
            target_type="comment",
            target_id=target.comment_id,
            level="info" if result.ok else "warning",
            media_id=target.media_id,
            status=result.status,
            result=result.words,
            **({"text": message["text"]} if message.get("text") else {}),
        )
        return result


def _checked_text(text: str) -> str:
    text = text.strip()
    if not text:
        raise ValidationFailed("Write the reply.", {"text": "Write the reply."})
    if len(text.encode()) > MAX_TEXT_BYTES:
        problem = "Instagram takes replies up to 1000 bytes; shorten it."
        raise ValidationFailed(problem, {"text": problem})
    return text


def _result(
    target: Target, kind: ActionKind, action: OutboundAction | None, *, duplicate: bool
) -> Moderated:
    """The write's outcome in words."""
    verb = VERBS[kind]
    if action is None:  # pragma: no cover - a used key always has its row
        return Moderated(target.comment_id, verb, "failed", "Reelay lost track of this action.")
    status = action.status
    if status is OutboundStatus.SENT:
        words = DONE_WORDS[kind]
        if duplicate:
            words = f"Already done: {words[0].lower()}{words[1:]}"
    elif status is OutboundStatus.PENDING and action.payload.get(ANSWER_LOST):
        words = (
            "Instagram did not answer: Reelay checks whether it happened before trying again, "
            "so it is never done twice."
        )
    elif status is OutboundStatus.PENDING:
        words = "Queued: Instagram gets it in a moment."
    else:
        words = f"Not done: {action.error or status.value}."
    return Moderated(target.comment_id, verb, status.value, words, target.account.id)
