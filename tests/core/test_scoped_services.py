"""Another workspace's actor finds nothing of this one's and changes nothing.

Each service below filters by the actor's workspace in the query itself; these tests hold
a few of them to it with two workspaces side by side.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from core.adapters.storage import DiskStorage
from core.db.models import (
    InstagramAccount,
    Lead,
    LoginKind,
    MediaAsset,
    MediaInsight,
    Role,
    WebhookEvent,
    Workspace,
)
from core.domain.scope import Actor
from core.errors import NotFound
from core.services import analytics, audit, lead_export, lead_review, library, logs, media
from tests.media_samples import image_bytes


class FakeQueue:
    def __init__(self) -> None:
        self.jobs: list[tuple[str, tuple[object, ...]]] = []

    async def enqueue(self, function: str, *args: object, **options: object) -> bool:
        self.jobs.append((function, args))
        return True


@dataclass
class Side:
    actor: Actor
    lead: Lead
    asset: MediaAsset
    ig_media_id: str


@pytest.fixture
def storage(tmp_path: Path) -> DiskStorage:
    return DiskStorage(tmp_path / "media")


async def _side(storage: DiskStorage, word: str, ig_id: str) -> Side:
    workspace = await Workspace.create(name=word)
    actor = Actor(workspace_id=workspace.id, role=Role.OWNER, label=f"owner@{word}.example")
    account = await InstagramAccount.create(
        workspace=workspace,
        ig_id=ig_id,
        username=word,
        login_kind=LoginKind.SANDBOX,
        token_encrypted="",
    )
    lead = await Lead.create(
        workspace=workspace, account=account, igsid=f"{ig_id}9", email=f"fan@{word}.example"
    )
    asset = await media.upload_bytes(actor, storage, image_bytes(1080, 1080), f"{word}.jpg")
    await audit.record("rule.saved", actor=actor.label, workspace_id=workspace.id)
    await WebhookEvent.create(
        dedupe_key=f"{word}:1", account_ig_id=ig_id, kind="comment", payload={}
    )
    ig_media_id = f"{ig_id}0001"
    await MediaInsight.create(
        account=account,
        ig_media_id=ig_media_id,
        date=(datetime.now(UTC) - timedelta(days=1)).date(),
        metrics={"views": 10},
    )
    return Side(actor, lead, asset, ig_media_id)


@pytest.fixture
async def sides(db: str, storage: DiskStorage) -> tuple[Side, Side]:
    return await _side(storage, "alpha", "17841400000001"), await _side(
        storage, "bravo", "17841400000002"
    )


def _emails(leads: list[Lead]) -> set[str | None]:
    return {lead.email for lead in leads}


async def test_lead_lists_and_exports_hold_only_the_actors_leads(sides: tuple[Side, Side]) -> None:
    a, b = sides
    everything = lead_export.LeadQuery()
    leads, _ = await lead_export.list_leads(a.actor, everything)
    assert _emails(leads) == {"fan@alpha.example"}
    # naming B's account as a filter does not widen A's scope
    theirs = lead_export.LeadQuery(account_id=b.lead.account_id)
    assert (await lead_export.list_leads(a.actor, theirs))[0] == []
    exported = await lead_export.export_csv(a.actor, everything)
    assert "fan@alpha.example" in exported and "bravo" not in exported


async def test_another_workspaces_lead_is_not_found_and_not_resent(
    sides: tuple[Side, Side],
) -> None:
    a, b = sides
    assert (await lead_review.lead_detail(b.actor, b.lead.id)).lead.id == b.lead.id
    with pytest.raises(NotFound):
        await lead_review.lead_detail(a.actor, b.lead.id)
    queue = FakeQueue()
    with pytest.raises(NotFound):
        await lead_review.resend_webhook(a.actor, queue, b.lead.id)
    assert queue.jobs == []
    assert (await Lead.get(id=b.lead.id)).webhook_status == b.lead.webhook_status


async def test_another_workspaces_file_is_not_deleted(
    sides: tuple[Side, Side], storage: DiskStorage
) -> None:
    a, b = sides
    items, _ = await library.list_media(a.actor)
    assert [item.asset.id for item in items] == [a.asset.id]
    with pytest.raises(NotFound):
        await library.delete_media(a.actor, storage, b.asset.id)
    assert await MediaAsset.exists(id=b.asset.id)
    assert await storage.size(b.asset.storage_key) is not None
    with pytest.raises(NotFound):
        await media.assets_for(a.actor, [a.asset.id, b.asset.id])
    await library.delete_media(b.actor, storage, b.asset.id)
    assert not await MediaAsset.exists(id=b.asset.id)


async def test_audit_page_shows_only_the_actors_entries(sides: tuple[Side, Side]) -> None:
    a, _ = sides
    page = await logs.audit_page(a.actor, logs.LogFilter())
    assert [entry.actor for entry in page.items] == ["owner@alpha.example"]


async def test_event_page_shows_only_the_actors_accounts_events(sides: tuple[Side, Side]) -> None:
    a, b = sides
    page = await logs.event_page(a.actor, logs.LogFilter())
    assert [event.dedupe_key for event in page.items] == ["alpha:1"]
    # B's account as a filter finds nothing rather than B's events
    theirs = logs.LogFilter(account_id=b.lead.account_id)
    assert (await logs.event_page(a.actor, theirs)).items == []


async def test_another_workspaces_post_numbers_are_not_found(sides: tuple[Side, Side]) -> None:
    a, b = sides
    assert (await analytics.post_detail(b.actor, b.ig_media_id)).account.username == "bravo"
    with pytest.raises(NotFound):
        await analytics.post_detail(a.actor, b.ig_media_id)
