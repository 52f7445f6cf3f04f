"""The token refresh cron is registered and runs the refresh service."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from core.bootstrap import Container
from core.db.models import AccountStatus, InstagramAccount, LoginKind, Workspace
from core.wiring import Services
from jobs.accounts import refresh_instagram_tokens
from jobs.worker import CRON_JOBS


def test_refresh_cron_is_registered() -> None:
    assert any(job.coroutine is refresh_instagram_tokens for job in CRON_JOBS)


async def test_cron_flags_an_expired_token(container: Container, services: Services) -> None:
    workspace = await Workspace.create(name="W")
    account = await InstagramAccount.create(
        workspace=workspace,
        ig_id="1",
        username="u",
        login_kind=LoginKind.INSTAGRAM,
        token_encrypted=container.secrets.encrypt("t"),
        token_expires_at=datetime.now(UTC) - timedelta(minutes=1),
    )
    await refresh_instagram_tokens({"services": services})
    assert (await InstagramAccount.get(id=account.id)).status is AccountStatus.NEEDS_RECONNECT
