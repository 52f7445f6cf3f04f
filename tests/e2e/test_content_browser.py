"""The weekly pages in a real browser (Debian's Chromium through Playwright): the panel served
by hypercorn with an arq worker and the sandbox Instagram, all in this test's event loop.

A comment rule with a two-step lead flow tried in the sandbox panel; a carousel composed,
scheduled, seen on the calendar and dragged to another day; a draft approved (and one decided
elsewhere showing up live); leads exported as CSV. Screenshots land in test-artifacts/content/.
"""

from __future__ import annotations

import asyncio
import csv
import io
import warnings
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from argon2 import PasswordHasher
from arq.worker import Worker

from core.bootstrap import Container
from core.db.models import (
    AutomationRule,
    Conversation,
    DraftStatus,
    InstagramAccount,
    Lead,
    LoginKind,
    Post,
    ReplyDraft,
    Trigger,
    Workspace,
)
from core.domain.posts import Status
from core.services import users
from core.settings import Settings
from core.wiring import assemble_services
from jobs.worker import FUNCTIONS, worker_settings
from reelay.queue import arq_settings
from tests.e2e.stack import free_port
from tests.media_samples import image_bytes
from tests.publishing_world import serve_panel

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "content"
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
IG_ID = "17841400000000091"
TZ = "Europe/Berlin"
PASSWORD = "long enough pw"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.timeout(120),
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason=f"{CHROMIUM} is missing: install Debian's chromium package to run browser tests",
    ),
]


@dataclass
class Live:
    url: str
    container: Container
    sandbox: Any
    account: InstagramAccount
    page: Any


@pytest.fixture
def port() -> int:
    return free_port()


@pytest.fixture
def settings(settings_factory: Any, sandbox: Any, port: int) -> Settings:
    made: Settings = settings_factory(
        sandbox_url=sandbox.url,
        public_base_url=f"http://127.0.0.1:{port}",
        worker_poll_delay=0.05,
    )
    return made


@pytest.fixture
async def live(
    settings: Settings,
    container: Container,
    sandbox: Any,
    port: int,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[Live]:
    """Panel, worker, sandbox and a signed-in browser page of a workspace's owner."""
    from playwright.async_api import async_playwright

    monkeypatch.setattr(users, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024))
    _, workspace = await users.create_owner("owner@example.com", PASSWORD)
    await Workspace.filter(id=workspace.id).update(timezone=TZ)
    sandbox.state.add_account(IG_ID, "lumen_studio")
    account = await InstagramAccount.create(
        workspace=workspace,
        ig_id=IG_ID,
        username="lumen_studio",
        login_kind=LoginKind.SANDBOX,
        token_encrypted=container.secrets.encrypt(sandbox.state.issue_token(IG_ID)),
        webhook_subscribed=True,
    )
    sandbox.state.add_media(IG_ID, caption="Spring sale", media_url=f"{sandbox.url}/a.jpg")
    container.sandbox = sandbox
    options = worker_settings(
        settings,
        services=assemble_services(container),
        redis_settings=arq_settings(container.redis_location),
    )
    options.update(functions=FUNCTIONS, cron_jobs=[])
    worker = Worker(**options)
    working = asyncio.create_task(worker.main())
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    async with serve_panel(settings, container, port) as url:
        sandbox.state.webhook_url = f"{url}/webhooks/meta"
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(
                executable_path=str(CHROMIUM), args=CHROMIUM_ARGS
            )
            context = await browser.new_context(
                viewport={"width": 1280, "height": 1000}, accept_downloads=True
            )
            page = await context.new_page()
            page.set_default_timeout(15_000)
            await page.goto(url + "/login")
            await page.get_by_label("Email").fill("owner@example.com")
            await page.get_by_label("Password").fill(PASSWORD)
            await page.get_by_role("button", name="Sign in").click()
            await page.wait_for_url(url + "/**")
            try:
                yield Live(url, container, sandbox, account, page)
            finally:
                await browser.close()
        sandbox.state.webhook_url = None
    working.cancel()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        await asyncio.gather(working, return_exceptions=True)
        await worker.close()


# True when nothing inside the selected element sticks out past its right edge.
FITS = """selector => {
  const box = document.querySelector(selector);
  const edge = box.getBoundingClientRect().right + 1;
  return [...box.querySelectorAll("*")]
    .filter(el => el.getBoundingClientRect().right > edge)
    .map(el => {
      const name = [el.tagName.toLowerCase(), ...el.classList].join(".");
      return `${name} ends at ${Math.round(el.getBoundingClientRect().right)}px`;
    });
}"""


async def shot(page: Any, name: str) -> None:
    await page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


