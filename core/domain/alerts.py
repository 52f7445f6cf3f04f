"""What a team reads in chat (and email) when something happens: one message per event kind.

Pure: the service gathers the facts (the event's payload enriched with the post, lead,
account or draft it names) and these functions word them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from core.domain.chat import Action, ActionVerb, Button, ButtonStyle, Reply
from core.domain.commands import describe_time

POST_PUBLISHED = "post.published"
POST_FAILED = "post.failed"
POST_DEFERRED = "post.deferred"
LEAD_CAPTURED = "lead.captured"
ACCOUNT_NEEDS_RECONNECT = "account.needs_reconnect"
ACCOUNT_DISCONNECTED = "account.disconnected"
ACCOUNT_CONNECTED = "account.connected"
ACCOUNT_RECONNECTED = "account.reconnected"
TOKEN_EXPIRING = "token.expiring"
AI_QUOTA_REACHED = "ai.quota_reached"
PUBLISHING_QUOTA_REACHED = "publishing.quota_reached"
DRAFT_APPROVAL_NEEDED = "draft.approval_needed"
POST_APPROVAL_NEEDED = "post.approval_needed"
POST_APPROVAL_DECIDED = "post.approval_decided"
DRAFT_DECIDED = "draft.decided"
DRAFT_EXPIRED = "draft.expired"
# Kinds that edit the chat messages that showed a draft instead of sending new ones.
DRAFT_UPDATES = frozenset({DRAFT_DECIDED, DRAFT_EXPIRED})

# Kinds that also go by email when a notification address is set.
EMAIL_KINDS = frozenset({LEAD_CAPTURED, POST_FAILED, ACCOUNT_NEEDS_RECONNECT, ACCOUNT_DISCONNECTED})


@dataclass(frozen=True)
class DraftFacts:
    id: int
    status: str
    inbound_text: str
    proposed_text: str
    final_text: str | None
    channel: str  # "DM" or "comment"
    person: str
    rule: str
    decided_by: str
    decided_at: datetime | None
    post_link: str = ""  # the post a comment is under
    window_closes_at: datetime | None = None  # when Instagram stops taking the reply


@dataclass(frozen=True)
class AlertContext:
    timezone: str
    panel_url: str
    workspace: str
    now: datetime | None = None  # for "closes in 3 h"; None leaves such lines out


def window_left(closes_at: datetime, now: datetime) -> str:
    """How long until ``closes_at``, in the unit a person reads at a glance."""
    left = (closes_at - now).total_seconds()
    if left <= 0:
        return "closed"
    if left < 3600:
        return f"closes in {max(int(left // 60), 1)} min"
    if left < 48 * 3600:
        return f"closes in {int(left // 3600)} h"
    return f"closes in {int(left // 86400)} days"


def _when(value: Any, ctx: AlertContext) -> str:
    if isinstance(value, datetime):
        return describe_time(value, ctx.timezone)
    if isinstance(value, str) and value:
        try:
            return describe_time(datetime.fromisoformat(value), ctx.timezone)
        except ValueError:
            return value
    return "an unknown time"


def _link(label: str, url: str) -> tuple[tuple[Button, ...], ...]:
    return ((Button(label, url=url),),)


def _post_approval(kind: str, facts: Mapping[str, Any], ctx: AlertContext) -> Reply:
    """An editor's post that waits for an owner or admin, or their decision on it."""
    post_id = int(facts.get("post_id") or 0)
    account = f"@{facts['username']}" if facts.get("username") else "an Instagram account"
    when = _when(facts.get("scheduled_at"), ctx)
    who = facts.get("by") or "an admin"
    if kind == POST_APPROVAL_NEEDED:
        caption = facts.get("caption_snippet") or ""
        text = (
            f"📝 Post #{post_id} by {facts.get('by') or 'an editor'} waits for approval: "
            f"{facts.get('post_kind') or 'post'} on {account} for {when}"
            + (f"\n{caption}" if caption else "")
            + f"\nApprove it below (or /approvepost {post_id} WHEN for another time), or "
            f"/rejectpost {post_id} REASON."
        )
        approve = Button(
            "Approve", Action(ActionVerb.POST_APPROVE, post_id), style=ButtonStyle.SUCCESS
        )
        panel = Button("Open in the panel", url=f"{ctx.panel_url}/posts/{post_id}")
        return Reply(text, ((approve, panel),))
    if facts.get("decision") == "approved":
        return Reply(f"👍 Post #{post_id} on {account} was approved by {who}; it goes out {when}.")
    return Reply(
        f"👎 Post #{post_id} on {account} was rejected by {who}: "
        f"{facts.get('reason') or 'no reason given'}. It will not be published."
    )


