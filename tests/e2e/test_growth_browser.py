"""A follower's journey in the sandbox, then the rule's funnel in a real browser (Chromium).

Comment → private reply with a card carousel → follow gate → lead flow → the follower's
browser opens the tracked link; the panel's rule page then shows each funnel stage.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from core.adapters.redis_server import RedisLocation
from core.db.models import InstagramAccount, LoginKind, Trigger
from core.services import users
from panel.app import create_app
from reelay.cli import open_services
from tests.e2e.stack import Stack, free_port, serve
from tests.e2e.test_automations_sandbox import IG_ID
from tests.e2e.test_growth_sandbox import _rule
from tests.e2e.test_panel_browser import CHROMIUM, browser  # noqa: F401

pytestmark = [
    pytest.mark.browser,
    pytest.mark.timeout(120),
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is missing"),
]

EMAIL, PASSWORD = "owner@example.com", "a long enough password"


@pytest.fixture
async def panel_stack(
    sandbox: Any, settings_factory: Any, redis: Any, redis_location: RedisLocation
) -> AsyncIterator[tuple[Stack, str]]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    settings = settings_factory(sandbox_url=sandbox.url, public_base_url=url)
    services = await open_services(settings, run_migrations=False, redis_location=redis_location)
    container = services.container
    stop_panel = await serve(create_app(settings, services=services), port)
    sandbox.state.webhook_url = f"{url}/webhooks/meta"
    sandbox.state.add_account(IG_ID, "sandbox_shop")
    _, workspace = await users.create_owner(EMAIL, PASSWORD)
    await InstagramAccount.create(
        workspace=workspace,
        ig_id=IG_ID,
        username="sandbox_shop",
        login_kind=LoginKind.SANDBOX,
        token_encrypted=container.secrets.encrypt(sandbox.state.issue_token(IG_ID)),
    )
    yield Stack(settings, services, sandbox), url
    await stop_panel()
    container.redis_location = RedisLocation(
        url=redis_location.url, unix_socket_path=redis_location.unix_socket_path
    )
    await services.close()


async def test_the_funnel_shows_each_stage_of_a_followers_journey(
    panel_stack: tuple[Stack, str],
    browser: Any,  # noqa: F811
) -> None:
    stack, url = panel_stack
    account = await InstagramAccount.get(ig_id=IG_ID)
    landing = f"{url}/healthz"  # where the tracked link leads: this panel, reachable offline
    await _rule(
        account,
        Trigger.COMMENT,
        {
            "keywords": ["shoes"],
            "dm_type": "cards",
            "cards": [{"title": "Runner", "buttons": [{"title": "Guide", "target": "GUIDE"}]}],
        },
    )
    guide = await _rule(
        account,
        Trigger.POSTBACK,
        {
            "keywords": ["GUIDE"],
            "match_mode": "exact",
            "dm_type": "lead_capture",
            "track_links": True,
            "link": landing,
            "lead_flow": [
                {"type": "follow"},
                {"type": "ask", "text": "Your email?", "field": "email"},
                {"type": "save"},
                {"type": "send", "messages": ["Your guide: {link}"]},
            ],
        },
    )
    sandbox, person = stack.sandbox, "9990041"
    await sandbox.comment(IG_ID, "shoes?", username="ana", from_id=person)
    await stack.drain()
    await sandbox.postback(IG_ID, "GUIDE", title="Guide", from_id=person)
    await stack.drain()
    sandbox.state.set_following(IG_ID, person, True)
    done = stack.sent("message")[-1].payload["message"]["attachment"]["payload"]["buttons"][0]
    await sandbox.postback(IG_ID, done["payload"], title="Done", from_id=person)
    await stack.drain()
    await sandbox.dm(IG_ID, "ana@example.com", from_id=person)
    await stack.drain()
    tracked = stack.sent("message")[-1].payload["message"]["text"].removeprefix("Your guide: ")
    assert tracked.startswith(f"{url}/l/")

    follower = await browser.new_context()
    tab = await follower.new_page()
    answer = await tab.goto(tracked)
    assert answer is not None and answer.ok and tab.url == landing
    redirect = await answer.request.redirected_from.response()
    assert redirect.status == 302 and "set-cookie" not in await redirect.all_headers()
    await follower.close()

    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    page.set_default_timeout(15_000)
    await page.goto(f"{url}/login")
    await page.fill("#email", EMAIL)
    await page.fill("#password", PASSWORD)
    await page.click("button[type=submit]")
    await page.wait_for_load_state()
    await page.goto(f"{url}/rules/{guide.id}")
    funnel = page.locator("#rule-funnel")
    stages = {
        stage: await funnel.locator(f'td[data-stage="{stage}"]').inner_text()
        for stage in ("triggered", "replied", "clicked", "lead")
    }
    assert stages == {"triggered": "1", "replied": "1", "clicked": "1", "lead": "1"}
    await context.close()
