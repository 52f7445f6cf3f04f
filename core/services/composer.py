"""The composer and the calendar: one post per chosen account, times in the person's zone
(their own, else the workspace's), and the calendar's view of posts.

:func:`compose` checks everything (accounts, content, time) before it stores anything, then
creates one post per account through the publishing service (which checks again and queues
the publish job). Times a person types (``2025-03-07T09:00``) are read in their zone
(``time_zones.zone_for``); the calendar shows posts in it too.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from core.db.models import InstagramAccount, MediaAsset, Post, PostMedia, Workspace
from core.domain.posts import Kind, PostContent, Status, validate_content, validate_schedule, zone
from core.domain.scope import Actor
from core.errors import NotFound, ValidationFailed
from core.services.media import assets_for, facts_of
from core.services.publishing import PostInput, Publishing
from core.services.time_zones import zone_for

logger = logging.getLogger(__name__)

ACTIONS = ("draft", "schedule", "now")
CALENDAR_LIMIT = 2000
CALENDAR_WORDS = 6  # of the caption, on a month view's event
CALENDAR_PREVIEW_CHARS = 300  # of the caption, in an event's preview


@dataclass(frozen=True)
class Composition:
    """What the composer's form says."""

    account_ids: Sequence[int]
    content: PostInput
    action: str  # draft, schedule, now
    local_time: str = ""  # "YYYY-MM-DDTHH:MM" in the person's zone


def parse_local(text: str, timezone: str) -> datetime:
    """A time typed in the workspace's timezone, as an aware datetime."""
    try:
        naive = datetime.fromisoformat(text.strip())
    except ValueError:
        message = "Enter a date and time, like 2025-03-07 09:00."
        raise ValidationFailed(message, {"scheduled_at": message}) from None
    if naive.tzinfo is not None:
        return naive
    return naive.replace(tzinfo=zone(timezone))


def local_input(when: datetime | None, timezone: str) -> str:
    """``when`` for a datetime-local input in the workspace's timezone."""
    if when is None:
        return ""
    return when.astimezone(zone(timezone)).strftime("%Y-%m-%dT%H:%M")


async def compose(actor: Actor, publishing: Publishing, composition: Composition) -> list[Post]:
    """Create one post per account (drafts, scheduled, or publishing now), all or none."""
    workspace_id = actor.workspace_id
    workspace = await Workspace.get_or_none(id=workspace_id)
    if workspace is None:
        raise NotFound("no such workspace")
    errors: dict[str, str] = {}
    ids = list(dict.fromkeys(composition.account_ids))
    accounts = await InstagramAccount.filter(workspace_id=workspace_id, id__in=ids)
    if not ids:
        errors["accounts"] = "Choose at least one account."
    elif len(accounts) != len(ids):
        errors["accounts"] = "One of the accounts is not in this workspace."
    if composition.action not in ACTIONS:
        errors["action"] = "Choose to save a draft, schedule or publish now."
    if composition.content.kind not in {k.value for k in Kind}:
        errors["kind"] = "Choose the kind of post."
    when: datetime | None = None
    local_zone = await zone_for(actor)
    if composition.action == "schedule":
        if not composition.local_time.strip():
            errors["scheduled_at"] = "Pick the day and time to publish."
        else:
            try:
                when = validate_schedule(
                    parse_local(composition.local_time, local_zone),
                    publishing.clock.now(),
                    local_zone,
                )
            except ValidationFailed as exc:
                errors.update(exc.fields)
    if "kind" not in errors:
        errors.update(await _content_problems(workspace_id, composition.content))
    if errors:
        first = next(iter(errors.values()))
        raise ValidationFailed(first, errors)
    posts = []
    for account in accounts:
        post = await publishing.create(
            actor,
            account_id=account.id,
            content=composition.content,
            scheduled_at=when,
            source="panel",
        )
        if composition.action == "now":
            post = await publishing.publish_now(actor, post.id)
        posts.append(post)
    logger.info(
        "composer: %d %s post(s) for workspace %s (%s)",
        len(posts),
        composition.content.kind,
        workspace_id,
        composition.action,
    )
    return posts


