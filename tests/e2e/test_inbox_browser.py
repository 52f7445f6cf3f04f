"""The inbox in a real browser (Debian's Chromium through Playwright), on the live panel, worker
and sandbox of the weekly pages' tests: a DM arriving shows up on the open inbox and in the
open thread without a reload, a teammate takes over and answers from the thread, and the
automations stay silent until they hand it back. Screenshots land in test-artifacts/content/.
"""

from __future__ import annotations

from typing import Any

import pytest

from core.db.models import AutomationRule, Conversation, Message, Trigger
from core.settings import Settings
from tests.e2e import test_content_browser as weekly
from tests.e2e.test_content_browser import IG_ID, Live, eventually, shot

pytestmark = weekly.pytestmark
port = weekly.port
live = weekly.live
FOLLOWER = "7770001"


@pytest.fixture
def settings(settings_factory: Any, sandbox: Any, port: int) -> Settings:
    made: Settings = settings_factory(
        sandbox_url=sandbox.url,
        public_base_url=f"http://127.0.0.1:{port}",
        worker_poll_delay=0.05,
        inbox_stream_s=20,
    )
    return made


async def _sent_to_follower(live: Live) -> list[str]:
    return [
        str(s.payload.get("message", {}).get("text", ""))
        for s in live.sandbox.state.sent
        if s.kind == "message" and s.target == FOLLOWER
    ]


async def test_a_dm_shows_up_live_and_a_teammate_takes_over(live: Live) -> None:
    page = live.page
    await AutomationRule.create(
        workspace_id=live.account.workspace_id,  # type: ignore[attr-defined]
        account=live.account,
        name="Price DM",
        trigger=Trigger.DM,
        keywords=["price"],
        config={"message_variations": ["Prices are on the site!"]},
    )
    await live.sandbox.dm(IG_ID, "hello there", from_id=FOLLOWER)
    conversation = await eventually(
        lambda: Conversation.get_or_none(account_id=live.account.id, igsid=FOLLOWER)
    )
    await eventually(lambda: Message.filter(conversation_id=conversation.id).exists())

    await page.goto(live.url + "/inbox")
    row = page.locator(f'[data-conversation="{conversation.id}"]')
    await row.get_by_text("hello there").wait_for()
    # A new message arrives while the page is open: the list shows it without a reload.
    await page.evaluate("window.__notReloaded = true")
    await live.sandbox.dm(IG_ID, "is the lamp still available?", from_id=FOLLOWER)
    await row.get_by_text("is the lamp still available?").wait_for(timeout=15_000)
    assert await page.evaluate("window.__notReloaded === true")
    await shot(page, "40-inbox-live")
    # A rule answers a keyword: its answer is the row's last message.
    await live.sandbox.dm(IG_ID, "and the price?", from_id=FOLLOWER)
    await row.get_by_text("Prices are on the site!").wait_for(timeout=15_000)

    # The thread: the rule's answer is there; take over, then a new message shows up live.
    await row.locator("a").click()
    await page.wait_for_url(f"**/inbox/{conversation.id}")
    await page.get_by_text("Prices are on the site!").wait_for()
    await page.get_by_role("button", name="Take over").click()
    await page.get_by_text("A teammate has this conversation").wait_for()
    await page.evaluate("window.__notReloaded = true")
    await live.sandbox.dm(IG_ID, "price for two lamps?", from_id=FOLLOWER)
    await page.locator("#messages").get_by_text("price for two lamps?").wait_for(timeout=15_000)
    assert await page.evaluate("window.__notReloaded === true")
    assert await _sent_to_follower(live) == ["Prices are on the site!"]  # silent while taken

    await page.get_by_label("Reply").fill("Two lamps are 80 euros, shall I reserve them?")
    await page.get_by_role("button", name="Send").click()
    await page.locator("#flashes").get_by_text("Sent.").wait_for()
    await page.locator("#messages").get_by_text("Two lamps are 80 euros").wait_for()
    await shot(page, "41-inbox-thread")

    await page.get_by_role("button", name="Hand back to automations").click()
    await page.get_by_text("Automations answer this person.").wait_for()
    await live.sandbox.dm(IG_ID, "and the price of a chair?", from_id=FOLLOWER)
    await eventually(lambda: _count(live, "Prices are on the site!", 2))


async def _has(live: Live, text: str) -> bool:
    return text in await _sent_to_follower(live)


async def _count(live: Live, text: str, times: int) -> bool:
    return (await _sent_to_follower(live)).count(text) == times
