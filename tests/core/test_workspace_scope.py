"""Rules, posts and drafts are found through the acting workspace: another workspace's
actor finds none of them, and nothing it asks for changes them."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest

from core.db.models import (
    AuditLog,
    AutomationRule,
    InstagramAccount,
    LoginKind,
    MediaAsset,
    Post,
    PostMedia,
    ReplyDraft,
    Trigger,
    Workspace,
)
from core.domain.posts import Kind, Status
from core.domain.rule_definition import RuleDefinition
from core.domain.scope import Actor, Role
from core.errors import Forbidden, NotFound
from core.services import account_settings, approvals, composer, rule_editor, setup_wizard
from core.services.publishing import PostEditor

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


@dataclass
class Theirs:
    """A workspace's rule, post and draft, and an owner of another workspace."""

    rule: AutomationRule
    post: Post
    draft: ReplyDraft
    owner: Actor
    stranger: Actor


@pytest.fixture
async def theirs(sqlite_db: str) -> Theirs:
    workspace = await Workspace.create(name="Ours")
    account = await InstagramAccount.create(
        workspace=workspace,
        ig_id="1",
        username="ours",
        login_kind=LoginKind.SANDBOX,
        token_encrypted="-",
    )
    rule = await AutomationRule.create(
        workspace=workspace, account=account, name="Price", trigger=Trigger.DM, keywords=["price"]
    )
    post = await Post.create(
        workspace=workspace, account=account, kind=Kind.IMAGE, status=Status.SCHEDULED
    )
    draft = await ReplyDraft.create(
        workspace=workspace,
        account=account,
        proposed_text="It is 24 EUR.",
        expires_at=NOW + timedelta(days=1),
    )
    other = await Workspace.create(name="Other")
    owner = Actor(workspace.id, Role.OWNER, "owner@ours.test")
    stranger = Actor(other.id, Role.OWNER, "stranger@other.test")
    return Theirs(rule, post, draft, owner, stranger)


RULE_ACTIONS: dict[str, Callable[[Actor, AutomationRule], Awaitable[object]]] = {
    "get_rule": lambda a, r: rule_editor.get_rule(a, r.id),
    # Refused before Redis or the secret store is used: none is needed.
    "save_rule": lambda a, r: rule_editor.save_rule(
        a,
        RuleDefinition.from_stored(r),
        rule_id=r.id,
        redis=cast(Any, None),
        secrets=cast(Any, None),
    ),
    "set_active": lambda a, r: rule_editor.set_active(a, r.id, False, redis=cast(Any, None)),
    "delete_rule": lambda a, r: rule_editor.delete_rule(a, r.id, redis=cast(Any, None)),
    "explain": lambda a, r: rule_editor.explain(a, r, "comment:1"),
    "rule_row": rule_editor.rule_row,
    # Refused before the sandbox is asked anything: no container is needed.
    "send_sample": lambda a, r: rule_editor.send_sample(
        a, cast(Any, None), r, kind="dm", text="price?", person_id="1"
    ),
}


@pytest.mark.parametrize("action", RULE_ACTIONS)
async def test_another_workspaces_rule_is_not_found_and_unchanged(
    theirs: Theirs, action: str
) -> None:
    with pytest.raises(NotFound):
        await RULE_ACTIONS[action](theirs.stranger, theirs.rule)
    stored = await AutomationRule.get(id=theirs.rule.id)
    assert stored.active and stored.name == "Price"
    assert not await AuditLog.exists()
    assert await rule_editor.list_rules(theirs.stranger) == []
    assert [row.rule.id for row in await rule_editor.list_rules(theirs.owner)] == [theirs.rule.id]


async def test_another_workspaces_posts_are_not_in_its_calendar_or_found(theirs: Theirs) -> None:
    with pytest.raises(NotFound):
        await composer.post_view(theirs.stranger, theirs.post.id)
    assert await composer.posts_between(theirs.stranger, None, None) == []
    assert (await composer.post_view(theirs.owner, theirs.post.id)).post.id == theirs.post.id
    assert len(await composer.posts_between(theirs.owner, None, None)) == 1


async def test_another_workspaces_drafts_are_not_listed_or_found(theirs: Theirs) -> None:
    assert await approvals.one(theirs.stranger, theirs.draft.id) is None
    assert await approvals.pending(theirs.stranger) == []
    assert [v.draft.id for v in await approvals.pending(theirs.owner)] == [theirs.draft.id]
    assert await approvals.decided_since(theirs.stranger, NOW - timedelta(days=1)) == []
    assert await approvals.drafts_page(theirs.stranger, status=None, offset=0, limit=10) == []


async def test_the_panels_lists_and_counts_hold_only_the_actors_workspace(theirs: Theirs) -> None:
    editor = PostEditor(queue=cast(Any, None), clock=cast(Any, None))
    asset = await MediaAsset.create(
        workspace_id=theirs.post.workspace_id,
        storage_key="a.jpg",
        mime="image/jpeg",
        size=1,
        checksum="0" * 64,
    )
    await PostMedia.create(post=theirs.post, asset=asset, position=0)
    assert await rule_editor.rules_by_name(theirs.stranger) == []
    assert await account_settings.workspace_accounts(theirs.stranger) == []
    assert await editor.scheduled_count(theirs.stranger) == 0
    assert await editor.media_ids(theirs.stranger, theirs.post.id) == []
    assert [r.id for r in await rule_editor.rules_by_name(theirs.owner)] == [theirs.rule.id]
    assert len(await account_settings.workspace_accounts(theirs.owner)) == 1
    assert await editor.scheduled_count(theirs.owner) == 1
    assert len(await editor.media_ids(theirs.owner, theirs.post.id)) == 1


async def test_only_an_admin_changes_the_workspaces_ai_settings(theirs: Theirs) -> None:
    editor = Actor(theirs.owner.workspace_id, Role.EDITOR, "editor@ours.test")
    with pytest.raises(Forbidden):
        await setup_wizard.save_ai_settings(editor, enabled=True, monthly_token_quota=5)
    saved = await setup_wizard.save_ai_settings(theirs.owner, enabled=True, monthly_token_quota=5)
    assert (saved.ai_enabled, saved.ai_monthly_token_quota) == (True, 5)
    other = await setup_wizard.workspace_of(theirs.stranger)
    assert other.id != saved.id and other.ai_monthly_token_quota != 5
