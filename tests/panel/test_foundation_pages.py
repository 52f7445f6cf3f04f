from __future__ import annotations

import re
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

from redis.asyncio import Redis

from core.services import users
from core.services.heartbeat import ALIVE_S, beat
from tests.panel.helpers import CSRF, sign_in_as


def _csrf(page: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert match, "no CSRF token in the page"
    return match.group(1)


async def test_healthz_reports_database_and_redis(client: Any) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert await response.get_json() == {
        "status": "ok",
        "database": "up",
        "redis": "up",
        "worker": "down",  # none has beaten yet: reported, the panel itself is fine
    }


async def test_healthz_and_metrics_say_whether_a_worker_beat_lately(
    client: Any, container: Any
) -> None:
    now = container.clock.now()
    await beat(container.redis, now - timedelta(seconds=ALIVE_S + 5))
    assert (await (await client.get("/healthz")).get_json())["worker"] == "down"
    text = await (await client.get("/metrics")).get_data(as_text=True)
    assert 'reelay_dependency_up{dependency="worker"} 0.0' in text
    await beat(container.redis, now)
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert (await response.get_json())["worker"] == "up"
    text = await (await client.get("/metrics")).get_data(as_text=True)
    assert 'reelay_dependency_up{dependency="worker"} 1.0' in text


async def test_healthz_is_503_when_redis_is_down(client: Any, container: Any) -> None:
    real = container.redis
    container.redis = Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2)
    try:
        response = await client.get("/healthz")
    finally:
        await container.redis.aclose()
        container.redis = real
    assert response.status_code == 503
    body = await response.get_json()
    assert body["redis"] == "down" and body["database"] == "up"


async def test_metrics_are_prometheus_text(client: Any) -> None:
    await client.get("/healthz")
    response = await client.get("/metrics")
    text = await response.get_data(as_text=True)
    assert response.status_code == 200
    assert 'reelay_http_requests_total{endpoint="health.healthz",status="200"}' in text


async def test_first_run_creates_owner_then_login_is_required(client: Any) -> None:
    response = await client.get("/")
    assert response.status_code == 302
    response = await client.get("/login")
    assert response.headers["Location"].endswith("/setup/first-run")

    page = await (await client.get("/setup/first-run")).get_data(as_text=True)
    response = await client.post(
        "/setup/first-run",
        form={
            "csrf_token": _csrf(page),
            "workspace": "Shop team",
            "email": "owner@example.com",
            "password": "long enough pw",
            "password_confirm": "long enough pw",
        },
    )
    assert response.status_code == 302
    home = await client.get("/")
    assert "Shop team" in await home.get_data(as_text=True)

    # The first-run page is closed once an owner exists.
    assert (await client.get("/setup/first-run")).status_code == 302
    assert await users.has_users()


async def test_first_run_shows_field_errors(client: Any) -> None:
    page = await (await client.get("/setup/first-run")).get_data(as_text=True)
    response = await client.post(
        "/setup/first-run",
        form={
            "csrf_token": _csrf(page),
            "workspace": "T",
            "email": "not-an-email",
            "password": "short",
            "password_confirm": "short",
        },
    )
    assert response.status_code == 422
    body = await response.get_data(as_text=True)
    assert 'id="email-error"' in body
    assert not await users.has_users()


async def test_first_run_shows_every_field_error_at_once(client: Any) -> None:
    page = await (await client.get("/setup/first-run")).get_data(as_text=True)
    response = await client.post(
        "/setup/first-run",
        form={
            "csrf_token": _csrf(page),
            "workspace": "Shop team",
            "email": "not-an-email",
            "password": "short",
            "password_confirm": "other",
        },
    )
    assert response.status_code == 422
    body = await response.get_data(as_text=True)
    for field in ("email", "password", "password_confirm"):
        assert f'id="{field}-error"' in body, f"no error next to {field}"
    assert 'value="Shop team"' in body and 'value="not-an-email"' in body


async def test_post_without_csrf_is_refused(client: Any) -> None:
    response = await client.post(
        "/setup/first-run",
        form={
            "workspace": "T",
            "email": "owner@example.com",
            "password": "long enough pw",
            "password_confirm": "long enough pw",
        },
    )
    assert response.status_code == 400
    assert not await users.has_users()


async def test_login_with_wrong_password_fails(client: Any) -> None:
    await users.create_owner("owner@example.com", "long enough pw")
    page = await (await client.get("/login")).get_data(as_text=True)
    response = await client.post(
        "/login",
        form={
            "csrf_token": _csrf(page),
            "email": "owner@example.com",
            "password": "wrong password",
        },
    )
    assert response.status_code == 401
    assert (await client.get("/")).status_code == 302
    response = await client.post(
        "/login",
        form={
            "csrf_token": _csrf(page),
            "email": "owner@example.com",
            "password": "long enough pw",
        },
    )
    assert response.status_code == 302
    assert (await client.get("/")).status_code == 200


def _next_of(location: str) -> str:
    assert urlsplit(location).path == "/login"
    return parse_qs(urlsplit(location).query)["next"][0]


async def test_sign_in_returns_to_the_page_asked_for(client: Any) -> None:
    await users.create_owner("owner@example.com", "long enough pw")
    assert _next_of((await client.get("/rules")).headers["Location"]) == "/rules"
    asked = (await client.get("/leads?q=ana&page=2")).headers["Location"]
    assert _next_of(asked) == "/leads?q=ana&page=2"
    page = await (await client.get(asked)).get_data(as_text=True)
    response = await client.post(
        asked,
        form={
            "csrf_token": _csrf(page),
            "email": "owner@example.com",
            "password": "long enough pw",
        },
    )
    assert response.status_code == 302
    assert response.headers["Location"] == "/leads?q=ana&page=2"


async def test_sign_in_never_sends_the_browser_to_another_site(client: Any) -> None:
    await users.create_owner("owner@example.com", "long enough pw")
    for target in [
        "//evil.example",
        "https://evil.example",
        "/\\evil.example",
        "/\t/evil.example",
        "javascript:alert(1)",
    ]:
        await sign_in_as(client, None)  # signing in replaced the session and its CSRF token
        response = await client.post(
            "/login",
            query_string={"next": target},
            form={
                "csrf_token": CSRF,
                "email": "owner@example.com",
                "password": "long enough pw",
            },
        )
        assert response.status_code == 302
        assert response.headers["Location"] == "/", target


async def test_pages_name_an_icon_the_panel_serves(client: Any) -> None:
    page = await (await client.get("/setup/first-run")).get_data(as_text=True)
    icon = re.search(r'<link rel="icon" href="([^"]+)"', page)
    assert icon, "no icon: browsers ask for /favicon.ico and get a 404 on every page"
    answer = await client.get(icon.group(1))
    assert answer.status_code == 200
    assert answer.headers["Content-Type"].startswith("image/svg+xml")
