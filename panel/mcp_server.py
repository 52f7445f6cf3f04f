"""The MCP server at ``/mcp``: AI agents act on a workspace with an API token.

The official ``mcp`` SDK serves it over streamable HTTP, stateless (each POST stands alone,
so any panel process answers any request) with JSON answers. The ASGI wrapper of
:mod:`panel.mcp_mount` answers ``/mcp`` outside Quart, like the Meta webhook's fast path: it
checks the bearer token (``api_tokens.authenticate``, as the JSON API does, so a revoked token
stops at once) and hands the request to the SDK with the token's ``Actor`` in the ASGI scope.
The tools call the same core services as the API, with that actor; a tool that changes
anything needs an editor token, so a viewer token reads and is refused the rest.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import json
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal, TypeVar, cast

from mcp.server import MCPServer
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.transport_security import TransportSecuritySettings

from core.db.models import DraftStatus, Lead, MediaAsset, Post, ReplyDraft, Role
from core.domain.analytics import DateRange
from core.domain.posts import Status
from core.domain.rule_definition import RuleDefinition
from core.domain.scope import Actor
from core.errors import Forbidden, ReelayError, ValidationFailed
from core.services import analytics, approvals, lead_export, media, rule_editor
from core.services.publishing import PostInput
from core.wiring import Services
from panel.mcp_mount import ACTOR
from panel.services import EXTENSION as SERVICES

if TYPE_CHECKING:
    from hypercorn.typing import ASGIReceiveCallable, ASGISendCallable, Scope

logger = logging.getLogger(__name__)

LIST_LIMIT = 50


# ---------------------------------------------------------------- the request's actor


def _actor(ctx: Context) -> Actor:
    scope = cast(Any, ctx.request_context.request).scope
    actor: Actor = scope[ACTOR]
    return actor


def _services(ctx: Context) -> Services:
    scope = cast(Any, ctx.request_context.request).scope
    found: Services = scope[SERVICES]
    return found


def _editor(ctx: Context) -> Actor:
    actor = _actor(ctx)
    if not actor.allows(Role.EDITOR):
        raise Forbidden(f"A {actor.role.value} token cannot do this; it needs editor.")
    return actor


# ---------------------------------------------------------------- shapes


async def _post(ctx: Context, post: Post) -> dict[str, Any]:
    media_ids = await _services(ctx).publishing.media_ids(_actor(ctx), post.id)
    return {
        "id": post.id,
        "account_id": post.account_id,
        "kind": post.kind.value,
        "status": post.status.value,
        "caption": post.caption,
        "media_ids": media_ids,
        "scheduled_at": post.scheduled_at.isoformat() if post.scheduled_at else None,
        "published_at": post.published_at.isoformat() if post.published_at else None,
        "permalink": post.permalink,
        "version": post.version,
        "last_error": post.last_error,
    }


def _draft(draft: ReplyDraft) -> dict[str, Any]:
    return {
        "id": draft.id,
        "account_id": draft.account_id,
        "rule_id": draft.rule_id,
        "inbound_text": draft.inbound_text,
        "proposed_text": draft.proposed_text,
        "final_text": draft.final_text,
        "status": draft.status.value,
        "expires_at": draft.expires_at.isoformat(),
    }


def _lead(lead: Lead) -> dict[str, Any]:
    return {
        "id": lead.id,
        "account_id": lead.account_id,
        "rule_id": lead.rule_id,
        "username": lead.username,
        "name": lead.name,
        "email": lead.email,
        "phone": lead.phone,
        "custom_fields": lead.custom_fields,
        "created_at": lead.created_at.isoformat(),
    }


def _asset(services: Services, asset: MediaAsset) -> dict[str, Any]:
    return {
        "id": asset.id,
        "filename": asset.filename,
        "mime": asset.mime,
        "width": asset.width,
        "height": asset.height,
        "url": media.public_url(services.container.settings, asset),
    }


def _rule(row: rule_editor.RuleRow) -> dict[str, Any]:
    rule = RuleDefinition.from_stored(row.rule)
    shown = rule.model_dump(mode="json", exclude={"lead_settings"})
    return {
        **shown,
        "id": row.rule.id,
        "does": str(rule_editor.rule_summary(row.rule)["does"]),
        "account_username": row.account.username,
    }


def _when(text: str) -> datetime:
    try:
        when = datetime.fromisoformat(text)
    except ValueError as exc:
        raise ValueError(f"{text!r} is not an ISO 8601 time (2026-12-24T09:00:00+01:00)") from exc
    if when.tzinfo is None:
        raise ValueError("Give the time with its zone, e.g. 2026-12-24T09:00:00+01:00.")
    return when


# ---------------------------------------------------------------- the server

F = TypeVar("F", bound=Callable[..., Awaitable[Any]])


def _tool(server: MCPServer) -> Callable[[F], F]:
    """Register a tool whose refusals (bad input, a role too low, a post in the wrong state)
    reach the agent as its error message; anything else stays a crash, logged here."""

    def register(fn: F) -> F:
        @functools.wraps(fn)
        async def answer(*args: Any, **kwargs: Any) -> Any:
            try:
                return await fn(*args, **kwargs)
            except ValidationFailed as exc:
                details = "; ".join(f"{field}: {why}" for field, why in exc.fields.items())
                raise ToolError(f"{exc} ({details})" if details else str(exc)) from exc
            except (ReelayError, ValueError) as exc:
                raise ToolError(str(exc)) from exc

        server.tool()(answer)
        return fn

    return register


def build_server() -> MCPServer:
    """The MCP server with Reelay's tools and resources."""
    server: MCPServer = MCPServer(
        name="reelay",
        instructions="Reelay runs an Instagram business account: posts, automations, leads "
        "and AI reply drafts of one workspace. Times carry their zone (ISO 8601). Media "
        "are added by public URL first, then used by id in posts.",
    )

    @_tool(server)
    async def list_posts(
        ctx: Context, status: Status | None = None, limit: int = 20
    ) -> list[dict[str, Any]]:
        """The workspace's posts, newest first; optionally only those of one status."""
        rows = await _services(ctx).publishing.page(
            _actor(ctx), status=status, limit=max(1, min(limit, LIST_LIMIT))
        )
        return [await _post(ctx, post) for post in rows]

    _publishing_tools(server)
    _automation_tools(server)
    return server


