"""Connecting Instagram accounts end to end against a local token endpoint (the sandbox),
token storage, disconnecting and the refresh cron."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest
from aioresponses import aioresponses

from core.adapters.instagram_oauth import strip_code
from core.bootstrap import Container
from core.db.models import (
    AccountStatus,
    AuditLog,
    DomainEvent,
    EventStatus,
    InstagramAccount,
    LoginKind,
    Membership,
    Role,
    User,
    WebhookEvent,
    Workspace,
)
from core.domain.graph_errors import GraphError
from core.domain.scope import Actor
from core.errors import Forbidden, ValidationFailed
from core.services import accounts
from core.services.reconnection import mark_needs_reconnect
from core.services.sandbox_keys import signing_secret, token_secret
from core.settings import Settings
from reelay.cli import open_services

IG_ID = "17841400000000077"


class FixedClock:
    def __init__(self) -> None:
        self.moment = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)

    def now(self) -> datetime:
        return self.moment


@pytest.fixture
async def meta_container(
    settings_factory: Any, sandbox: Any, redis_location: Any, redis: Any
) -> AsyncIterator[Container]:
    """A container whose Meta app and Instagram endpoints are the sandbox's."""
    settings: Settings = settings_factory(
        meta_app_id="1234567",
        meta_app_secret="app-secret",
        instagram_oauth_url=f"{sandbox.url}/oauth/authorize",
        instagram_token_url=f"{sandbox.url}/oauth/access_token",
        graph_host=sandbox.url,
    )
    built = (
        await open_services(settings, run_migrations=False, redis_location=redis_location)
    ).container
    built.redis_location = type(redis_location)(
        url=redis_location.url, unix_socket_path=redis_location.unix_socket_path
    )
    yield built
    await built.close()


@pytest.fixture
async def admin() -> tuple[User, Workspace]:
    user = await User.create(email="admin@example.com", password_hash="x")
    workspace = await Workspace.create(name="Shop")
    await Membership.create(workspace=workspace, user=user, role=Role.ADMIN)
    return user, workspace


def member(user: User, workspace: Workspace) -> Actor:
    return Actor(workspace_id=workspace.id, role=Role.ADMIN, label=user.email, user_id=user.id)


def admin_of(workspace: Workspace) -> Actor:
    return Actor(workspace_id=workspace.id, role=Role.ADMIN, label="a@x")


async def go_through_dialog(url: str) -> tuple[str, str]:
    """Follow Meta's dialog as the signed-in person: returns (code, state) from the redirect."""
    async with (
        aiohttp.ClientSession() as http,
        http.get(url, allow_redirects=False) as response,
    ):
        assert response.status == 302, await response.text()
        location = response.headers["Location"]
    parts = urlsplit(location)
    assert parts.fragment == "_"
    query = parse_qs(parts.query)
    return query["code"][0] + "#_", query["state"][0]


async def connect(
    container: Container, user: User, workspace: Workspace, *, redirect: str = "https://r/cb"
) -> InstagramAccount:
    url = await accounts.authorization_url(
        member(user, workspace), container, redirect_uri=redirect
    )
    code, state = await go_through_dialog(url)
    return await accounts.complete_connection(
        container, code=code, state=state, redirect_uri=redirect, user_id=user.id, actor="a@x"
    )


# ------------------------------------------------------------------ state


def test_state_round_trip_tampering_and_expiry() -> None:
    now = datetime(2025, 6, 1, tzinfo=UTC)
    state = accounts.sign_state(
        "k" * 40, workspace_id=3, user_id=9, login_kind="instagram", now=now
    )
    found = accounts.read_state("k" * 40, state, now=now + timedelta(minutes=9))
    assert (found.workspace_id, found.user_id, found.login_kind) == (3, 9, "instagram")
    payload, mac = state.split(".")
    forged = accounts.sign_state("k" * 40, workspace_id=4, user_id=9, login_kind="x", now=now)
    for bad in (
        f"{forged.split('.')[0]}.{mac}",  # another payload under this signature
        f"{payload}.{mac[:-2]}xx",
        state + "x",
        "",
        "garbage",
    ):
        with pytest.raises(Forbidden):
            accounts.read_state("k" * 40, bad, now=now)
    with pytest.raises(Forbidden):
        accounts.read_state("another-key" * 4, state, now=now)
    with pytest.raises(Forbidden):
        accounts.read_state("k" * 40, state, now=now + timedelta(minutes=11))


