"""What a team reads in chat (and email) when something happens: one message per event kind.

Pure: the service gathers the facts (the event's payload enriched with the post, lead,
account or draft it names) and these functions word them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
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
AI_REPLY_FAILED = "ai.reply_failed"
PUBLISHING_QUOTA_REACHED = "publishing.quota_reached"
DRAFT_APPROVAL_NEEDED = "draft.approval_needed"
POST_APPROVAL_NEEDED = "post.approval_needed"
POST_APPROVAL_DECIDED = "post.approval_decided"
DRAFT_DECIDED = "draft.decided"
DRAFT_EXPIRED = "draft.expired"
COMMENT_RECEIVED = "comment.received"
# A comment on an account whose comment alerts are on: a card with Hide and Delete buttons.
COMMENT_ALERT = "comment.alert"
# The inbox (core/services/conversation_log.py says what each one's facts are).
CONVERSATION_ASSIGNED = "conversation.assigned"
CONVERSATION_MESSAGE_RECEIVED = "conversation.message_received"
CONVERSATION_MESSAGE_SENT = "conversation.message_sent"
CONVERSATION_TAKEN_OVER = "conversation.taken_over"
CONVERSATION_HANDED_BACK = "conversation.handed_back"
CONVERSATION_KINDS = frozenset(
    {
        CONVERSATION_ASSIGNED,
        CONVERSATION_MESSAGE_RECEIVED,
        CONVERSATION_MESSAGE_SENT,
        CONVERSATION_TAKEN_OVER,
        CONVERSATION_HANDED_BACK,
    }
)
# Kinds that edit the chat messages that showed a draft instead of sending new ones.
DRAFT_UPDATES = frozenset({DRAFT_DECIDED, DRAFT_EXPIRED})

# Kinds only event webhooks receive: a chat would drown in them. (``conversation.assigned``
# goes to the assignee's own chat accounts, not to the workspace's chats.)
WEBHOOK_ONLY = frozenset({COMMENT_RECEIVED}) | CONVERSATION_KINDS

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


Facts = Mapping[str, Any]
Sentence = Callable[[Facts, AlertContext], Reply]


def _post(facts: Facts) -> str:
    return f"post #{facts['post_id']}" if facts.get("post_id") else "a post"


def _account(facts: Facts) -> str:
    """The shop's own Instagram account the event is about."""
    return f"@{facts['username']}" if facts.get("username") else "an Instagram account"


def _person(facts: Facts) -> str:
    """The follower an event is about, as ``notifications`` named them (or a fallback)."""
    person = facts.get("person")
    return str(person) if person else "a follower"


def _published(facts: Facts, ctx: AlertContext) -> Reply:
    caption = facts.get("caption_snippet") or ""
    permalink = facts.get("permalink") or ""
    text = f"✅ Published {_post(facts)} on {_account(facts)}" + (f": {caption}" if caption else "")
    if permalink:
        return Reply(f"{text}\n{permalink}", _link("Open on Instagram", permalink))
    return Reply(text)


def _failed(facts: Facts, ctx: AlertContext) -> Reply:
    reason = facts.get("reason") or facts.get("error") or "Instagram refused it."
    text = (
        f"❌ {_post(facts).capitalize()} on {_account(facts)} failed: {reason}\n"
        f"What to do: fix the post in the panel and schedule it again, "
        f"or /reschedule {facts.get('post_id', 'ID')} WHEN once the cause is gone."
    )
    url = f"{ctx.panel_url}/posts/{facts.get('post_id', '')}"
    return Reply(text, _link("Open in the panel", url))