def _publishing_tools(server: MCPServer) -> None:
    @_tool(server)
    async def add_media_from_url(ctx: Context, url: str) -> dict[str, Any]:
        """Download a public image or video link into the media library; returns its id."""
        services = _services(ctx)
        asset = await media.upload_from_url(_editor(ctx), services.storage, services.downloads, url)
        return _asset(services, asset)

    @_tool(server)
    async def schedule_post(
        ctx: Context,
        account_id: int,
        kind: Literal["image", "reel", "carousel", "story"],
        media_ids: list[int],
        scheduled_at: str,
        caption: str = "",
        first_comment: str = "",
    ) -> dict[str, Any]:
        """Schedule a post (a carousel takes 2 to 10 media ids) at an ISO 8601 time with
        its zone. Where editors' posts need approval, an editor's post comes back with status
        pending_approval and is published only once an owner or admin approves it."""
        actor = _editor(ctx)
        post = await _services(ctx).publishing.create(
            actor,
            account_id=account_id,
            content=PostInput(
                kind=kind,
                media_ids=tuple(media_ids),
                caption=caption,
                first_comment=first_comment,
            ),
            scheduled_at=_when(scheduled_at),
            source="mcp",
        )
        return await _post(ctx, post)

    @_tool(server)
    async def reschedule_post(ctx: Context, post_id: int, scheduled_at: str) -> dict[str, Any]:
        """Move a post to another time (ISO 8601 with its zone)."""
        post = await _services(ctx).publishing.schedule(_editor(ctx), post_id, _when(scheduled_at))
        return await _post(ctx, post)

    @_tool(server)
    async def cancel_post(ctx: Context, post_id: int) -> dict[str, Any]:
        """Cancel a post that is not being published."""
        post = await _services(ctx).publishing.cancel(
            _editor(ctx), post_id, reason="cancelled through MCP"
        )
        return await _post(ctx, post)

    # A query variable: the SDK gives a Context only to template resources.
    @server.resource("reelay://queue{?limit}", mime_type="application/json")
    async def queue(ctx: Context, limit: int = 200) -> str:
        """The posts waiting to be published, soonest first."""
        rows = await _services(ctx).publishing.page(
            _actor(ctx), status=Status.SCHEDULED, limit=max(1, min(limit, 200))
        )
        posts = sorted(rows, key=lambda post: post.scheduled_at or datetime.max)
        return json.dumps([await _post(ctx, post) for post in posts])


