"""The log pages' filters: any text in the address is answered, never a server error."""

from __future__ import annotations

from core.db.models import InstagramAccount, Workspace
from core.domain.scope import Actor
from core.services import logs


async def test_an_event_kind_longer_than_any_kind_finds_nothing(db: str) -> None:
    workspace = await Workspace.create(name="w")
    await InstagramAccount.create(
        workspace=workspace,
        ig_id="1784",
        username="shop",
        login_kind="instagram",
        token_encrypted="x",
    )
    page = await logs.event_page(Actor.system(workspace.id), logs.LogFilter(kind="k" * 64))
    assert page.items == [] and not page.has_next