def _post_approval_needed(facts: Facts, ctx: AlertContext) -> Reply:
    """An editor's post that waits for an owner or admin."""
    post_id = int(facts.get("post_id") or 0)
    caption = facts.get("caption_snippet") or ""
    text = (
        f"📝 {_post(facts).capitalize()} by {facts.get('by') or 'an editor'} waits for approval: "
        f"{facts.get('post_kind') or 'post'} on {_account(facts)} for "
        f"{_when(facts.get('scheduled_at'), ctx)}"
        + (f"\n{caption}" if caption else "")
        + f"\nApprove it below (or /approvepost {post_id} WHEN for another time), or "
        f"/rejectpost {post_id} REASON."
    )
    approve = Button("Approve", Action(ActionVerb.POST_APPROVE, post_id), style=ButtonStyle.SUCCESS)
    panel = Button("Open in the panel", url=f"{ctx.panel_url}/posts/{post_id}")
    return Reply(text, ((approve, panel),))


def _post_approval_decided(facts: Facts, ctx: AlertContext) -> Reply:
    """An owner's or admin's decision on an editor's post."""
    post = _post(facts).capitalize()
    who = facts.get("by") or "an admin"
    if facts.get("decision") == "approved":
        when = _when(facts.get("scheduled_at"), ctx)
        return Reply(f"👍 {post} on {_account(facts)} was approved by {who}; it goes out {when}.")
    return Reply(
        f"👎 {post} on {_account(facts)} was rejected by {who}: "
        f"{facts.get('reason') or 'no reason given'}. It will not be published."
    )


def _deferred(facts: Facts, ctx: AlertContext) -> Reply:
    reason = facts.get("reason") or "Instagram's publishing limit"
    until = facts.get("until") or facts.get("next_attempt_at")
    later = f" It will be tried again at {_when(until, ctx)}." if until else ""
    return Reply(
        f"⏳ {_post(facts).capitalize()} on {_account(facts)} is delayed: {reason}.{later}"
    )


def _lead(facts: Facts, ctx: AlertContext) -> Reply:
    fields = facts.get("fields") or {}
    head = f"🎯 New lead from {_person(facts)} on {_account(facts)}"
    if facts.get("rule"):
        head += f" via “{facts['rule']}”"
    lines = [head] + [f"{name}: {value}" for name, value in fields.items() if value]
    return Reply("\n".join(lines), _link("Leads in the panel", f"{ctx.panel_url}/leads"))


def _needs_reconnect(facts: Facts, ctx: AlertContext) -> Reply:
    reason = facts.get("reason") or "Instagram no longer accepts its access token"
    return Reply(
        f"🔌 {_account(facts)} needs to be reconnected: {reason}. Until then nothing is "
        "published or answered on it.",
        _link("Reconnect in the panel", f"{ctx.panel_url}/accounts"),
    )


def _disconnected(facts: Facts, ctx: AlertContext) -> Reply:
    reason = facts.get("reason") or "it was disconnected"
    return Reply(
        f"🔌 {_account(facts)} is disconnected: {reason}. Nothing is published or answered on "
        "it until it is connected again.",
        _link("Accounts in the panel", f"{ctx.panel_url}/accounts"),
    )


def _connected(facts: Facts, ctx: AlertContext) -> Reply:
    return Reply(f"🔗 {_account(facts)} is connected: publishing and automations are on.")


def _reconnected(facts: Facts, ctx: AlertContext) -> Reply:
    return Reply(f"🔗 {_account(facts)} is reconnected: publishing and automations are on.")


def _token_expiring(facts: Facts, ctx: AlertContext) -> Reply:
    return Reply(
        f"⚠️ The access token of {_account(facts)} expires {_when(facts.get('expires_at'), ctx)}. "
        "Reconnect it before then to keep publishing.",
        _link("Reconnect in the panel", f"{ctx.panel_url}/accounts"),
    )


def _ai_quota(facts: Facts, ctx: AlertContext) -> Reply:
    return Reply(
        f"🤖 {ctx.workspace} used its AI quota for {facts.get('month', 'this month')} "
        f"({facts.get('used', '?')} of {facts.get('quota', '?')} tokens). AI replies are "
        "paused until next month or until an admin raises the quota."
    )


