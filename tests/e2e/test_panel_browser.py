"""The panel in a real browser (Debian's Chromium through Playwright), served by `reelay panel`.

First run, sign-in, the setup wizard with a real webhook verification round-trip, a chat link
code, and a phone-sized look. A screenshot of each page lands in test-artifacts/.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "panel"
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.timeout(120),
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason=f"{CHROMIUM} is missing: install Debian's chromium package to run browser tests",
    ),
]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def panel_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`reelay panel` on a free port, with its own embedded database and Redis."""
    tmp_path = tmp_path_factory.mktemp("panel")
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k not in {"REDIS_URL", "DATABASE_URL"}}
    env.update(
        PANEL_PORT=str(port),
        PUBLIC_BASE_URL=f"http://127.0.0.1:{port}",
        META_VERIFY_TOKEN="browser-verify-token",
        META_APP_SECRET="browser-app-secret",
        # A bot is configured, so the setup wizard's chat step offers link codes.
        TELEGRAM_TOKEN="123456:browser-test-token",
        # The setup wizard's webhook check calls this panel on 127.0.0.1, a private address.
        PRIVATE_URLS_OK="true",
        LOG_LEVEL="WARNING",
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "reelay", "panel"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(url + "/healthz", timeout=2) as response:
                    if response.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                if proc.poll() is not None or time.monotonic() > deadline:
                    output = proc.stdout.read() if proc.stdout else ""
                    pytest.fail(f"the panel did not start:\n{output}")
                time.sleep(0.3)
        yield url
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS
        )
        yield launched
        await launched.close()


async def _shot(page: Any, name: str) -> None:
    await page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


async def _open_step(page: Any, key: str) -> None:
    await page.locator(f"#step-{key} > details").evaluate("details => { details.open = true }")


async def test_first_run_setup_and_link_code(panel_url: str, browser: Any) -> None:
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    page.set_default_timeout(15_000)

    await page.goto(panel_url + "/")
    assert page.url.endswith("/setup/first-run")
    await _shot(page, "01-first-run")
    # The team's zone is proposed from the browser.
    proposed = await page.get_by_label("Time zone").input_value()
    assert proposed == await page.evaluate("Intl.DateTimeFormat().resolvedOptions().timeZone")
    await page.get_by_label("Team name").fill("Shop team")
    await page.get_by_label("Email").fill("owner@example.com")
    await page.get_by_label("Password", exact=True).fill("short")
    await page.get_by_label("Repeat the password").fill("short")
    await page.get_by_role("button", name="Create owner").click()
    # The error sits next to its field and is tied to it.
    error = page.locator("#password-error")
    await error.wait_for()
    assert "at least 10" in (await error.inner_text())
    assert await page.get_by_label("Password", exact=True).get_attribute("aria-invalid") == "true"
    await _shot(page, "02-first-run-errors")
    await page.get_by_label("Password", exact=True).fill("long enough pw")
    await page.get_by_label("Repeat the password").fill("long enough pw")
    await page.get_by_role("button", name="Create owner").click()

    # The owner lands in the setup wizard.
    await page.wait_for_url("**/setup")
    assert "Welcome!" in await page.locator("#flashes").inner_text()
    assert "To do" in await page.locator("#step-webhook summary").inner_text()
    await _shot(page, "03-setup")

    # Webhook: a real verification round-trip against this panel's own endpoint.
    await _open_step(page, "webhook")
    assert await page.get_by_label("Verify token").input_value() == "browser-verify-token"
    await page.locator("#step-webhook").get_by_role("button", name="Check").click()
    result = page.locator("#webhook-check-result")
    await result.wait_for()
    assert "answered the verification challenge" in await result.inner_text()
    # The step shows done at once, without a reload.
    await page.locator("#step-webhook summary .badge.done").wait_for()
    assert "Done" in await page.locator("#step-webhook summary").inner_text()
    await _shot(page, "04-setup-webhook-checked")

    # Team chat: a one-time code, shown once, through htmx.
    await _open_step(page, "chats")
    await page.get_by_role("button", name="Make a link code").click()
    code = page.get_by_test_id("link-code")
    await code.wait_for()
    shown = await code.inner_text()
    assert shown.startswith("/link ")
    await _shot(page, "05-setup-link-code")

    await page.reload()
    assert "Done" in await page.locator("#step-webhook summary").inner_text()
    assert shown.split()[-1] not in await page.content()
    # On the sandbox, the workspace has a connected demo account.
    assert "Done" in await page.locator("#step-instagram summary").inner_text()

    # Sign out, then back in.
    await page.locator("summary", has_text="owner@example.com").click()
    await page.get_by_role("button", name="Sign out").click()
    await page.wait_for_url("**/login")
    await _shot(page, "06-login")
    await page.get_by_label("Email").fill("owner@example.com")
    await page.get_by_label("Password").fill("long enough pw")
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url(panel_url + "/")
    assert "Shop team" in await page.locator("h1").inner_text()
    await _shot(page, "07-overview")

    await page.goto(panel_url + "/accounts")
    assert "Active" in await page.locator("article").first.inner_text()
    for path, name in [
        ("/team", "08-team"),
        ("/accounts", "09-accounts"),
        ("/logs/audit", "10-audit-log"),
        ("/settings/api-tokens", "11-api-tokens"),
    ]:
        response = await page.goto(panel_url + path)
        assert response is not None and response.status == 200, path
        await _shot(page, name)
    await page.goto(panel_url + "/logs/audit")
    assert "setup.webhook_checked" in await page.locator("table").inner_text()
    await context.close()


