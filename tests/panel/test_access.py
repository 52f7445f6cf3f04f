"""Every route with every role; CSRF; sessions; login rate limiting."""

from __future__ import annotations

import re
from typing import Any

import pytest
from pydantic import SecretStr
from werkzeug.routing import Rule

from core.db.models import Membership, Role, User
from core.services.users import role_allows
from core.wiring import assemble_services
from panel import login_throttle
from tests.panel.helpers import CSRF, csrf_of, sign_in_as, team_of_four, token_for

# The least role of the pages this module's owner wrote: a wrong declaration fails here.
DECLARED = {
    "auth.login": None,
    "auth.first_run": None,
    "auth.logout": None,
    "auth.accept_invite": None,
    "auth.account": Role.VIEWER,
    "auth.logout_everywhere": Role.VIEWER,
    "home.index": Role.VIEWER,
    "team.index": Role.VIEWER,
    "team.invite": Role.ADMIN,
    "team.change_role": Role.ADMIN,
    "team.remove": Role.ADMIN,
    "setup.index": Role.ADMIN,
    "setup.save_meta_app": Role.OWNER,
    "setup.use_sandbox": Role.OWNER,
    "setup.rotate_verify_token": Role.OWNER,
    "setup.make_link_code": Role.ADMIN,
    "setup.choose_mirror": Role.ADMIN,
    "setup.check_webhook": Role.ADMIN,
    "setup.test_ai": Role.ADMIN,
    "accounts.index": Role.VIEWER,
    "accounts.set_pace": Role.ADMIN,
    "accounts.disconnect": Role.ADMIN,
    "accounts.subscribe": Role.ADMIN,
    "account_health.index": Role.VIEWER,
    "logs.audit": Role.VIEWER,
    "logs.events": Role.VIEWER,
    "api_tokens.index": Role.ADMIN,
    "api_tokens.create": Role.ADMIN,
    "api_tokens.revoke": Role.ADMIN,
    "api.me": Role.VIEWER,
    "api.docs": None,
    "openapi": None,
    "api_leads.list_leads": Role.VIEWER,
    "api_leads.export_leads": Role.VIEWER,
    "api_accounts.list_accounts": Role.VIEWER,
    "api_accounts.get_account": Role.VIEWER,
    "api_accounts.account_health": Role.VIEWER,
    "api_analytics.series": Role.VIEWER,
    "api_team.list_members": Role.ADMIN,
    "comments.index": Role.VIEWER,
    "comments.show": Role.VIEWER,
    "comments.act": Role.EDITOR,
    "accounts.set_comment_alerts": Role.ADMIN,
    "rules.next_post_rule": Role.EDITOR,
    "rules.keep_variant": Role.EDITOR,
    "api_rules.rule_variants": Role.VIEWER,
    "inbox.index": Role.VIEWER,
    "inbox.events": Role.VIEWER,
    "inbox.thread": Role.VIEWER,
    "inbox.reply": Role.EDITOR,
    "inbox.take_over": Role.EDITOR,
    "inbox.hand_back": Role.EDITOR,
    "inbox.assign": Role.EDITOR,
    "inbox.add_note": Role.EDITOR,
    "api_conversations.list_conversations": Role.VIEWER,
    "api_conversations.get_conversation": Role.VIEWER,
    "api_conversations.list_messages": Role.VIEWER,
    "api_conversations.reply": Role.EDITOR,
    "api_conversations.take_over": Role.EDITOR,
    "api_conversations.hand_back": Role.EDITOR,
    "api_conversations.assign": Role.EDITOR,
    "api_conversations.add_note": Role.EDITOR,
}

# Routes whose success sends the user to the sign-in page.
SIGNS_OUT = {"auth.logout_everywhere"}

ROLES: list[Role | None] = [None, Role.VIEWER, Role.EDITOR, Role.ADMIN, Role.OWNER]


@pytest.fixture
def settings(settings_factory: Any) -> Any:
    # Nothing listens on port 1: the webhook check fails fast instead of waiting.
    return settings_factory(public_base_url="http://127.0.0.1:1")


def _url(rule: Rule) -> str:
    values: dict[str, Any] = {}
    for name, converter in rule._converters.items():
        kind = type(converter).__name__
        values[name] = 999_999 if kind in {"IntegerConverter", "NumberConverter"} else "x"
    path = rule.rule
    for name, value in values.items():
        path = re.sub(rf"<(?:[^:<>]+:)?{name}>", str(value), path)
    return path


def _routes(app: Any) -> list[tuple[str, str, str]]:
    found = []
    for rule in app.app.url_map.iter_rules():
        if rule.endpoint == "static" or rule.websocket:
            continue
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            found.append((rule.endpoint, method, _url(rule)))
    return found


def test_every_route_declares_its_least_role(app: Any) -> None:
    undeclared = [
        endpoint
        for endpoint, _, _ in _routes(app)
        if not hasattr(app.app.view_functions[endpoint], "required_role")
    ]
    assert undeclared == [], "views without @requires(Role.X) or @public"
    for endpoint, role in DECLARED.items():
        assert app.app.view_functions[endpoint].required_role == role, endpoint