async def eventually(check: Any, timeout_s: float = 10.0) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        result = await check()
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.1)


async def test_comment_rule_with_two_step_lead_flow_tried_in_the_sandbox(live: Live) -> None:
    page = live.page
    await page.goto(live.url + "/rules/new")
    await page.get_by_label("Name").fill("Price lead")
    await page.get_by_label("Keywords (comma separated)").fill("price")
    await page.get_by_label("Public reply variation").fill("Sent you a DM, {username}!")
    await page.get_by_label("DM", exact=True).select_option("lead_capture")
    # Choosing a lead flow adds its first step.
    await page.locator("#flow-0-text").fill("What's your email?")
    await page.locator("#flow-0-field").select_option("email")
    await page.get_by_role("button", name="Add a step").click()
    await page.locator("#flow-1-text").fill("And your phone number?")
    await page.locator("#flow-1-field").select_option("phone")
    await page.get_by_label("Default phone country").fill("US")
    preview = page.locator("#rule-preview")
    await preview.get_by_text("And your phone number?").wait_for()
    await shot(page, "01-rule-editor")
    await page.get_by_role("button", name="Save rule").click()
    await page.wait_for_url("**/rules/*")
    assert "saved" in await page.locator("#flashes").inner_text()
    rule = await AutomationRule.get(name="Price lead")
    flow = rule.config["lead_capture_flow"]
    assert [s.get("field_type") for s in flow[:2]] == ["email", "phone"]
    # A new flow ends with a closing message (new steps went before it).
    assert flow[2]["type"] == "send" and "Thank you" in str(flow[2])

    await page.get_by_label("Text").fill("What's the price?")
    await page.get_by_role("button", name="Send test").click()
    result = page.locator("#test-result")
    await result.locator(".matched-rule").wait_for()
    await result.get_by_text("What's your email?").wait_for()
    assert "Price lead" in await result.locator(".matched-rule").inner_text()
    assert "Public reply" in await result.inner_text()
    # The outcome fits the side panel: no part of it is cut off at the panel's edge.
    overflow = await page.evaluate(FITS, "aside.editor-side")
    assert overflow == [], f"the test result overflows its panel: {overflow}"
    await page.get_by_label("Send a").select_option("dm")
    await page.get_by_label("Text").fill("ana@example.com")
    await page.get_by_role("button", name="Send test").click()
    await result.get_by_text("And your phone number?").wait_for()
    await shot(page, "02-rule-tested-in-sandbox")
    sent = [str(s.payload) for s in live.sandbox.state.sent]
    assert any("And your phone number?" in text for text in sent)
    await page.goto(live.url + "/rules")
    assert await page.locator(f"#rule-{rule.id} .stat-triggers").inner_text() == "1"


