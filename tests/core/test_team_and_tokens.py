from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.fernet import Fernet

from core.adapters.crypto import SecretBox
from core.db.models import (
    ApiToken,
    AuditLog,
    ChatIdentity,
    ChatLink,
    InstagramAccount,
    Invite,
    KeyValue,
    LinkCode,
    LoginKind,
    Membership,
    Platform,
    Role,
    WebhookEvent,
)
from core.domain.scope import Actor
from core.errors import Conflict, Forbidden, NotFound, ValidationFailed
from core.services import (
    account_settings,
    api_tokens,
    audit,
    chat_links,
    logs,
    meta_app,
    team,
    users,
)
from tests.actors import acting

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


async def _owner() -> Membership:
    user, workspace = await users.create_owner("owner@example.com", "long enough pw")
    return await Membership.get(user=user, workspace=workspace)


async def _member(owner: Membership, email: str, role: Role) -> Membership:
    user = await users.create_user(email, "long enough pw")
    return await Membership.create(workspace_id=owner.workspace_id, user=user, role=role)


async def test_invite_link_is_single_use_and_expires(sqlite_db: str) -> None:
    owner = await _owner()
    made = await team.create_invite(await acting(owner), Role.EDITOR, NOW)
    stored = (await Invite.get(id=made.invite.id)).token_hash
    assert made.token not in stored and stored == team.token_digest(made.token)

    user, membership = await team.accept_invite_with_credentials(
        made.token, "ed@example.com", "long enough pw", "Ed", NOW + timedelta(hours=1)
    )
    assert membership.role is Role.EDITOR and membership.workspace_id == owner.workspace_id
    with pytest.raises(NotFound):
        await team.accept_invite(made.token, user, NOW + timedelta(hours=2))

    late = await team.create_invite(await acting(owner), Role.VIEWER, NOW)
    with pytest.raises(NotFound):
        await team.find_invite(late.token, NOW + team.INVITE_TTL + timedelta(seconds=1))


async def test_last_owner_cannot_be_demoted_or_removed(sqlite_db: str) -> None:
    owner = await _owner()
    with pytest.raises(Conflict):
        await team.change_role(await acting(owner), owner.id, Role.ADMIN)
    with pytest.raises(Conflict):
        await team.remove_member(await acting(owner), owner.id, now=NOW)
    second = await _member(owner, "two@example.com", Role.OWNER)
    await team.change_role(await acting(owner), owner.id, Role.ADMIN)
    assert (await Membership.get(id=owner.id)).role is Role.ADMIN
    await team.remove_member(await acting(second), owner.id, now=NOW)
    assert not await Membership.exists(id=owner.id)


async def test_admins_cannot_touch_owners_or_make_owners(sqlite_db: str) -> None:
    owner = await _owner()
    admin = await _member(owner, "admin@example.com", Role.ADMIN)
    editor = await _member(owner, "ed@example.com", Role.EDITOR)
    with pytest.raises(Forbidden):
        await team.change_role(await acting(admin), editor.id, Role.OWNER)
    with pytest.raises(Forbidden):
        await team.remove_member(await acting(admin), owner.id, now=NOW)
    with pytest.raises(Forbidden):
        await team.create_invite(await acting(editor), Role.VIEWER, NOW)
    changed = await team.change_role(await acting(admin), editor.id, Role.VIEWER)
    assert changed.role is Role.VIEWER
    actions = await AuditLog.filter(action="team.role_changed").values_list("actor", flat=True)
    assert actions == ["admin@example.com"]


async def test_api_token_is_hashed_shown_once_and_revocable(sqlite_db: str) -> None:
    owner = await _owner()
    made = await api_tokens.create_token(await acting(owner), "CI", Role.EDITOR)
    assert made.secret.startswith("rly_")
    assert not await ApiToken.exists(token_hash=made.secret)
    found = await api_tokens.authenticate(made.secret, NOW)
    assert found is not None and found.role is Role.EDITOR and found.last_used_at == NOW
    assert await api_tokens.authenticate(made.secret + "x", NOW) is None
    await api_tokens.revoke_token(await acting(owner), made.token.id, NOW)
    assert await api_tokens.authenticate(made.secret, NOW) is None
    with pytest.raises(NotFound):
        await api_tokens.revoke_token(await acting(owner), made.token.id, NOW)


