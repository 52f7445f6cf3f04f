"""Instagram accounts: connecting (OAuth), tokens, webhook subscription, disconnecting."""

from __future__ import annotations

import logging
from typing import cast

from core.bootstrap import Container
from core.db.models import InstagramAccount
from core.ports.instagram import AccountRef, LoginFlavour

logger = logging.getLogger(__name__)


def account_ref(container: Container, account: InstagramAccount) -> AccountRef:
    """Who to act as for ``account``: its ids, decrypted token and login kind."""
    return AccountRef(
        ig_id=account.ig_id,
        token=container.secrets.decrypt(account.token_encrypted),
        login_kind=cast(LoginFlavour, str(account.login_kind)),
        account_id=account.id,
        page_id=account.page_id,
    )