def test_code_loses_metas_trailing_marker() -> None:
    assert strip_code("AQBx#_") == "AQBx"
    assert strip_code("AQBx") == "AQBx"


# ------------------------------------------------------------------ Instagram Login


async def test_authorization_url_names_app_scopes_and_signed_state(
    meta_container: Container, admin: tuple[User, Workspace], sandbox: Any
) -> None:
    user, workspace = admin
    url = await accounts.authorization_url(
        member(user, workspace), meta_container, redirect_uri="https://r/cb"
    )
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    assert url.startswith(f"{sandbox.url}/oauth/authorize?")
    assert query["client_id"] == "1234567"
    assert query["redirect_uri"] == "https://r/cb"
    assert query["response_type"] == "code"
    assert "instagram_business_content_publish" in query["scope"].split(",")
    state = accounts.read_state(meta_container.secret_key, query["state"], now=datetime.now(UTC))
    assert (state.workspace_id, state.user_id) == (workspace.id, user.id)


@pytest.mark.parametrize("shape", ["data", "flat"])
async def test_connect_stores_encrypted_long_lived_token_and_subscribes(
    meta_container: Container,
    admin: tuple[User, Workspace],
    sandbox: Any,
    settings: Settings,
    shape: str,
) -> None:
    user, workspace = admin
    sandbox.state.add_account(IG_ID, "my_shop", account_type="BUSINESS")
    sandbox.state.authorize_as = IG_ID
    sandbox.state.token_shape = shape
    account = await connect(meta_container, user, workspace)

    assert (account.ig_id, account.username, account.login_kind) == (
        IG_ID,
        "my_shop",
        LoginKind.INSTAGRAM,
    )
    assert account.status is AccountStatus.ACTIVE and account.webhook_subscribed
    assert account.token_expires_at is not None
    lifetime = account.token_expires_at - datetime.now(UTC)
    assert timedelta(days=59) < lifetime <= timedelta(days=60)
    token = meta_container.secrets.decrypt(account.token_encrypted)
    assert sandbox.state.tokens[token].long_lived is True
    assert "comments" in sandbox.state.accounts[IG_ID].subscribed_fields
    assert "messages" in sandbox.state.accounts[IG_ID].subscribed_fields

    db_file = Path(settings.resolved_database_url.removeprefix("sqlite://"))
    raw = b"".join(p.read_bytes() for p in db_file.parent.glob(db_file.name + "*"))
    assert account.token_encrypted.encode() in raw  # the right file, with the row in it
    assert token.encode() not in raw

    profile = await meta_container.graph.profile(accounts.account_ref(meta_container, account))
    assert profile["username"] == "my_shop"


async def test_reconnecting_updates_the_same_account(
    meta_container: Container, admin: tuple[User, Workspace], sandbox: Any
) -> None:
    user, workspace = admin
    sandbox.state.add_account(IG_ID, "my_shop")
    sandbox.state.authorize_as = IG_ID
    first = await connect(meta_container, user, workspace)
    await mark_needs_reconnect(first, "token died", redis=None)
    waiting = await WebhookEvent.create(
        dedupe_key="c1", account_ig_id=IG_ID, kind="comment", payload={}, status="waiting"
    )
    second = await connect(meta_container, user, workspace)
    assert second.id == first.id and second.status is AccountStatus.ACTIVE
    await waiting.refresh_from_db()
    assert waiting.status is EventStatus.PENDING  # handed back to the engine
    assert await InstagramAccount.filter(workspace=workspace).count() == 1


