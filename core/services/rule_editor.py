"""The rule editor's service: list rules with their stats, save a rule whole, and try a rule
in the sandbox Instagram, reading back what the engine did and why.

Saving checks every field first (:func:`core.domain.rule_checks.check`), then writes
the rule, its stats row and the audit entry in one transaction: a refused form changes
nothing. Trying a rule sends a sample comment or DM through the sandbox, which signs it and
POSTs it to Reelay's own webhook endpoint, so it takes the same path as a real event; the
explanation is read back from the ``WebhookEvent``, ``OutboundAction`` and ``ReplyDraft`` rows
it left.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from redis.asyncio import Redis
from tortoise.transactions import in_transaction

from core.bootstrap import Container
from core.db.models import (
    AutomationRule,
    EventStatus,
    InstagramAccount,
    OutboundAction,
    ReplyDraft,
    RuleStats,
    Trigger,
    WebhookEvent,
)
from core.domain.graph_errors import GraphError
from core.domain.messages import message_text
from core.domain.rule_checks import Problems, check, not_saved
from core.domain.rule_definition import RuleDefinition
from core.domain.rules import RuleIndex, normalize
from core.domain.scope import Actor
from core.domain.webhooks import InboundEvent, parse_payload
from core.errors import NotFound, ValidationFailed
from core.ports.sandbox import SandboxUnavailable
from core.ports.secrets import SecretStore
from core.services import audit, rule_changes
from core.services.accounts import account_ref
from core.services.leads import SEALED, seal_webhook_secret
from core.services.sandbox_console import dedupe_key
from core.services.smart_replies import read_unanswered_note

logger = logging.getLogger(__name__)

RECENT_POSTS = 24
SAMPLE_KINDS = ("comment", "dm")


@dataclass(frozen=True)
class RuleRow:
    rule: AutomationRule
    account: InstagramAccount
    stats: RuleStats | None


async def list_rules(actor: Actor, account_id: int | None = None) -> list[RuleRow]:
    """The workspace's rules, highest priority first, each with its account and counters."""
    query = AutomationRule.filter(workspace_id=actor.workspace_id)
    if account_id is not None:
        query = query.filter(account_id=account_id)
    rules = await query.order_by("-priority", "id").prefetch_related("account")
    stats = {s.rule_id: s for s in await RuleStats.filter(rule_id__in=[r.id for r in rules])}
    return [RuleRow(rule, rule.account, stats.get(rule.id)) for rule in rules]


async def rules_by_name(actor: Actor) -> list[AutomationRule]:
    """The workspace's rules by name (filters and labels)."""
    return await AutomationRule.filter(workspace_id=actor.workspace_id).order_by("name")


async def rule_row(actor: Actor, rule: AutomationRule) -> RuleRow:
    """``rule`` (one of the actor's workspace) with its account and counters."""
    account = await InstagramAccount.get_or_none(
        id=rule.account_id, workspace_id=actor.workspace_id
    )
    if account is None or rule.workspace_id != actor.workspace_id:
        raise NotFound(f"rule {rule.id} does not exist")
    return RuleRow(rule, account, await RuleStats.get_or_none(rule_id=rule.id))


async def get_rule(actor: Actor, rule_id: int) -> AutomationRule:
    """The actor's workspace's rule ``rule_id``; NotFound for any other."""
    rule = await AutomationRule.get_or_none(id=rule_id, workspace_id=actor.workspace_id)
    if rule is None:
        raise NotFound(f"rule {rule_id} does not exist")
    return rule


async def workspace_account(actor: Actor, account_id: int | None) -> InstagramAccount:
    """The account a form chose; ValidationFailed (on ``account_id``) unless it is one of the
    actor's workspace's."""
    account = None
    if account_id is not None:
        account = await InstagramAccount.get_or_none(id=account_id, workspace_id=actor.workspace_id)
    if account is None:
        raise ValidationFailed(
            "Choose one of this workspace's Instagram accounts.",
            {"account_id": "Choose one of this workspace's Instagram accounts."},
        )
    return account


