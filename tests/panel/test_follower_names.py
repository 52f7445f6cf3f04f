"""The panel names followers: leads, a lead, the approvals page and the event log."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from core.db.models import (
    Conversation,
    DraftStatus,
    InstagramAccount,
    Lead,
    LoginKind,
    ReplyDraft,
    Role,
    User,
    WebhookEvent,
)
from tests.panel.helpers import sign_in_as, team_of_four

NAMED = "@ana.bakes · Ana Costa · 12.3k followers"


async def test_leads_approvals_and_events_name_the_follower(client: Any, sqlite_db: str) -> None:
    members = await team_of_four()
    viewer = members[Role.VIEWER]
    await sign_in_as(client, await User.get(id=viewer.user_id), viewer.workspace_id)
    account = await InstagramAccount.create(
        workspace_id=viewer.workspace_id,
        ig_id="17841400000000001",
        username="shop",
        login_kind=LoginKind.SANDBOX,
        token_encrypted="-",
    )
    conversation = await Conversation.create(
        account=account,
        igsid="9001",
        username="ana.bakes",
        profile_name="Ana Costa",
        follower_count=12_345,
        last_inbound_at=datetime.now(UTC),
    )
    lead = await Lead.create(
        workspace_id=viewer.workspace_id,
        account=account,
        conversation=conversation,
        igsid="9001",
        username="ana.bakes",
        email="ana@example.com",
    )
    stranger = await Lead.create(
        workspace_id=viewer.workspace_id, account=account, igsid="4242", email="x@example.com"
    )
    await ReplyDraft.create(
        workspace_id=viewer.workspace_id,
        account=account,
        conversation=conversation,
        inbound_text="Oat milk?",
        proposed_text="Yes!",
        target={"igsid": "9001"},
        status=DraftStatus.PENDING,
        expires_at=datetime.now(UTC) + timedelta(hours=20),
    )
    await WebhookEvent.create(
        dedupe_key="m1",
        account_ig_id=account.ig_id,
        kind="message",
        payload={},
        event={"sender_id": "9001", "sender_username": ""},
    )
    leads = await (await client.get("/leads")).get_data(as_text=True)
    assert NAMED in leads and "a follower (id 4242)" in leads
    detail = await (await client.get(f"/leads/{lead.id}")).get_data(as_text=True)
    assert f"Lead from {NAMED}" in detail
    assert "a follower (id 4242)" in await (await client.get(f"/leads/{stranger.id}")).get_data(
        as_text=True
    )
    approvals = await (await client.get("/approvals")).get_data(as_text=True)
    assert f"<strong>{NAMED}</strong>" in approvals
    events = await (await client.get("/logs/events")).get_data(as_text=True)
    assert f"<td>{NAMED}</td>" in events