async def test_route_role_matrix(app: Any, sqlite_db: str) -> None:
    """Anonymous → sign-in (or 401 for the API); below the least role → 403; else served."""
    members = await team_of_four()
    tokens = {role: (await token_for(members[Role.OWNER], role))[1] for role in Role}
    users = {role: await User.get(id=m.user_id) for role, m in members.items()}
    workspace_id = members[Role.OWNER].workspace_id
    failures = []
    for endpoint, method, url in _routes(app):
        view = app.app.view_functions[endpoint]
        needed = view.required_role
        is_api = getattr(view, "api", False)
        for role in ROLES:
            client = app.test_client()
            headers = {"X-CSRF-Token": CSRF}
            if is_api:
                await sign_in_as(client, None)
                if role is not None:
                    headers["Authorization"] = f"Bearer {tokens[role]}"
                kwargs: dict[str, Any] = {"json": {}} if method != "GET" else {}
            else:
                await sign_in_as(client, users[role] if role else None, workspace_id)
                kwargs = {"form": {"csrf_token": CSRF}} if method != "GET" else {}
            response = await client.open(url, method=method, headers=headers, **kwargs)
            status = response.status_code
            location = response.headers.get("Location", "")
            where = f"{method} {url} as {role.value if role else 'anonymous'}: {status}"
            if status >= 500:
                failures.append(where + " (server error)")
            elif needed is None:
                continue
            elif role is None:
                expected_anon = status == 401 if is_api else "/login" in location
                if not expected_anon:
                    failures.append(where + " (anonymous got in)")
            elif not role_allows(role, needed):
                if status != 403:
                    failures.append(where + f" (needs {needed.value}, expected 403)")
            elif status in (401, 403) or ("/login" in location and endpoint not in SIGNS_OUT):
                failures.append(where + f" (allowed for {needed.value}, was refused)")
    assert failures == []


async def test_state_changes_without_csrf_are_refused(
    client: Any, container: Any, sqlite_db: str
) -> None:
    container.settings = container.settings.model_copy(
        update={"discord_token": SecretStr("discord-token")}
    )
    members = await team_of_four()
    owner = await User.get(id=members[Role.OWNER].user_id)
    await sign_in_as(client, owner, members[Role.OWNER].workspace_id)
    for url in ("/team/invites", "/setup/chats/code", "/settings/api-tokens", "/logout"):
        response = await client.post(url, form={"role": "viewer", "name": "x"})
        assert response.status_code == 400, url
        wrong = await client.post(url, form={"csrf_token": "forged", "role": "viewer"})
        assert wrong.status_code == 400, url
    # An htmx request sends the token in a header instead.
    response = await client.post(
        "/setup/chats/code", headers={"X-CSRF-Token": CSRF, "HX-Request": "true"}
    )
    assert response.status_code == 201
    assert "/link " in await response.get_data(as_text=True)


async def _login(client: Any, email: str, password: str) -> Any:
    page = await (await client.get("/login")).get_data(as_text=True)
    return await client.post(
        "/login", form={"csrf_token": csrf_of(page), "email": email, "password": password}
    )


async def test_sign_in_starts_a_fresh_session(client: Any, sqlite_db: str) -> None:
    """Session fixation: nothing from before sign-in survives it, CSRF token included."""
    await team_of_four()
    page = await (await client.get("/login")).get_data(as_text=True)
    before = csrf_of(page)
    async with client.session_transaction() as session:
        session["planted"] = "by an attacker"
    response = await client.post(
        "/login",
        form={"csrf_token": before, "email": "viewer@example.com", "password": "long enough pw"},
    )
    assert response.status_code == 302
    async with client.session_transaction() as session:
        assert "planted" not in session
    after = csrf_of(await (await client.get("/account")).get_data(as_text=True))
    assert after != before
    stale = await client.post("/account/logout-everywhere", form={"csrf_token": before})
    assert stale.status_code == 400


async def test_each_sign_in_gets_its_own_auth_cookie(app: Any, sqlite_db: str) -> None:
    await team_of_four()
    values = []
    for _ in range(2):
        response = await _login(app.test_client(), "viewer@example.com", "long enough pw")
        auth = [c for c in response.headers.getlist("Set-Cookie") if c.startswith("QUART_AUTH=")]
        values.append(auth[0].split(";")[0])
    assert values[0] != values[1]


async def test_log_out_everywhere_ends_every_session(app: Any, sqlite_db: str) -> None:
    await team_of_four()
    phone, laptop = app.test_client(), app.test_client()
    for client in (phone, laptop):
        assert (await _login(client, "editor@example.com", "long enough pw")).status_code == 302
        assert (await client.get("/account")).status_code == 200
    page = await (await phone.get("/account")).get_data(as_text=True)
    response = await phone.post("/account/logout-everywhere", form={"csrf_token": csrf_of(page)})
    assert response.headers["Location"].endswith("/login")
    for client in (phone, laptop):
        assert "/login" in (await client.get("/account")).headers["Location"]
    # Signing in again works and only affects new sessions.
    assert (await _login(laptop, "editor@example.com", "long enough pw")).status_code == 302
    assert (await laptop.get("/account")).status_code == 200