async def save_rule(
    actor: Actor,
    definition: RuleDefinition,
    *,
    redis: Redis,
    rule_id: int | None = None,
    found: Problems | None = None,
    secrets: SecretStore,
) -> AutomationRule:
    """Create (``rule_id`` None) or replace a rule, all or nothing; ``found`` are problems
    the caller already found (by definition path), reported with the rest. Every worker
    answers with it from the next event (announced through ``redis``).

    The lead webhook secret is write-only: None keeps the stored one, empty clears it, and
    whatever is stored is sealed with ``secrets`` (a plain one from an older release too)."""
    existing = await get_rule(actor, rule_id) if rule_id is not None else None
    given_secret = definition.lead_settings.webhook_secret
    try:
        draft = check(definition, found)
    except ValidationFailed as exc:
        # The account is checked too, so one answer names every problem.
        if "account_id" not in exc.fields:
            try:
                await workspace_account(actor, definition.account_id)
            except ValidationFailed as missing:
                exc.fields.update(missing.fields)
        raise
    account = await workspace_account(actor, draft.account_id)
    await _ref_code_free(account, draft, rule_id)
    columns = draft.stored_columns()
    if existing is not None:
        _keep_unset(columns["config"], definition, RuleDefinition.from_stored(existing))
    sealed = _sealed_secret(secrets, given_secret, existing)
    lead_settings = columns["config"]["lead_capture_settings"]
    lead_settings.pop("webhook_secret", None)
    if sealed:
        lead_settings["webhook_secret"] = sealed
    async with in_transaction():
        if existing is None:
            rule = await AutomationRule.create(
                workspace_id=actor.workspace_id, account_id=account.id, **columns
            )
            await RuleStats.get_or_create(rule_id=rule.id)
        else:
            rule = existing
            rule.update_from_dict({"account_id": account.id, **columns})
            await rule.save()
        await audit.record(
            "rule.created" if existing is None else "rule.updated",
            actor=actor.label,
            workspace_id=actor.workspace_id,
            account_id=account.id,
            target_type="rule",
            target_id=rule.id,
            name=draft.name,
            trigger=draft.trigger,
            active=draft.active,
        )
    await rule_changes.announce(redis)
    logger.info("rule %s saved (account %s, %s)", rule.id, account.id, draft.trigger)
    return rule


async def _ref_code_free(
    account: InstagramAccount, draft: RuleDefinition, rule_id: int | None
) -> None:
    """An ig.me ref names one rule of its account."""
    if draft.trigger != "ref_link":
        return
    others = AutomationRule.filter(account_id=account.id, trigger=Trigger.REF_LINK)
    if rule_id is not None:
        others = others.exclude(id=rule_id)
    for other in await others:
        if RuleDefinition.from_stored(other).ref_code == draft.ref_code:
            message = f'The rule "{other.name}" already uses this ref on @{account.username}.'
            raise ValidationFailed(not_saved({"ref_code": message}), {"ref_code": message})


def _keep_unset(config: dict[str, Any], given: RuleDefinition, stored: RuleDefinition) -> None:
    """What the editor leaves unset (None) stays as stored: the rule's notification address,
    and the AI action's limits the form does not show."""
    if given.notification_email is None and stored.notification_email:
        config["notification_email"] = stored.notification_email
    if given.ai is None or stored.ai is None:
        return
    for name in ("max_sentences", "max_chars", "history_messages"):
        value = getattr(stored.ai, name)
        if getattr(given.ai, name) is None and value is not None:
            config["ai"][name] = value


def _sealed_secret(box: SecretStore, given: str | None, existing: AutomationRule | None) -> str:
    if given is not None:
        return seal_webhook_secret(box, given.strip()) if given.strip() else ""
    stored = RuleDefinition.from_stored(existing).lead_settings.webhook_secret if existing else ""
    if not stored or stored.startswith(SEALED):
        return stored or ""
    return seal_webhook_secret(box, stored)


async def set_active(actor: Actor, rule_id: int, active: bool, *, redis: Redis) -> None:
    """Switch a rule on or off (every worker sees it from the next event)."""
    rule = await get_rule(actor, rule_id)
    rule.active = active
    await rule.save(update_fields=["active", "updated_at"])
    await audit.record(
        "rule.enabled" if active else "rule.disabled",
        actor=actor.label,
        workspace_id=actor.workspace_id,
        account_id=rule.account_id,
        target_type="rule",
        target_id=rule.id,
    )
    await rule_changes.announce(redis)