async def test_personal_account_is_refused_clearly(
    meta_container: Container, admin: tuple[User, Workspace], sandbox: Any
) -> None:
    user, workspace = admin
    sandbox.state.add_account(IG_ID, "just_me", account_type="PERSONAL")
    sandbox.state.authorize_as = IG_ID
    with pytest.raises(ValidationFailed) as caught:
        await connect(meta_container, user, workspace)
    assert "personal" in caught.value.message
    assert "Business or Creator" in caught.value.fields["account"]
    assert await InstagramAccount.filter(workspace=workspace).count() == 0


async def test_state_cannot_be_reused_or_used_by_someone_else(
    meta_container: Container, admin: tuple[User, Workspace], sandbox: Any
) -> None:
    user, workspace = admin
    other = await User.create(email="other@example.com", password_hash="x")
    sandbox.state.add_account(IG_ID, "my_shop")
    sandbox.state.authorize_as = IG_ID
    url = await accounts.authorization_url(
        member(user, workspace), meta_container, redirect_uri="https://r/cb"
    )
    code, state = await go_through_dialog(url)
    with pytest.raises(Forbidden):
        await accounts.complete_connection(
            meta_container,
            code=code,
            state=state,
            redirect_uri="https://r/cb",
            user_id=other.id,
            actor="o@x",
        )
    await accounts.complete_connection(
        meta_container,
        code=code,
        state=state,
        redirect_uri="https://r/cb",
        user_id=user.id,
        actor="a@x",
    )
    with pytest.raises(Forbidden):
        await accounts.complete_connection(
            meta_container,
            code=code,
            state=state,
            redirect_uri="https://r/cb",
            user_id=user.id,
            actor="a@x",
        )


async def test_tampered_and_expired_state_are_refused_before_any_exchange(
    meta_container: Container, admin: tuple[User, Workspace], sandbox: Any
) -> None:
    user, workspace = admin
    clock = FixedClock()
    meta_container.clock = clock
    url = await accounts.authorization_url(
        member(user, workspace), meta_container, redirect_uri="https://r/cb"
    )
    state = parse_qs(urlsplit(url).query)["state"][0]
    payload, mac = state.split(".")
    tampered = payload[:-1] + ("A" if payload[-1] != "A" else "B") + "." + mac
    with pytest.raises(Forbidden):
        await accounts.complete_connection(
            meta_container,
            code="c",
            state=tampered,
            redirect_uri="https://r/cb",
            user_id=user.id,
            actor="a@x",
        )
    clock.moment += timedelta(minutes=11)
    with pytest.raises(Forbidden):
        await accounts.complete_connection(
            meta_container,
            code="c",
            state=state,
            redirect_uri="https://r/cb",
            user_id=user.id,
            actor="a@x",
        )
    assert sandbox.deliveries == [] and sandbox.state.tokens == {}


async def test_bad_code_surfaces_metas_refusal(
    meta_container: Container, admin: tuple[User, Workspace]
) -> None:
    user, workspace = admin
    url = await accounts.authorization_url(
        member(user, workspace), meta_container, redirect_uri="https://r/cb"
    )
    state = parse_qs(urlsplit(url).query)["state"][0]
    with pytest.raises(GraphError) as caught:
        await accounts.complete_connection(
            meta_container,
            code="AQwrong#_",
            state=state,
            redirect_uri="https://r/cb",
            user_id=user.id,
            actor="a@x",
        )
    assert "Invalid authorization code" in caught.value.message


# ------------------------------------------------------------------ Facebook Login


