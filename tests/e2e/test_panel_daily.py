"""Daily-use panel pages in a real browser (Debian's Chromium through Playwright), on the same
live panel, worker and sandbox as the weekly pages' tests: the automations list on a laptop
screen, several photos chosen for an image post, an invite link copied.
Screenshots land in test-artifacts/content/.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from core.adapters.storage import DiskStorage
from core.db.models import (
    AutomationRule,
    Conversation,
    Membership,
    Post,
    PostMedia,
    ReplyDraft,
    Trigger,
)
from core.services import media
from core.services.publishing import PostInput
from core.wiring import assemble_services
from tests.actors import acting
from tests.e2e import test_content_browser as weekly
from tests.e2e.test_content_browser import FITS, TZ, Live, shot
from tests.media_samples import image_bytes

pytestmark = weekly.pytestmark
# The weekly pages' live panel, worker, sandbox and signed-in browser page.
port = weekly.port
settings = weekly.settings
live = weekly.live


async def test_automations_list_fits_a_laptop_screen(live: Live) -> None:
    page = live.page
    await page.set_viewport_size({"width": 1366, "height": 900})
    for number in range(3):
        await AutomationRule.create(
            workspace_id=live.account.workspace_id,  # type: ignore[attr-defined]
            account=live.account,
            name=f"Spring sale price answers {number}",
            trigger=Trigger.COMMENT,
            keywords=["price", "cost", "how much", "shipping", "delivery time"],
            config={"dmType": "text", "message_variations": ["Sent!"], "comment_replies": ["Hi"]},
        )
    rule = await AutomationRule.get(name="Spring sale price answers 0")
    await page.goto(live.url + "/rules")
    row = page.locator(f"#rule-{rule.id}")
    await shot(page, "08-automations-1366")
    overflow = await page.evaluate(FITS, "main")
    assert overflow == [], f"the automations list is wider than the screen: {overflow}"
    assert await page.evaluate("document.documentElement.scrollWidth") <= 1366
    # The switch sits beside the rule's name and turns the rule off.
    switch = row.get_by_role("switch")
    assert await switch.get_attribute("aria-checked") == "true"
    name_box = await row.get_by_role("link", name=rule.name).bounding_box()
    switch_box = await switch.bounding_box()
    assert name_box and switch_box and switch_box["width"] > 20
    middle = switch_box["y"] + switch_box["height"] / 2
    assert name_box["y"] <= middle <= name_box["y"] + name_box["height"]
    assert switch_box["x"] + switch_box["width"] <= name_box["x"]
    await switch.focus()
    await page.keyboard.press("Enter")
    await page.locator("#flashes").get_by_text("Rule switched off.").wait_for()
    assert await row.get_by_role("switch").get_attribute("aria-checked") == "false"
    assert not (await AutomationRule.get(id=rule.id)).active
    # The row's actions open from a menu reached by keyboard.
    menu = row.locator("details.row-menu")
    await menu.locator("summary").focus()
    await page.keyboard.press("Enter")
    delete = menu.get_by_role("button", name="Delete")
    await delete.wait_for()
    assert await page.evaluate(FITS, "main") == []
    await shot(page, "09-automations-menu-open")
    page.once("dialog", lambda dialog: dialog.accept())
    await delete.click()
    await page.locator("#flashes").get_by_text("Rule deleted.").wait_for()
    assert not await AutomationRule.filter(id=rule.id).exists()


async def test_several_photos_for_an_image_post_make_a_carousel(live: Live) -> None:
    page = live.page
    await page.goto(live.url + "/compose")
    library = page.locator("details summary", has_text="From the library")
    assert await library.inner_text() == "From the library (0)"
    # The file chooser is a real control, reached with the keyboard through its label.
    chooser = page.get_by_label("choose files")
    await page.get_by_label("Kind").focus()
    for _ in range(8):
        await page.keyboard.press("Tab")
        if await chooser.evaluate("el => el === document.activeElement"):
            break
    else:
        raise AssertionError("Tab never reaches the file chooser")
    assert await page.get_by_label("Kind").input_value() == "image"
    await chooser.set_input_files(
        [
            {"name": f"{n}.jpg", "mimeType": "image/jpeg", "buffer": image_bytes(1080, 1080 + n)}
            for n in range(3)
        ]
    )
    await page.locator("#picked li").nth(2).wait_for()
    assert await page.get_by_label("Kind").input_value() == "carousel"
    assert "Carousel" in await page.locator("#kind-note").inner_text()
    assert await page.locator("#picked li").count() == 3
    await library.get_by_text("From the library (3)").wait_for()
    await shot(page, "10-composer-three-photos")
    await page.get_by_label("Caption").fill("Three looks")
    await page.get_by_label("Save as draft").check()
    await page.get_by_role("button", name="Save").click()
    await page.wait_for_url("**/posts**")
    post = await Post.get()
    assert post.kind.value == "carousel"
    assert await PostMedia.filter(post_id=post.id).count() == 3


async def test_invite_link_copied_with_one_click(live: Live) -> None:
    page = live.page
    await page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live.url)
    await page.goto(live.url + "/team")
    await page.get_by_role("button", name="Make an invitation link").click()
    link = await page.locator("#invite-link").inner_text()
    assert "/invite/" in link
    await page.get_by_role("button", name="Copy link").click()
    await page.get_by_text("Copied.").wait_for()
    assert await page.evaluate("navigator.clipboard.readText()") == link.strip()
    await shot(page, "11-team-invite-copied")


async def test_calendar_month_shows_thumbnail_words_and_account_with_a_preview(
    live: Live,
) -> None:
    page = live.page
    actor = await acting(await Membership.get(workspace_id=live.account.workspace_id))  # type: ignore[attr-defined]
    storage = DiskStorage(live.container.settings.var_dir / "media")
    asset = await media.upload_bytes(actor, storage, image_bytes(1080, 1080), "look.jpg")
    day = datetime.now(ZoneInfo(TZ)).date() + timedelta(days=2)
    when = datetime(day.year, day.month, day.day, 9, 30, tzinfo=ZoneInfo(TZ))
    caption = "Spring drop is here: three new colours, limited run, order today #spring"
    await assemble_services(live.container).publishing.create(
        actor,
        account_id=live.account.id,
        content=PostInput(kind="image", media_ids=[asset.id], caption=caption),
        scheduled_at=when,
    )
    await page.emulate_media(color_scheme="dark")
    await page.goto(live.url + "/posts")
    await page.evaluate("day => window.reelayCalendar.gotoDate(day)", day.isoformat())
    event = page.locator(".fc-event.status-scheduled")
    await event.locator(".cal-thumb").wait_for()
    assert await event.locator("img.cal-thumb").get_attribute("src")
    assert "09:30 @lumen_studio" in await event.locator(".cal-line").inner_text()
    assert await event.locator(".cal-words").inner_text() == "Spring drop is here: three new…"
    # Dark mode: nothing under the weekday header is painted white.
    whites = await page.evaluate(
        """() => [...document.querySelectorAll('#calendar .fc-scrollgrid-section *, #calendar th')]
          .filter(el => getComputedStyle(el).backgroundColor === 'rgb(255, 255, 255)')
          .map(el => el.className)"""
    )
    assert whites == [], f"white under the weekday header in dark mode: {whites}"
    await event.hover()
    preview = page.locator("#calendar-preview")
    await preview.get_by_text("@lumen_studio").wait_for()
    assert caption in await preview.inner_text()
    assert await preview.locator("img").get_attribute("src")
    await shot(page, "12-calendar-dark-preview")
    # The keyboard reaches it too, and Escape closes it.
    await page.mouse.move(0, 0)
    await preview.wait_for(state="hidden")
    await event.focus()
    await preview.get_by_text("Open the post").wait_for()
    await page.keyboard.press("Escape")
    await preview.wait_for(state="hidden")


async def test_approval_buttons_have_one_width(live: Live) -> None:
    page = live.page
    conversation = await Conversation.create(
        account_id=live.account.id, igsid="5550002", last_inbound_at=datetime.now(UTC)
    )
    draft = await ReplyDraft.create(
        workspace_id=live.account.workspace_id,  # type: ignore[attr-defined]
        account_id=live.account.id,
        conversation=conversation,
        inbound_text="Do you ship to Norway?",
        proposed_text="Yes, in 3 to 5 days.",
        target={"igsid": "5550002", "channel": "dm"},
        expires_at=datetime.now(UTC) + timedelta(hours=20),
    )
    for width in (1366, 390):
        await page.set_viewport_size({"width": width, "height": 900})
        await page.goto(live.url + "/approvals")
        card = page.locator(f"#draft-{draft.id}")
        widths = set()
        for name in ("Approve", "Send my edit", "Reject"):
            box = await card.get_by_role("button", name=name).bounding_box()
            assert box
            widths.add(round(box["width"]))
        assert len(widths) == 1, f"buttons of different widths at {width} px: {widths}"
        await shot(page, f"13-approvals-{width}")


async def test_calendar_preview_on_a_phone_opens_with_a_first_tap(live: Live) -> None:
    actor = await acting(await Membership.get(workspace_id=live.account.workspace_id))  # type: ignore[attr-defined]
    day = datetime.now(ZoneInfo(TZ)).date() + timedelta(days=2)
    when = datetime(day.year, day.month, day.day, 18, 0, tzinfo=ZoneInfo(TZ))
    storage = DiskStorage(live.container.settings.var_dir / "media")
    asset = await media.upload_bytes(actor, storage, image_bytes(1080, 1350), "evening.jpg")
    post = await assemble_services(live.container).publishing.create(
        actor,
        account_id=live.account.id,
        content=PostInput(
            kind="image", media_ids=[asset.id], caption="Evening light in the studio"
        ),
        scheduled_at=when,
    )
    browser = live.page.context.browser
    assert browser is not None
    phone = await browser.new_context(
        viewport={"width": 390, "height": 844}, has_touch=True, is_mobile=True
    )
    try:
        await phone.add_cookies(await live.page.context.cookies())
        page = await phone.new_page()
        await page.goto(live.url + "/posts")
        await page.evaluate("day => window.reelayCalendar.gotoDate(day)", day.isoformat())
        event = page.locator(".fc-event.status-scheduled")
        await event.tap()
        preview = page.locator("#calendar-preview")
        await preview.get_by_text("Evening light in the studio").wait_for()
        assert page.url.endswith("/posts")
        overflow = await page.evaluate(FITS, "body")
        assert overflow == [], f"the preview is wider than the phone: {overflow}"
        await shot(page, "14-calendar-phone-preview")
        await event.tap()
        await page.wait_for_url(f"**/posts/{post.id}")
    finally:
        await phone.close()
