"""The inbox: every conversation with its person, status, assignee and labels; one thread with
its reply box, takeover, notes and assignment; live updates over server-sent events (htmx's
sse extension re-reads the list or the thread when something changes)."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from typing import Any

from quart import Blueprint, Response, flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response as WerkzeugResponse

from core.db.conversations import ConversationStatus, label_list, source_of
from core.db.models import Role
from core.domain.ids import row_id
from core.domain.scope import Actor
from core.errors import ValidationFailed
from core.services import account_settings
from core.services.conversations import Conversations, Page, person_label
from panel.security import current_actor, current_membership, requires
from panel.services import services

blueprint = Blueprint("inbox", __name__, url_prefix="/inbox")

TAKE_OVER_CHOICES = (1, 4, 24, 72, 168)
POLL_S = 1.0
KEEP_ALIVE_S = 15.0


def _inbox() -> Conversations:
    return services().conversations


def _filters() -> dict[str, str]:
    args = request.args
    return {
        "status": args.get("status", "")[:16],
        "assignee": args.get("assignee", "")[:16],
        "label": args.get("label", "")[:32],
        "q": args.get("q", "")[:100],
        "account_id": args.get("account_id", "")[:20],
        "cursor": args.get("cursor", "")[:200],
    }


async def _page(actor: Actor, shown: dict[str, str]) -> Page:
    assignee = shown["assignee"]
    return await _inbox().list(
        actor,
        status=shown["status"] or None,
        assignee_id=actor.user_id if assignee == "me" else row_id(assignee),
        unassigned=assignee == "none",
        label=shown["label"] or None,
        query=shown["q"] or None,
        account_id=row_id(shown["account_id"]),
        cursor=shown["cursor"] or None,
    )


def _helpers() -> dict[str, Any]:
    return {
        "person": person_label,
        "labels_of": label_list,
        "source_of": source_of,
        "statuses": [s.value for s in ConversationStatus],
        "now": services().container.clock.now(),
    }


@blueprint.get("")
@requires(Role.VIEWER)
async def index() -> str:
    """Every conversation, latest first, with search and filters."""
    actor = current_actor()
    shown = _filters()
    return await render_template(
        "inbox/index.html",
        page=await _page(actor, shown),
        shown=shown,
        members=await _inbox().members(actor),
        labels=await _inbox().labels(actor),
        accounts=await account_settings.workspace_accounts(actor),
        after=await _inbox().last_change(actor),
        **_helpers(),
    )


@blueprint.get("/list")
@requires(Role.VIEWER)
async def conversation_list() -> str:
    """The list alone, re-read by the live page."""
    actor = current_actor()
    shown = _filters()
    return await render_template(
        "inbox/_list.html", page=await _page(actor, shown), shown=shown, **_helpers()
    )


@blueprint.get("/events")
@requires(Role.VIEWER)
async def events() -> Response:
    """Server-sent events: ``changed`` (data: the conversation ids) when a message comes or
    goes or a conversation changes hands; the stream ends after ``INBOX_STREAM_S`` and the
    browser opens the next one."""
    actor = current_actor()
    inbox = _inbox()
    last = row_id(request.headers.get("Last-Event-ID", "")) or row_id(request.args.get("after", ""))
    after = last if last is not None else await inbox.last_change(actor)
    only = row_id(request.args.get("conversation", ""))
    seconds = services().container.settings.inbox_stream_s
    return Response(
        _stream(inbox, actor, after, only, seconds),
        content_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


async def _stream(
    inbox: Conversations, actor: Actor, after: int, only: int | None, seconds: float
) -> AsyncIterator[bytes]:
    loop = asyncio.get_running_loop()
    ends, quiet_since = loop.time() + seconds, loop.time()
    yield b"retry: 1000\n\n"
    while loop.time() < ends:
        changed = await inbox.changes(actor, after)
        if changed:
            after = changed[-1][0]
            ids = sorted({c for _, c in changed if only is None or c == only})
            if ids:
                data = ",".join(str(i) for i in ids)
                yield f"id: {after}\nevent: changed\ndata: {data}\n\n".encode()
                quiet_since = loop.time()
        if loop.time() - quiet_since > KEEP_ALIVE_S:
            yield b": still here\n\n"
            quiet_since = loop.time()
        await asyncio.sleep(min(POLL_S, max(ends - loop.time(), 0)))


async def _thread_context(actor: Actor, conversation_id: int) -> dict[str, Any]:
    inbox = _inbox()
    thread = await inbox.thread(actor, conversation_id)
    return {
        "thread": thread,
        "conversation": thread.conversation,
        "members": await inbox.members(actor),
        "can_edit": current_membership().role in (Role.OWNER, Role.ADMIN, Role.EDITOR),
        "reply_key": secrets.token_urlsafe(12),
        "take_over_choices": TAKE_OVER_CHOICES,
        "human_agent": inbox.human_agent,
        **_helpers(),
    }


@blueprint.get("/<int:conversation_id>")
@requires(Role.VIEWER)
async def thread(conversation_id: int) -> str:
    """One conversation: the thread, the reply box, takeover, notes and assignment."""
    actor = current_actor()
    context = await _thread_context(actor, conversation_id)
    context["after"] = await _inbox().last_change(actor)
    return await render_template("inbox/thread.html", **context)


@blueprint.get("/<int:conversation_id>/messages")
@requires(Role.VIEWER)
async def messages(conversation_id: int) -> str:
    """The thread's messages alone, re-read by the live page."""
    context = await _thread_context(current_actor(), conversation_id)
    return await render_template("inbox/_messages.html", **context)


