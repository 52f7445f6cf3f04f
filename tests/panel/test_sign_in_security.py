"""Sign-in hardening: the login throttle, same-site redirects, server-side sessions,
password change and reset, password strength, and the invitation page's answers."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from core.db.models import PasswordReset, Role, User, UserSession
from core.services import notifications, team, users
from panel import login_throttle
from panel.auth import safe_next
from tests.panel.helpers import CSRF, csrf_of, sign_in_as, team_of_four

PASSWORD = "long enough pw"
NEW_PASSWORD = "violet harbour kettle"


class MovableClock:
    def __init__(self) -> None:
        self.at = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)

    def now(self) -> datetime:
        return self.at


class Outbox:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str, str]] = []

    async def send(self, to: str, subject: str, body: str) -> None:
        self.sent.append((to, subject, body))

    async def wait_for(self, count: int) -> None:
        """Reset emails go out after the answer: wait until ``count`` have."""
        for _ in range(200):
            if len(self.sent) >= count:
                return
            await asyncio.sleep(0.05)
        raise AssertionError(f"{len(self.sent)} email(s) sent, expected {count}")


def _without_nonce(page: str) -> str:
    return re.sub(r'name="csp-nonce" content="[^"]*"', 'name="csp-nonce"', page)


@pytest.fixture
def clock(container: Any) -> MovableClock:
    moving = MovableClock()
    container.clock = moving
    return moving


async def _login(
    client: Any, email: str, password: str, address: str = "192.0.2.1", **headers: str
) -> Any:
    await sign_in_as(client, None)
    return await client.post(
        "/login",
        form={"csrf_token": CSRF, "email": email, "password": password},
        scope_base={"client": (address, 40000)},
        headers=headers,
    )


def _auth_cookie(response: Any) -> str:
    cookie = next(c for c in response.headers.getlist("Set-Cookie") if c.startswith("QUART_AUTH="))
    return cookie.split(";")[0].split("=", 1)[1]


# ---------------------------------------------------------------- open redirect


@pytest.mark.parametrize(
    "target",
    [
        "//evil.example",
        "///evil.example",
        "////evil.example",
        "/\\evil.example",
        "\\\\evil.example",
        "\\/evil.example",
        "%2F%2Fevil.example",
        "/%2F/evil.example/..",
        "http:evil.example",
        "https://evil.example",
        "javascript:alert(1)",
        "/\t/evil.example",
        "/\n/evil.example",
        " //evil.example",
        "evil.example",
        "",
    ],
)
async def test_next_leaves_only_for_paths_on_this_site(app: Any, target: str) -> None:
    async with app.app.test_request_context("/login"):
        assert safe_next(target) == "/"


@pytest.mark.parametrize("target", ["/posts", "/leads?q=ann&page=2", "/rules/3/edit#x"])
async def test_next_keeps_paths_on_this_site(app: Any, target: str) -> None:
    async with app.app.test_request_context("/login"):
        assert safe_next(target) == target


async def test_sign_in_with_a_triple_slash_next_stays_on_the_site(
    client: Any, sqlite_db: str, clock: MovableClock
) -> None:
    await team_of_four()
    await sign_in_as(client, None)
    response = await client.post(
        "/login",
        query_string={"next": "///evil.example"},
        form={"csrf_token": CSRF, "email": "viewer@example.com", "password": PASSWORD},
    )
    assert response.status_code == 302
    assert response.headers["Location"] == "/"


# ---------------------------------------------------------------- login throttle


async def test_parallel_guesses_get_at_most_the_free_password_checks(
    app: Any, sqlite_db: str, clock: MovableClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    await team_of_four()
    checks = 0
    matches = users.password_matches

    def counted(user: User, password: str) -> bool:
        nonlocal checks
        checks += 1
        return matches(user, password)

    monkeypatch.setattr(users, "password_matches", counted)
    answers = await asyncio.gather(
        *(_login(app.test_client(), "admin@example.com", f"guess {n}") for n in range(30))
    )
    statuses = sorted(answer.status_code for answer in answers)
    assert checks <= login_throttle.ACCOUNT_FREE
    assert statuses.count(401) == checks
    assert statuses.count(429) == 30 - checks


async def test_account_is_slowed_down_across_addresses_with_growing_delays(
    app: Any, sqlite_db: str, clock: MovableClock
) -> None:
    await team_of_four()
    for n in range(login_throttle.ACCOUNT_FREE):
        answer = await _login(app.test_client(), "admin@example.com", "bad", f"198.51.100.{n}")
        assert answer.status_code == 401
    blocked = await _login(app.test_client(), "admin@example.com", PASSWORD, "203.0.113.9")
    assert blocked.status_code == 429
    first_wait = int(blocked.headers["Retry-After"])
    assert 0 < first_wait <= login_throttle.BASE_DELAY_S
    clock.at += timedelta(seconds=first_wait)
    assert (
        await _login(app.test_client(), "admin@example.com", "bad", "203.0.113.9")
    ).status_code == 401
    second = await _login(app.test_client(), "admin@example.com", PASSWORD, "203.0.113.9")
    assert int(second.headers["Retry-After"]) > first_wait
    # Never for good: the delay stops growing, and once it passes the owner gets in.
    for _ in range(30):
        clock.at += timedelta(seconds=login_throttle.MAX_DELAY_S)
        await _login(app.test_client(), "admin@example.com", "bad", "203.0.113.9")
    clock.at += timedelta(seconds=login_throttle.MAX_DELAY_S)
    answer = await _login(app.test_client(), "admin@example.com", PASSWORD, "203.0.113.10")
    assert answer.status_code == 302


async def test_a_known_device_is_not_locked_out_by_someone_else_guessing(
    app: Any, sqlite_db: str, clock: MovableClock
) -> None:
    await team_of_four()
    owner_browser = app.test_client()
    assert (await _login(owner_browser, "owner@example.com", PASSWORD)).status_code == 302
    await sign_in_as(owner_browser, None)
    assert (await owner_browser.post("/logout", form={"csrf_token": CSRF})).status_code == 302
    for _ in range(20):
        await _login(app.test_client(), "owner@example.com", "guess", "192.0.2.1")
    assert (await _login(app.test_client(), "owner@example.com", PASSWORD)).status_code == 429
    # Same address as the attacker (one proxy in front), but a browser that signed in before.
    assert (await _login(owner_browser, "owner@example.com", PASSWORD)).status_code == 302


async def test_an_address_is_limited_across_many_accounts(
    app: Any, sqlite_db: str, clock: MovableClock
) -> None:
    await team_of_four()
    for n in range(login_throttle.ADDRESS_FREE):
        await _login(app.test_client(), f"nobody{n}@example.com", "bad")
    answer = await _login(app.test_client(), "viewer@example.com", PASSWORD)
    assert answer.status_code == 429
    assert (
        await _login(app.test_client(), "viewer@example.com", PASSWORD, "192.0.2.2")
    ).status_code == 302


async def test_trusted_proxies_give_each_client_its_own_address(
    settings_factory: Any, container: Any, sqlite_db: str
) -> None:
    from panel.app import create_app

    behind = settings_factory(trusted_proxies="10.0.0.0/8")
    container.clock = MovableClock()
    async with create_app(behind, container=container).test_app() as quart:
        await team_of_four()
        for n in range(login_throttle.ADDRESS_FREE):
            await _login(
                quart.test_client(),
                f"x{n}@example.com",
                "bad",
                "10.0.0.2",
                **{"X-Forwarded-For": "192.0.2.50, 10.0.0.7"},
            )
        blocked = await _login(
            quart.test_client(),
            "viewer@example.com",
            PASSWORD,
            "10.0.0.2",
            **{"X-Forwarded-For": "192.0.2.50"},
        )
        assert blocked.status_code == 429
        other = await _login(
            quart.test_client(),
            "viewer@example.com",
            PASSWORD,
            "10.0.0.2",
            **{"X-Forwarded-For": "192.0.2.51"},
        )
        assert other.status_code == 302
        # A client that is not a trusted proxy cannot pick its own address.
        for n in range(login_throttle.ADDRESS_FREE):
            await _login(
                quart.test_client(),
                f"y{n}@example.com",
                "bad",
                "192.0.2.99",
                **{"X-Forwarded-For": f"198.51.100.{n}"},
            )
        spoofed = await _login(
            quart.test_client(),
            "viewer@example.com",
            PASSWORD,
            "192.0.2.99",
            **{"X-Forwarded-For": "198.51.100.200"},
        )
        assert spoofed.status_code == 429


async def test_every_throttle_key_expires(
    app: Any, sqlite_db: str, clock: MovableClock, redis: Any
) -> None:
    await team_of_four()
    await _login(app.test_client(), "admin@example.com", "bad")
    keys = [key async for key in redis.scan_iter("reelay:login:*")]
    assert keys
    for key in keys:
        assert await redis.ttl(key) > 0


async def test_admin_unlock_lifts_the_account_delay(
    app: Any, settings: Any, sqlite_db: str, clock: MovableClock, container: Any
) -> None:
    await team_of_four()
    for n in range(login_throttle.ACCOUNT_FREE):
        await _login(app.test_client(), "admin@example.com", "bad", f"198.51.100.{n}")
    assert (
        await _login(app.test_client(), "admin@example.com", PASSWORD, "203.0.113.1")
    ).status_code == 429
    await login_throttle.unlock(container.redis, "Admin@Example.com ")
    assert (
        await _login(app.test_client(), "admin@example.com", PASSWORD, "203.0.113.1")
    ).status_code == 302


# ---------------------------------------------------------------- sessions


async def test_a_copied_cookie_stops_working_after_sign_out(
    app: Any, sqlite_db: str, clock: MovableClock
) -> None:
    await team_of_four()
    browser, thief = app.test_client(), app.test_client()
    signed_in = await _login(browser, "editor@example.com", PASSWORD)
    thief.set_cookie("localhost", "QUART_AUTH", _auth_cookie(signed_in), path="/")
    assert (await thief.get("/account")).status_code == 200
    await sign_in_as(browser, None)
    assert (await browser.post("/logout", form={"csrf_token": CSRF})).status_code == 302
    assert (await thief.get("/account")).status_code == 302
    assert await UserSession.all().count() == 0


async def test_sessions_are_stored_hashed_and_expire(
    app: Any, sqlite_db: str, clock: MovableClock
) -> None:
    await team_of_four()
    browser = app.test_client()
    signed_in = await _login(browser, "editor@example.com", PASSWORD)
    stored = await UserSession.get()
    assert _auth_cookie(signed_in) not in stored.token_hash
    await UserSession.filter(id=stored.id).update(expires_at=clock.at - timedelta(seconds=1))
    assert (await browser.get("/account")).status_code == 302


async def test_changing_the_password_ends_the_other_sessions(
    app: Any, sqlite_db: str, clock: MovableClock
) -> None:
    await team_of_four()
    laptop, phone = app.test_client(), app.test_client()
    for device in (laptop, phone):
        assert (await _login(device, "editor@example.com", PASSWORD)).status_code == 302
    page = await (await laptop.get("/account/password")).get_data(as_text=True)
    form = {"csrf_token": csrf_of(page), "password_confirm": NEW_PASSWORD}
    wrong = await laptop.post(
        "/account/password", form={**form, "current_password": "nope", "password": NEW_PASSWORD}
    )
    assert wrong.status_code == 422
    weak = await laptop.post(
        "/account/password",
        form={
            **form,
            "current_password": PASSWORD,
            "password": "password12",
            "password_confirm": "password12",
        },
    )
    assert weak.status_code == 422
    changed = await laptop.post(
        "/account/password", form={**form, "current_password": PASSWORD, "password": NEW_PASSWORD}
    )
    assert changed.status_code == 302
    assert (await laptop.get("/account")).status_code == 200
    assert (await phone.get("/account")).status_code == 302
    assert (await _login(app.test_client(), "editor@example.com", PASSWORD)).status_code == 401
    assert (
        await _login(app.test_client(), "editor@example.com", NEW_PASSWORD, "192.0.2.3")
    ).status_code == 302


async def test_password_reset_by_emailed_link(
    app: Any, container: Any, sqlite_db: str, clock: MovableClock
) -> None:
    await team_of_four()
    outbox = Outbox()
    notifications.install_mailer(container, outbox)
    phone = app.test_client()
    assert (await _login(phone, "editor@example.com", PASSWORD)).status_code == 302

    stranger = app.test_client()
    await sign_in_as(stranger, None)
    known = await stranger.post(
        "/login/forgot", form={"csrf_token": CSRF, "email": "editor@example.com"}
    )
    unknown = await stranger.post(
        "/login/forgot", form={"csrf_token": CSRF, "email": "ghost@example.com"}
    )
    # The same answer whether or not the email has an account.
    assert known.status_code == unknown.status_code == 200
    assert _without_nonce(await known.get_data(as_text=True)) == _without_nonce(
        await unknown.get_data(as_text=True)
    )
    await outbox.wait_for(1)
    await asyncio.sleep(0.2)
    assert [to for to, _, _ in outbox.sent] == ["editor@example.com"]
    link = re.search(r"http://\S+/login/reset/(\S+)", outbox.sent[0][2])
    assert link
    token = link.group(1)
    assert token not in (await PasswordReset.get()).token_hash

    reset_page = await (await stranger.get(f"/login/reset/{token}")).get_data(as_text=True)
    weak = await stranger.post(
        f"/login/reset/{token}",
        form={
            "csrf_token": csrf_of(reset_page),
            "password": "password12",
            "password_confirm": "password12",
        },
    )
    assert weak.status_code == 422
    done = await stranger.post(
        f"/login/reset/{token}",
        form={"csrf_token": CSRF, "password": NEW_PASSWORD, "password_confirm": NEW_PASSWORD},
    )
    assert done.status_code == 302
    assert (await phone.get("/account")).status_code == 302
    assert (await stranger.get(f"/login/reset/{token}")).status_code == 404
    assert (await _login(app.test_client(), "editor@example.com", NEW_PASSWORD)).status_code == 302


async def test_reset_links_expire(
    app: Any, container: Any, sqlite_db: str, clock: MovableClock
) -> None:
    await team_of_four()
    outbox = Outbox()
    notifications.install_mailer(container, outbox)
    client = app.test_client()
    await sign_in_as(client, None)
    await client.post("/login/forgot", form={"csrf_token": CSRF, "email": "viewer@example.com"})
    await outbox.wait_for(1)
    token = outbox.sent[0][2].split("/login/reset/")[1].split()[0]
    clock.at += timedelta(hours=2)
    assert (await client.get(f"/login/reset/{token}")).status_code == 404


async def test_without_smtp_the_forgot_page_points_to_the_command(
    client: Any, sqlite_db: str, clock: MovableClock
) -> None:
    await team_of_four()
    page = await (await client.get("/login/forgot")).get_data(as_text=True)
    assert "reelay admin reset-password" in page
    await sign_in_as(client, None)
    answer = await client.post(
        "/login/forgot", form={"csrf_token": CSRF, "email": "viewer@example.com"}
    )
    assert answer.status_code == 200
    assert await PasswordReset.all().count() == 0


# ---------------------------------------------------------------- passwords and invites


async def test_first_run_refuses_a_common_password(client: Any, sqlite_db: str) -> None:
    await sign_in_as(client, None)
    answer = await client.post(
        "/setup/first-run",
        form={
            "csrf_token": CSRF,
            "workspace": "Shop",
            "email": "owner@example.com",
            "password": "password12",
            "password_confirm": "password12",
        },
    )
    assert answer.status_code == 422
    assert not await User.exists()


async def _invite_page(app: Any) -> tuple[Any, str, str]:
    members = await team_of_four()
    made = await team.create_invite(members[Role.OWNER], Role.EDITOR, datetime.now(UTC))
    newcomer = app.test_client()
    page = await (await newcomer.get(f"/invite/{made.token}")).get_data(as_text=True)
    return newcomer, f"/invite/{made.token}", csrf_of(page)


async def test_invite_answers_a_taken_email_like_any_other(
    app: Any, sqlite_db: str, clock: MovableClock
) -> None:
    newcomer, path, csrf = await _invite_page(app)
    answers = []
    for email in ("admin@example.com", "fresh@example.com"):
        answer = await newcomer.post(
            path,
            form={
                "csrf_token": csrf,
                "email": email,
                "password": "password12",
                "password_confirm": "password12",
            },
        )
        answers.append((answer.status_code, await answer.get_data(as_text=True)))
    assert answers[0][0] == answers[1][0] == 422
    taken = await newcomer.post(
        path,
        form={
            "csrf_token": csrf,
            "email": "admin@example.com",
            "password": "other strong phrase",
            "password_confirm": "other strong phrase",
        },
    )
    body = await taken.get_data(as_text=True)
    assert "already exists" not in body and "another account" not in body.lower()
    assert taken.status_code == 422


async def test_invite_with_an_existing_accounts_password_joins_that_account(
    app: Any, sqlite_db: str, clock: MovableClock
) -> None:
    await users.create_owner("elsewhere@example.com", PASSWORD, workspace_name="B")
    newcomer, path, csrf = await _invite_page(app)
    joined = await newcomer.post(
        path,
        form={
            "csrf_token": csrf,
            "email": "elsewhere@example.com",
            "password": PASSWORD,
            "password_confirm": PASSWORD,
        },
    )
    assert joined.status_code == 302
    assert await User.filter(email="elsewhere@example.com").count() == 1
    assert (await newcomer.get("/account")).status_code == 200