async def test_compose_a_carousel_schedule_it_and_drag_it_on_the_calendar(live: Live) -> None:
    page = live.page
    await page.goto(live.url + "/compose")
    # "choose files" opens the file picker, so it looks like a link, not plain text.
    look = await page.locator("label.link").evaluate(
        "el => [getComputedStyle(el).textDecorationLine, getComputedStyle(el).cursor]"
    )
    assert look == ["underline", "pointer"]
    await page.get_by_label("Kind").select_option("carousel")
    await page.locator("#file-input").set_input_files(
        [
            {"name": "one.jpg", "mimeType": "image/jpeg", "buffer": image_bytes(1080, 1080)},
            {"name": "two.jpg", "mimeType": "image/jpeg", "buffer": image_bytes(1080, 1081)},
        ]
    )
    await page.locator("#picked li").nth(1).wait_for()
    first = await page.locator("#picked li").nth(0).get_attribute("data-id")
    # Reorder with the keyboard: the second item moves first.
    await page.locator("#picked li").nth(1).focus()
    await page.keyboard.press("Alt+ArrowLeft")
    assert await page.locator("#picked li").nth(1).get_attribute("data-id") == first
    await page.get_by_label("Caption").fill("Spring drop #spring #new @friend")
    counts = page.locator("#caption-counts")
    assert "2 / 30 hashtags" in await counts.inner_text()
    assert "1 / 20 mentions" in await counts.inner_text()
    # A Saturday: the drag below moves the post to Sunday, the calendar's last column, where
    # an event's text would overflow the phone's screen if the grid let it.
    tomorrow = datetime.now(ZoneInfo(TZ)).date() + timedelta(days=1)
    day = tomorrow + timedelta(days=(5 - tomorrow.weekday()) % 7)
    await page.get_by_label(f"Day and time ({TZ})").fill(f"{day.isoformat()}T09:00")
    await shot(page, "03-composer")
    await page.get_by_role("button", name="Save").click()
    await page.wait_for_url("**/posts")
    post = await Post.get()
    assert post.status is Status.SCHEDULED and post.kind.value == "carousel"

    await page.evaluate("day => window.reelayCalendar.gotoDate(day)", day.isoformat())
    event = page.locator(".fc-event.status-scheduled")
    await event.wait_for()
    target = page.locator(f'td[data-date="{(day + timedelta(days=1)).isoformat()}"]')
    await shot(page, "04-calendar")
    await target.scroll_into_view_if_needed()
    box = await event.bounding_box()
    goal = await target.bounding_box()
    assert box and goal
    await page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    await page.mouse.down()
    await page.mouse.move(goal["x"] + goal["width"] / 2, goal["y"] + goal["height"] / 2, steps=12)
    await page.mouse.up()

    async def moved() -> bool:
        fresh = await Post.get(id=post.id)
        assert fresh.scheduled_at is not None
        local = fresh.scheduled_at.astimezone(ZoneInfo(TZ))
        return local.date() == day + timedelta(days=1) and local.hour == 9

    await eventually(moved)
    await page.reload()
    await page.evaluate("day => window.reelayCalendar.gotoDate(day)", day.isoformat())
    await target.locator(".fc-event").wait_for()
    await shot(page, "05-calendar-after-drag")

    # On a phone the calendar's buttons stay on screen.
    await page.set_viewport_size({"width": 390, "height": 844})
    await page.reload()
    await page.locator(".fc-toolbar-title").wait_for()
    await page.evaluate("day => window.reelayCalendar.gotoDate(day)", day.isoformat())
    await target.locator(".fc-event").wait_for()
    await shot(page, "06-calendar-phone")
    overflow = await page.evaluate(FITS, "#calendar")
    assert overflow == [], f"the calendar is wider than the phone: {overflow}"
    assert await page.evaluate("document.documentElement.scrollWidth") <= 390


async def test_approve_a_draft_and_see_a_chat_decision_live(live: Live) -> None:
    page = live.page
    conversation = await Conversation.create(
        account_id=live.account.id,
        igsid="5550001",
        username="maria",
        last_inbound_at=datetime.now(UTC),
    )
    live.sandbox.state.note_inbound(IG_ID, "5550001")
    drafts = []
    for text in ("Our studio opens at 9.", "Prices start at 20 EUR."):
        drafts.append(
            await ReplyDraft.create(
                workspace_id=live.account.workspace_id,  # type: ignore[attr-defined]
                account_id=live.account.id,
                conversation=conversation,
                inbound_text="When do you open?",
                proposed_text=text,
                target={"igsid": "5550001", "channel": "dm"},
                expires_at=datetime.now(UTC) + timedelta(hours=20),
            )
        )
    await page.goto(live.url + "/approvals")
    card = page.locator(f"#draft-{drafts[0].id}")
    await card.get_by_role("button", name="Approve").click()
    await card.get_by_text("Sent:").wait_for()
    assert (await ReplyDraft.get(id=drafts[0].id)).status is DraftStatus.APPROVED

    async def delivered() -> bool:
        return any("Our studio opens at 9." in str(s.payload) for s in live.sandbox.state.sent)

    await eventually(delivered)
    # A teammate rejects the other one in chat: the page follows within seconds.
    await ReplyDraft.filter(id=drafts[1].id).update(
        status=DraftStatus.REJECTED, decided_at=datetime.now(UTC)
    )
    other = page.locator(f"#draft-{drafts[1].id}")
    await other.locator(".draft-status").get_by_text("rejected").wait_for()
    await shot(page, "06-approvals")


async def test_export_leads_as_csv(live: Live) -> None:
    page = live.page
    rule = await AutomationRule.create(
        workspace_id=live.account.workspace_id,  # type: ignore[attr-defined]
        account=live.account,
        name="Price lead",
        trigger=Trigger.COMMENT,
        keywords=["price"],
    )
    await Lead.create(
        workspace_id=live.account.workspace_id,  # type: ignore[attr-defined]
        account=live.account,
        rule=rule,
        igsid="1",
        username="zoë",
        name="=1+2",
        email="zoe@example.com",
    )
    await page.goto(live.url + "/leads")
    await page.get_by_text("zoe@example.com").wait_for()
    async with page.expect_download() as info:
        await page.get_by_role("button", name="Export CSV").click()
    download = await info.value
    path = ARTIFACTS / "leads.csv"
    await download.save_as(str(path))
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))
    assert rows[0]["username"] == "zoë" and rows[0]["name"] == "'=1+2"
    await shot(page, "07-leads")
