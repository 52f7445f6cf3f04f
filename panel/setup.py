"""The setup wizard: Meta app, webhook, Instagram, team chats, AI."""

from __future__ import annotations

import logging
from typing import Any

from quart import Blueprint, current_app, flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response as WerkzeugResponse

from core.adapters.webhook_probe import probe_webhook
from core.db.models import Role
from core.domain.ai import AiError, ChatMessage
from core.errors import ValidationFailed
from core.services import (
    accounts,
    audit,
    chat_links,
    chat_mirror,
    meta_app,
    setup_wizard,
    time_zones,
)
from core.services.publishing import set_posts_need_approval
from panel.security import (
    current_actor,
    current_email,
    current_membership,
    requires,
    signed_in_user,
)
from panel.services import services

logger = logging.getLogger(__name__)

blueprint = Blueprint("setup", __name__, url_prefix="/setup")

Page = str | tuple[str, int] | WerkzeugResponse

# What the Discord bot (bot/discord_bot.py) needs on a server: slash commands, and to see and
# post in the linked channel (replies with buttons, notifications, edits of its own messages).
# No privileged gateway intent: it runs with discord.Intents.default().
DISCORD_SCOPES = "bot+applications.commands"
DISCORD_PERMISSIONS = {"View Channels": 1 << 10, "Send Messages": 1 << 11}
DISCORD_AUTHORIZE_URL = "https://discord.com/oauth2/authorize"


def discord_invite_url(application_id: str) -> str:
    """The link that adds the bot to a server with exactly the scopes and permissions it uses."""
    return (
        f"{DISCORD_AUTHORIZE_URL}?client_id={application_id}"
        f"&scope={DISCORD_SCOPES}&permissions={sum(DISCORD_PERMISSIONS.values())}"
    )


def _discord_app_id() -> tuple[str, str]:
    """The Application ID typed into the chat step (a Discord snowflake), and any error."""
    raw = request.args.get("discord_app_id", "").strip()
    if not raw:
        return "", ""
    if raw.isascii() and raw.isdigit() and 15 <= len(raw) <= 21:
        return raw, ""
    return "", "An Application ID is the long number on the General Information page."


def _bots() -> list[str]:
    settings = services().container.settings
    return [
        name
        for name, token in (
            ("Telegram", settings.telegram_token),
            ("Discord", settings.discord_token),
        )
        if token
    ]


def _htmx() -> bool:
    return bool(request.headers.get("HX-Request"))


async def _page(status: int = 200, **extra: Any) -> tuple[str, int]:
    container = services().container
    settings = container.settings
    workspace = await setup_wizard.workspace_of(current_actor())
    verify_token = await meta_app.ensure_verify_token(settings, container.secrets)
    # On the sandbox a new workspace gets its demo account now, not at the next sweep.
    await accounts.list_accounts(current_actor(), container)
    steps = await setup_wizard.steps(
        current_actor(), settings, container.secrets, ai_available=container.ai is not None
    )
    now = container.clock.now()
    app_id, app_id_error = _discord_app_id()
    extra.setdefault("errors", {})
    extra.setdefault("ai_form", None)
    extra.setdefault("zone_form", None)
    page = await render_template(
        "setup/index.html",
        steps=steps,
        first_open=next((s.key for s in steps if not s.done), ""),
        app=await meta_app.load(settings, container.secrets),
        webhook_url=meta_app.webhook_url(settings),
        verify_token=verify_token,
        check=await setup_wizard.last_webhook_check(),
        chats=await chat_links.linked_chats(current_actor()),
        mirror=await chat_mirror.mirror_chat(current_actor()),
        pending_codes=await chat_links.pending_codes(current_actor(), now),
        workspace=workspace,
        connect_endpoint="instagram.connect"
        if "instagram.connect" in current_app.view_functions
        else "",
        is_owner=current_membership().role is Role.OWNER,
        is_instance_admin=signed_in_user().is_instance_admin,
        bots=_bots(),
        discord_app_id=app_id,
        discord_app_id_error=app_id_error,
        discord_invite_url=discord_invite_url(app_id or "APPLICATION_ID"),
        discord_permissions=sum(DISCORD_PERMISSIONS.values()),
        discord_permission_names=" and ".join(DISCORD_PERMISSIONS),
        **extra,
    )
    return page, status


