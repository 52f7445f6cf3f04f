"""The sandbox page: a made-up follower comments, writes and taps buttons through the signed
webhook path, and the page shows Reelay's answers and which rule acted."""

from __future__ import annotations

import html
import re
from typing import Any

import pytest

from core.db.models import AutomationRule, Membership, Role, Trigger, User
from core.services import users
from core.services.sandbox_console import follower_id
from core.settings import Settings
from tests.panel.helpers import CSRF, sign_in_as
from tests.panel.sandbox_world import World, run_pending_events, sandbox_world, webhooks_into


@pytest.fixture
def settings(settings_factory: Any, sandbox: Any) -> Settings:
    made: Settings = settings_factory(sandbox_url=sandbox.url)
    return made


@pytest.fixture
async def world(client: Any, container: Any, sandbox: Any) -> World:
    return await sandbox_world(client, container, sandbox)


async def rule(
    world: World, name: str, trigger: Trigger, keywords: list[str], **config: Any
) -> None:
    await AutomationRule.create(
        workspace_id=world.account.workspace_id,  # type: ignore[attr-defined]
        account=world.account,
        name=name,
        trigger=trigger,
        keywords=keywords,
        config=config,
    )


async def price_rules(world: World) -> None:
    await rule(
        world,
        "Price DM",
        Trigger.DM,
        ["price"],
        message_variations=["Prices start at $10."],
        dm_type="text_button",
        buttons=[
            {"title": "See sizes", "payload": "SIZES"},
            {"title": "Shop", "url": "https://shop.example/"},
        ],
    )
    await rule(world, "Sizes", Trigger.POSTBACK, ["SIZES"], message_variations=["S, M and L."])


async def page_of(client: Any, world: World, username: str) -> str:
    response = await client.get(f"/sandbox?account_id={world.account.id}&username={username}")
    assert response.status_code == 200
    return html.unescape(await response.get_data(as_text=True))


async def test_a_dm_shows_reelays_answer_and_a_button_tap_its_postback_rule(
    client: Any, container: Any, world: World
) -> None:
    await price_rules(world)
    async with webhooks_into(client, world.sandbox):
        sent = await client.post(
            "/sandbox/dm",
            form={
                "csrf_token": CSRF,
                "account_id": str(world.account.id),
                "username": "@ana.silva",
                "text": "What's the price?",
            },
        )
        assert sent.status_code == 302
        assert "username=ana.silva" in sent.headers["Location"]
        # Before the worker ran, the page says it waits and keeps refreshing itself.
        waiting = await client.get(sent.headers["Location"])
        shown = html.unescape(await waiting.get_data(as_text=True))
        assert "What's the price?" in shown and 'hx-trigger="load delay:1s"' in shown
        assert await run_pending_events(container) == 1
        shown = await page_of(client, world, "ana.silva")
        assert "Prices start at $10." in shown
        assert 'Rule <strong class="acting-rule">Price DM</strong> acted' in shown
        assert 'href="https://shop.example/"' in shown  # a link button opens, it is not a tap
        tap = re.search(r'name="payload" value="SIZES"', shown)
        assert tap, "no tap button for the postback"
        tapped = await client.post(
            "/sandbox/tap",
            form={
                "csrf_token": CSRF,
                "account_id": str(world.account.id),
                "username": "ana.silva",
                "kind": "postback",
                "payload": "SIZES",
                "title": "See sizes",
            },
        )
        assert tapped.status_code == 302
        assert await run_pending_events(container) == 1
        shown = await page_of(client, world, "ana.silva")
    assert "S, M and L." in shown
    assert 'Rule <strong class="acting-rule">Sizes</strong> acted' in shown
    assert shown.index("Prices start at $10.") < shown.index("See sizes (payload SIZES)")
    assert shown.index("See sizes (payload SIZES)") < shown.index("S, M and L.")
    # It went through the sandbox as Meta would send it: one signed delivery each.
    assert len(world.sandbox.deliveries) == 2
    igsid = follower_id("ana.silva")
    assert [s.target for s in world.sandbox.state.sent] == [igsid, igsid]


async def test_a_comment_shows_the_public_and_the_private_reply(
    client: Any, container: Any, world: World
) -> None:
    await rule(
        world,
        "Comment price",
        Trigger.COMMENT,
        ["price"],
        comment_replies=["Sent you a DM!"],
        message_variations=["Here is the price list."],
    )
    post = world.sandbox.state.feed(world.account.ig_id)[0]
    page = await page_of(client, world, "bob")
    assert f'value="{post.id}"' in page and "Spring sale" in page
    async with webhooks_into(client, world.sandbox):
        sent = await client.post(
            "/sandbox/comment",
            form={
                "csrf_token": CSRF,
                "account_id": str(world.account.id),
                "username": "bob",
                "media_id": post.id,
                "text": "price please",
            },
        )
        assert sent.status_code == 302
        assert await run_pending_events(container) == 1
    shown = await page_of(client, world, "bob")
    assert "price please" in shown
    assert "Public reply" in shown and "Sent you a DM!" in shown
    assert "Private reply" in shown and "Here is the price list." in shown
    assert 'Rule <strong class="acting-rule">Comment price</strong> acted' in shown
    assert world.sandbox.state.comments  # the comment is on the sandbox post
    assert any(c.media_id == post.id for c in world.sandbox.state.comments.values())


