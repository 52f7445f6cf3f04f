"""A comment alert's buttons in Discord: Hide hides the comment on the sandbox Instagram as
the member who pressed, and the message says so; Delete asks first."""

from __future__ import annotations

from typing import Any

import pytest

from bot.discord_bot import press
from core.bootstrap import Container
from core.db.models import DomainEvent, WebhookEvent, Workspace
from core.domain import alerts
from core.services.chatops import ChatOps
from core.settings import Settings
from core.wiring import assemble_services
from tests.bot.discord_bot.interactions import Interaction
from tests.chatops_world import World

IG_ID = "17841400000000001"


@pytest.fixture
def settings(settings_factory: Any, sandbox: Any) -> Settings:
    made: Settings = settings_factory(sandbox_url=sandbox.url)
    return made


@pytest.fixture
def comment_chatops(container: Container) -> ChatOps:
    services = assemble_services(container)
    return ChatOps(
        container,
        publishing=services.publishing,
        storage=services.storage,
        comments=services.comment_moderation,
    )


async def comment_alert(world: World, container: Container, sandbox: Any) -> tuple[Any, int]:
    sandbox.state.add_account(IG_ID, "cafecrema")
    world.account.token_encrypted = container.secrets.encrypt(sandbox.state.issue_token(IG_ID))
    await world.account.save()
    media = sandbox.state.add_media(IG_ID, caption="Fresh croissants")
    comment = sandbox.state.add_comment(
        media.id, from_id="555", username="spam_bot", text="cheap followers"
    )
    facts = {"comment_id": comment.id, "media_id": media.id, "text": comment.text}
    await WebhookEvent.create(
        dedupe_key=f"{IG_ID}:comment:{comment.id}",
        account_ig_id=IG_ID,
        kind="comment",
        payload={},
        event={"kind": "comment", **facts},
    )
    alert = await DomainEvent.create(
        workspace=world.workspace,
        kind=alerts.COMMENT_ALERT,
        payload={**facts, "account_id": world.account.id, "username": "cafecrema"},
    )
    return comment, alert.id


async def test_hide_and_delete_buttons_act_as_the_presser(
    world: World, container: Container, sandbox: Any, comment_chatops: ChatOps
) -> None:
    comment, alert_id = await comment_alert(world, container, sandbox)
    hidden = Interaction(on_message=True)
    await press(comment_chatops, hidden, f"chide:{alert_id}")  # type: ignore[arg-type]
    [edit] = hidden.log
    assert edit.kind == "edit" and "🙈 Hidden by editor@example.com" in (edit.content or "")
    assert sandbox.state.comments[comment.id].hidden is True
    asked = Interaction(on_message=True)
    await press(comment_chatops, asked, f"cdel:{alert_id}")  # type: ignore[arg-type]
    assert "Delete this comment for good?" in (asked.log[0].content or "")
    assert comment.id in sandbox.state.comments
    deleted = Interaction(on_message=True)
    await press(comment_chatops, deleted, f"cdelok:{alert_id}")  # type: ignore[arg-type]
    assert "🗑 Deleted by editor@example.com" in (deleted.log[0].content or "")
    assert comment.id not in sandbox.state.comments


async def test_another_workspaces_alert_is_not_found(
    world: World, container: Container, sandbox: Any, comment_chatops: ChatOps
) -> None:
    comment, _ = await comment_alert(world, container, sandbox)
    other = await Workspace.create(name="Other")
    theirs = await DomainEvent.create(
        workspace=other, kind=alerts.COMMENT_ALERT, payload={"comment_id": comment.id}
    )
    refused = Interaction(on_message=True)
    await press(comment_chatops, refused, f"chide:{theirs.id}")  # type: ignore[arg-type]
    assert refused.log[0].kwargs["ephemeral"] is True
    assert "not one of this workspace's" in (refused.log[0].content or "")
    assert sandbox.state.comments[comment.id].hidden is False