async def delete_rule(actor: Actor, rule_id: int, *, redis: Redis) -> None:
    """Delete a rule (its leads stay)."""
    rule = await get_rule(actor, rule_id)
    async with in_transaction():
        await rule.delete()
        await audit.record(
            "rule.deleted",
            actor=actor.label,
            workspace_id=actor.workspace_id,
            account_id=rule.account_id,
            target_type="rule",
            target_id=rule_id,
            name=rule.name,
        )
    await rule_changes.announce(redis)


@dataclass(frozen=True)
class RecentPost:
    id: str
    caption: str
    thumbnail_url: str
    permalink: str
    media_type: str


async def recent_posts(
    actor: Actor, container: Container, account_id: int | None
) -> list[RecentPost]:
    """The latest posts on Instagram of one of the workspace's accounts (for picking a rule's
    scope); ValidationFailed for any other account."""
    account = await workspace_account(actor, account_id)
    try:
        found = await container.graph.media_list(account_ref(container, account), RECENT_POSTS)
    except GraphError as exc:
        raise ValidationFailed(
            f"Instagram did not list the posts of @{account.username}: {exc.title}",
            {"media_ids": f"Could not load the posts: {exc.title}"},
        ) from exc
    posts = []
    for item in found:
        media_id = str(item.get("id") or "")
        if not media_id:
            continue
        posts.append(
            RecentPost(
                id=media_id,
                caption=str(item.get("caption") or "")[:120],
                thumbnail_url=str(item.get("thumbnail_url") or item.get("media_url") or ""),
                permalink=str(item.get("permalink") or ""),
                media_type=str(item.get("media_type") or ""),
            )
        )
    return posts


# ---------------------------------------------------------------- trying a rule


@dataclass(frozen=True)
class SampleSent:
    """A sample the sandbox delivered: ``dedupe_key`` finds its ``WebhookEvent``."""

    kind: str
    dedupe_key: str
    person_id: str
    webhook_status: int | None
    error: str = ""


def new_test_person() -> str:
    """A made-up follower id (each one has its own cooldowns and conversation)."""
    return "77" + "".join(secrets.choice("0123456789") for _ in range(12))


async def send_sample(
    actor: Actor,
    container: Container,
    rule: AutomationRule,
    *,
    kind: str,
    text: str,
    person_id: str,
    username: str = "test_follower",
) -> SampleSent:
    """A sample comment (on the rule's first scoped post when there is one) or DM, sent by
    the sandbox through the signed webhook path."""
    if kind not in SAMPLE_KINDS:
        raise ValidationFailed("Choose a comment or a DM.", {"kind": "Choose a comment or a DM."})
    if not text.strip() or len(text) > 1000:
        raise ValidationFailed(
            "Write the sample (up to 1000 characters).",
            {"sample": "Write what the person says (up to 1000 characters)."},
        )
    if not person_id.isdigit() or len(person_id) > 20:
        person_id = new_test_person()
    account = await _rule_account(actor, rule)
    link = container.follower_console()
    fields: dict[str, Any] = {
        "ig_id": account.ig_id,
        "account_username": account.username,
        "from_id": person_id,
        "username": username,
        "text": text,
    }
    try:
        if kind == "comment":
            posted = {str(m.get("id")) for m in await link.feed(account.ig_id)}
            scoped = [str(m) for m in rule.media_ids if str(m) in posted]
            if scoped:
                fields["media_id"] = scoped[0]
        delivery = await link.act(_sample_event(rule, kind), fields)
        key = dedupe_key(account.ig_id, kind, delivery.ref)
    except SandboxUnavailable as exc:
        raise ValidationFailed(
            f"{exc.message} Tests run only without a Meta app "
            "(reelay run or reelay panel with META_APP_ID empty).",
            {"sample": "The sandbox Instagram is not running."},
        ) from exc
    return SampleSent(
        kind=kind,
        dedupe_key=key,
        person_id=person_id,
        webhook_status=delivery.webhook_status,
        error=delivery.error or "",
    )