async def test_facebook_login_takes_the_pages_instagram_account(
    meta_container: Container, admin: tuple[User, Workspace]
) -> None:
    container = meta_container
    user, workspace = admin
    fb = "https://graph.facebook.com/v25.0"
    url = await accounts.authorization_url(
        member(user, workspace),
        container,
        redirect_uri="https://r/cb",
        login_kind="facebook",
    )
    assert url.startswith("https://www.facebook.com/dialog/oauth?client_id=1234567")
    assert "pages_show_list" in parse_qs(urlsplit(url).query)["scope"][0]
    state = parse_qs(urlsplit(url).query)["state"][0]
    with aioresponses() as meta:
        meta.get(
            re.compile(rf"{fb}/oauth/access_token\?.*code=AQfb&.*"),
            payload={"access_token": "EAAshort", "token_type": "bearer"},
        )
        meta.get(
            re.compile(rf"{fb}/oauth/access_token\?.*fb_exchange_token=EAAshort.*"),
            payload={"access_token": "EAAlong", "expires_in": 5183999},
        )
        meta.get(
            re.compile(rf"{fb}/me/accounts\?.*"),
            payload={
                "data": [
                    {"id": "p1", "name": "No IG", "access_token": "EAApage1"},
                    {
                        "id": "p2",
                        "name": "Shop page",
                        "access_token": "EAApage2",
                        "instagram_business_account": {"id": "1784fb"},
                    },
                ]
            },
        )
        meta.get(re.compile(rf"{fb}/1784fb\?.*"), payload={"username": "fb_shop"})
        meta.post(re.compile(rf"{fb}/p2/subscribed_apps\?.*"), payload={"success": True})
        account = await accounts.complete_connection(
            container,
            code="AQfb#_",
            state=state,
            redirect_uri="https://r/cb",
            user_id=user.id,
            actor="a@x",
        )
    assert (account.ig_id, account.username, account.page_id) == ("1784fb", "fb_shop", "p2")
    assert account.login_kind is LoginKind.FACEBOOK
    assert account.token_expires_at is None  # Page tokens do not expire
    assert container.secrets.decrypt(account.token_encrypted) == "EAApage2"
    assert account.webhook_subscribed


# ------------------------------------------------------------------ sandbox mode


async def test_connect_works_in_sandbox_mode(
    settings_factory: Any, redis_location: Any, redis: Any, sandbox: Any
) -> None:
    settings: Settings = settings_factory(sandbox_url=sandbox.url)
    container = (
        await open_services(settings, run_migrations=False, redis_location=redis_location)
    ).container
    container.redis_location = type(redis_location)(
        url=redis_location.url, unix_socket_path=redis_location.unix_socket_path
    )
    sandbox.state.app_secret = signing_secret(settings, container.secret_key)
    sandbox.state.secret = token_secret(container.secret_key)
    sandbox.state.add_account(IG_ID, "sandbox_brand")
    sandbox.state.authorize_as = IG_ID
    try:
        user = await User.create(email="admin@example.com", password_hash="x")
        workspace = await Workspace.create(name="Shop")
        await Membership.create(workspace=workspace, user=user, role=Role.ADMIN)
        account = await connect(container, user, workspace)
        assert account.login_kind is LoginKind.SANDBOX
        listed = await accounts.list_accounts(Actor.system(workspace.id), container)
        assert [a.username for a in listed] == ["sandbox_brand"]  # a sandbox account already
        fresh = await Workspace.create(name="New")
        listed = await accounts.list_accounts(Actor.system(fresh.id), container)
        assert [(a.username, a.login_kind) for a in listed] == [("reelay_demo", LoginKind.SANDBOX)]
        profile = await container.graph.profile(accounts.account_ref(container, listed[0]))
        assert profile["username"] == "reelay_demo"
    finally:
        await container.close()


# ------------------------------------------------------------------ disconnect, health


