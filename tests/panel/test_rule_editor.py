"""The rule editor: saving every kind of rule, errors next to their fields, nothing half-saved,
the live preview, the recent-posts picker and the sandbox test panel."""

from __future__ import annotations

import re
from typing import Any

import pytest

from core.db.models import (
    AuditLog,
    AutomationRule,
    EventStatus,
    RuleStats,
    WebhookEvent,
    Workspace,
)
from core.services.leads import open_webhook_secret
from core.settings import Settings
from tests.panel.helpers import CSRF
from tests.panel.sandbox_world import World, run_pending_events, sandbox_world, webhooks_into


@pytest.fixture
def settings(settings_factory: Any, sandbox: Any) -> Settings:
    made: Settings = settings_factory(sandbox_url=sandbox.url)
    return made


@pytest.fixture
async def world(client: Any, container: Any, sandbox: Any) -> World:
    return await sandbox_world(client, container, sandbox)


def lead_rule_form(account: int, **changes: str) -> dict[str, str]:
    form = {
        "csrf_token": CSRF,
        "name": "Price lead",
        "account_id": str(account),
        "trigger": "comment",
        "keywords": "price, cost",
        "match_mode": "whole_word",
        "priority": "5",
        "cooldown_minutes": "0",
        "delay_minutes": "0",
        "active": "on",
        "comment_reply": "Sent you a DM, {username}!",
        "dm_type": "lead_capture",
        "flow-0-type": "ask",
        "flow-0-id": "s1",
        "flow-0-text": "What's your email?",
        "flow-0-field": "email",
        "flow-0-attempts": "3",
        "flow-1-type": "ask",
        "flow-1-id": "s2",
        "flow-1-text": "And your phone number?",
        "flow-1-field": "phone",
        "flow-1-attempts": "3",
        "flow-2-type": "send",
        "flow-2-id": "s3",
        "flow-2-text": "Thanks! Here is the price list: {link}",
        "link": "https://shop.example/prices",
        "phone_region": "US",
    }
    form.update(changes)
    return form


def error_of(page: str, field: str) -> str:
    match = re.search(rf'<small id="{re.escape(field)}-error" class="error">([^<]*)</small>', page)
    assert match, f"no error shown next to {field}"
    return match.group(1)


async def test_lead_rule_is_stored_in_the_engine_shape(client: Any, world: World) -> None:
    response = await client.post("/rules/new", form=lead_rule_form(world.account.id))
    assert response.status_code == 302
    rule = await AutomationRule.get(name="Price lead")
    assert rule.keywords == ["price", "cost"] and rule.priority == 5
    assert rule.config["dmType"] == "lead_capture" and rule.config["is_lead_capture"] is True
    assert [s["type"] for s in rule.config["lead_capture_flow"]] == ["ask", "ask", "send"]
    assert rule.config["lead_capture_flow"][1]["field_type"] == "phone"
    assert rule.config["comment_replies"] == ["Sent you a DM, {username}!"]
    assert rule.config["lead_capture_settings"]["phone_region"] == "US"
    assert await RuleStats.filter(rule_id=rule.id).exists()
    assert await AuditLog.filter(action="rule.created", target_id=str(rule.id)).exists()

    # The editor shows it back as it was saved.
    page = await (await client.get(f"/rules/{rule.id}")).get_data(as_text=True)
    assert "And your phone number?" in page and 'value="s2"' in page
    listing = await (await client.get("/rules")).get_data(as_text=True)
    assert "Price lead" in listing and "lead flow (3 steps)" in listing