def _sample_event(rule: AutomationRule, kind: str) -> str:
    """The follower console's event for a sample: a Live rule's comment is a Live comment,
    and a rule that only answers ads gets a comment on an ad."""
    if kind != "comment":
        return kind
    if rule.trigger is Trigger.LIVE_COMMENT:
        return "live_comment"
    return "ad_comment" if RuleDefinition.from_stored(rule).ad_comments == "only" else kind


@dataclass(frozen=True)
class ActionLine:
    kind: str
    status: str  # sent, pending, skipped, failed, held, not run
    text: str
    reason: str = ""


@dataclass
class Explanation:
    """What the engine did with one event, and why."""

    finished: bool
    event_status: str = ""
    reason: str = ""
    matched_rule: AutomationRule | None = None
    matched_rule_name: str = ""  # as recorded on the event: still there once it is deleted
    actions: list[ActionLine] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


_KIND_WORDS = {
    "public_reply": "Public reply",
    "private_reply": "Private reply (DM)",
    "dm": "DM",
    "hide_comment": "Hide the comment",
}


async def explain(actor: Actor, rule: AutomationRule, key: str) -> Explanation:
    """Read back what happened to the sample whose webhook event has dedupe key ``key``.

    Only an event of the rule's own account is read: the key comes from the browser.
    """
    workspace_id = actor.workspace_id
    account = await _rule_account(actor, rule)
    event = await WebhookEvent.get_or_none(dedupe_key=key, account_ig_id=account.ig_id)
    if event is None:
        return Explanation(finished=False, reason="Waiting for the webhook…")
    if event.status in (EventStatus.PENDING, EventStatus.PROCESSING):
        return Explanation(finished=False, event_status=event.status.value, reason="Processing…")
    since = event.received_at - timedelta(seconds=5)
    outbound = [
        a
        for a in await OutboundAction.filter(account_id=account.id, created_at__gte=since)
        .order_by("id")
        .limit(200)
        if (a.payload or {}).get("event_id") == event.id
    ]
    parsed = parse_payload(event.payload)
    inbound = parsed[0] if len(parsed) == 1 else None
    drafts = [
        d
        for d in await ReplyDraft.filter(
            workspace_id=workspace_id, account_id=account.id, created_at__gte=since
        ).order_by("id")
        if inbound is not None
        and (
            (inbound.comment_id and d.target.get("comment_id") == inbound.comment_id)
            or (not inbound.comment_id and d.target.get("igsid") == inbound.sender_id)
        )
    ]
    matched = (
        await AutomationRule.get_or_none(id=event.rule_id, workspace_id=workspace_id)
        if event.rule_id
        else None
    )
    unanswered = read_unanswered_note(event.error)
    result = Explanation(
        finished=True,
        event_status=event.status.value,
        reason=(
            "Handled"
            if unanswered is not None or (event.status is EventStatus.DONE and not event.error)
            else event.error
        ),
        matched_rule=matched,
        matched_rule_name=event.rule_name or "",
    )
    for action in outbound:
        reason = action.error
        if action.status.value == "pending" and action.not_before is not None:
            reason = reason or f"waits until {action.not_before:%H:%M:%S} UTC (the rule's delay)"
        result.actions.append(
            ActionLine(
                kind=_KIND_WORDS.get(action.kind, action.kind),
                status=action.status.value,
                text=message_text((action.payload or {}).get("message") or {}),
                reason=reason,
            )
        )
    for draft in drafts:
        result.actions.append(
            ActionLine(
                kind="AI reply",
                status="held" if draft.status.value == "pending" else draft.status.value,
                text=draft.proposed_text,
                reason="waits for a teammate's approval" if draft.status.value == "pending" else "",
            )
        )
    if unanswered is not None:  # AI off, over quota, no AI server, or no usable answer
        status, reason = unanswered
        result.actions.append(ActionLine(kind="AI reply", status=status, text="", reason=reason))
    if inbound is not None:
        result.notes.extend(_why(rule, event, inbound, matched))
    return result