async def test_disconnect_unsubscribes_from_webhooks_then_forgets_the_token(
    meta_container: Container, admin: tuple[User, Workspace], sandbox: Any
) -> None:
    user, workspace = admin
    sandbox.state.add_account(IG_ID, "my_shop")
    sandbox.state.authorize_as = IG_ID
    account = await connect(meta_container, user, workspace)
    assert sandbox.state.accounts[IG_ID].subscribed_fields
    done = await accounts.disconnect(admin_of(workspace), meta_container, account.id)
    assert done.warning is None
    assert done.account.status is AccountStatus.DISCONNECTED
    assert done.account.token_encrypted == ""
    stored = await InstagramAccount.get(id=account.id)
    assert stored.token_encrypted == "" and not stored.webhook_subscribed
    assert sandbox.state.accounts[IG_ID].unsubscribed
    _, delivery = await sandbox.comment(IG_ID, "anyone there?")
    assert delivery.status is None and "unsubscribed" in delivery.error
    entry = await AuditLog.get(action="account.disconnected")
    assert entry.details["webhooks_unsubscribed"] is True
    assert not await AuditLog.filter(action="account.webhooks_unsubscribe_failed").exists()


@pytest.mark.parametrize(
    ("answer", "said"),
    [
        (
            {
                "status": 400,
                "payload": {"error": {"message": "Invalid OAuth", "type": "x", "code": 190}},
            },
            "its token is no longer valid (error 190)",
        ),
        ({"exception": aiohttp.ClientConnectionError("connection reset")}, "No answer"),
    ],
    ids=["dead-token", "network"],
)
async def test_disconnect_goes_ahead_when_meta_refuses_or_is_unreachable(
    container: Container, answer: dict[str, Any], said: str
) -> None:
    workspace = await Workspace.create(name="W")
    account = await InstagramAccount.create(
        workspace=workspace,
        ig_id="1784",
        username="shop",
        login_kind=LoginKind.FACEBOOK,
        page_id="55",
        token_encrypted=container.secrets.encrypt("EAAdead"),
        webhook_subscribed=True,
    )
    with aioresponses() as meta:
        meta.delete(re.compile(r".*/55/subscribed_apps$"), **answer)
        done = await accounts.disconnect(admin_of(workspace), container, account.id)
        assert len(meta.requests) == 1
    assert done.warning is not None and said in done.warning and "@shop" in done.warning
    stored = await InstagramAccount.get(id=account.id)
    assert stored.status is AccountStatus.DISCONNECTED and stored.token_encrypted == ""
    assert not stored.webhook_subscribed
    failed = await AuditLog.get(action="account.webhooks_unsubscribe_failed")
    assert failed.level == "warning" and said in failed.details["error"]
    assert failed.account_id == account.id
    assert "EAAdead" not in str(failed.details)
    done_entry = await AuditLog.get(action="account.disconnected")
    assert done_entry.details["webhooks_unsubscribed"] is False


async def test_disconnecting_twice_does_not_call_meta_again(container: Container) -> None:
    workspace = await Workspace.create(name="W")
    account = await InstagramAccount.create(
        workspace=workspace,
        ig_id="1784",
        username="shop",
        login_kind=LoginKind.INSTAGRAM,
        token_encrypted="",
        status=AccountStatus.DISCONNECTED,
    )
    with aioresponses() as meta:
        done = await accounts.disconnect(admin_of(workspace), container, account.id)
        assert meta.requests == {}
    assert done.warning is None and done.account.status is AccountStatus.DISCONNECTED


async def test_needs_reconnect_is_recorded_once(container: Container) -> None:
    workspace = await Workspace.create(name="W")
    account = await InstagramAccount.create(
        workspace=workspace,
        ig_id="1",
        username="u",
        login_kind=LoginKind.INSTAGRAM,
        token_encrypted=container.secrets.encrypt("t"),
    )
    assert await mark_needs_reconnect(account, "error 190", redis=None) is True
    assert await mark_needs_reconnect(account, "error 190", redis=None) is False
    events = await DomainEvent.filter(kind="account.needs_reconnect")
    assert len(events) == 1 and events[0].payload["account_id"] == account.id