def _ai_reply_failed(facts: Facts, ctx: AlertContext) -> Reply:
    rule = f" (rule “{facts['rule_name']}”)" if facts.get("rule_name") else ""
    wrote = f" They wrote: {facts['inbound_text']}" if facts.get("inbound_text") else ""
    reason = facts.get("error") or "the AI server did not answer"
    return Reply(
        f"⚠️ No AI reply was sent to {_person(facts)} on {_account(facts)}{rule}: {reason}."
        f"{wrote}\nAnswer them yourself on Instagram, or check the AI server in the panel.",
        _link("AI settings in the panel", f"{ctx.panel_url}/setup#step-ai"),
    )


def _publishing_quota(facts: Facts, ctx: AlertContext) -> Reply:
    return Reply(
        f"📈 {_account(facts)} reached Instagram's daily publishing limit. Posts due now wait "
        "until the limit frees up."
    )


def _approval_needed(facts: Facts, ctx: AlertContext) -> Reply:
    return Reply(
        f"🕒 An AI reply to {_person(facts)} on {_account(facts)} needs approval.",
        _link("Approvals in the panel", f"{ctx.panel_url}/approvals"),
    )


def _draft_decided(facts: Facts, ctx: AlertContext) -> Reply:
    decision = _DECIDED.get(str(facts.get("status", "")), "Decided")
    draft = f"AI reply #{facts['draft_id']}" if facts.get("draft_id") else "An AI reply"
    return Reply(f"{decision}: {draft} to {_person(facts)}.")


def _comment_received(facts: Facts, ctx: AlertContext) -> Reply:
    who = f"@{facts['from_username']}" if facts.get("from_username") else "Someone"
    text = facts.get("text") or ""
    return Reply(f"💬 {who} commented on {_account(facts)}" + (f": {text}" if text else "."))


def _comment_alert(facts: Facts, ctx: AlertContext) -> Reply:
    return comment_card(facts, ctx)


def comment_card(
    facts: Facts,
    ctx: AlertContext,
    *,
    outcome: str = "",
    hidden: bool = False,
    deleted: bool = False,
    confirm_delete: bool = False,
) -> Reply:
    """A comment alert: the comment with Hide (or Show again) and Delete; once acted on,
    the line saying what happened and by whom; Delete asks first."""
    event_id = int(facts.get("alert_id") or 0)
    who = f"@{facts['from_username']}" if facts.get("from_username") else "Someone"
    text = facts.get("text") or ""
    lines = [f"💬 {who} commented on {_account(facts)}" + (f": {text}" if text else ".")]
    if facts.get("at"):
        lines.append(f"At {_when(facts.get('at'), ctx)}")
    if outcome:
        lines.append(outcome)
    page = f"{ctx.panel_url}/inbox/comments/{facts.get('media_id')}"
    panel = Button("Open in the panel", url=page)
    if deleted:
        return Reply("\n".join(lines), ((panel,),))
    if confirm_delete:
        lines.append("Delete this comment for good? Instagram cannot bring it back.")
        sure = Button(
            "Yes, delete", Action(ActionVerb.CONFIRM_DELETE, event_id), style=ButtonStyle.DANGER
        )
        keep = Button("Keep it", Action(ActionVerb.KEEP_COMMENT, event_id))
        return Reply("\n".join(lines), ((sure, keep),))
    toggle = (
        Button("Show again", Action(ActionVerb.SHOW_COMMENT, event_id))
        if hidden
        else Button("Hide", Action(ActionVerb.HIDE_COMMENT, event_id), style=ButtonStyle.PRIMARY)
    )
    delete = Button("Delete", Action(ActionVerb.DELETE_COMMENT, event_id), style=ButtonStyle.DANGER)
    return Reply("\n".join(lines), ((toggle, delete), (panel,)))


def _inbox_link(facts: Facts, ctx: AlertContext) -> tuple[tuple[Button, ...], ...]:
    conversation_id = facts.get("conversation_id")
    if not conversation_id or not ctx.panel_url:
        return ()
    return _link("Open in the inbox", f"{ctx.panel_url.rstrip('/')}/inbox/{conversation_id}")


