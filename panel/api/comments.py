"""API: a post's comments, and replying to, hiding, showing and deleting one comment."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field
from quart import Blueprint
from quart_schema import validate_querystring, validate_request, validate_response

from core.db.models import Role
from core.errors import Conflict, ValidationFailed
from core.services.comment_moderation import CommentModeration, CommentView, Moderated
from panel.api.auth import api_requires, current_actor
from panel.api.schemas import decode_cursor, encode_cursor, may_conflict
from panel.services import services

blueprint = Blueprint("api_comments", __name__, url_prefix="/api/v1")

NOT_DONE = "Instagram refused it or Meta's rules do not allow it (the message says which)."


class CommentQuery(BaseModel):
    cursor: str | None = Field(
        None, max_length=400, description="The `next_cursor` of the previous answer."
    )
    limit: int = Field(50, ge=1, le=100, description="Top-level comments per answer.")


class CommentOut(BaseModel):
    id: str
    text: str
    username: str
    from_id: str
    timestamp: datetime | None
    hidden: bool
    parent_id: str | None
    like_count: int
    handled_by_rule: str | None = Field(description="The rule that acted on it, if one did.")
    replies: list[CommentOut]


class CommentList(BaseModel):
    account_id: int
    media_id: str
    items: list[CommentOut]
    next_cursor: str | None = Field(description="Pass as `cursor` for older comments.")
    notice: str | None = Field(
        description="Set when Instagram could not be read: the items are the comments Reelay "
        "received, without replies or whether they are hidden."
    )


class CommentReplyBody(BaseModel):
    text: str = Field(min_length=1, max_length=1000, description="At most 1000 bytes.")


class ModeratedOut(BaseModel):
    comment_id: str
    action: str = Field(description="hide, unhide, delete, reply or private_reply")
    status: str = Field(
        description="sent; or pending: queued, or Instagram did not answer and Reelay checks "
        "whether it happened before trying again (never twice)"
    )
    message: str


def _moderation() -> CommentModeration:
    return services().comment_moderation


def _comment(view: CommentView) -> CommentOut:
    return CommentOut(
        id=view.id,
        text=view.text,
        username=view.username,
        from_id=view.from_id,
        timestamp=view.at,
        hidden=view.hidden,
        parent_id=view.parent_id or None,
        like_count=view.like_count,
        handled_by_rule=view.handled_by or None,
        replies=[_comment(r) for r in view.replies],
    )


def _done(done: Moderated) -> ModeratedOut:
    if not done.ok:
        raise Conflict(done.words)
    return ModeratedOut(
        comment_id=done.comment_id, action=done.action, status=done.status, message=done.words
    )


@blueprint.get("/media/<media_id>/comments")
@api_requires(Role.VIEWER)
@validate_querystring(CommentQuery)
@validate_response(CommentList)
async def list_comments(media_id: str, query_args: CommentQuery) -> CommentList:
    """A post's top-level comments with their replies, as Instagram lists them."""
    after = None
    if query_args.cursor:
        after = decode_cursor("comments", query_args.cursor).get("after")
        if not isinstance(after, str) or not after:
            raise ValidationFailed(
                "The cursor is not one this list gave; pass next_cursor back unchanged.",
                {"cursor": "not a cursor of this list"},
            )
    page = await _moderation().comments(
        current_actor(), media_id, after=after, limit=query_args.limit
    )
    return CommentList(
        account_id=page.account_id,
        media_id=page.media_id,
        items=[_comment(v) for v in page.comments],
        next_cursor=encode_cursor("comments", {"after": page.after}) if page.after else None,
        notice=page.notice or None,
    )


@blueprint.post("/comments/<comment_id>/hide")
@api_requires(Role.EDITOR)
@may_conflict(NOT_DONE)
@validate_response(ModeratedOut)
async def hide(comment_id: str) -> ModeratedOut:
    """Hide a comment: the account's followers no longer see it."""
    return _done(await _moderation().hide(current_actor(), comment_id))


@blueprint.post("/comments/<comment_id>/unhide")
@api_requires(Role.EDITOR)
@may_conflict(NOT_DONE)
@validate_response(ModeratedOut)
async def unhide(comment_id: str) -> ModeratedOut:
    """Show a hidden comment again."""
    return _done(await _moderation().hide(current_actor(), comment_id, hide=False))


@blueprint.post("/comments/<comment_id>/reply")
@api_requires(Role.EDITOR)
@may_conflict(NOT_DONE)
@validate_request(CommentReplyBody)
@validate_response(ModeratedOut)
async def public_reply(comment_id: str, data: CommentReplyBody) -> ModeratedOut:
    """Reply in public under a comment (the same text twice is sent once)."""
    return _done(await _moderation().reply(current_actor(), comment_id, data.text))


@blueprint.post("/comments/<comment_id>/private-reply")
@api_requires(Role.EDITOR)
@may_conflict(NOT_DONE)
@validate_request(CommentReplyBody)
@validate_response(ModeratedOut)
async def private_reply(comment_id: str, data: CommentReplyBody) -> ModeratedOut:
    """Reply in private to the comment's author (one per comment, within 7 days of it)."""
    return _done(await _moderation().private_reply(current_actor(), comment_id, data.text))


@blueprint.delete("/comments/<comment_id>")
@api_requires(Role.EDITOR)
@may_conflict(NOT_DONE)
@validate_response(ModeratedOut)
async def delete(comment_id: str) -> ModeratedOut:
    """Delete a comment and its replies from Instagram, for good."""
    return _done(await _moderation().delete(current_actor(), comment_id))