# ------------------------------------------------------------------ refresh cron


async def test_refresh_cron_renews_only_eligible_tokens(
    meta_container: Container, sandbox: Any
) -> None:
    clock = FixedClock()
    clock.moment = now = datetime.now(UTC)
    meta_container.clock = clock
    workspace = await Workspace.create(name="W")
    state = sandbox.state

    async def make(
        name: str,
        *,
        age: timedelta,
        expires_in: timedelta | None,
        kind: LoginKind = LoginKind.INSTAGRAM,
        token: str | None = None,
    ) -> InstagramAccount:
        ig_id = f"1784{len(state.accounts):04d}"
        state.add_account(ig_id, name)
        value = token or state.issue_token(ig_id, age=age)
        return await InstagramAccount.create(
            workspace=workspace,
            ig_id=ig_id,
            username=name,
            login_kind=kind,
            token_encrypted=meta_container.secrets.encrypt(value),
            token_refreshed_at=now - age,
            token_expires_at=now + expires_in if expires_in else None,
        )

    due = await make("due", age=timedelta(days=40), expires_in=timedelta(days=20))
    young = await make("young", age=timedelta(hours=3), expires_in=timedelta(days=20))
    far = await make("far", age=timedelta(days=2), expires_in=timedelta(days=58))
    page = await make("page", age=timedelta(days=90), expires_in=None, kind=LoginKind.FACEBOOK)
    expired = await make("expired", age=timedelta(days=61), expires_in=timedelta(hours=-1))
    revoked = await make(
        "revoked", age=timedelta(days=40), expires_in=timedelta(days=20), token="revoked-token"
    )
    before = {a.id: a.token_encrypted for a in (young, far, page)}

    report = await accounts.refresh_tokens(meta_container)

    assert report.refreshed == [due.id]
    assert sorted(report.needs_reconnect) == sorted([expired.id, revoked.id])
    fresh = await InstagramAccount.get(id=due.id)
    new_token = meta_container.secrets.decrypt(fresh.token_encrypted)
    assert state.tokens[new_token].ig_id == due.ig_id
    assert fresh.token_refreshed_at == now
    assert fresh.token_expires_at is not None and fresh.token_expires_at > now + timedelta(days=59)
    for account_id, token in before.items():
        assert (await InstagramAccount.get(id=account_id)).token_encrypted == token
    for account_id in (expired.id, revoked.id):
        assert (await InstagramAccount.get(id=account_id)).status is AccountStatus.NEEDS_RECONNECT
    kinds = await DomainEvent.filter(kind="account.needs_reconnect").values_list(
        "payload", flat=True
    )
    assert sorted(p["account_id"] for p in kinds) == sorted([expired.id, revoked.id])

    again = await accounts.refresh_tokens(meta_container)
    assert again.refreshed == [] and again.needs_reconnect == []


async def test_refresh_outage_warns_when_expiry_is_near(
    meta_container: Container, sandbox: Any
) -> None:
    workspace = await Workspace.create(name="W")
    sandbox.state.add_account("17840001", "shop")
    now = datetime.now(UTC)
    account = await InstagramAccount.create(
        workspace=workspace,
        ig_id="17840001",
        username="shop",
        login_kind=LoginKind.INSTAGRAM,
        token_encrypted=meta_container.secrets.encrypt(
            sandbox.state.issue_token("17840001", age=timedelta(days=55))
        ),
        token_refreshed_at=now - timedelta(days=55),
        token_expires_at=now + timedelta(days=5),
    )
    sandbox.faults.fail(503, code=None, path="refresh_access_token")
    report = await accounts.refresh_tokens(meta_container)
    assert report.failed == [account.id] and report.needs_reconnect == []
    assert (await InstagramAccount.get(id=account.id)).status is AccountStatus.ACTIVE
    assert await DomainEvent.filter(kind="token.expiring").count() == 1
