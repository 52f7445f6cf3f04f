"""The draft expiry cron, run as the worker runs it (ctx with the real container)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from core.bootstrap import Container
from core.db.models import (
    DomainEvent,
    DraftStatus,
    InstagramAccount,
    LoginKind,
    ReplyDraft,
    Workspace,
)
from core.wiring import Services
from jobs.ai import expire_reply_drafts
from jobs.worker import CRON_JOBS


async def test_cron_expires_overdue_drafts_only(container: Container, services: Services) -> None:
    now = datetime.now(UTC)
    workspace = await Workspace.create(name="W")
    account = await InstagramAccount.create(
        workspace=workspace,
        ig_id="1",
        username="acct",
        login_kind=LoginKind.SANDBOX,
        token_encrypted="x",
    )
    common = {"workspace": workspace, "account": account, "proposed_text": "Hi"}
    overdue = await ReplyDraft.create(**common, expires_at=now - timedelta(minutes=1))
    live = await ReplyDraft.create(**common, expires_at=now + timedelta(hours=3))
    decided = await ReplyDraft.create(
        **common, expires_at=now - timedelta(hours=1), status=DraftStatus.APPROVED
    )
    assert await expire_reply_drafts({"services": services}) == 1
    assert (await ReplyDraft.get(id=overdue.id)).status is DraftStatus.EXPIRED
    assert (await ReplyDraft.get(id=live.id)).status is DraftStatus.PENDING
    assert (await ReplyDraft.get(id=decided.id)).status is DraftStatus.APPROVED
    # The chats that showed the draft are told (the notification job is queued at once).
    [event] = await DomainEvent.filter(kind="draft.decided")
    assert event.payload["draft_id"] == overdue.id and event.payload["status"] == "expired"
    assert await container.queue.job_exists(f"notify:{event.id}")
    assert await expire_reply_drafts({"services": services}) == 0


def test_cron_is_registered() -> None:
    assert any(job.name.endswith("expire_reply_drafts") for job in CRON_JOBS)