async def test_api_token_cannot_outrank_its_creator(sqlite_db: str) -> None:
    owner = await _owner()
    admin = await _member(owner, "admin@example.com", Role.ADMIN)
    with pytest.raises(ValidationFailed) as caught:
        await api_tokens.create_token(await acting(admin), "too strong", Role.OWNER)
    assert "role" in caught.value.fields
    with pytest.raises(ValidationFailed):
        await api_tokens.create_token(await acting(admin), "  ", Role.VIEWER)


async def test_api_token_acts_with_no_more_than_its_creator_now_holds(sqlite_db: str) -> None:
    owner = await _owner()
    admin = await _member(owner, "admin@example.com", Role.ADMIN)
    made = await api_tokens.create_token(await acting(admin), "CI", Role.ADMIN)
    await team.change_role(await acting(owner), admin.id, Role.EDITOR)
    found = await api_tokens.authenticate(made.secret, NOW)
    assert found is not None and found.role is Role.EDITOR
    assert (await ApiToken.get(id=made.token.id)).role is Role.ADMIN


async def test_removing_a_member_revokes_their_tokens_there(sqlite_db: str) -> None:
    owner = await _owner()
    admin = await _member(owner, "admin@example.com", Role.ADMIN)
    made = await api_tokens.create_token(await acting(admin), "CI", Role.EDITOR)
    kept = await api_tokens.create_token(await acting(owner), "owner's", Role.EDITOR)
    await team.remove_member(await acting(owner), admin.id, now=NOW)
    assert await api_tokens.authenticate(made.secret, NOW) is None
    assert (await ApiToken.get(id=made.token.id)).revoked_at == NOW
    assert await api_tokens.authenticate(kept.secret, NOW) is not None
    entry = await AuditLog.get(action="api_token.revoked", target_id=made.token.id)
    assert entry.actor == "owner@example.com" and entry.workspace_id == owner.workspace_id


async def test_token_whose_creator_left_by_other_means_is_refused(sqlite_db: str) -> None:
    owner = await _owner()
    admin = await _member(owner, "admin@example.com", Role.ADMIN)
    made = await api_tokens.create_token(await acting(admin), "CI", Role.EDITOR)
    await Membership.filter(id=admin.id).delete()
    assert await api_tokens.authenticate(made.secret, NOW) is None


async def test_token_list_names_the_creator(sqlite_db: str) -> None:
    owner = await _owner()
    await api_tokens.create_token(await acting(owner), "CI", Role.EDITOR)
    [listed] = await api_tokens.list_tokens(await acting(owner))
    assert listed.created_by is not None and listed.created_by.email == "owner@example.com"


async def test_link_code_links_a_chat_once(sqlite_db: str) -> None:
    owner = await _owner()
    made = await chat_links.create_code(await acting(owner), NOW)
    stored = await LinkCode.get(id=made.link_code.id)
    assert chat_links.normalise_code(made.code) not in stored.code_hash
    link = await chat_links.redeem_code(
        made.code.lower(), Platform.TELEGRAM, "-100", "Shop chat", NOW + timedelta(minutes=1)
    )
    assert link.workspace_id == owner.workspace_id and link.title == "Shop chat"
    with pytest.raises(NotFound):
        await chat_links.redeem_code(made.code, Platform.TELEGRAM, "-100", "x", NOW)
    expired = await chat_links.create_code(await acting(owner), NOW)
    with pytest.raises(NotFound):
        await chat_links.redeem_code(
            expired.code, Platform.DISCORD, "7", "x", NOW + chat_links.CODE_TTL
        )
    await chat_links.unlink_chat(await acting(owner), link.id)
    assert await chat_links.linked_chats(await acting(owner)) == []
    assert not (await ChatLink.get(id=link.id)).active


