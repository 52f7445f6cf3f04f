"""Per-account settings an admin changes in the panel (send pacing, comment alerts), and
account status."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from redis.asyncio import Redis

from core.db.models import AccountStatus, InstagramAccount, Role
from core.domain.scope import Actor
from core.errors import Forbidden, NotFound, ValidationFailed
from core.services import account_changes, audit

EXPIRY_WARNING = timedelta(days=7)
MAX_PACE = 3600


@dataclass(frozen=True)
class AccountHealth:
    """What the accounts page says about one account."""

    level: str  # "active", "expiring", "needs_reconnect", "disconnected"
    text: str


def health(account: InstagramAccount, now: datetime) -> AccountHealth:
    if account.status is AccountStatus.DISCONNECTED:
        return AccountHealth("disconnected", "Disconnected")
    if account.status is AccountStatus.NEEDS_RECONNECT:
        reason = f": {account.status_reason}" if account.status_reason else ""
        return AccountHealth("needs_reconnect", f"Needs reconnect{reason}")
    expires = account.token_expires_at
    if expires is not None and expires <= now:
        return AccountHealth("needs_reconnect", f"Token expired on {expires:%Y-%m-%d}")
    if expires is not None and expires - now <= EXPIRY_WARNING:
        return AccountHealth("expiring", f"Active, token expiring on {expires:%Y-%m-%d %H:%M} UTC")
    return AccountHealth("active", "Active")


async def workspace_accounts(actor: Actor) -> list[InstagramAccount]:
    return await InstagramAccount.filter(workspace_id=actor.workspace_id).order_by("username")


async def get_account(actor: Actor, account_id: int) -> InstagramAccount:
    account = await InstagramAccount.get_or_none(id=account_id, workspace_id=actor.workspace_id)
    if account is None:
        raise NotFound("No such Instagram account.")
    return account


async def set_dm_pace(actor: Actor, account_id: int, raw: str) -> InstagramAccount:
    """Set how many DMs per hour the account may send; empty means the default."""
    if not actor.allows(Role.ADMIN):
        raise Forbidden("Only owners and admins change send pacing.")
    account = await get_account(actor, account_id)
    raw = raw.strip()
    if raw and not (raw.isascii() and raw.isdigit() and 1 <= int(raw) <= MAX_PACE):
        raise ValidationFailed(
            "Invalid pace", {"dm_pace_per_hour": f"Enter 1 to {MAX_PACE}, or leave empty."}
        )
    account.dm_pace_per_hour = int(raw) if raw else None
    await account.save(update_fields=["dm_pace_per_hour"])
    await audit.record(
        "account.pace_changed",
        actor=actor.label,
        workspace_id=actor.workspace_id,
        account_id=account.id,
        target_type="account",
        target_id=account.id,
        dm_pace_per_hour=account.dm_pace_per_hour,
    )
    return account


async def set_comment_alerts(
    actor: Actor, account_id: int, on: bool, *, redis: Redis | None = None
) -> InstagramAccount:
    """Send (or stop sending) each new comment on the account to the linked chats, with Hide
    and Delete buttons; ``redis`` tells the engines' account caches at once."""
    if not actor.allows(Role.ADMIN):
        raise Forbidden("Only owners and admins change comment alerts.")
    account = await get_account(actor, account_id)
    account.comment_alerts = on
    await account.save(update_fields=["comment_alerts"])
    await account_changes.announce(redis)
    await audit.record(
        "account.comment_alerts_changed",
        actor=actor.label,
        workspace_id=actor.workspace_id,
        account_id=account.id,
        target_type="account",
        target_id=account.id,
        comment_alerts=on,
    )
    return account