async def _sign_in_on(page: Any, panel_url: str) -> None:
    """Sign in as the owner (made here when this test runs without the first-run test)."""
    await page.goto(panel_url + "/login")
    if page.url.endswith("/setup/first-run"):
        await page.get_by_label("Team name").fill("Shop team")
        await page.get_by_label("Email").fill("owner@example.com")
        await page.get_by_label("Password", exact=True).fill("long enough pw")
        await page.get_by_label("Repeat the password").fill("long enough pw")
        await page.get_by_role("button", name="Create owner").click()
        await page.wait_for_url("**/setup")
        return
    await page.get_by_label("Email").fill("owner@example.com")
    await page.get_by_label("Password").fill("long enough pw")
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url(panel_url + "/")


# Where the header's parts sit: the page's width, the main menu's links, the account menu.
HEADER_LAYOUT = """() => {
  const menu = document.querySelector('nav[aria-label="Main"] ul');
  const summary = document.querySelector('.topbar details.dropdown summary');
  const links = [...menu.querySelectorAll('a')].map(a => {
    const box = a.getBoundingClientRect();
    return {label: a.textContent.trim(), left: box.left, right: box.right};
  });
  return {
    scrollWidth: document.documentElement.scrollWidth,
    innerWidth: window.innerWidth,
    menuScrolls: menu.scrollWidth > menu.clientWidth,
    links,
    // Pico gives the summary a fixed height: an arrow pushed under the email overflows it.
    summaryOverflows: summary.scrollHeight > summary.clientHeight
      || summary.scrollWidth > summary.clientWidth,
  };
}"""


async def test_pages_fit_a_phone(panel_url: str, browser: Any) -> None:
    context = await browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    page = await context.new_page()
    page.set_default_timeout(15_000)
    await page.goto(panel_url + "/login")
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, "the sign-in page scrolls sideways on a phone"
    await _shot(page, "12-phone-login")

    await _sign_in_on(page, panel_url)
    for path, name in [("/", "13-phone-overview"), ("/rules", "14-phone-automations")]:
        await page.goto(panel_url + path)
        layout = await page.evaluate(HEADER_LAYOUT)
        await _shot(page, name)
        assert layout["scrollWidth"] <= layout["innerWidth"], f"{path} scrolls sideways"
        assert not layout["summaryOverflows"], f"{path}: the account menu's arrow wraps"
        assert not layout["menuScrolls"], f"{path}: the main menu scrolls sideways"
        hidden = [
            link["label"]
            for link in layout["links"]
            if link["left"] < 0 or link["right"] > layout["innerWidth"]
        ]
        assert not hidden, f"{path}: menu items cut off: {hidden}"
    await page.locator("summary", has_text="owner@example.com").click()
    sign_out = page.get_by_role("button", name="Sign out")
    await sign_out.wait_for()
    box = await sign_out.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390
    await _shot(page, "15-phone-account-menu")
    await context.close()


# Collects every Content-Security-Policy violation the page reports.
RECORD_CSP_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener('securitypolicyviolation', (event) => {
  window.__cspViolations.push(`${event.violatedDirective} ${event.blockedURI} ${event.sourceFile}`);
});
"""


async def test_main_pages_work_under_the_content_security_policy(
    panel_url: str, browser: Any
) -> None:
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    await context.add_init_script(RECORD_CSP_VIOLATIONS)
    page = await context.new_page()
    page.set_default_timeout(15_000)
    console: list[str] = []
    page.on("console", lambda message: console.append(message.text))
    await _sign_in_on(page, panel_url)
    menu = page.locator('nav[aria-label="Main"] a')
    paths = [await link.get_attribute("href") for link in await menu.all()]
    assert len(paths) >= 10
    visited = [*paths, "/compose", "/rules/new", "/posts/queue", "/account", "/account/password"]
    for path in visited:
        response = await page.goto(panel_url + str(path))
        assert response is not None and response.status == 200, path
        assert "script-src 'self'" in response.headers["content-security-policy"]
        await page.wait_for_load_state("networkidle")
        violations = await page.evaluate("window.__cspViolations")
        assert violations == [], f"{path}: {violations}"
    assert not [text for text in console if "Content Security Policy" in text], console

    # Confirmations moved out of inline handlers still ask, and dismissing keeps the account.
    await page.goto(panel_url + "/accounts")
    questions: list[str] = []

    async def dismiss(dialog: Any) -> None:
        questions.append(dialog.message)
        await dialog.dismiss()

    page.on("dialog", dismiss)
    await page.get_by_role("button", name="Disconnect").first.click()
    await page.wait_for_timeout(300)
    assert questions and questions[0].startswith("Disconnect @")
    assert page.url.endswith("/accounts")
    assert "Active" in await page.locator("article").first.inner_text()
    await context.close()