def render_event(kind: str, facts: Mapping[str, Any], ctx: AlertContext) -> Reply:
    """The chat message for an event; ``facts`` is its payload plus what it refers to."""
    post = f"post #{facts['post_id']}" if facts.get("post_id") else "a post"
    caption = facts.get("caption_snippet") or ""
    account = f"@{facts['username']}" if facts.get("username") else "an Instagram account"
    panel = ctx.panel_url
    if kind == POST_PUBLISHED:
        permalink = facts.get("permalink") or ""
        text = f"✅ Published {post} on {account}" + (f": {caption}" if caption else "")
        if permalink:
            return Reply(f"{text}\n{permalink}", _link("Open on Instagram", permalink))
        return Reply(text)
    if kind == POST_FAILED:
        reason = facts.get("reason") or facts.get("error") or "Instagram refused it."
        text = (
            f"❌ {post.capitalize()} on {account} failed: {reason}\n"
            f"What to do: fix the post in the panel and schedule it again, "
            f"or /reschedule {facts.get('post_id', 'ID')} WHEN once the cause is gone."
        )
        return Reply(text, _link("Open in the panel", f"{panel}/posts/{facts.get('post_id', '')}"))
    if kind in (POST_APPROVAL_NEEDED, POST_APPROVAL_DECIDED):
        return _post_approval(kind, facts, ctx)
    if kind == POST_DEFERRED:
        reason = facts.get("reason") or "Instagram's publishing limit"
        until = facts.get("until") or facts.get("next_attempt_at")
        later = f" It will be tried again at {_when(until, ctx)}." if until else ""
        return Reply(f"⏳ {post.capitalize()} on {account} is delayed: {reason}.{later}")
    if kind == LEAD_CAPTURED:
        fields = facts.get("fields") or {}
        lines = [f"🎯 New lead from {facts.get('person') or 'someone'} on {account}"]
        if facts.get("rule"):
            lines[0] += f" via “{facts['rule']}”"
        lines += [f"{name}: {value}" for name, value in fields.items() if value]
        return Reply("\n".join(lines), _link("Leads in the panel", f"{panel}/leads"))
    if kind == ACCOUNT_NEEDS_RECONNECT:
        reason = facts.get("reason") or "Instagram no longer accepts its access token"
        return Reply(
            f"🔌 {account} needs to be reconnected: {reason}. Until then nothing is "
            "published or answered on it.",
            _link("Reconnect in the panel", f"{panel}/accounts"),
        )
    if kind == ACCOUNT_DISCONNECTED:
        reason = facts.get("reason") or "it was disconnected"
        return Reply(
            f"🔌 {account} is disconnected: {reason}. Nothing is published or answered on it "
            "until it is connected again.",
            _link("Accounts in the panel", f"{panel}/accounts"),
        )
    if kind in (ACCOUNT_CONNECTED, ACCOUNT_RECONNECTED):
        verb = "connected" if kind == ACCOUNT_CONNECTED else "reconnected"
        return Reply(f"🔗 {account} is {verb}: publishing and automations are on.")
    if kind == TOKEN_EXPIRING:
        expires = facts.get("expires_at")
        return Reply(
            f"⚠️ The access token of {account} expires {_when(expires, ctx)}. "
            "Reconnect it before then to keep publishing.",
            _link("Reconnect in the panel", f"{panel}/accounts"),
        )
    if kind == AI_QUOTA_REACHED:
        return Reply(
            f"🤖 {ctx.workspace} used its AI quota for {facts.get('month', 'this month')} "
            f"({facts.get('used', '?')} of {facts.get('quota', '?')} tokens). AI replies are "
            "paused until next month or until an admin raises the quota."
        )
    if kind == PUBLISHING_QUOTA_REACHED:
        return Reply(
            f"📈 {account} reached Instagram's daily publishing limit. Posts due now wait "
            "until the limit frees up."
        )
    summary = ", ".join(f"{k}: {v}" for k, v in facts.items() if not isinstance(v, dict | list))
    return Reply(f"🔔 {kind}" + (f": {summary}" if summary else ""))


_DECIDED = {
    "approved": "✅ Approved",
    "edited": "✏️ Edited and sent",
    "rejected": "❌ Rejected",
    "expired": "⌛ Expired, nothing was sent",
}


def render_draft(draft: DraftFacts, ctx: AlertContext) -> Reply:
    """An approval request with Approve / Edit / Reject, or the decision once made."""
    head = (
        f"AI reply #{draft.id} for {draft.person} ({draft.channel}"
        + (f", rule “{draft.rule}”" if draft.rule else "")
        + ")"
    )
    body = f"They wrote: {draft.inbound_text}"
    if draft.post_link:
        body += f"\nUnder the post: {draft.post_link}"
    body += f"\nProposed reply: {draft.proposed_text}"
    if draft.status == "pending":
        if draft.window_closes_at is not None and ctx.now is not None:
            window = "DM window" if draft.channel == "DM" else "Private-reply window"
            body += f"\n{window} {window_left(draft.window_closes_at, ctx.now)}"
        buttons = (
            Button("Approve", Action(ActionVerb.APPROVE, draft.id), style=ButtonStyle.SUCCESS),
            Button("Edit", Action(ActionVerb.EDIT, draft.id), style=ButtonStyle.PRIMARY),
            Button("Reject", Action(ActionVerb.REJECT, draft.id), style=ButtonStyle.DANGER),
        )
        return Reply(f"🕒 {head} needs approval\n{body}", (buttons,))
    decision = _DECIDED.get(draft.status, draft.status)
    who = f" by {draft.decided_by}" if draft.decided_by else ""
    when = f" at {describe_time(draft.decided_at, ctx.timezone)}" if draft.decided_at else ""
    text = f"{decision}{who}{when}\n{head}\n{body}"
    if draft.status == "edited" and draft.final_text:
        text += f"\nSent instead: {draft.final_text}"
    return Reply(text)


def email_subject(kind: str, facts: Mapping[str, Any], ctx: AlertContext) -> str:
    if kind == LEAD_CAPTURED:
        return f"[{ctx.workspace}] New lead from {facts.get('person') or 'Instagram'}"
    if kind == POST_FAILED:
        return f"[{ctx.workspace}] Post #{facts.get('post_id', '?')} failed to publish"
    if kind in (ACCOUNT_NEEDS_RECONNECT, ACCOUNT_DISCONNECTED):
        return f"[{ctx.workspace}] @{facts.get('username', '?')} needs to be reconnected"
    return f"[{ctx.workspace}] {kind}"


def email_body(reply: Reply) -> str:
    links = [f"{b.label}: {b.url}" for b in reply.all_buttons() if b.url]
    return "\n\n".join([reply.text, *links]) + "\n"