async def test_lead_webhook_secret_is_write_only_and_encrypted(
    client: Any, world: World, container: Any
) -> None:
    form = lead_rule_form(world.account.id, webhook_url="https://hooks.example/l")
    await client.post("/rules/new", form={**form, "webhook_secret": "receiver-secret"})
    rule = await AutomationRule.get(name="Price lead")
    stored = rule.config["lead_capture_settings"]
    assert "receiver-secret" not in str(rule.config)
    assert open_webhook_secret(container.secrets, stored["webhook_secret"]) == "receiver-secret"
    page = await (await client.get(f"/rules/{rule.id}")).get_data(as_text=True)
    assert "receiver-secret" not in page and stored["webhook_secret"] not in page
    assert "A secret is set" in page

    await client.post(f"/rules/{rule.id}", form={**form, "name": "Kept"})
    kept = (await AutomationRule.get(id=rule.id)).config["lead_capture_settings"]
    assert open_webhook_secret(container.secrets, kept["webhook_secret"]) == "receiver-secret"
    await client.post(f"/rules/{rule.id}", form={**form, "webhook_secret_clear": "on"})
    cleared = (await AutomationRule.get(id=rule.id)).config["lead_capture_settings"]
    assert "webhook_secret" not in cleared


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        ({"name": ""}, "name", "name"),
        ({"keywords": ""}, "keywords", "keyword"),
        ({"priority": "high"}, "priority", "number"),
        ({"cooldown_minutes": "-5"}, "cooldown_minutes", "from 0"),
        ({"delay_minutes": "999"}, "delay_minutes", "from 0"),
        ({"match_mode": "fuzzy"}, "match_mode", "keywords match"),
        ({"comment_reply": "x" * 1001}, "comment_reply", "1000 bytes"),
        ({"link": "shop.example"}, "link", "http"),
        ({"flow-0-text": ""}, "flow-0-text", "question"),
        ({"flow-1-field": "custom", "flow-1-key": "Bad Key"}, "flow-1-key", "lower case"),
        ({"flow-1-field": "email"}, "flow-1-field", "already saves"),
        ({"flow-1-goto": "s9"}, "flow-1-goto", "no step"),
        ({"flow-2-id": "s1"}, "flow-2-id", "own short id"),
        ({"phone_region": "USA"}, "phone_region", "two-letter"),
        ({"webhook_url": "ftp://x"}, "webhook_url", "http"),
        ({"account_id": "999"}, "account_id", "account"),
    ],
)
async def test_errors_show_next_to_their_field_and_nothing_is_saved(
    client: Any, world: World, changes: dict[str, str], field: str, words: str
) -> None:
    response = await client.post("/rules/new", form=lead_rule_form(world.account.id, **changes))
    assert response.status_code == 422
    page = await response.get_data(as_text=True)
    assert words in error_of(page, field)
    assert f'aria-describedby="{field}-error"' in page
    assert not await AutomationRule.exists()
    assert not await AuditLog.filter(action="rule.created").exists()


@pytest.mark.parametrize(
    ("form", "field", "words"),
    [
        (
            {"dm_type": "text_button", "dm_variation": "Hi", "button-0-title": "x" * 21},
            "button-0-title",
            "20 characters",
        ),
        (
            {
                "dm_type": "text_button",
                "dm_variation": "Hi",
                "button-0-title": "Shop",
                "button-0-target": "javascript://x",
            },
            "button-0-target",
            "http",
        ),
        ({"dm_type": "text_button", "dm_variation": "Hi"}, "button-0-title", "at least one"),
        ({"dm_type": "quick_replies", "dm_variation": "Hi"}, "quick-0-title", "at least one"),
        ({"dm_type": "text", "dm_variation": ""}, "dm_variation", "Write the message"),
        ({"dm_type": "ai", "ai_prompt": ""}, "ai_prompt", "instructions"),
        ({"dm_type": "ai", "ai_prompt": "Help", "ai_tone": "t" * 81}, "ai_tone", "80"),
        ({"dm_type": "none", "comment_reply": ""}, "dm_type", "does nothing"),
        (
            {"dm_type": "lead_capture", "flow-0-type": "branch", "flow-0-options": ""},
            "flow-0-options",
            "choices",
        ),
        (
            {
                "dm_type": "lead_capture",
                "flow-0-type": "branch",
                "flow-0-options": "Yes -> nowhere",
            },
            "flow-0-options",
            "does not exist",
        ),
        ({"trigger": "dm", "comment_reply": "Hi"}, "comment_reply", "not for comments"),
    ],
)
async def test_dm_and_ai_errors(
    client: Any, world: World, form: dict[str, str], field: str, words: str
) -> None:
    base = {
        "csrf_token": CSRF,
        "name": "Rule",
        "account_id": str(world.account.id),
        "trigger": "comment",
        "keywords": "hi",
        "flow-0-type": "ask",
        "flow-0-text": "Email?",
        "flow-0-field": "email",
    }
    response = await client.post("/rules/new", form={**base, **form})
    assert response.status_code == 422
    assert words in error_of(await response.get_data(as_text=True), field)
    assert not await AutomationRule.exists()


