"""Team, setup wizard, accounts and log pages, driven through the panel."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from aioresponses import aioresponses
from pydantic import SecretStr

from core.bootstrap import Container
from core.db.models import (
    AccountStatus,
    AutomationRule,
    EventStatus,
    InstagramAccount,
    KeyValue,
    LinkCode,
    LoginKind,
    Membership,
    Role,
    Trigger,
    User,
    WebhookEvent,
)
from core.services import audit, chat_links, users
from tests.panel.helpers import CSRF, csrf_of, sign_in_as, team_of_four


async def _signed_in(client: Any, role: Role = Role.OWNER) -> dict[Role, Membership]:
    members = await team_of_four()
    user = await User.get(id=members[role].user_id)
    await sign_in_as(client, user, members[role].workspace_id)
    return members


async def test_invite_link_lets_a_new_teammate_join(app: Any, client: Any, sqlite_db: str) -> None:
    members = await _signed_in(client)
    response = await client.post("/team/invites", form={"csrf_token": CSRF, "role": "editor"})
    assert response.status_code == 201
    link = re.search(r"http://[^<\s]+/invite/[\w-]+", await response.get_data(as_text=True))
    assert link, "the invitation link is shown"
    path = link.group(0).split("localhost", 1)[-1]
    # Shown once: the team page does not show it again.
    assert path not in await (await client.get("/team")).get_data(as_text=True)

    newcomer = app.test_client()
    page = await (await newcomer.get(path)).get_data(as_text=True)
    assert "invited as <strong>editor</strong>" in page
    mismatch = await newcomer.post(
        path,
        form={
            "csrf_token": csrf_of(page),
            "email": "new@",
            "password": "long enough pw",
            "password_confirm": "different pw!",
        },
    )
    assert mismatch.status_code == 422
    # Both problems at once, not one per try.
    answer = await mismatch.get_data(as_text=True)
    assert 'id="password_confirm-error"' in answer and 'id="email-error"' in answer
    joined = await newcomer.post(
        path,
        form={
            "csrf_token": csrf_of(page),
            "email": "new@example.com",
            "password": "long enough pw",
            "password_confirm": "long enough pw",
        },
    )
    assert joined.status_code == 302
    assert (await newcomer.get("/team")).status_code == 200
    user = await User.get(email="new@example.com")
    membership = await Membership.get(user=user)
    assert membership.role is Role.EDITOR
    assert membership.workspace_id == members[Role.OWNER].workspace_id
    assert (await app.test_client().get(path)).status_code == 404  # used up


async def test_roles_change_and_the_last_owner_stays(client: Any, sqlite_db: str) -> None:
    members = await _signed_in(client)
    editor = members[Role.EDITOR]
    await client.post(
        f"/team/members/{editor.id}/role", form={"csrf_token": CSRF, "role": "viewer"}
    )
    assert (await Membership.get(id=editor.id)).role is Role.VIEWER
    response = await client.post(
        f"/team/members/{members[Role.OWNER].id}/remove", form={"csrf_token": CSRF}
    )
    assert response.status_code == 302
    page = await (await client.get("/team")).get_data(as_text=True)
    assert "The last owner cannot be removed." in page
    assert await Membership.exists(id=members[Role.OWNER].id)
    await client.post(f"/team/members/{editor.id}/remove", form={"csrf_token": CSRF})
    assert not await Membership.exists(id=editor.id)


async def test_setup_shows_each_step_and_what_is_missing(client: Any, sqlite_db: str) -> None:
    await _signed_in(client)
    page = await (await client.get("/setup")).get_data(as_text=True)
    # The sandbox counts as a Meta app, and gives the workspace its demo account at once.
    assert "2 of 5 steps done" in page
    assert "@reelay_demo connected." in page
    assert "A connected Instagram account." not in page
    assert "A linked Telegram or Discord chat." in page
    assert "http://127.0.0.1:8000/webhooks/meta" in page
    assert 'value="verify-me"' in page  # META_VERIFY_TOKEN from the environment


async def test_meta_app_is_saved_encrypted_with_errors_next_to_fields(
    client: Any, sqlite_db: str
) -> None:
    await _signed_in(client)
    bad = await client.post("/setup/meta", form={"csrf_token": CSRF, "app_id": "abc"})
    body = await bad.get_data(as_text=True)
    assert bad.status_code == 422
    assert 'aria-describedby="app_id-error"' in body and 'id="app_id-error"' in body
    good = await client.post(
        "/setup/meta", form={"csrf_token": CSRF, "app_id": "1234567890", "app_secret": "shh"}
    )
    assert good.status_code == 302
    stored = {row.key: row.value for row in await KeyValue.all()}
    assert stored["meta.app_id"] == "1234567890" and "shh" not in stored.values()
    page = await (await client.get("/setup")).get_data(as_text=True)
    assert "App 1234567890 (set in this panel)" in page


async def test_admins_cannot_change_the_install_wide_meta_app(client: Any, sqlite_db: str) -> None:
    await _signed_in(client, Role.ADMIN)
    response = await client.post(
        "/setup/meta", form={"csrf_token": CSRF, "app_id": "1234567890", "app_secret": "x"}
    )
    assert response.status_code == 403
    assert not await KeyValue.exists(key="meta.app_id")


async def test_workspace_owners_see_the_instance_settings_read_only(
    client: Any, sqlite_db: str
) -> None:
    await team_of_four()
    other, workspace = await users.create_owner("b@example.com", "long enough pw")
    await sign_in_as(client, other, workspace.id)
    page = await (await client.get("/setup")).get_data(as_text=True)
    assert "only an instance admin changes it" in page and 'action="/setup/meta"' not in page
    for path in ("/setup/meta", "/setup/meta/sandbox"):
        form = {"csrf_token": CSRF, "app_id": "1234567890", "app_secret": "x"}
        assert (await client.post(path, form=form)).status_code == 403, path
    assert not await KeyValue.exists(key="meta.app_id")


async def test_team_page_names_the_instance_admins(client: Any, sqlite_db: str) -> None:
    await _signed_in(client)
    page = await (await client.get("/team")).get_data(as_text=True)
    row = next(line for line in page.splitlines() if "instance admin<" in line)
    assert page.count("instance admin<") == 1 and "owner" in row


async def test_link_code_is_shown_once_and_only_its_hash_is_kept(
    client: Any, container: Container, sqlite_db: str
) -> None:
    await _signed_in(client, Role.ADMIN)
    container.settings = container.settings.model_copy(
        update={"telegram_token": SecretStr("123:telegram")}
    )
    response = await client.post("/setup/chats/code", form={"csrf_token": CSRF})
    assert response.status_code == 201
    code = re.search(r"/link ([A-Z0-9]{5}-[A-Z0-9]{5})", await response.get_data(as_text=True))
    assert code
    stored = await LinkCode.all()
    assert len(stored) == 1 and code.group(1) not in stored[0].code_hash
    assert code.group(1) not in await (await client.get("/setup")).get_data(as_text=True)
    # The code links a chat, and the setup step says so.
    from core.db.models import Platform

    await chat_links.redeem_code(
        code.group(1), Platform.TELEGRAM, "-1001", "Shop team", datetime.now(UTC)
    )
    page = await (await client.get("/setup")).get_data(as_text=True)
    assert "Telegram: Shop team" in page and "1 chat linked" in page


async def test_ai_test_without_a_server_says_what_is_missing(client: Any, sqlite_db: str) -> None:
    await _signed_in(client, Role.ADMIN)
    response = await client.post(
        "/setup/ai/test", headers={"X-CSRF-Token": CSRF, "HX-Request": "true"}
    )
    assert "No AI server is configured" in await response.get_data(as_text=True)
    saved = await client.post(
        "/setup/ai", form={"csrf_token": CSRF, "ai_monthly_token_quota": "-5"}
    )
    assert saved.status_code == 422
    answer = await saved.get_data(as_text=True)
    assert 'id="ai_monthly_token_quota-error"' in answer
    # The refused value stays in the field for the user to correct, with the switch as sent.
    assert 'name="ai_monthly_token_quota" type="number" value="-5"' in answer
    assert re.search(r'name="ai_enabled" (?!checked)', answer)


async def test_accounts_page_shows_health_and_saves_pacing(
    client: Any, sqlite_db: str, container: Any
) -> None:
    members = await _signed_in(client, Role.ADMIN)
    workspace_id = members[Role.OWNER].workspace_id
    soon = datetime.now(UTC) + timedelta(days=3)
    expiring = await InstagramAccount.create(
        workspace_id=workspace_id,
        ig_id="1",
        username="soon",
        login_kind=LoginKind.INSTAGRAM,
        token_encrypted="x",
        token_expires_at=soon,
        webhook_subscribed=True,
    )
    await InstagramAccount.create(
        workspace_id=workspace_id,
        ig_id="2",
        username="broken",
        login_kind=LoginKind.INSTAGRAM,
        token_encrypted="x",
        status=AccountStatus.NEEDS_RECONNECT,
        status_reason="the token was revoked",
    )
    page = await (await client.get("/accounts")).get_data(as_text=True)
    assert f"token expiring on {soon:%Y-%m-%d}" in page
    assert "Needs reconnect: the token was revoked" in page
    assert "not subscribed" in page and "subscribed</span>" in page

    bad = await client.post(
        f"/accounts/{expiring.id}/pace", form={"csrf_token": CSRF, "dm_pace_per_hour": "0"}
    )
    assert bad.status_code == 422
    answer = await bad.get_data(as_text=True)
    assert f'id="pace-{expiring.id}-error"' in answer
    assert re.search(rf'id="pace-{expiring.id}"[^>]*value="0"', answer), "the typed pace is lost"
    await client.post(
        f"/accounts/{expiring.id}/pace", form={"csrf_token": CSRF, "dm_pace_per_hour": "60"}
    )
    assert (await InstagramAccount.get(id=expiring.id)).dm_pace_per_hour == 60


async def test_audit_log_filters_and_links_to_the_target(client: Any, sqlite_db: str) -> None:
    members = await _signed_in(client, Role.VIEWER)
    workspace_id = members[Role.OWNER].workspace_id
    await audit.record(
        "team.invite_created",
        actor="owner@example.com",
        workspace_id=workspace_id,
        target_type="invite",
        target_id=1,
    )
    await audit.record(
        "account.pace_changed",
        actor="x",
        workspace_id=workspace_id,
        level="warning",
        target_type="account",
        target_id=7,
    )
    page = await (await client.get("/logs/audit?level=warning")).get_data(as_text=True)
    assert "account.pace_changed" in page and "team.invite_created" not in page
    assert 'href="/accounts#account-7"' in page
    page = await (await client.get("/logs/audit?kind=team&page=abc&since=nonsense")).get_data(
        as_text=True
    )
    assert "team.invite_created" in page and 'href="/team"' in page
    assert (await client.get("/logs/events?account=5&level=error")).status_code == 200


async def test_disconnecting_an_account_forgets_its_token(
    client: Any, container: Container, sqlite_db: str
) -> None:
    members = await _signed_in(client, Role.ADMIN)
    account = await InstagramAccount.create(
        workspace_id=members[Role.OWNER].workspace_id,
        ig_id="9",
        username="gone",
        login_kind=LoginKind.INSTAGRAM,
        token_encrypted=container.secrets.encrypt("secret-token"),
        webhook_subscribed=True,
    )
    with aioresponses() as meta:
        meta.delete(re.compile(r".*/9/subscribed_apps$"), payload={"success": True})
        response = await client.post(
            f"/accounts/{account.id}/disconnect", form={"csrf_token": CSRF}
        )
        assert len(meta.requests) == 1
    assert response.status_code == 302
    stored = await InstagramAccount.get(id=account.id)
    assert stored.status is AccountStatus.DISCONNECTED and stored.token_encrypted == ""
    page = await (await client.get("/accounts")).get_data(as_text=True)
    assert "Disconnected" in page and "@gone is disconnected." in page
    assert "could not be told" not in page
    audit_page = await (await client.get("/logs/audit?kind=account")).get_data(as_text=True)
    assert f'href="/accounts#account-{account.id}"' in audit_page


async def test_disconnect_warns_when_meta_refuses_the_unsubscription(
    client: Any, container: Container, sqlite_db: str
) -> None:
    members = await _signed_in(client, Role.ADMIN)
    account = await InstagramAccount.create(
        workspace_id=members[Role.OWNER].workspace_id,
        ig_id="9",
        username="expired",
        login_kind=LoginKind.INSTAGRAM,
        token_encrypted=container.secrets.encrypt("dead-token"),
        webhook_subscribed=True,
    )
    error = {"error": {"message": "Error validating access token", "type": "x", "code": 190}}
    with aioresponses() as meta:
        meta.delete(re.compile(r".*/9/subscribed_apps$"), status=400, payload=error)
        response = await client.post(
            f"/accounts/{account.id}/disconnect", form={"csrf_token": CSRF}
        )
    assert response.status_code == 302
    stored = await InstagramAccount.get(id=account.id)
    assert stored.status is AccountStatus.DISCONNECTED and stored.token_encrypted == ""
    page = await (await client.get("/accounts")).get_data(as_text=True)
    assert "@expired is disconnected." in page
    assert 'class="flash warning"' in page
    assert "Meta could not be told to stop sending @expired&#39;s webhooks" in page
    assert "its token is no longer valid (error 190)" in page
    audit_page = await (await client.get("/logs/audit?level=warning")).get_data(as_text=True)
    assert "account.webhooks_unsubscribe_failed" in audit_page


async def test_event_log_names_the_rule_that_acted(client: Any, sqlite_db: str) -> None:
    members = await _signed_in(client, Role.VIEWER)
    workspace_id = members[Role.OWNER].workspace_id
    account = await InstagramAccount.create(
        workspace_id=workspace_id,
        ig_id="42",
        username="shop",
        login_kind=LoginKind.INSTAGRAM,
        token_encrypted="",
    )
    rule = await AutomationRule.create(
        workspace_id=workspace_id, account=account, name="Price DM", trigger=Trigger.COMMENT
    )
    gone = await AutomationRule.create(
        workspace_id=workspace_id, account=account, name="Old giveaway", trigger=Trigger.DM
    )
    for key, matched in (("a", rule), ("b", gone), ("c", None)):
        await WebhookEvent.create(
            dedupe_key=key,
            account_ig_id="42",
            kind="comment",
            payload={},
            status=EventStatus.DONE if matched else EventStatus.IGNORED,
            rule=matched,
            rule_name=matched.name if matched else None,
        )
    await gone.delete()
    page = await (await client.get("/logs/events")).get_data(as_text=True)
    assert f'<a href="/rules#rule-{rule.id}">Price DM</a>' in page
    assert "Old giveaway <small>(deleted)</small>" in page
    assert page.count('<td class="event-rule">—</td>') == 1


async def test_event_log_shows_only_failures_as_errors(client: Any, sqlite_db: str) -> None:
    members = await _signed_in(client, Role.VIEWER)
    await InstagramAccount.create(
        workspace_id=members[Role.OWNER].workspace_id,
        ig_id="42",
        username="shop",
        login_kind=LoginKind.INSTAGRAM,
        token_encrypted="",
    )
    await WebhookEvent.create(
        dedupe_key="flow",
        account_ig_id="42",
        kind="message",
        payload={},
        status=EventStatus.DONE,
        error="lead flow completed",
    )
    await WebhookEvent.create(
        dedupe_key="broken",
        account_ig_id="42",
        kind="comment",
        payload={},
        status=EventStatus.FAILED,
        error="token expired",
    )
    page = await (await client.get("/logs/events")).get_data(as_text=True)
    assert '<small class="event-note">lead flow completed</small>' in page
    assert '<small class="event-note error">token expired</small>' in page


async def test_a_personal_code_from_the_account_page_links_a_chat_account_to_its_maker(
    client: Any, sqlite_db: str
) -> None:
    from core.db.models import ChatIdentity, Platform, User, Workspace

    await _signed_in(client, Role.VIEWER)
    await chat_links.remember_bot_username("ReelayBot")
    page = await (await client.post("/account/chat-code", form={"csrf_token": CSRF})).get_data(
        as_text=True
    )
    code = re.search(r"/link ([A-Z0-9]{5}-[A-Z0-9]{5})", page)
    assert code
    raw = code.group(1).replace("-", "")
    assert f'href="https://t.me/ReelayBot?start={raw}"' in page
    assert raw not in await (await client.get("/account")).get_data(as_text=True)
    viewer = await User.get(memberships__role=Role.VIEWER)
    person = await chat_links.redeem_personal_code(
        raw, Platform.TELEGRAM, "4711", "telegram:vic", datetime.now(UTC)
    )
    assert person is not None and person.id == viewer.id
    assert await ChatIdentity.exists(user=viewer, platform_user_id="4711")
    assert "Telegram user 4711" in await (await client.get("/account")).get_data(as_text=True)
    # a viewer cannot open the reading switch for unlinked members
    refused = await client.post("/setup/chats/readers", form={"csrf_token": CSRF, "allowed": "on"})
    assert refused.status_code == 403
    assert not (await Workspace.first()).chat_readers_unlinked  # type: ignore[union-attr]


async def test_an_admin_approves_or_rejects_an_editors_post_in_the_panel(
    client: Any, sqlite_db: str
) -> None:
    from core.db.models import InstagramAccount, LoginKind, Post, Workspace
    from core.domain.posts import Kind, Status

    members = await _signed_in(client, Role.ADMIN)
    saved = await client.post("/setup/posts-approval", form={"csrf_token": CSRF, "required": "on"})
    assert saved.status_code == 302
    workspace = await Workspace.get(id=members[Role.ADMIN].workspace_id)
    assert workspace.editor_posts_need_approval
    account = await InstagramAccount.create(
        workspace=workspace,
        ig_id="1784",
        username="shop",
        login_kind=LoginKind.SANDBOX,
        token_encrypted="x",
    )
    later = datetime.now(UTC) + timedelta(days=1)
    waiting = [
        await Post.create(
            workspace=workspace,
            account=account,
            kind=Kind.IMAGE,
            caption=caption,
            status=Status.PENDING_APPROVAL,
            scheduled_at=later,
        )
        for caption in ("Cake day", "Wrong price")
    ]
    from core.db.models import User

    # the planned time is shown (and a new one read) in the viewer's own zone
    await User.filter(id=members[Role.ADMIN].user_id).update(timezone="Asia/Tokyo")
    page = await (await client.get("/approvals")).get_data(as_text=True)
    assert "Posts waiting for approval" in page and "Cake day" in page
    card = page.split("Cake day")[0].rsplit("<strong>", 1)[-1]
    assert "Asia/Tokyo" in card and "New time (Asia/Tokyo)" in page
    await client.post(f"/approvals/posts/{waiting[0].id}/approve", form={"csrf_token": CSRF})
    await client.post(
        f"/approvals/posts/{waiting[1].id}/reject", form={"csrf_token": CSRF, "reason": "Typo"}
    )
    first, second = [await Post.get(id=p.id) for p in waiting]
    assert first.status is Status.SCHEDULED
    assert second.status is Status.CANCELLED and second.last_error == "Rejected: Typo"


async def test_an_admin_chooses_the_chat_conversations_are_mirrored_to(
    client: Any, sqlite_db: str
) -> None:
    from core.db.models import ChatLink, ChatMirror, Platform

    members = await _signed_in(client, Role.ADMIN)
    workspace_id = members[Role.ADMIN].workspace_id
    link = await ChatLink.create(
        workspace_id=workspace_id, platform=Platform.TELEGRAM, chat_id="-100555", title="Support"
    )
    saved = await client.post(
        "/setup/chats/mirror", form={"csrf_token": CSRF, "chat_link_id": str(link.id)}
    )
    assert saved.status_code == 302
    mirror = await ChatMirror.get(workspace_id=workspace_id)
    assert mirror.chat_link_id == link.id
    page = await (await client.get("/setup")).get_data(as_text=True)
    assert f'<option value="{link.id}" selected>Telegram: Support</option>' in page
    stopped = await client.post(
        "/setup/chats/mirror", form={"csrf_token": CSRF, "chat_link_id": ""}
    )
    assert stopped.status_code == 302
    assert not await ChatMirror.exists(workspace_id=workspace_id)