@blueprint.get("")
@requires(Role.ADMIN)
async def index() -> tuple[str, int]:
    """Every step with what is done and what is missing."""
    return await _page()


@blueprint.post("/meta")
@requires(Role.OWNER)
async def save_meta_app() -> Page:
    """Store the Meta app (secrets encrypted); it applies to the whole install."""
    form = await request.form
    try:
        await meta_app.save_app(
            services().container.secrets,
            app_id=form.get("app_id", ""),
            app_secret=form.get("app_secret", ""),
            facebook_app_secret=form.get("facebook_app_secret", ""),
            by=signed_in_user(),
            workspace_id=current_membership().workspace_id,
        )
    except ValidationFailed as exc:
        return await _page(422, errors=exc.fields, meta_form=form)
    await flash("Meta app saved. Restart Reelay's processes so every part uses it.", "success")
    return redirect(url_for("setup.index") + "#step-meta")


@blueprint.post("/meta/sandbox")
@requires(Role.OWNER)
async def use_sandbox() -> WerkzeugResponse:
    """Forget the panel's Meta app and stay on the sandbox."""
    await meta_app.use_sandbox(by=signed_in_user(), workspace_id=current_membership().workspace_id)
    await flash("Reelay uses the built-in sandbox.", "success")
    return redirect(url_for("setup.index") + "#step-meta")


@blueprint.post("/webhook/check")
@requires(Role.ADMIN)
async def check_webhook() -> Page:
    """A real verification round-trip against the public webhook URL."""
    container = services().container
    token = await meta_app.ensure_verify_token(container.settings, container.secrets)
    url = meta_app.webhook_url(container.settings)
    result = await probe_webhook(
        container.http, url, token, private_ok=container.settings.private_urls_ok
    )
    await setup_wizard.record_webhook_check(url, result.ok, result.message, container.clock.now())
    await audit.record(
        "setup.webhook_checked",
        actor=current_email(),
        workspace_id=current_membership().workspace_id,
        level="info" if result.ok else "warning",
        target_type="webhook",
        ok=result.ok,
        message=result.message,
    )
    if _htmx():
        steps = await setup_wizard.steps(
            current_actor(),
            container.settings,
            container.secrets,
            ai_available=container.ai is not None,
        )
        return await render_template(
            "setup/_webhook_check.html", check=result, url=url, steps=steps
        )
    await flash(result.message, "success" if result.ok else "error")
    return redirect(url_for("setup.index") + "#step-webhook")


@blueprint.post("/webhook/rotate")
@requires(Role.OWNER)
async def rotate_verify_token() -> WerkzeugResponse:
    """Make a new verify token (paste it into Meta's dashboard again)."""
    if services().container.settings.meta_verify_token is not None:
        await flash("The verify token is set by META_VERIFY_TOKEN; change it there.", "error")
    else:
        await meta_app.rotate_verify_token(
            services().container.secrets,
            by=signed_in_user(),
            workspace_id=current_membership().workspace_id,
        )
        await flash("New verify token made: paste it into Meta's dashboard.", "success")
    return redirect(url_for("setup.index") + "#step-webhook")


@blueprint.post("/chats/code")
@requires(Role.ADMIN)
async def make_link_code() -> Page:
    """A one-time code that links a Telegram or Discord chat (shown once)."""
    container = services().container
    if not _bots():
        message = "No chat bot is configured: set TELEGRAM_TOKEN or DISCORD_TOKEN and restart."
        if _htmx():
            return f'<p class="error" role="alert">{message}</p>', 409
        await flash(message, "error")
        return redirect(url_for("setup.index") + "#step-chats")
    made = await chat_links.create_code(current_actor(), container.clock.now())
    if _htmx():
        return await render_template("setup/_link_code.html", made=made), 201
    return await _page(201, new_code=made)


@blueprint.post("/chats/readers")
@requires(Role.ADMIN)
async def chat_readers() -> WerkzeugResponse:
    """Whether members of linked chats who have not linked themselves may read."""
    form = await request.form
    await chat_links.set_chat_readers_unlinked(current_actor(), form.get("allowed") == "on")
    await flash("Saved who may read in linked chats.", "success")
    return redirect(url_for("setup.index") + "#step-chats")