async def test_login_is_rate_limited_per_address_and_email(
    app: Any, client: Any, sqlite_db: str, redis: Any
) -> None:
    await team_of_four()
    for _ in range(login_throttle.ACCOUNT_FREE):
        assert (await _login(client, "admin@example.com", "wrong password")).status_code == 401
    blocked = await _login(client, "admin@example.com", "long enough pw")
    assert blocked.status_code == 429
    assert "Too many sign-in attempts" in await blocked.get_data(as_text=True)
    assert (await client.get("/account")).status_code == 302
    # Another email from the same address is not blocked.
    assert (await _login(client, "viewer@example.com", "long enough pw")).status_code == 302
    # Once the delay is over the right password works again.
    await redis.flushdb()
    assert (
        await _login(app.test_client(), "admin@example.com", "long enough pw")
    ).status_code == 302


async def test_cookies_are_secure_behind_https(
    settings_factory: Any, services: Any, sqlite_db: str
) -> None:
    from panel.app import create_app

    https = settings_factory(public_base_url="https://reelay.example.com")
    app = create_app(https, services=services)
    async with app.test_app() as test_app:
        client = test_app.test_client()
        await team_of_four()
        page = await client.get("/login", scheme="https")
        response = await client.post(
            "/login",
            scheme="https",
            form={
                "csrf_token": csrf_of(await page.get_data(as_text=True)),
                "email": "viewer@example.com",
                "password": "long enough pw",
            },
        )
        assert response.status_code == 302
        cookies = response.headers.getlist("Set-Cookie")
        assert any(c.startswith("QUART_AUTH=") for c in cookies)
        assert all("Secure" in c and "HttpOnly" in c for c in cookies)


async def test_removed_member_loses_access(client: Any, sqlite_db: str) -> None:
    members = await team_of_four()
    viewer = await User.get(id=members[Role.VIEWER].user_id)
    await sign_in_as(client, viewer, members[Role.OWNER].workspace_id)
    assert (await client.get("/team")).status_code == 200
    await Membership.filter(id=members[Role.VIEWER].id).delete()
    assert (await client.get("/team")).status_code == 403


# Routes a viewer may POST to: they change only the viewer's own session or chat accounts.
OWN_SESSION = {
    "auth.make_personal_code",
    "auth.unlink_chat_account",
    "auth.logout",
    "auth.logout_everywhere",
    "auth.switch_workspace",
    "auth.login",
    "passwords.change",
    "auth.save_time_zone",  # their own time zone, like their own password
}


def test_every_state_changing_route_needs_an_editor_at_least(app: Any) -> None:
    """A viewer reads; anything that writes (other than their own session) needs more."""
    too_low = []
    for rule in app.app.url_map.iter_rules():
        methods = (rule.methods or set()) - {"GET", "HEAD", "OPTIONS"}
        if rule.endpoint == "static" or not methods or rule.endpoint in OWN_SESSION:
            continue
        needed = app.app.view_functions[rule.endpoint].required_role
        if needed is None:
            continue  # public: sign-in, first run, invitations, webhooks (checked elsewhere)
        if not role_allows(needed, Role.EDITOR):
            too_low.append(f"{rule.endpoint} needs only {needed.value}")
    assert too_low == []


async def test_metrics_answer_only_this_machine_without_a_token(client: Any) -> None:
    local = await client.get("/metrics", scope_base={"client": ("127.0.0.1", 40000)})
    assert local.status_code == 200
    remote = await client.get("/metrics", scope_base={"client": ("203.0.113.9", 40000)})
    assert remote.status_code == 403
    assert "METRICS_TOKEN" in await remote.get_data(as_text=True)


async def test_metrics_need_the_bearer_token_when_one_is_set(
    settings_factory: Any, container: Any
) -> None:
    from panel.app import create_app

    client = create_app(
        settings_factory(metrics_token="scrape-me"), services=assemble_services(container)
    )
    client = client.test_client()
    remote = {"client": ("203.0.113.9", 40000)}
    refused = await client.get("/metrics", scope_base=remote)
    assert refused.status_code == 401 and refused.headers["WWW-Authenticate"].startswith("Bearer")
    wrong = await client.get(
        "/metrics", scope_base=remote, headers={"Authorization": "Bearer nope"}
    )
    assert wrong.status_code == 401
    right = await client.get(
        "/metrics", scope_base=remote, headers={"Authorization": "Bearer scrape-me"}
    )
    assert right.status_code == 200
    local = await client.get("/metrics", scope_base={"client": ("127.0.0.1", 40000)})
    assert local.status_code == 401