async def test_a_message_no_rule_answers_says_why(
    client: Any, container: Any, world: World
) -> None:
    await price_rules(world)
    async with webhooks_into(client, world.sandbox):
        await client.post(
            "/sandbox/dm",
            form={
                "csrf_token": CSRF,
                "account_id": str(world.account.id),
                "username": "cleo",
                "text": "hello there",
            },
        )
        await run_pending_events(container)
    shown = await page_of(client, world, "cleo")
    assert "No rule acted: no rule matched." in shown
    assert "Tap as @cleo" not in shown  # Reelay sent cleo nothing to tap


async def test_the_page_reaches_a_sandbox_running_in_another_process(
    client: Any, container: Any, world: World
) -> None:
    await price_rules(world)
    container.sandbox = None  # like `reelay panel` beside a separate sandbox
    async with webhooks_into(client, world.sandbox):
        sent = await client.post(
            "/sandbox/dm",
            form={
                "csrf_token": CSRF,
                "account_id": str(world.account.id),
                "username": "dina",
                "text": "price",
            },
        )
        assert sent.status_code == 302
        await run_pending_events(container)
    assert "Prices start at $10." in await page_of(client, world, "dina")
    await world.sandbox.stop()
    gone = await client.get(f"/sandbox?account_id={world.account.id}&username=dina")
    assert f"sandbox Instagram at {world.sandbox.url} is not reachable" in await gone.get_data(
        as_text=True
    )
    refused = await client.post(
        "/sandbox/dm",
        form={
            "csrf_token": CSRF,
            "account_id": str(world.account.id),
            "username": "dina",
            "text": "still there?",
        },
    )
    assert refused.status_code == 422
    shown = html.unescape(await refused.get_data(as_text=True))
    assert "is not reachable" in shown and "still there?" in shown


@pytest.mark.parametrize(
    ("path", "form", "field", "words"),
    [
        (
            "/sandbox/dm",
            {"username": "ana", "text": "   "},
            "text",
            "Write what the follower says.",
        ),
        ("/sandbox/dm", {"username": "ana", "text": "x" * 1001}, "text", "At most 1000 characters"),
        ("/sandbox/dm", {"username": "no spaces", "text": "hi"}, "username", "1 to 30 letters"),
        (
            "/sandbox/comment",
            {"username": "ana", "text": "y" * 2201, "media_id": "POST"},
            "text",
            "At most 2200 characters",
        ),
        (
            "/sandbox/comment",
            {"username": "ana", "text": "hi", "media_id": "424242"},
            "media_id",
            "Choose one of the account's posts.",
        ),
    ],
)
async def test_bad_input_is_refused_with_a_clear_error_and_the_input_kept(
    client: Any, world: World, path: str, form: dict[str, str], field: str, words: str
) -> None:
    post = world.sandbox.state.feed(world.account.ig_id)[0]
    form = {k: post.id if v == "POST" else v for k, v in form.items()}
    response = await client.post(
        path, form={"csrf_token": CSRF, "account_id": str(world.account.id), **form}
    )
    assert response.status_code == 422
    shown = html.unescape(await response.get_data(as_text=True))
    kind = path.rsplit("/", 1)[1]
    error = re.search(rf'<small id="{kind}-{field}-error" class="error">([^<]*)</small>', shown)
    assert error and words in error.group(1)
    assert f'aria-describedby="{kind}-{field}-error"' in shown
    for name, value in form.items():
        if name != "media_id" and value.strip():
            assert value in shown, f"{name} was not kept"
    assert not world.sandbox.deliveries  # nothing reached Reelay


async def test_viewers_may_not_act_as_a_follower(client: Any, world: World) -> None:
    viewer = await users.create_user("viewer@example.com", "long enough pw")
    await Membership.create(
        workspace_id=world.account.workspace_id,  # type: ignore[attr-defined]
        user=viewer,
        role=Role.VIEWER,
    )
    owner_home = await (await client.get("/")).get_data(as_text=True)
    assert 'href="/sandbox"' in owner_home
    await sign_in_as(client, await User.get(id=viewer.id), world.account.workspace_id)  # type: ignore[attr-defined]
    assert (await client.get("/sandbox")).status_code == 403
    dm = await client.post(
        "/sandbox/dm",
        form={
            "csrf_token": CSRF,
            "account_id": str(world.account.id),
            "username": "a",
            "text": "x",
        },
    )
    assert dm.status_code == 403
    assert 'href="/sandbox"' not in await (await client.get("/")).get_data(as_text=True)
    assert not world.sandbox.deliveries


async def test_live_mode_has_no_sandbox_page(
    settings_factory: Any, container: Any, services: Any, sandbox: Any
) -> None:
    from panel.app import create_app

    live = create_app(
        settings_factory(meta_app_id="123456789", sandbox_url=sandbox.url), services=services
    )
    async with live.test_app() as test_app:
        client = test_app.test_client()
        world = await sandbox_world(client, container, sandbox)
        assert (await client.get("/sandbox")).status_code == 404
        posted = await client.post(
            "/sandbox/dm",
            form={
                "csrf_token": CSRF,
                "account_id": str(world.account.id),
                "username": "a",
                "text": "x",
            },
        )
        assert posted.status_code == 404
        assert 'href="/sandbox"' not in await (await client.get("/")).get_data(as_text=True)
    assert not sandbox.deliveries
