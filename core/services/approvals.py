"""The approvals page's reads: pending AI reply drafts with the conversation so far, and
drafts decided since a moment (in chat, by API or by a teammate), for live updates."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from core.db.models import DraftStatus, InstagramAccount, Message, ReplyDraft, User
from core.domain.followers import follower_label
from core.domain.scope import Actor
from core.services import followers

HISTORY = 20


@dataclass(frozen=True)
class DraftView:
    draft: ReplyDraft
    account: InstagramAccount
    person: str
    messages: list[Message]
    decided_by: str = ""


async def _view(draft: ReplyDraft) -> DraftView:
    account = await InstagramAccount.get(id=draft.account_id)
    messages: list[Message] = []
    username = str(draft.target.get("username") or "")
    igsid = str(draft.target.get("igsid") or "")
    person = follower_label(followers.follower_of(None, username, igsid))
    if draft.conversation_id is not None:
        await draft.fetch_related("conversation")
        conversation = draft.conversation
        if conversation is not None:
            person = follower_label(followers.follower_of(conversation, username, igsid))
            messages = list(
                reversed(
                    await Message.filter(
                        conversation_id=conversation.id, created_at__lte=draft.created_at
                    )
                    .order_by("-created_at", "-id")
                    .limit(HISTORY)
                )
            )
    decider = ""
    if draft.decided_by_id is not None:
        user = await User.get_or_none(id=draft.decided_by_id)
        decider = (user.name or user.email) if user else ""
    return DraftView(draft, account, person, messages, decider)


async def pending(actor: Actor, after_id: int = 0) -> list[DraftView]:
    """Pending drafts, oldest first (the first to expire on top)."""
    drafts = await ReplyDraft.filter(
        workspace_id=actor.workspace_id, status=DraftStatus.PENDING, id__gt=after_id
    ).order_by("expires_at", "id")
    return [await _view(d) for d in drafts]


async def one(actor: Actor, draft_id: int) -> DraftView | None:
    """One draft of the actor's workspace; None for any other."""
    draft = await ReplyDraft.get_or_none(id=draft_id, workspace_id=actor.workspace_id)
    return await _view(draft) if draft is not None else None


async def decided_since(actor: Actor, since: datetime, limit: int = 20) -> list[DraftView]:
    """Drafts decided (or expired) since ``since``, newest first."""
    drafts = (
        await ReplyDraft.filter(workspace_id=actor.workspace_id, decided_at__gte=since)
        .exclude(status=DraftStatus.PENDING)
        .order_by("-decided_at")
        .limit(limit)
    )
    return [await _view(d) for d in drafts]


async def drafts_page(
    actor: Actor,
    *,
    status: DraftStatus | None,
    offset: int,
    limit: int,
    before_id: int | None = None,
) -> list[ReplyDraft]:
    """The workspace's drafts (of ``status``, any when None), newest first; those older than
    ``before_id`` when given (a cursor)."""
    query = ReplyDraft.filter(workspace_id=actor.workspace_id)
    if before_id is not None:
        query = query.filter(id__lt=before_id)
    if status is not None:
        query = query.filter(status=status)
    return await query.order_by("-id").offset(offset).limit(limit)