async def _content_problems(workspace_id: int, content: PostInput) -> dict[str, str]:
    try:
        assets = await assets_for(Actor.system(workspace_id), list(content.media_ids))
        cover = None
        if content.cover_id is not None:
            cover = (await assets_for(Actor.system(workspace_id), [content.cover_id]))[0]
    except NotFound as exc:
        return {"media": str(exc)}
    try:
        validate_content(
            PostContent(
                kind=Kind(content.kind),
                media=[facts_of(a) for a in assets],
                caption=content.caption,
                first_comment=content.first_comment,
                alt_text=content.alt_text,
                share_to_feed=content.share_to_feed,
                cover=facts_of(cover) if cover else None,
            )
        )
    except ValidationFailed as exc:
        return exc.fields
    return {}


@dataclass(frozen=True)
class PostView:
    post: Post
    account: InstagramAccount
    media: list[MediaAsset]


async def posts_between(
    actor: Actor,
    start: datetime | None,
    end: datetime | None,
    *,
    account_id: int | None = None,
    status: Status | None = None,
) -> list[PostView]:
    """Posts for the calendar (by publish or schedule time) or the queue (newest plan first)."""
    query = Post.filter(workspace_id=actor.workspace_id)
    if account_id is not None:
        query = query.filter(account_id=account_id)
    if status is not None:
        query = query.filter(status=status)
    if start is not None:
        query = query.filter(scheduled_at__gte=start)
    if end is not None:
        query = query.filter(scheduled_at__lt=end)
    posts = (
        await query.order_by("scheduled_at", "id").limit(CALENDAR_LIMIT).prefetch_related("account")
    )
    return await _with_media(posts)


async def _with_media(posts: Sequence[Post]) -> list[PostView]:
    items = await PostMedia.filter(post_id__in=[p.id for p in posts]).order_by("position")
    assets = {a.id: a for a in await MediaAsset.filter(id__in=list({i.asset_id for i in items}))}
    by_post: dict[int, list[MediaAsset]] = {}
    for item in items:
        asset = assets.get(item.asset_id)
        if asset is not None:
            by_post.setdefault(item.post_id, []).append(asset)
    return [PostView(p, p.account, by_post.get(p.id, [])) for p in posts]


async def post_view(actor: Actor, post_id: int) -> PostView:
    """One post of the actor's workspace with its account and media; NotFound for any other."""
    post = await Post.get_or_none(id=post_id, workspace_id=actor.workspace_id)
    if post is None:
        raise NotFound(f"There is no post #{post_id} in this workspace.")
    await post.fetch_related("account")
    return (await _with_media([post]))[0]


def calendar_event(
    view: PostView,
    timezone: str,
    url: str,
    media_url: Callable[[MediaAsset], str] | None = None,
) -> dict[str, Any]:
    """One FullCalendar event (times in the workspace's timezone, no offset).

    ``media_url`` gives an asset's address: the event then carries a thumbnail (the reel's
    first image, else the first video) for the month view and its preview.
    """
    post = view.post
    when = post.published_at or post.scheduled_at or post.created_at
    local = when.astimezone(zone(timezone))
    first_line = post.caption.splitlines()[0] if post.caption.strip() else ""
    title = (first_line or post.kind.value)[:60]
    thumb = _thumbnail(view) if media_url is not None else None
    return {
        "id": str(post.id),
        "title": f"@{view.account.username} · {title}",
        "start": local.strftime("%Y-%m-%dT%H:%M:%S"),
        "url": url,
        "classNames": [f"status-{post.status.value}"],
        "editable": post.status in (Status.SCHEDULED, Status.DRAFT, Status.FAILED),
        "extendedProps": {
            "status": post.status.value,
            "kind": post.kind.value,
            "account": view.account.username,
            "words": first_words(post.caption),
            "caption": post.caption[:CALENDAR_PREVIEW_CHARS],
            "time": local.strftime("%Y-%m-%d %H:%M"),
            "timezone": timezone,
            "thumb": media_url(thumb) if thumb is not None and media_url is not None else "",
            "thumb_video": thumb is not None and thumb.mime.startswith("video/"),
            "items": len(view.media),
        },
    }


def first_words(caption: str, count: int = CALENDAR_WORDS) -> str:
    """The caption's first ``count`` words (an ellipsis when there are more)."""
    words = caption.split()
    shown = " ".join(words[:count])
    return shown + "…" if len(words) > count else shown


def _thumbnail(view: PostView) -> MediaAsset | None:
    image = next((a for a in view.media if a.mime.startswith("image/")), None)
    return image or (view.media[0] if view.media else None)