def _back(conversation_id: int) -> WerkzeugResponse:
    return redirect(url_for("inbox.thread", conversation_id=conversation_id))


@blueprint.post("/<int:conversation_id>/reply")
@requires(Role.EDITOR)
async def reply(conversation_id: int) -> WerkzeugResponse:
    """Send a teammate's reply (and take the conversation over)."""
    form = await request.form
    quick = [q for q in form.get("quick_replies", "").replace("\n", ",").split(",") if q.strip()]
    try:
        sent = await _inbox().reply(
            current_actor(),
            conversation_id,
            text=form.get("text", ""),
            image_url=form.get("image_url", "").strip() or None,
            quick_replies=quick,
            key=form.get("key", "") or None,
        )
    except ValidationFailed as exc:
        await flash(str(exc), "error")
        return _back(conversation_id)
    words = {
        "sent": "Sent.",
        "pending": "Queued: Instagram has not answered yet, it is checked before any retry.",
        "duplicate": "Already sent.",
    }
    note = words.get(sent.status, f"Not sent ({sent.status}): see the log.")
    if sent.tagged:
        note += " Tagged HUMAN_AGENT (over 24 hours since their last message)."
    await flash(note, "success" if sent.status in words else "error")
    return _back(conversation_id)


@blueprint.post("/<int:conversation_id>/takeover")
@requires(Role.EDITOR)
async def take_over(conversation_id: int) -> WerkzeugResponse:
    """Silence every automation for the person."""
    form = await request.form
    hours = row_id(form.get("hours", "24")) or 24
    await _inbox().take_over(current_actor(), conversation_id, hours=hours)
    await flash(f"You have this conversation for {hours} h: automations stay silent.", "success")
    return _back(conversation_id)


@blueprint.post("/<int:conversation_id>/handback")
@requires(Role.EDITOR)
async def hand_back(conversation_id: int) -> WerkzeugResponse:
    """Let the automations answer the person again."""
    await _inbox().hand_back(current_actor(), conversation_id)
    await flash("Handed back: automations answer this person again.", "success")
    return _back(conversation_id)


@blueprint.post("/<int:conversation_id>/status")
@requires(Role.EDITOR)
async def set_status(conversation_id: int) -> WerkzeugResponse:
    """Mark the conversation open, waiting or done."""
    form = await request.form
    await _inbox().set_status(current_actor(), conversation_id, form.get("status", ""))
    return _back(conversation_id)


@blueprint.post("/<int:conversation_id>/assign")
@requires(Role.EDITOR)
async def assign(conversation_id: int) -> WerkzeugResponse:
    """Give the conversation to a teammate, or to nobody."""
    form = await request.form
    await _inbox().assign(current_actor(), conversation_id, row_id(form.get("user_id", "")))
    return _back(conversation_id)


@blueprint.post("/<int:conversation_id>/labels")
@requires(Role.EDITOR)
async def set_labels(conversation_id: int) -> WerkzeugResponse:
    """Replace the conversation's labels."""
    form = await request.form
    labels = form.get("labels", "").split(",")
    await _inbox().set_labels(current_actor(), conversation_id, labels)
    return _back(conversation_id)


@blueprint.post("/<int:conversation_id>/notes")
@requires(Role.EDITOR)
async def add_note(conversation_id: int) -> WerkzeugResponse:
    """Add an internal note."""
    form = await request.form
    await _inbox().add_note(current_actor(), conversation_id, form.get("text", ""))
    return _back(conversation_id)
