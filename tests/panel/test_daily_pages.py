"""Daily-use panel pages: invitations by email, the setup wizard's chat step, lead flow
answers in the leads table, the sandbox's sample posts."""

from __future__ import annotations

import re
from typing import Any

import pytest
from pydantic import SecretStr

from core.adapters.webhook_probe import ProbeResult
from core.db.models import AuditLog, AutomationRule, Invite, Lead, LinkCode, Membership, Role, User
from core.ports.mailer import MailError
from tests.panel.helpers import CSRF, sign_in_as, team_of_four
from tests.panel.sandbox_world import World, sandbox_world
from tests.panel.test_rule_editor import lead_rule_form


class Outbox:
    def __init__(self, refuse: bool = False) -> None:
        self.sent: list[tuple[str, str, str]] = []
        self.refuse = refuse

    async def send(self, to: str, subject: str, body: str) -> None:
        if self.refuse:
            raise MailError("550 relay denied")
        self.sent.append((to, subject, body))


@pytest.fixture
async def world(client: Any, container: Any, sandbox: Any) -> World:
    return await sandbox_world(client, container, sandbox)


async def _signed_in(client: Any, role: Role = Role.OWNER) -> dict[Role, Membership]:
    members = await team_of_four()
    user = await User.get(id=members[role].user_id)
    await sign_in_as(client, user, members[role].workspace_id)
    return members


async def test_invitation_emailed_when_smtp_is_set(
    client: Any, services: Any, sqlite_db: str
) -> None:
    await _signed_in(client, Role.ADMIN)
    page = await (await client.get("/team")).get_data(as_text=True)
    assert "set SMTP_HOST" in page and 'name="email"' not in page
    outbox = Outbox()
    services.delivery.mailer = outbox
    page = await (await client.get("/team")).get_data(as_text=True)
    assert 'name="email"' in page

    response = await client.post(
        "/team/invites",
        form={"csrf_token": CSRF, "role": "editor", "email": " New.Person@Example.com "},
    )
    page = await response.get_data(as_text=True)
    assert response.status_code == 201
    assert "Emailed to new.person@example.com." in page
    assert 'data-copy="#invite-link"' in page
    link = re.search(r"http://[^<\s]+/invite/[\w-]+", page)
    assert link
    [(to, subject, body)] = outbox.sent
    assert to == "new.person@example.com" and "on Reelay" in subject
    assert link.group(0) in body and "as editor" in body and "admin@example.com" in body
    assert await AuditLog.filter(action="team.invite_emailed").exists()


async def test_a_bad_address_or_a_refusing_server_loses_nothing(
    client: Any, services: Any, sqlite_db: str
) -> None:
    await _signed_in(client)
    services.delivery.mailer = Outbox(refuse=True)
    bad = await client.post(
        "/team/invites", form={"csrf_token": CSRF, "role": "viewer", "email": "not-an-address"}
    )
    assert bad.status_code == 422
    page = await bad.get_data(as_text=True)
    assert 'value="not-an-address"' in page and 'aria-invalid="true"' in page
    assert await Invite.all().count() == 0

    refused = await client.post(
        "/team/invites", form={"csrf_token": CSRF, "role": "viewer", "email": "a@example.com"}
    )
    page = await refused.get_data(as_text=True)
    # The link was made and stays usable: it is shown to copy, with why the email failed.
    assert refused.status_code == 201 and "550 relay denied" in page
    assert re.search(r"http://[^<\s]+/invite/[\w-]+", page)
    assert await Invite.all().count() == 1
    assert not await AuditLog.filter(action="team.invite_emailed").exists()


async def test_chat_step_without_a_bot_explains_how_to_make_one(
    client: Any, sqlite_db: str
) -> None:
    await _signed_in(client, Role.ADMIN)
    page = await (await client.get("/setup")).get_data(as_text=True)
    assert "Make a link code" not in page and "No chat bot is configured" in page
    # BotFather's steps, Discord's application, intents and invite link, and what to paste.
    for words in ("@BotFather", "/newbot", "/setprivacy", "Disable", "Add members"):
        assert words in page, words
    assert "TELEGRAM_TOKEN=" in page and "DISCORD_TOKEN=" in page
    assert "Privileged Gateway Intents" in page and "Message Content" in page
    assert (
        "https://discord.com/oauth2/authorize?client_id=APPLICATION_ID"
        "&amp;scope=bot+applications.commands&amp;permissions=3072"
    ) in page
    refused = await client.post("/setup/chats/code", form={"csrf_token": CSRF})
    assert refused.status_code == 302
    assert not await LinkCode.exists()
    page = await (await client.get("/setup")).get_data(as_text=True)
    assert "set TELEGRAM_TOKEN or DISCORD_TOKEN" in page


async def test_discord_invite_link_names_the_application(client: Any, sqlite_db: str) -> None:
    await _signed_in(client, Role.ADMIN)
    page = await (await client.get("/setup?discord_app_id=112233445566778899")).get_data(
        as_text=True
    )
    assert "client_id=112233445566778899&amp;scope=bot+applications.commands" in page
    assert "Open the invite link" in page
    wrong = await (await client.get("/setup?discord_app_id=my-bot")).get_data(as_text=True)
    assert "client_id=APPLICATION_ID" in wrong and 'aria-invalid="true"' in wrong