@blueprint.post("/chats/mirror")
@requires(Role.ADMIN)
async def choose_mirror() -> WerkzeugResponse:
    """Which linked chat mirrors the conversations (a topic or thread each), or none."""
    form = await request.form
    raw = str(form.get("chat_link_id") or "")
    link = await chat_mirror.set_mirror(current_actor(), int(raw) if raw.isdigit() else None)
    if link is None:
        await flash("Conversations are no longer mirrored to a chat.", "success")
    else:
        await flash(f"Conversations are now mirrored to {link.title or link.chat_id}.", "success")
    return redirect(url_for("setup.index") + "#step-chats")


@blueprint.post("/posts-approval")
@requires(Role.ADMIN)
async def posts_approval() -> WerkzeugResponse:
    """Whether editors' scheduled posts wait for an owner's or admin's approval."""
    form = await request.form
    await set_posts_need_approval(current_actor(), form.get("required") == "on")
    await flash("Saved whether editors' posts need approval.", "success")
    return redirect(url_for("setup.index") + "#step-chats")


@blueprint.post("/chats/<int:chat_id>/unlink")
@requires(Role.ADMIN)
async def unlink_chat(chat_id: int) -> WerkzeugResponse:
    """Stop notifying a chat and ignore its commands."""
    await chat_links.unlink_chat(current_actor(), chat_id)
    await flash("Chat unlinked.", "success")
    return redirect(url_for("setup.index") + "#step-chats")


@blueprint.post("/timezone")
@requires(Role.ADMIN)
async def save_time_zone() -> Page:
    """Set the team's time zone."""
    form = await request.form
    wanted = form.get("timezone", "")
    try:
        workspace = await time_zones.set_workspace_zone(current_actor(), wanted)
    except ValidationFailed as exc:
        return await _page(422, errors=exc.fields, zone_form=wanted)
    await flash(f"The team's time zone is {workspace.timezone}.", "success")
    return redirect(url_for("setup.index") + "#time-zone")


@blueprint.post("/ai")
@requires(Role.ADMIN)
async def save_ai() -> Page:
    """Switch AI replies on or off and set the monthly token quota."""
    form = await request.form
    raw_quota = form.get("ai_monthly_token_quota", "").strip()
    if (
        not (raw_quota.isascii() and raw_quota.isdigit())
        or len(raw_quota) > 10
        or not (0 <= int(raw_quota) <= 1_000_000_000)
    ):
        return await _page(
            422,
            errors={"ai_monthly_token_quota": "Enter a whole number of tokens (0 or more)."},
            ai_form={"enabled": form.get("ai_enabled") == "on", "quota": raw_quota},
        )
    workspace = await setup_wizard.save_ai_settings(
        current_actor(), enabled=form.get("ai_enabled") == "on", monthly_token_quota=int(raw_quota)
    )
    await audit.record(
        "setup.ai_saved",
        actor=current_email(),
        workspace_id=workspace.id,
        target_type="workspace",
        target_id=workspace.id,
        ai_enabled=workspace.ai_enabled,
        quota=workspace.ai_monthly_token_quota,
    )
    await flash("AI settings saved.", "success")
    return redirect(url_for("setup.index") + "#step-ai")


@blueprint.post("/ai/test")
@requires(Role.ADMIN)
async def test_ai() -> Page:
    """Ask the configured AI server for a one-word answer and show what came back."""
    ai = services().container.ai
    if ai is None:
        ok, message = False, "No AI server is configured (set OPENAI_API_KEY or OPENAI_BASE_URL)."
    else:
        try:
            answer = await ai.complete(
                [
                    ChatMessage(role="system", content="You check that an integration works."),
                    ChatMessage(role="user", content="Answer with the single word: ready"),
                ],
                max_tokens=10,
            )
        except AiError as exc:
            ok, message = False, f"The AI server failed ({exc.kind}): {exc.message}"
        else:
            ok = True
            message = (
                f"{answer.model} answered “{answer.text.strip()[:80]}” "
                f"using {answer.total_tokens} tokens."
            )
    if _htmx():
        return await render_template("setup/_ai_test.html", ok=ok, message=message)
    await flash(message, "success" if ok else "error")
    return redirect(url_for("setup.index") + "#step-ai")
