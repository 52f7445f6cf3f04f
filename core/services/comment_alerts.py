"""Comment alerts in chat: each new comment on an account whose comment alerts are on is a
card with Hide and Delete buttons (off by default: a busy account would flood the chat).

A press acts as the person who pressed, with their own role (``chat_members``): a viewer is
refused before this module runs, and the write is the moderation service's, scoped by the
presser's workspace. The card is replaced by what happened and by whom; Delete asks first.
"""

from __future__ import annotations

import logging

from core.db.models import DomainEvent, InstagramAccount, OutboundAction, OutboundStatus
from core.domain import alerts
from core.domain.chat import Action, ActionVerb, Reply
from core.domain.commands import describe_time
from core.domain.scope import Actor, instance_level
from core.domain.webhooks import InboundEvent
from core.errors import NotFound
from core.services.comment_moderation import CommentModeration, Moderated
from core.services.outbox import ActionKind

logger = logging.getLogger(__name__)

VERBS = frozenset(
    {
        ActionVerb.HIDE_COMMENT,
        ActionVerb.SHOW_COMMENT,
        ActionVerb.DELETE_COMMENT,
        ActionVerb.CONFIRM_DELETE,
        ActionVerb.KEEP_COMMENT,
    }
)
DONE = {"hide": "🙈 Hidden", "unhide": "👁 Shown again", "delete": "🗑 Deleted"}


@instance_level("the engine, for a comment on any workspace's account")
async def announce(account: InstagramAccount, event: InboundEvent) -> None:
    """Record a comment alert when the account's comment alerts are on (the notifications
    job sends it to the workspace's chats)."""
    if not account.comment_alerts:
        return
    await DomainEvent.create(
        workspace_id=account.workspace_id,
        kind=alerts.COMMENT_ALERT,
        payload={
            "account_id": account.id,
            "username": account.username,
            "comment_id": event.comment_id,
            "media_id": event.media_id,
            "text": event.text,
            "from_username": event.sender_username,
            "at": event.timestamp.isoformat() if event.timestamp else None,
        },
    )


async def press(
    moderation: CommentModeration,
    actor: Actor,
    presser: str,
    zone: str,
    action: Action,
    ctx: alerts.AlertContext,
) -> Reply:
    """Act on a comment alert's button as ``actor`` (named ``presser`` on the card); the
    card as it reads afterwards."""
    alert = await DomainEvent.get_or_none(
        id=action.target, workspace_id=actor.workspace_id, kind=alerts.COMMENT_ALERT
    )
    if alert is None:
        raise NotFound("This comment alert is not one of this workspace's.")
    facts = {**alert.payload, "alert_id": alert.id}
    comment_id = str(facts.get("comment_id") or "")
    media_id = str(facts.get("media_id") or "")
    if action.verb is ActionVerb.DELETE_COMMENT:
        return _replaced(alerts.comment_card(facts, ctx, confirm_delete=True))
    if action.verb is ActionVerb.KEEP_COMMENT:
        hidden = await _hidden(int(facts.get("account_id") or 0), comment_id)
        return _replaced(alerts.comment_card(facts, ctx, hidden=hidden))
    done: Moderated
    if action.verb is ActionVerb.CONFIRM_DELETE:
        done = await moderation.delete(actor, comment_id, media_id=media_id)
    else:
        hide = action.verb is ActionVerb.HIDE_COMMENT
        done = await moderation.hide(actor, comment_id, hide=hide, media_id=media_id)
    when = describe_time(ctx.now, zone) if ctx.now is not None else ""
    if done.ok and done.status == OutboundStatus.SENT.value:
        outcome = f"{DONE[done.action]} by {presser}" + (f", {when}" if when else "")
    else:
        outcome = f"⚠️ {presser} asked to {done.action} it: {done.words}"
    logger.info("comment %s: %s by %s (%s)", comment_id, done.action, actor.label, done.status)
    hidden = done.action == "hide" if done.ok else await _hidden(done.account_id, comment_id)
    deleted = done.action == "delete" and done.status == OutboundStatus.SENT.value
    return _replaced(
        alerts.comment_card(facts, ctx, outcome=outcome, hidden=hidden, deleted=deleted)
    )


def _replaced(reply: Reply) -> Reply:
    return Reply(reply.text, reply.buttons, replace=True)


async def _hidden(account_id: int, comment_id: str) -> bool:
    """Whether Reelay last hid (rather than showed) the comment."""
    last = (
        await OutboundAction.filter(
            account_id=account_id,
            target=comment_id,
            kind__in=[ActionKind.HIDE_COMMENT.value, ActionKind.UNHIDE_COMMENT.value],
            status=OutboundStatus.SENT,
        )
        .order_by("-id")
        .first()
    )
    return last is not None and last.kind == ActionKind.HIDE_COMMENT.value


def is_comment_press(verb: ActionVerb) -> bool:
    return verb in VERBS
