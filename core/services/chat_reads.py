"""The chat's reading commands: /queue, /leads, /stats and /health, worded for a chat.

Each takes the member's scope (``Actor``) and the zone they read times in; ``ChatOps``
authorises and calls them.
"""

from __future__ import annotations

from core.db.models import DraftStatus, Lead, Post, ReplyDraft
from core.domain import commands as cmd
from core.domain.chat import Action, ActionVerb, Button, Reply
from core.domain.health import NO_WORKER, chat_lines
from core.domain.posts import Status
from core.domain.scope import Actor
from core.ports.clock import Clock
from core.services import analytics, followers
from core.services.health import Health

QUEUE_PAGE_SIZE = 5


async def queue(actor: Actor, zone: str, page: int) -> Reply:
    """The next scheduled posts, a page at a time, in the reader's zone."""
    tz = zone
    pending = Post.filter(
        workspace_id=actor.workspace_id,
        status__in=[Status.SCHEDULED, Status.RETRYING, Status.PUBLISHING],
    )
    total = await pending.count()
    if total == 0:
        return Reply("Nothing is scheduled. Send a photo with /schedule tomorrow 9am Caption.")
    pages = (total + QUEUE_PAGE_SIZE - 1) // QUEUE_PAGE_SIZE
    page = min(max(page, 1), pages)
    posts = (
        await pending.order_by("scheduled_at", "id")
        .offset((page - 1) * QUEUE_PAGE_SIZE)
        .limit(QUEUE_PAGE_SIZE)
    )
    lines = [f"Queue ({total} post{'s' if total != 1 else ''}, times in {tz}):"]
    for post in posts:
        when = post.scheduled_at.astimezone(cmd.zone(tz)) if post.scheduled_at else None
        shown = f"{when:%a %d %b %H:%M}" if when else "no time"
        lines.append(
            f"#{post.id} · {shown} · {post.kind.value} · {post.status.value} · "
            f"{snippet(post.caption)}"
        )
    nav: list[Button] = []
    if page > 1:
        nav.append(Button("◀ Earlier", Action(ActionVerb.QUEUE, page - 1)))
    if page < pages:
        nav.append(Button("Later ▶", Action(ActionVerb.QUEUE, page + 1)))
    if pages > 1:
        lines.append(f"Page {page} of {pages}")
    return Reply("\n".join(lines), (tuple(nav),) if nav else ())


async def leads(actor: Actor, zone: str, count: int) -> Reply:
    """The latest leads with their fields and source rule."""
    found = (
        await Lead.filter(workspace_id=actor.workspace_id)
        .order_by("-created_at", "-id")
        .limit(count)
        .prefetch_related("rule", "conversation")
    )
    if not found:
        return Reply("No leads yet.")
    tz = cmd.zone(zone)
    lines = [f"Latest {len(found)} lead{'s' if len(found) != 1 else ''}:"]
    for lead in found:
        fields = [value for value in (lead.name, lead.email, lead.phone) if value] + [
            f"{key}: {value}" for key, value in lead.custom_fields.items()
        ]
        source = f" via {lead.rule.name or f'rule #{lead.rule.id}'}" if lead.rule else ""
        who = followers.lead_label(lead)
        lines.append(
            f"{lead.created_at.astimezone(tz):%d %b %H:%M} {who}{source}: "
            f"{', '.join(fields) or '(no fields)'}"
        )
    return Reply("\n".join(lines))


async def stats(actor: Actor, workspace_name: str, days: int, clock: Clock) -> Reply:
    """Reach, views, followers and automation results over ``days``, and what waits."""
    summary = await analytics.summary(actor, days, clock=clock)
    workspace_id = actor.workspace_id
    scheduled = await Post.filter(workspace_id=workspace_id, status=Status.SCHEDULED).count()
    failed = await Post.filter(workspace_id=workspace_id, status=Status.FAILED).count()
    pending_drafts = await ReplyDraft.filter(
        workspace_id=workspace_id, status=DraftStatus.PENDING
    ).count()
    lines = [
        f"{workspace_name}, {summary.start:%d %b} to {summary.end:%d %b} "
        f"({summary.days} days, {summary.accounts} account"
        f"{'s' if summary.accounts != 1 else ''}):",
        f"Instagram numbers {summary.start:%d %b} to {summary.end:%d %b} "
        f"(Instagram reports late); automations {summary.automation_start:%d %b} "
        f"to {summary.automation_end:%d %b}, today included",
        f"Followers: {_number(summary.followers)}{_change(summary.follower_change)}",
        f"Reach: {_number(summary.reach)}{_percent(summary.reach_change_percent)}",
        f"Views: {_number(summary.views)}{_percent(summary.views_change_percent)}",
        f"Interactions: {_number(summary.interactions)}",
        f"Automations: {summary.comments_replied} comment replies, "
        f"{summary.dms_sent} DMs, {summary.leads} leads",
        f"Posts: {scheduled} scheduled, {failed} failed",
        f"AI replies waiting for approval: {pending_drafts}",
    ]
    if summary.top_post is not None:
        top = summary.top_post
        lines.append(
            f"Best post: {snippet(top.caption)} ({top.interactions} interactions) {top.permalink}"
        )
    return Reply("\n".join(lines))


def _number(value: int | None) -> str:
    return "no data yet" if value is None else f"{value:,}"


def _change(value: int | None) -> str:
    return "" if not value else f" ({value:+,})"


def _percent(value: float | None) -> str:
    return "" if value is None else f" ({value:+.0f}% vs the period before)"


def snippet(text: str, limit: int = 60) -> str:
    """``text`` on one line, cut to ``limit`` characters."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


async def health(actor: Actor, zone: str, checks: Health) -> Reply:
    """Each account's health at a glance, times in the reader's zone."""
    reports = await checks.accounts(actor)
    tz = cmd.zone(zone)
    blocks = ["\n".join(chat_lines(r.account.username, r.figures, tz)) for r in reports]
    if not blocks:
        blocks = ["No Instagram account is connected."]
    if not await checks.worker_running():
        blocks.insert(0, f"⚠ {NO_WORKER}")
    return Reply("\n\n".join(blocks))