async def _rule_account(actor: Actor, rule: AutomationRule) -> InstagramAccount:
    account = await InstagramAccount.get_or_none(
        id=rule.account_id, workspace_id=actor.workspace_id
    )
    if account is None:
        raise NotFound(f"rule {rule.id} does not exist")
    return account


# Each trigger in words: what a rule of it answers, and one such event.
TRIGGER_NOUNS = {
    "comment": ("comments", "a comment"),
    "dm": ("DMs", "a DM"),
    "story_reply": ("story replies", "a story reply"),
    "story_mention": ("story mentions", "a story mention"),
    "postback": ("button taps", "a button tap"),
    "live_comment": ("comments on a Live", "a comment on a Live"),
}


def _why(
    rule: AutomationRule, event: WebhookEvent, inbound: InboundEvent, matched: AutomationRule | None
) -> list[str]:
    """Plain reasons: does this rule's keyword match, is the post in scope, who won."""
    notes: list[str] = []
    trigger = inbound.trigger or ""
    if event.error.startswith("lead flow"):
        who = "this rule's" if matched is not None and matched.id == rule.id else "a rule's"
        return [f"The message answered {who} lead flow ({event.error})."]
    if trigger != rule.trigger.value:
        answers = TRIGGER_NOUNS.get(rule.trigger.value, (rule.trigger.value, ""))[0]
        sample = TRIGGER_NOUNS.get(trigger, ("", f"a {trigger or inbound.kind.value}"))[1]
        notes.append(f"This rule answers {answers}; the sample was {sample}.")
    definition = RuleDefinition.from_stored(rule)
    spec = definition.spec(rule.id)
    alone = RuleIndex([spec])
    if trigger == rule.trigger.value:
        if not alone.match(trigger, inbound.text):
            words = ", ".join(spec.keywords) or "(none)"
            notes.append(
                f'The sample "{inbound.text}" does not contain a keyword of this rule '
                f"({spec.match_mode.replace('_', ' ')}: {words}); compared as "
                f'"{normalize(inbound.text)}".'
            )
        elif not spec.in_scope(inbound.media_id):
            notes.append(
                f"The keyword matches, but post {inbound.media_id} is not among the posts this "
                "rule is limited to."
            )
        elif matched is not None and matched.id != rule.id:
            notes.append(
                f'Rule "{matched.name}" (priority {matched.priority}) answered first; '
                f"this rule has priority {rule.priority}."
            )
        elif matched is None and not rule.active:
            notes.append("This rule is switched off.")
        elif matched is None and event.status is EventStatus.IGNORED and rule.cooldown_s:
            notes.append(
                f"The keyword matches, but this person is inside the rule's cooldown "
                f"({rule.cooldown_s // 60} min) or already got this answer."
            )
    answered = matched is not None and matched.id == rule.id
    if answered and definition.comment_replies and trigger != "comment":
        notes.append("Public reply not sent: public replies only answer comments.")
    return notes


def sample_kinds_for(trigger: str) -> Sequence[str]:
    """Which samples make sense for a rule's trigger."""
    return ("comment", "dm") if trigger in {"comment", "live_comment"} else ("dm", "comment")


def rule_summary(rule: AutomationRule) -> Mapping[str, Any]:
    """A few words about what the rule does (for the list page)."""
    definition = RuleDefinition.from_stored(rule)
    parts = []
    if definition.comment_replies:
        count = len(definition.comment_replies)
        parts.append(f"{count} public repl{'ies' if count > 1 else 'y'}")
    if definition.dm_type == "ai":
        parts.append("AI reply")
    elif definition.starts_flow:
        parts.append(f"lead flow ({len(definition.lead_flow)} steps)")
    elif definition.dm_variations:
        parts.append(
            {"text_button": "DM with buttons", "quick_replies": "DM with quick replies"}.get(
                definition.dm_type, "DM"
            )
        )
    if definition.follow_up is not None:
        parts.append(f"follow-up after {definition.follow_up.wait_minutes} min")
    return {
        "does": ", ".join(parts) or "nothing",
        "keywords": ", ".join(rule.keywords) or "any message",
        "waiting": definition.waiting_for_post,
    }
