"""API: posts (create, read, edit, schedule, cancel, delete) through the publishing service."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, Field
from quart import Blueprint
from quart_schema import validate_querystring, validate_request, validate_response

from core.db.models import Post, Role
from core.domain.posts import Status
from core.services.publishing import PostInput, Publishing
from panel.api.auth import api_requires, current_actor
from panel.api.schemas import CursorQuery, cursor_int, decode_cursor, encode_cursor, may_conflict
from panel.services import services

blueprint = Blueprint("api_posts", __name__, url_prefix="/api/v1/posts")

MAX_ID = 2**31 - 1


class PostContent(BaseModel):
    kind: Literal["image", "reel", "carousel", "story"]
    media_ids: list[Annotated[int, Field(ge=1, le=MAX_ID)]] = Field(
        default_factory=list, max_length=10
    )
    caption: str = Field("", max_length=10_000)
    first_comment: str = Field("", max_length=10_000)
    alt_text: str = Field("", max_length=10_000)
    collaborators: list[str] = Field(default_factory=list, max_length=10)
    location_id: str | None = Field(None, max_length=64)
    share_to_feed: bool = True
    cover_id: int | None = Field(None, ge=1, le=MAX_ID)

    def as_input(self) -> PostInput:
        return PostInput(
            kind=self.kind,
            media_ids=tuple(self.media_ids),
            caption=self.caption,
            first_comment=self.first_comment,
            alt_text=self.alt_text,
            collaborators=tuple(self.collaborators),
            location_id=self.location_id,
            share_to_feed=self.share_to_feed,
            cover_id=self.cover_id,
        )


class PostCreate(PostContent):
    account_id: int = Field(ge=1, le=MAX_ID)
    scheduled_at: AwareDatetime | None = Field(
        None, description="When to publish (with a time zone); omit for a draft."
    )


class PostEdit(PostContent):
    expected_version: int | None = Field(
        None, ge=1, le=MAX_ID, description="Refuse the edit if the post changed meanwhile."
    )


class ScheduleBody(BaseModel):
    scheduled_at: AwareDatetime


class PostOut(BaseModel):
    id: int
    account_id: int
    kind: str
    status: str
    caption: str
    first_comment: str
    alt_text: str
    media_ids: list[int]
    scheduled_at: datetime | None
    published_at: datetime | None
    permalink: str | None
    version: int
    attempts: int
    last_error: str
    source: str
    created_at: datetime


class PostList(BaseModel):
    items: list[PostOut]
    page: int
    has_next: bool
    next_cursor: str | None = Field(description="Pass as `cursor` for the next items.")


class PostQuery(CursorQuery):
    status: Status | None = None
    account_id: int | None = Field(None, ge=1, le=MAX_ID)


def _publishing() -> Publishing:
    return services().publishing


async def _out(post: Post) -> PostOut:
    media = await _publishing().media_ids(current_actor(), post.id)
    return PostOut(
        id=post.id,
        account_id=post.account_id,
        kind=post.kind.value,
        status=post.status.value,
        caption=post.caption,
        first_comment=post.first_comment,
        alt_text=post.alt_text,
        media_ids=media,
        scheduled_at=post.scheduled_at,
        published_at=post.published_at,
        permalink=post.permalink,
        version=post.version,
        attempts=post.attempts,
        last_error=post.last_error,
        source=post.source,
        created_at=post.created_at,
    )


@blueprint.get("")
@api_requires(Role.VIEWER)
@validate_querystring(PostQuery)
@validate_response(PostList)
async def list_posts(query_args: PostQuery) -> PostList:
    """Posts, newest first: ``limit`` (50) after ``cursor``, or page ``page``."""
    limit = query_args.limit
    before = None
    if query_args.cursor:
        before = cursor_int(decode_cursor("posts", query_args.cursor), "before")
    rows = await _publishing().page(
        current_actor(),
        status=query_args.status,
        account_id=query_args.account_id,
        offset=0 if before else (query_args.page - 1) * limit,
        limit=limit + 1,
        before_id=before,
    )
    items = [await _out(post) for post in rows[:limit]]
    more = len(rows) > limit
    return PostList(
        items=items,
        page=query_args.page,
        has_next=more,
        next_cursor=encode_cursor("posts", {"before": items[-1].id}) if more else None,
    )


@blueprint.get("/<int:post_id>")
@api_requires(Role.VIEWER)
@validate_response(PostOut)
async def get_post(post_id: int) -> PostOut:
    """One post."""
    return await _out(await _publishing().get(current_actor(), post_id))


@blueprint.post("")
@api_requires(Role.EDITOR)
@validate_request(PostCreate)
@validate_response(PostOut, 201)
async def create_post(data: PostCreate) -> tuple[PostOut, int]:
    """A draft, or a scheduled post when ``scheduled_at`` is given."""
    post = await _publishing().create(
        current_actor(),
        account_id=data.account_id,
        content=data.as_input(),
        scheduled_at=data.scheduled_at,
        source="api",
    )
    return await _out(post), 201


@blueprint.put("/<int:post_id>")
@api_requires(Role.EDITOR)
@may_conflict(
    "The post is being published, or changed since expected_version, or the kind changed."
)
@validate_request(PostEdit)
@validate_response(PostOut)
async def edit_post(post_id: int, data: PostEdit) -> PostOut:
    """Replace a post's content (not while it is being published)."""
    post = await _publishing().edit(
        current_actor(), post_id, data.as_input(), expected_version=data.expected_version
    )
    return await _out(post)


@blueprint.post("/<int:post_id>/schedule")
@api_requires(Role.EDITOR)
@may_conflict("The post is being published or already published.")
@validate_request(ScheduleBody)
@validate_response(PostOut)
async def schedule_post(post_id: int, data: ScheduleBody) -> PostOut:
    """Schedule or reschedule a post."""
    post = await _publishing().schedule(current_actor(), post_id, data.scheduled_at)
    return await _out(post)


@blueprint.post("/<int:post_id>/cancel")
@api_requires(Role.EDITOR)
@may_conflict("The post is being published, already published or already cancelled.")
@validate_response(PostOut)
async def cancel_post(post_id: int) -> PostOut:
    """Cancel a post that is not being published."""
    post = await _publishing().cancel(current_actor(), post_id, reason="cancelled through the API")
    return await _out(post)


@blueprint.delete("/<int:post_id>")
@api_requires(Role.EDITOR)
@may_conflict("The post is being published, waits to retry, or is live on Instagram.")
async def delete_post(post_id: int) -> tuple[str, int]:
    """Delete a draft, scheduled, failed or cancelled post (its media stay in the library).

    A scheduled post is cancelled first, so it is never published. Answers 409 while the
    post is being published or waits to retry (cancel it first), and for a published post:
    it is live on Instagram, and deleting it there is not supported through the API.
    """
    await _publishing().delete(current_actor(), post_id)
    return "", 204
