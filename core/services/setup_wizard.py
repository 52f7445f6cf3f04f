"""The setup wizard's steps: what is done and what is still missing."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime

from core.db.models import AccountStatus, ChatLink, InstagramAccount, KeyValue, Workspace
from core.domain.chat import LINK_CODES_STEP
from core.domain.scope import Actor, Role, instance_level
from core.errors import Forbidden, NotFound
from core.ports.secrets import SecretStore
from core.services import meta_app
from core.settings import Settings

WEBHOOK_CHECK_KEY = "setup.webhook_check"


@dataclass(frozen=True)
class Step:
    key: str
    title: str
    done: bool
    summary: str
    missing: list[str] = field(default_factory=list)


async def workspace_of(actor: Actor) -> Workspace:
    """The actor's workspace."""
    return await Workspace.get(id=actor.workspace_id)


async def save_ai_settings(actor: Actor, *, enabled: bool, monthly_token_quota: int) -> Workspace:
    """Switch the workspace's AI replies on or off and set its monthly token quota."""
    if not actor.allows(Role.ADMIN):
        raise Forbidden("Only an admin can change the AI settings.")
    workspace = await workspace_of(actor)
    workspace.ai_enabled = enabled
    workspace.ai_monthly_token_quota = monthly_token_quota
    await workspace.save(update_fields=["ai_enabled", "ai_monthly_token_quota"])
    return workspace


@instance_level("the instance's webhook URL check, shared by every workspace")
async def record_webhook_check(url: str, ok: bool, message: str, now: datetime) -> None:
    """Remember the last verification round-trip (the webhook step is done once it passed)."""
    value = json.dumps({"url": url, "ok": ok, "message": message, "at": now.isoformat()})
    await KeyValue.update_or_create(defaults={"value": value}, key=WEBHOOK_CHECK_KEY)


@instance_level("the instance's webhook URL check, shared by every workspace")
async def last_webhook_check() -> dict[str, object] | None:
    row = await KeyValue.get_or_none(key=WEBHOOK_CHECK_KEY)
    if row is None:
        return None
    found: dict[str, object] = json.loads(row.value)
    return found


async def steps(
    actor: Actor, settings: Settings, box: SecretStore, *, ai_available: bool
) -> list[Step]:
    """The five steps, in order, for the actor's workspace."""
    workspace = await Workspace.get_or_none(id=actor.workspace_id)
    if workspace is None:
        raise NotFound(f"workspace {actor.workspace_id} does not exist")
    app = await meta_app.load(settings, box)
    result = [_meta_step(app)]

    url = meta_app.webhook_url(settings)
    check = await last_webhook_check()
    checked = bool(check and check.get("ok") and check.get("url") == url)
    webhook_missing = []
    if not app.verify_token:
        webhook_missing.append("A verify token (one is made when you open this step).")
    if not checked:
        webhook_missing.append("A passing check of the webhook URL.")
    if not app.sandbox and not app.webhook_secrets:
        webhook_missing.append("The app secret, to check the signature of Meta's calls.")
    result.append(
        Step(
            "webhook",
            "Webhook",
            not webhook_missing,
            f"{url} answered the verification check." if checked else f"Webhook URL: {url}",
            webhook_missing,
        )
    )

    accounts = await InstagramAccount.filter(workspace_id=workspace.id).exclude(
        status=AccountStatus.DISCONNECTED
    )
    active = [a for a in accounts if a.status is AccountStatus.ACTIVE]
    broken = [a for a in accounts if a.status is AccountStatus.NEEDS_RECONNECT]
    instagram_missing = [] if active else ["A connected Instagram account."]
    instagram_missing += [f"@{a.username} needs to be reconnected." for a in broken]
    result.append(
        Step(
            "instagram",
            "Instagram account",
            bool(active) and not broken,
            ", ".join(f"@{a.username}" for a in active) + " connected." if active else "",
            instagram_missing,
        )
    )

    chats = await ChatLink.filter(workspace_id=workspace.id, active=True).count()
    bots = [
        name
        for name, token in (
            ("Telegram", settings.telegram_token),
            ("Discord", settings.discord_token),
        )
        if token
    ]
    chat_missing = [] if chats else ["A linked Telegram or Discord chat."]
    if not bots:
        chat_missing.append("A chat bot: set TELEGRAM_TOKEN or DISCORD_TOKEN and restart.")
    result.append(
        Step(
            "chats",
            LINK_CODES_STEP,
            not chat_missing,
            f"{chats} chat{'s' if chats != 1 else ''} linked. Bots: {', '.join(bots) or 'none'}.",
            chat_missing,
        )
    )

    ai_missing = []
    if not ai_available:
        ai_missing.append("An AI server: set OPENAI_API_KEY (or OPENAI_BASE_URL) and restart.")
    if not workspace.ai_enabled:
        ai_missing.append("AI replies are switched off for this workspace.")
    result.append(
        Step(
            "ai",
            "AI replies",
            not ai_missing,
            f"Model {settings.openai_model} at {settings.openai_base_url}." if ai_available else "",
            ai_missing,
        )
    )
    return result


def _meta_step(app: meta_app.MetaApp) -> Step:
    if app.sandbox:
        return Step(
            "meta",
            "Meta app",
            True,
            "Using the built-in sandbox: everything works against a simulated Instagram. "
            "Enter your Meta app to go live.",
        )
    missing = [] if app.app_secret else ["The app secret."]
    where = "the environment" if app.source == "environment" else "this panel"
    return Step("meta", "Meta app", not missing, f"App {app.app_id} (set in {where}).", missing)