async def test_meta_app_from_wizard_is_encrypted_and_env_wins(
    sqlite_db: str, settings_factory: Any
) -> None:
    box = SecretBox(Fernet.generate_key().decode())
    admin = await users.create_first_owner("owner@example.com", "long enough pw", "Shop")
    sandbox = settings_factory(meta_app_secret=None, meta_verify_token=None)
    assert (await meta_app.load(sandbox, box)).sandbox
    with pytest.raises(ValidationFailed) as caught:
        await meta_app.save_app(box, app_id="abc", app_secret="", by=admin, workspace_id=None)
    assert set(caught.value.fields) == {"app_id", "app_secret"}
    await meta_app.save_app(
        box, app_id="123456789", app_secret="s3cret", by=admin, workspace_id=None
    )
    assert "s3cret" not in {row.value for row in await KeyValue.all()}
    loaded = await meta_app.load(sandbox, box)
    assert (loaded.app_id, loaded.app_secret, loaded.source) == ("123456789", "s3cret", "panel")
    token = await meta_app.ensure_verify_token(sandbox, box)
    assert (await meta_app.load(sandbox, box)).verify_token == token

    from_env = settings_factory(meta_app_id="999999", meta_app_secret="env-secret")
    loaded = await meta_app.load(from_env, box)
    assert (loaded.app_id, loaded.app_secret, loaded.source) == (
        "999999",
        "env-secret",
        "environment",
    )
    await meta_app.use_sandbox(by=admin, workspace_id=None)
    assert (await meta_app.load(sandbox, box)).sandbox


async def test_only_an_instance_admin_changes_the_meta_app(
    sqlite_db: str, settings_factory: Any
) -> None:
    box = SecretBox(Fernet.generate_key().decode())
    first = await users.create_first_owner("first@example.com", "long enough pw", "A")
    other, workspace_b = await users.create_owner("b@example.com", "long enough pw")
    assert first.is_instance_admin and not other.is_instance_admin
    app = {"app_id": "123456789", "app_secret": "attacker"}
    with pytest.raises(Forbidden):
        await meta_app.save_app(box, **app, by=other, workspace_id=workspace_b.id)
    with pytest.raises(Forbidden):
        await meta_app.use_sandbox(by=other, workspace_id=workspace_b.id)
    with pytest.raises(Forbidden):
        await meta_app.rotate_verify_token(box, by=other, workspace_id=workspace_b.id)
    assert not await KeyValue.exists()

    workspace_a = (await Membership.get(user=first)).workspace_id
    await meta_app.save_app(box, **app, by=first, workspace_id=workspace_a)
    entry = await AuditLog.get(action="setup.meta_app_saved")
    assert (entry.actor, entry.workspace_id) == ("first@example.com", workspace_a)


async def test_logs_filter_and_page(sqlite_db: str) -> None:
    owner = await _owner()
    account = await InstagramAccount.create(
        workspace_id=owner.workspace_id,
        ig_id="1784",
        username="shop",
        login_kind=LoginKind.SANDBOX,
        token_encrypted="x",
    )
    for number in range(logs.PAGE_SIZE + 3):
        await audit.record(
            "post.created",
            actor="o",
            workspace_id=owner.workspace_id,
            account_id=account.id,
            target_type="post",
            target_id=number,
        )
    await audit.record("rule.failed", actor="o", workspace_id=owner.workspace_id, level="error")
    first = await logs.audit_page(
        Actor.system(owner.workspace_id), logs.LogFilter(account_id=account.id)
    )
    assert len(first.items) == logs.PAGE_SIZE and first.has_next
    second = await logs.audit_page(
        Actor.system(owner.workspace_id), logs.LogFilter(account_id=account.id), 2
    )
    assert len(second.items) == 3 and not second.has_next and second.has_previous
    errors = await logs.audit_page(Actor.system(owner.workspace_id), logs.LogFilter(level="error"))
    assert [e.action for e in errors.items] == ["rule.failed"]
    rules = await logs.audit_page(Actor.system(owner.workspace_id), logs.LogFilter(kind="rule"))
    assert len(rules.items) == 1 and {"post", "rule", "workspace"} <= set(rules.kinds)

    await WebhookEvent.create(dedupe_key="a", account_ig_id="1784", kind="comment", payload={})
    await WebhookEvent.create(
        dedupe_key="b", account_ig_id="1784", kind="dm", payload={}, status="failed"
    )
    await WebhookEvent.create(dedupe_key="c", account_ig_id="other", kind="dm", payload={})
    events = await logs.event_page(Actor.system(owner.workspace_id), logs.LogFilter())
    assert {e.dedupe_key for e in events.items} == {"a", "b"}
    failed = await logs.event_page(Actor.system(owner.workspace_id), logs.LogFilter(level="error"))
    assert [e.dedupe_key for e in failed.items] == ["b"]