async def test_the_ai_section_warns_when_no_ai_server_is_configured(
    client: Any, container: Any, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    page = await (await client.get("/rules/new")).get_data(as_text=True)
    assert 'id="ai-off"' in page and "OPENAI_API_KEY" in page
    monkeypatch.setattr(container, "ai", object())
    page = await (await client.get("/rules/new")).get_data(as_text=True)
    assert 'id="ai-off"' not in page


async def test_a_refused_edit_leaves_the_rule_as_it_was(client: Any, world: World) -> None:
    await client.post("/rules/new", form=lead_rule_form(world.account.id))
    rule = await AutomationRule.get(name="Price lead")
    refused = await client.post(
        f"/rules/{rule.id}",
        form=lead_rule_form(world.account.id, name="Renamed", **{"flow-0-field": "phone"}),
    )
    assert refused.status_code == 422
    # The form keeps what was typed.
    assert 'value="Renamed"' in await refused.get_data(as_text=True)
    same = await AutomationRule.get(id=rule.id)
    assert same.name == "Price lead" and same.config == rule.config

    saved = await client.post(f"/rules/{rule.id}", form=lead_rule_form(world.account.id, name="B"))
    assert saved.status_code == 302
    assert (await AutomationRule.get(id=rule.id)).name == "B"


async def test_branching_flow_and_buttons_round_trip(client: Any, world: World) -> None:
    form = lead_rule_form(
        world.account.id,
        **{
            "flow-1-type": "branch",
            "flow-1-text": "Want a call back?",
            "flow-1-options": "Yes -> s4\nNo -> end",
            "flow-3-type": "ask",
            "flow-3-id": "s4",
            "flow-3-text": "Your phone?",
            "flow-3-field": "phone",
        },
    )
    assert (await client.post("/rules/new", form=form)).status_code == 302
    rule = await AutomationRule.get(name="Price lead")
    branch = rule.config["lead_capture_flow"][1]
    assert branch["options"] == [
        {"title": "Yes", "payload": "Yes", "goto": "s4"},
        {"title": "No", "payload": "No", "goto": "end"},
    ]
    page = await (await client.get(f"/rules/{rule.id}")).get_data(as_text=True)
    assert "Yes -&gt; s4" in page

    buttons = {
        "csrf_token": CSRF,
        "name": "Link DM",
        "account_id": str(world.account.id),
        "trigger": "dm",
        "keywords": "link",
        "dm_type": "text_button",
        "dm_variation": "Here it is",
        "button-0-title": "Open shop",
        "button-0-target": "https://shop.example",
        "button-1-title": "Talk to us",
        "button-1-target": "TALK",
    }
    assert (await client.post("/rules/new", form=buttons)).status_code == 302
    stored = await AutomationRule.get(name="Link DM")
    assert stored.config["buttons"] == [
        {"text": "Open shop", "url": "https://shop.example"},
        {"text": "Talk to us", "payload": "TALK"},
    ]


async def test_preview_plays_the_flow_with_sample_answers(client: Any, world: World) -> None:
    form = lead_rule_form(world.account.id, sample="what's the price?")
    response = await client.post("/rules/preview", form=form)
    page = await response.get_data(as_text=True)
    assert response.status_code == 200
    texts = re.findall(r'<span class="bubble-text">([^<]*)</span>', page)
    assert texts == [
        "what&#39;s the price?",
        "Sent you a DM, sample_follower!",
        "What&#39;s your email?",
        "ana@example.com",
        "And your phone number?",
        "+14155552671",
        "Thanks! Here is the price list: https://shop.example/prices",
    ]
    assert "Lead saved" in page


async def test_recent_posts_come_from_the_account(client: Any, world: World) -> None:
    response = await client.get(f"/rules/posts?account_id={world.account.id}")
    page = await response.get_data(as_text=True)
    assert "Spring sale" in page and 'name="media_ids"' in page
    other = await client.get("/rules/posts?account_id=424242")
    assert "workspace" in await other.get_data(as_text=True)


async def test_sandbox_test_panel_explains_what_the_engine_did(
    client: Any, container: Any, world: World
) -> None:
    await client.post("/rules/new", form=lead_rule_form(world.account.id))
    rule = await AutomationRule.get(name="Price lead")
    person = "7700000000042"
    async with webhooks_into(client, world.sandbox):
        sent = await client.post(
            f"/rules/{rule.id}/test",
            form={"csrf_token": CSRF, "kind": "comment", "sample": "Price?", "person_id": person},
        )
        page = await sent.get_data(as_text=True)
        assert sent.status_code == 200 and 'hx-trigger="load delay:600ms"' in page
        key = re.search(r"key=([^&\"]+)", page)
        assert key
        assert await run_pending_events(container) == 1
        result = await client.get(
            f"/rules/{rule.id}/test/result?key={key.group(1)}&kind=comment&person_id={person}"
        )
        shown = await result.get_data(as_text=True)
        assert 'class="matched-rule">Price lead</span> (this rule)' in shown
        assert "Public reply" in shown and "Private reply (DM)" in shown
        assert "What&#39;s your email?" in shown and "hx-trigger" not in shown
        # The person answers the flow in a DM: the same conversation continues.
        answer = await client.post(
            f"/rules/{rule.id}/test",
            form={
                "csrf_token": CSRF,
                "kind": "dm",
                "sample": "ana@example.com",
                "person_id": person,
            },
        )
        assert answer.status_code == 200
        await run_pending_events(container)
        key = re.search(r"key=([^&\"]+)", await answer.get_data(as_text=True))
        assert key
        result = await client.get(f"/rules/{rule.id}/test/result?key={key.group(1)}")
        shown = await result.get_data(as_text=True)
        assert (
            "And your phone number?" in shown
            and "answered this rule&#39;s lead flow (lead flow waiting)" in shown
        )
        # A sample without a keyword says why nothing happened.
        other = await client.post(
            f"/rules/{rule.id}/test",
            form={"csrf_token": CSRF, "kind": "comment", "sample": "nice pic", "person_id": "77"},
        )
        await run_pending_events(container)
        key = re.search(r"key=([^&\"]+)", await other.get_data(as_text=True))
        assert key
        shown = await (
            await client.get(f"/rules/{rule.id}/test/result?key={key.group(1)}")
        ).get_data(as_text=True)
        assert "no rule matched" in shown and "does not contain a keyword" in shown
    sent_texts = [s.payload for s in world.sandbox.state.sent]
    assert any("What's your email?" in str(p) for p in sent_texts)


async def test_test_panel_says_in_words_which_kind_of_message_a_rule_answers(
    client: Any, container: Any, world: World
) -> None:
    await client.post("/rules/new", form=lead_rule_form(world.account.id))
    rule = await AutomationRule.get(name="Price lead")
    async with webhooks_into(client, world.sandbox):
        sent = await client.post(
            f"/rules/{rule.id}/test",
            form={"csrf_token": CSRF, "kind": "dm", "sample": "price", "person_id": "78"},
        )
        await run_pending_events(container)
        key = re.search(r"key=([^&\"]+)", await sent.get_data(as_text=True))
        assert key
        shown = await (
            await client.get(f"/rules/{rule.id}/test/result?key={key.group(1)}")
        ).get_data(as_text=True)
    assert "This rule answers comments; the sample was a DM." in shown


async def test_test_panel_names_the_rule_that_answered_even_once_it_is_deleted(
    client: Any, container: Any, world: World
) -> None:
    await client.post("/rules/new", form=lead_rule_form(world.account.id))
    tested = await AutomationRule.get(name="Price lead")
    form = lead_rule_form(world.account.id, name="Urgent prices", priority="10")
    await client.post("/rules/new", form=form)
    winner = await AutomationRule.get(name="Urgent prices")
    async with webhooks_into(client, world.sandbox):
        sent = await client.post(
            f"/rules/{tested.id}/test",
            form={"csrf_token": CSRF, "kind": "comment", "sample": "Price?", "person_id": "7701"},
        )
        key = re.search(r"key=([^&\"]+)", await sent.get_data(as_text=True))
        assert key
        assert await run_pending_events(container) == 1
    await winner.delete()
    shown = await (await client.get(f"/rules/{tested.id}/test/result?key={key.group(1)}")).get_data(
        as_text=True
    )
    assert 'class="matched-rule">Urgent prices</span> (deleted since)' in shown


async def test_test_panel_says_when_no_sandbox_runs(
    client: Any, container: Any, world: World
) -> None:
    await client.post("/rules/new", form=lead_rule_form(world.account.id))
    rule = await AutomationRule.get(name="Price lead")
    container.sandbox = None
    await world.sandbox.stop()
    response = await client.post(
        f"/rules/{rule.id}/test", form={"csrf_token": CSRF, "kind": "dm", "sample": "price"}
    )
    assert response.status_code == 422
    shown = await response.get_data(as_text=True)
    assert f"sandbox Instagram at {world.sandbox.url} is not reachable" in shown


async def test_test_panel_reaches_a_sandbox_running_in_another_process(
    client: Any, container: Any, world: World
) -> None:
    await client.post("/rules/new", form=lead_rule_form(world.account.id))
    rule = await AutomationRule.get(name="Price lead")
    container.sandbox = None  # only SANDBOX_URL tells where it listens
    async with webhooks_into(client, world.sandbox):
        sent = await client.post(
            f"/rules/{rule.id}/test",
            form={"csrf_token": CSRF, "kind": "comment", "sample": "Price?", "person_id": "7702"},
        )
        assert sent.status_code == 200
        assert await run_pending_events(container) == 1
    assert any("What's your email?" in str(s.payload) for s in world.sandbox.state.sent)


@pytest.mark.parametrize(
    ("ai_server", "ai_enabled", "words"),
    [
        (False, True, "No AI server is configured"),
        (True, False, "AI is switched off for this workspace"),
    ],
)
async def test_test_panel_says_why_the_ai_reply_was_skipped(
    client: Any,
    container: Any,
    world: World,
    monkeypatch: pytest.MonkeyPatch,
    ai_server: bool,
    ai_enabled: bool,
    words: str,
) -> None:
    if ai_server:
        monkeypatch.setattr(container, "ai", object())  # never asked: the workspace refuses first
    await Workspace.filter(id=world.account.workspace_id).update(ai_enabled=ai_enabled)  # type: ignore[attr-defined]
    form = lead_rule_form(
        world.account.id,
        name="Price AI",
        trigger="dm",
        comment_reply="",
        dm_type="ai",
        ai_prompt="Answer questions about our prices.",
    )
    assert (await client.post("/rules/new", form=form)).status_code == 302
    rule = await AutomationRule.get(name="Price AI")
    async with webhooks_into(client, world.sandbox):
        sent = await client.post(
            f"/rules/{rule.id}/test",
            form={"csrf_token": CSRF, "kind": "dm", "sample": "price?", "person_id": "7702"},
        )
        key = re.search(r"key=([^&\"]+)", await sent.get_data(as_text=True))
        assert key
        assert await run_pending_events(container) == 1
    shown = await (await client.get(f"/rules/{rule.id}/test/result?key={key.group(1)}")).get_data(
        as_text=True
    )
    assert 'class="matched-rule">Price AI</span> (this rule)' in shown
    skipped = re.search(r'<li class="action-skipped">(.*?)</li>', shown, re.S)
    assert skipped, shown
    assert "AI reply" in skipped.group(1) and words in skipped.group(1)
    assert "No action was taken." not in shown


async def test_test_panel_never_shows_another_accounts_event(client: Any, world: World) -> None:
    await client.post("/rules/new", form=lead_rule_form(world.account.id))
    rule = await AutomationRule.get(name="Price lead")
    await WebhookEvent.create(
        dedupe_key="17849999999:message:m.secret",
        account_ig_id="17849999999",  # an account of another workspace
        kind="message",
        payload={},
        status=EventStatus.DONE,
        error="lead flow completed for ana@example.com",
        rule_name="Other team's VIP rule",
    )
    shown = await (
        await client.get(f"/rules/{rule.id}/test/result?key=17849999999:message:m.secret")
    ).get_data(as_text=True)
    assert "Waiting for the webhook" in shown
    assert "VIP rule" not in shown and "ana@example.com" not in shown


async def test_a_rule_that_hides_the_comment_is_saved_and_shown_again(
    client: Any, world: World
) -> None:
    form = {
        "csrf_token": CSRF,
        "name": "Hide spam",
        "account_id": str(world.account.id),
        "trigger": "comment",
        "keywords": "spam.example",
        "match_mode": "contains",
        "priority": "0",
        "cooldown_minutes": "0",
        "delay_minutes": "0",
        "active": "on",
        "dm_type": "none",
        "hide_comment": "on",
    }
    assert (await client.post("/rules/new", form=form)).status_code == 302
    rule = await AutomationRule.get(name="Hide spam")
    assert rule.config["hide_comment"] is True
    page = await (await client.get(f"/rules/{rule.id}")).get_data(as_text=True)
    assert re.search(r'name="hide_comment" checked', page)
    preview = await client.post("/rules/preview", form={**form, "sample": "spam.example deals"})
    assert "The comment is hidden" in await preview.get_data(as_text=True)
    refused = await client.post("/rules/new", form={**form, "name": "DM", "trigger": "dm"})
    assert refused.status_code == 422
    assert "Only a comment can be hidden" in error_of(
        await refused.get_data(as_text=True), "hide_comment"
    )
