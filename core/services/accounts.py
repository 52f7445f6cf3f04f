"""Instagram accounts: connecting (OAuth), tokens, webhook subscription, disconnecting."""

from __future__ import annotations

import logging
from typing import cast

from core.bootstrap import Container
from core.db.models import InstagramAccount, LoginKind, Workspace
from core.ports.instagram import AccountRef, LoginFlavour
from core.sandbox import token_secret
from core.sandbox.state import demo_ig_id, sandbox_token
from core.services import audit

logger = logging.getLogger(__name__)

DEMO_USERNAME = "reelay_demo"


def account_ref(container: Container, account: InstagramAccount) -> AccountRef:
    """Who to act as for ``account``: its ids, decrypted token and login kind."""
    return AccountRef(
        ig_id=account.ig_id,
        token=container.secrets.decrypt(account.token_encrypted),
        login_kind=cast(LoginFlavour, str(account.login_kind)),
        account_id=account.id,
        page_id=account.page_id,
    )


async def ensure_demo_account(
    container: Container, workspace: Workspace
) -> InstagramAccount | None:
    """Give ``workspace`` its connected sandbox account, once (None when it has one already).

    A disconnected demo account counts as one: it is not brought back.
    """
    if await InstagramAccount.filter(workspace=workspace, login_kind=LoginKind.SANDBOX).exists():
        return None
    ig_id = demo_ig_id(workspace.id)
    token = sandbox_token(token_secret(container.secret_key), ig_id)
    account = await InstagramAccount.create(
        workspace=workspace,
        ig_id=ig_id,
        username=DEMO_USERNAME,
        account_type="BUSINESS",
        login_kind=LoginKind.SANDBOX,
        token_encrypted=container.secrets.encrypt(token),
        token_refreshed_at=container.clock.now(),
        webhook_subscribed=True,
    )
    await audit.record(
        "account.connected",
        actor="sandbox",
        workspace_id=workspace.id,
        target_type="instagram_account",
        target_id=account.id,
        username=DEMO_USERNAME,
        login_kind=str(LoginKind.SANDBOX),
    )
    return account


async def ensure_demo_accounts(container: Container) -> list[InstagramAccount]:
    """A demo account for every workspace still without a sandbox account."""
    covered = await InstagramAccount.filter(login_kind=LoginKind.SANDBOX).values_list(
        "workspace_id", flat=True
    )
    made = []
    for workspace in await Workspace.exclude(id__in=list(covered)):
        account = await ensure_demo_account(container, workspace)
        if account is not None:
            made.append(account)
    return made