def _conversation_assigned(facts: Facts, ctx: AlertContext) -> Reply:
    person = facts.get("person") or "a follower"
    assignee = facts.get("assignee") or "a team member"
    text = f"👤 Assigned to you: the conversation with {person} on {_account(facts)}"
    if facts.get("assigned_by"):
        text += f" (by {facts['assigned_by']})"
    if facts.get("last_message"):
        text += f"\nLast message: {facts['last_message']}"
    if not facts.get("personal"):
        text = f"👤 The conversation with {person} on {_account(facts)} went to {assignee}."
    return Reply(text, buttons=_inbox_link(facts, ctx))


def _message_received(facts: Facts, ctx: AlertContext) -> Reply:
    return Reply(
        f"💬 {_person(facts)} wrote to {_account(facts)}: {facts.get('text') or ''}".rstrip(": "),
        buttons=_inbox_link(facts, ctx),
    )


def _message_sent(facts: Facts, ctx: AlertContext) -> Reply:
    who = {
        "automation": "An automation",
        "instagram_app": "The Instagram app",
        "inbox": "A teammate",
        "chat": "A teammate (from chat)",
    }.get(str(facts.get("source") or ""), "Reelay")
    return Reply(
        f"↩️ {who} answered {_person(facts)}: {facts.get('text') or ''}".rstrip(": "),
        buttons=_inbox_link(facts, ctx),
    )


def _taken_over(facts: Facts, ctx: AlertContext) -> Reply:
    until = f" until {_when(facts['until'], ctx)}" if facts.get("until") else ""
    by = facts.get("by") or "A teammate"
    return Reply(
        f"✋ {by} took over the conversation with {_person(facts)}{until}: "
        "automations stay silent for them.",
        buttons=_inbox_link(facts, ctx),
    )


def _handed_back(facts: Facts, ctx: AlertContext) -> Reply:
    by = facts.get("by") or "A teammate"
    return Reply(
        f"🤖 {by} handed the conversation with {_person(facts)} back to the automations.",
        buttons=_inbox_link(facts, ctx),
    )


# Every event kind a service records, with the sentence the team reads for it. The test
# tests/core/test_alerts.py finds the kinds recorded anywhere in the code and holds each here.
SENTENCES: dict[str, Sentence] = {
    POST_PUBLISHED: _published,
    POST_FAILED: _failed,
    POST_DEFERRED: _deferred,
    POST_APPROVAL_NEEDED: _post_approval_needed,
    POST_APPROVAL_DECIDED: _post_approval_decided,
    LEAD_CAPTURED: _lead,
    ACCOUNT_NEEDS_RECONNECT: _needs_reconnect,
    ACCOUNT_DISCONNECTED: _disconnected,
    ACCOUNT_CONNECTED: _connected,
    ACCOUNT_RECONNECTED: _reconnected,
    TOKEN_EXPIRING: _token_expiring,
    AI_QUOTA_REACHED: _ai_quota,
    AI_REPLY_FAILED: _ai_reply_failed,
    PUBLISHING_QUOTA_REACHED: _publishing_quota,
    DRAFT_APPROVAL_NEEDED: _approval_needed,
    DRAFT_DECIDED: _draft_decided,
    DRAFT_EXPIRED: _draft_decided,
    COMMENT_RECEIVED: _comment_received,
    COMMENT_ALERT: _comment_alert,
    CONVERSATION_ASSIGNED: _conversation_assigned,
    CONVERSATION_MESSAGE_RECEIVED: _message_received,
    CONVERSATION_MESSAGE_SENT: _message_sent,
    CONVERSATION_TAKEN_OVER: _taken_over,
    CONVERSATION_HANDED_BACK: _handed_back,
}


def render_event(kind: str, facts: Facts, ctx: AlertContext) -> Reply:
    """The chat message for an event; ``facts`` is its payload plus what it refers to."""
    sentence = SENTENCES.get(kind)
    if sentence is None:
        # A kind recorded without a sentence is a bug (the test catches it); say so in words.
        return Reply(f"🔔 Something happened in {ctx.workspace} that Reelay has no words for.")
    return sentence(facts, ctx)


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