def _automation_tools(server: MCPServer) -> None:
    @_tool(server)
    async def list_leads(ctx: Context, limit: int = 20) -> list[dict[str, Any]]:
        """Captured leads, newest first."""
        rows, _ = await lead_export.list_leads(
            _actor(ctx), lead_export.LeadQuery(), limit=max(1, min(limit, LIST_LIMIT))
        )
        return [_lead(lead) for lead in rows]

    @_tool(server)
    async def list_drafts(
        ctx: Context, status: DraftStatus | None = DraftStatus.PENDING, limit: int = 20
    ) -> list[dict[str, Any]]:
        """AI reply drafts, pending ones by default, newest first."""
        rows = await approvals.drafts_page(
            _actor(ctx), status=status, offset=0, limit=max(1, min(limit, LIST_LIMIT))
        )
        return [_draft(draft) for draft in rows]

    @_tool(server)
    async def decide_draft(
        ctx: Context,
        draft_id: int,
        decision: Literal["approve", "edit", "reject"],
        text: str | None = None,
    ) -> dict[str, Any]:
        """Approve a pending draft (send it), edit it (send ``text`` instead) or reject it
        (send nothing, or ``text`` as a static reply)."""
        actor = _editor(ctx)
        replies = _services(ctx).smart_replies
        if decision == "approve":
            draft = await replies.approve(actor, draft_id)
        elif decision == "edit":
            if not text:
                raise ValueError("An edit needs the text to send.")
            draft = await replies.edit(actor, draft_id, text)
        else:
            draft = await replies.reject(actor, draft_id, fallback_text=text or None)
        return _draft(draft)

    @_tool(server)
    async def read_stats(
        ctx: Context, days: int = 30, account_id: int | None = None
    ) -> dict[str, Any]:
        """An account's totals (reach, views, followers…) and automation results over the
        last ``days`` days, with the period before for comparison."""
        actor = _actor(ctx)
        today = _services(ctx).container.clock.now().date()
        period = DateRange.last(max(1, min(days, 90)), ending=today - timedelta(days=1))
        found = await analytics.overview(actor, period, account_id=account_id)
        document: dict[str, Any] = json.loads(
            json.dumps(
                {
                    "account": found.account.username if found.account else None,
                    "period": {"start": period.start, "end": period.end},
                    "current": dataclasses.asdict(found.comparison.current),
                    "previous": dataclasses.asdict(found.comparison.previous),
                    "automation": found.automation.totals,
                },
                default=str,
            )
        )
        return document

    @_tool(server)
    async def create_rule(ctx: Context, rule: RuleDefinition) -> dict[str, Any]:
        """Create an automation rule from its description in Reelay's rule shape; it is
        checked like the panel checks it and stored switched off, for a person to review
        and switch on."""
        actor = _editor(ctx)
        services = _services(ctx)
        saved = await rule_editor.save_rule(
            actor,
            rule.model_copy(update={"active": False}),
            redis=services.container.redis,
            secrets=services.container.secrets,
        )
        rows = await rule_editor.list_rules(actor, saved.account_id)
        return _rule(next(row for row in rows if row.rule.id == saved.id))

    @server.resource("reelay://rules{?account_id}", mime_type="application/json")
    async def rules(ctx: Context, account_id: int | None = None) -> str:
        """The automation rules, highest priority first (of one account when given)."""
        rows = await rule_editor.list_rules(_actor(ctx), account_id)
        return json.dumps([_rule(row) for row in rows], default=str)


# ---------------------------------------------------------------- serving


class McpEndpoint:
    """The SDK's session manager, run in a task of its own for the app's life."""

    def __init__(self) -> None:
        self.server = build_server()
        self.server.streamable_http_app(
            stateless_http=True,
            json_response=True,
            # The bearer token is what protects the endpoint: a page in a browser cannot
            # send it, so the DNS-rebinding check (a Host allow-list) adds nothing here.
            transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
        )
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        self._stop = asyncio.Event()
        self._lock = asyncio.Lock()

    async def _run(self) -> None:
        async with self.server.session_manager.run():
            self._ready.set()
            await self._stop.wait()

    async def started(self) -> None:
        async with self._lock:
            if self._task is None:
                self._task = asyncio.create_task(self._run(), name="mcp-session-manager")
        await self._ready.wait()

    async def close(self) -> None:
        if self._task is not None:
            self._stop.set()
            await self._task

    async def handle(
        self, scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable
    ) -> None:
        await self.started()
        await self.server.session_manager.handle_request(
            cast(Any, scope), cast(Any, receive), cast(Any, send)
        )