async def test_chat_step_offers_link_codes_once_a_bot_is_set(
    client: Any, container: Any, sqlite_db: str
) -> None:
    container.settings = container.settings.model_copy(
        update={"telegram_token": SecretStr("123:telegram")}
    )
    await _signed_in(client, Role.ADMIN)
    page = await (await client.get("/setup")).get_data(as_text=True)
    assert "Make a link code" in page and "No chat bot is configured" not in page
    made = await client.post("/setup/chats/code", form={"csrf_token": CSRF})
    assert made.status_code == 201 and await LinkCode.exists()


async def test_a_passing_webhook_check_marks_the_step_done_in_place(
    client: Any, monkeypatch: pytest.MonkeyPatch, sqlite_db: str
) -> None:
    async def answered(*_: Any, **__: Any) -> ProbeResult:
        return ProbeResult(True, "The URL answered the verification challenge.", 200)

    monkeypatch.setattr("panel.setup.probe_webhook", answered)
    await _signed_in(client, Role.ADMIN)
    page = await (await client.get("/setup")).get_data(as_text=True)
    assert re.search(r'id="status-webhook" class="badge missing">To do<', page)
    response = await client.post(
        "/setup/webhook/check", headers={"X-CSRF-Token": CSRF, "HX-Request": "true"}
    )
    fragment = await response.get_data(as_text=True)
    assert "answered the verification challenge" in fragment
    # The step's badge, its summary and the count are swapped in out of band.
    assert re.search(r'id="status-webhook" class="badge done" hx-swap-oob="true">Done<', fragment)
    assert 'id="summary-webhook" hx-swap-oob="true"' in fragment
    assert "A passing check of the webhook URL." not in fragment
    assert re.search(r'id="steps-done" hx-swap-oob="true">\d of 5 steps done', fragment)


async def test_new_lead_flow_offers_a_closing_message(client: Any, world: World) -> None:
    page = await (await client.get("/rules/new")).get_data(as_text=True)
    assert 'data-closing="Thank you, {first_name}! We have your details' in page
    silent = lead_rule_form(world.account.id)
    for name in ("flow-2-type", "flow-2-id", "flow-2-text"):
        del silent[name]
    shown = await (await client.post("/rules/preview", form=silent)).get_data(as_text=True)
    assert "The flow ends here without a closing message" in shown
    closed = lead_rule_form(world.account.id)
    shown = await (await client.post("/rules/preview", form=closed)).get_data(as_text=True)
    assert "without a closing message" not in shown


async def test_free_text_answers_show_in_the_leads_table(client: Any, world: World) -> None:
    assert (await client.post("/rules/new", form=lead_rule_form(world.account.id))).status_code
    rule = await AutomationRule.get(name="Price lead")
    await Lead.create(
        workspace_id=world.account.workspace_id,  # type: ignore[attr-defined]
        account=world.account,
        rule=rule,
        igsid="42",
        username="ana",
        email="ana@example.com",
        custom_fields={"company": "Lumen <GmbH>", "budget": "5k"},
    )
    page = await (await client.get("/leads")).get_data(as_text=True)
    assert "Other answers" in page
    assert "<small>company:</small> Lumen &lt;GmbH&gt;" in page
    assert "<small>budget:</small> 5k" in page
    exported = await (await client.get("/leads/export.csv")).get_data(as_text=True)
    header, row = exported.lstrip("\ufeff").splitlines()[:2]
    assert header.endswith(",budget,company") and row.endswith(",5k,Lumen <GmbH>")


async def test_sandbox_asks_the_followers_name_once(client: Any, world: World) -> None:
    page = await (
        await client.get(f"/sandbox?account_id={world.account.id}&username=ana.silva")
    ).get_data(as_text=True)
    asked = re.findall(r'<input[^>]*name="username"[^>]*>', page)
    assert len([field for field in asked if 'type="hidden"' not in field]) == 1
    assert 'id="show-username" name="username" value="ana.silva"' in page
    # Comment, DM, the Instagram app's reply to them, open an ig.me link, follow, unfollow:
    # each as the one follower.
    assert page.count('class="follower-name" value="ana.silva"') == 6
    assert 'Comment as <span class="follower-shown">@ana.silva</span>' in page


async def test_sandbox_says_why_comment_is_off_without_posts(client: Any, world: World) -> None:
    world.sandbox.state.media.clear()
    page = await (await client.get(f"/sandbox?account_id={world.account.id}")).get_data(
        as_text=True
    )
    assert 'disabled aria-describedby="no-posts">Comment</button>' in page
    assert "has no posts yet, so there is nothing to comment on" in page


def test_calendar_events_show_the_captions_first_words() -> None:
    from core.services.composer import first_words

    assert first_words("One two three four five six seven") == "One two three four five six…"
    assert first_words("  Short\ncaption ") == "Short caption"
    assert first_words("") == ""