async def test_another_workspaces_team_tokens_chats_and_accounts_are_not_found(
    sqlite_db: str,
) -> None:
    owner = await _owner()
    ours = await acting(owner)
    editor = await _member(owner, "ed@example.com", Role.EDITOR)
    invite = await team.create_invite(ours, Role.VIEWER, NOW)
    token = await api_tokens.create_token(ours, "CI", Role.EDITOR)
    code = await chat_links.create_code(ours, NOW)
    link = await chat_links.redeem_code(code.code, Platform.TELEGRAM, "-100", "Shop", NOW)
    account = await InstagramAccount.create(
        workspace_id=owner.workspace_id,
        ig_id="1",
        username="shop",
        login_kind=LoginKind.SANDBOX,
        token_encrypted="-",
    )
    user, other = await users.create_owner("stranger@example.com", "long enough pw")
    stranger = Actor(other.id, Role.OWNER, user.email, user_id=user.id)
    audited = await AuditLog.all().count()

    changes = [
        lambda: team.revoke_invite(stranger, invite.invite.id),
        lambda: team.change_role(stranger, editor.id, Role.VIEWER),
        lambda: team.remove_member(stranger, editor.id, now=NOW),
        lambda: api_tokens.revoke_token(stranger, token.token.id, NOW),
        lambda: chat_links.unlink_chat(stranger, link.id),
        lambda: account_settings.set_dm_pace(stranger, account.id, "10"),
        lambda: account_settings.get_account(stranger, account.id),
    ]
    for change in changes:
        with pytest.raises(NotFound):
            await change()
    assert await AuditLog.all().count() == audited
    assert (await Invite.get(id=invite.invite.id)).used_at is None
    assert (await Membership.get(id=editor.id)).role is Role.EDITOR
    assert (await ApiToken.get(id=token.token.id)).revoked_at is None
    assert (await ChatLink.get(id=link.id)).active
    assert (await InstagramAccount.get(id=account.id)).dm_pace_per_hour is None
    assert [m.user.email for m in await team.members(stranger)] == ["stranger@example.com"]
    assert await api_tokens.list_tokens(stranger) == []
    assert await chat_links.linked_chats(stranger) == []
    assert await account_settings.workspace_accounts(stranger) == []


async def test_a_personal_code_links_one_chat_account_to_its_maker_once(db: str) -> None:
    owner = await _owner()
    made = await chat_links.create_personal_code(await acting(owner), NOW)
    # a chat code's redemption does not take a personal code, and the other way round
    with pytest.raises(NotFound):
        await chat_links.redeem_code(made.code, Platform.TELEGRAM, "-100", "x", NOW)
    chat_code = await chat_links.create_code(await acting(owner), NOW)
    assert (
        await chat_links.redeem_personal_code(
            chat_code.code, Platform.TELEGRAM, "42", "telegram:42", NOW
        )
        is None
    )
    await ChatIdentity.create(
        platform=Platform.TELEGRAM, platform_user_id="42", user_id=owner.user_id
    )
    person = await chat_links.redeem_personal_code(
        made.code.lower(), Platform.TELEGRAM, "42", "telegram:42", NOW + timedelta(minutes=59)
    )
    assert person is not None and person.id == owner.user_id
    assert await ChatIdentity.filter(platform_user_id="42").count() == 1
    with pytest.raises(NotFound, match="used or expired"):
        await chat_links.redeem_personal_code(made.code, Platform.DISCORD, "7", "d:7", NOW)
    late = await chat_links.create_personal_code(await acting(owner), NOW)
    with pytest.raises(NotFound, match="used or expired"):
        await chat_links.redeem_personal_code(
            late.code, Platform.DISCORD, "7", "d:7", NOW + chat_links.PERSONAL_CODE_TTL
        )
    [identity] = await chat_links.linked_identities(await acting(owner))
    await chat_links.unlink_identity(await acting(owner), identity.id)
    assert not await ChatIdentity.exists()
