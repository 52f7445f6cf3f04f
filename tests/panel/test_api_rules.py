"""The JSON API's automation rules: the editor's checks and storage, roles, workspaces."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from core.db.models import (
    AuditLog,
    AutomationRule,
    InstagramAccount,
    LoginKind,
    Membership,
    Role,
    RuleStats,
)
from core.domain.scope import Actor
from core.services import rule_editor, users
from core.services.leads import open_webhook_secret
from panel.rule_form import read_form
from tests.panel.helpers import team_of_four, token_for


def _bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


async def _account(workspace_id: int, container: Any, ig_id: str = "17841400000000001") -> Any:
    return await InstagramAccount.create(
        workspace_id=workspace_id,
        ig_id=ig_id,
        username=f"shop{ig_id[-1]}",
        login_kind=LoginKind.SANDBOX,
        token_encrypted=container.secrets.encrypt("token"),
    )


def lead_rule(account_id: int, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "Price lead",
        "account_id": account_id,
        "trigger": "comment",
        "keywords": ["price", "cost"],
        "match_mode": "whole_word",
        "priority": 5,
        "comment_replies": ["Sent you a DM, {username}!"],
        "dm_type": "lead_capture",
        "lead_flow": [
            {
                "type": "branch",
                "id": "kind",
                "text": "Shop or wholesale?",
                "options": [{"title": "Shop", "goto": "mail"}, {"title": "Wholesale"}],
            },
            {"type": "ask", "id": "phone", "text": "Your phone?", "field": "phone", "goto": "end"},
            {"type": "ask", "id": "mail", "text": "Your email?", "field": "email", "attempts": 2},
            {"type": "send", "id": "bye", "messages": ["Thanks! {link}", "Thank you! {link}"]},
        ],
        "link": "https://shop.example/prices",
        "lead_settings": {"phone_region": "US", "webhook_secret": "s3cret-value"},
    }
    body.update(changes)
    return body


@pytest.fixture
async def team(sqlite_db: str, container: Any) -> dict[str, Any]:
    members = await team_of_four()
    owner = members[Role.OWNER]
    return {
        "owner": owner,
        "account": await _account(owner.workspace_id, container),
        "editor": (await token_for(owner, Role.EDITOR))[1],
        "viewer": (await token_for(owner, Role.VIEWER))[1],
    }


async def test_create_list_get_replace_switch_and_delete(client: Any, team: dict[str, Any]) -> None:
    editor, viewer, account = team["editor"], team["viewer"], team["account"]
    created = await client.post(
        "/api/v1/rules", json=lead_rule(account.id), headers=_bearer(editor)
    )
    assert created.status_code == 201, await created.get_data(as_text=True)
    rule = await created.get_json()
    assert rule["account_username"] == account.username and rule["active"] is True
    assert [s["id"] for s in rule["lead_flow"]] == ["kind", "phone", "mail", "bye"]
    assert rule["lead_flow"][0]["options"] == [
        {"title": "Shop", "goto": "mail"},
        {"title": "Wholesale", "goto": ""},
    ]
    assert rule["lead_flow"][3]["messages"] == ["Thanks! {link}", "Thank you! {link}"]
    assert rule["stats"]["total_triggers"] == 0 and rule["does"].startswith("1 public reply")
    stored = await AutomationRule.get(id=rule["id"])
    assert stored.config["dmType"] == "lead_capture" and stored.keywords == ["price", "cost"]
    assert await AuditLog.filter(
        action="rule.created", target_id=str(stored.id), actor="api:editor token"
    ).exists()

    await RuleStats.filter(rule_id=stored.id).update(
        total_triggers=7, total_leads_captured=2, last_triggered_at=datetime.now(UTC)
    )
    listed = await (await client.get("/api/v1/rules", headers=_bearer(viewer))).get_json()
    assert [r["id"] for r in listed["items"]] == [rule["id"]]
    assert listed["items"][0]["stats"]["total_triggers"] == 7
    assert listed["items"][0]["stats"]["total_leads_captured"] == 2
    other = await client.get(f"/api/v1/rules?account_id={account.id + 1}", headers=_bearer(viewer))
    assert (await other.get_json())["items"] == []

    fetched = await client.get(f"/api/v1/rules/{rule['id']}", headers=_bearer(viewer))
    read = await fetched.get_json()
    assert read["lead_flow"] == rule["lead_flow"] and read["stats"]["total_triggers"] == 7

    # What a GET returns goes back with a PUT unchanged: same columns, same config.
    before = (stored.keywords, stored.priority, stored.config)
    same = {k: v for k, v in read.items() if k in lead_rule(0)}
    replaced = await client.put(f"/api/v1/rules/{rule['id']}", json=same, headers=_bearer(editor))
    assert replaced.status_code == 200, await replaced.get_data(as_text=True)
    again = await AutomationRule.get(id=rule["id"])
    assert (again.keywords, again.priority, again.config) == before

    changed = lead_rule(
        account.id, name="Price DM", dm_type="text", dm_variations=["Prices: {link}"], priority=9
    )
    replaced = await client.put(
        f"/api/v1/rules/{rule['id']}", json=changed, headers=_bearer(editor)
    )
    body = await replaced.get_json()
    assert body["name"] == "Price DM" and body["lead_flow"] == [] and body["priority"] == 9
    assert body["dm_variations"] == ["Prices: {link}"]
    assert (await AutomationRule.get(id=rule["id"])).config["lead_capture_flow"] == []

    off = await client.post(f"/api/v1/rules/{rule['id']}/deactivate", headers=_bearer(editor))
    assert off.status_code == 200 and (await off.get_json())["active"] is False
    assert (await AutomationRule.get(id=rule["id"])).active is False
    on = await client.post(f"/api/v1/rules/{rule['id']}/activate", headers=_bearer(editor))
    assert (await on.get_json())["active"] is True

    deleted = await client.delete(f"/api/v1/rules/{rule['id']}", headers=_bearer(editor))
    assert deleted.status_code == 204
    assert not await AutomationRule.filter(id=rule["id"]).exists()
    gone = await client.get(f"/api/v1/rules/{rule['id']}", headers=_bearer(viewer))
    assert gone.status_code == 404
    actions = await AuditLog.filter(target_type="rule", target_id=str(rule["id"])).values_list(
        "action", flat=True
    )
    assert set(actions) >= {"rule.updated", "rule.disabled", "rule.enabled", "rule.deleted"}


async def test_api_and_editor_store_the_same_rule(
    client: Any, team: dict[str, Any], container: Any
) -> None:
    account = team["account"]
    form = {
        "name": ["Buttons"],
        "account_id": [str(account.id)],
        "trigger": ["dm"],
        "keywords": ["menu"],
        "match_mode": ["contains"],
        "cooldown_minutes": ["30"],
        "delay_minutes": ["1.5"],
        "active": ["on"],
        "dm_type": ["text_button"],
        "dm_variation": ["Pick one", "Choose"],
        "button-0-title": ["Shop"],
        "button-0-target": ["https://shop.example"],
        "button-1-title": ["Talk"],
        "button-1-target": ["TALK"],
    }
    definition, _ = read_form(form)
    panel_rule = await rule_editor.save_rule(
        Actor(account.workspace_id, Role.OWNER, "owner@example.com"),
        definition,
        redis=container.redis,
        secrets=container.secrets,
    )
    body = {
        "name": "Buttons",
        "account_id": account.id,
        "trigger": "dm",
        "keywords": ["menu"],
        "match_mode": "contains",
        "cooldown_minutes": 30,
        "delay_minutes": 1.5,
        "dm_type": "text_button",
        "dm_variations": ["Pick one", "Choose"],
        "buttons": [
            {"title": "Shop", "target": "https://shop.example"},
            {"title": "Talk", "target": "TALK"},
        ],
    }
    created = await client.post("/api/v1/rules", json=body, headers=_bearer(team["editor"]))
    assert created.status_code == 201, await created.get_data(as_text=True)
    api_rule = await AutomationRule.get(id=(await created.get_json())["id"])
    columns = ("trigger", "keywords", "match_mode", "cooldown_s", "media_ids", "config")
    assert [getattr(api_rule, c) for c in columns] == [getattr(panel_rule, c) for c in columns]
    read = await (
        await client.get(f"/api/v1/rules/{panel_rule.id}", headers=_bearer(team["viewer"]))
    ).get_json()
    assert read["buttons"] == body["buttons"] and read["cooldown_minutes"] == 30


async def test_refused_rules_name_each_field_and_store_nothing(
    client: Any, team: dict[str, Any], container: Any
) -> None:
    editor, account = team["editor"], team["account"]
    _, workspace = await users.create_owner("other@example.com", "long enough pw")
    foreign = await _account(workspace.id, container, ig_id="17841400000000009")
    flow = lead_rule(0)["lead_flow"]
    flow[1] = {**flow[1], "goto": "nowhere"}
    flow[2] = {**flow[2], "text": ""}
    bad = lead_rule(
        foreign.id,
        name="",
        keywords=[],
        lead_flow=flow,
        lead_settings={"phone_region": "USA"},
    )
    response = await client.post("/api/v1/rules", json=bad, headers=_bearer(editor))
    assert response.status_code == 422
    error = (await response.get_json())["error"]
    assert error["message"].startswith("The rule was not saved")
    assert set(error["fields"]) == {
        "name",
        "keywords",
        "account_id",
        "lead_flow.1.goto",
        "lead_flow.2.text",
        "lead_settings.phone_region",
    }
    assert "no step" in error["fields"]["lead_flow.1.goto"].lower()

    buttons = await client.post(
        "/api/v1/rules",
        json=lead_rule(
            account.id,
            dm_type="text_button",
            dm_variations=["Hi"],
            buttons=[
                {"title": "Go", "target": "ftp://x"},
                {"title": "", "target": "X"},
                {"title": "Fine", "target": "FINE"},
            ],
        ),
        headers=_bearer(editor),
    )
    assert set((await buttons.get_json())["error"]["fields"]) == {
        "buttons.0.target",
        "buttons.1.title",
    }
    ai = await client.post(
        "/api/v1/rules",
        json=lead_rule(account.id, dm_type="ai", ai={"prompt": "", "approval": "maybe"}),
        headers=_bearer(editor),
    )
    assert set((await ai.get_json())["error"]["fields"]) == {"ai.prompt", "ai.approval"}
    send = lead_rule(0)["lead_flow"]
    send[3] = {"type": "send", "messages": []}
    empty_send = await client.post(
        "/api/v1/rules", json=lead_rule(account.id, lead_flow=send), headers=_bearer(editor)
    )
    assert set((await empty_send.get_json())["error"]["fields"]) == {"lead_flow.3.messages"}

    # What the editor's form cannot carry is refused along with the editor's own findings.
    split = await client.post(
        "/api/v1/rules",
        json=lead_rule(account.id, keywords=["a, b"], priority=5000),
        headers=_bearer(editor),
    )
    assert set((await split.get_json())["error"]["fields"]) == {"keywords", "priority"}

    typed = await client.post(
        "/api/v1/rules",
        json=lead_rule(account.id, keywords="price", active="sometimes"),
        headers=_bearer(editor),
    )
    assert typed.status_code == 422
    assert {"keywords", "active"} <= set((await typed.get_json())["error"]["fields"])
    assert await AutomationRule.all().count() == 0

    created = await client.post(
        "/api/v1/rules", json=lead_rule(account.id), headers=_bearer(editor)
    )
    rule_id = (await created.get_json())["id"]
    refused = await client.put(
        f"/api/v1/rules/{rule_id}", json=lead_rule(account.id, name=""), headers=_bearer(editor)
    )
    assert set((await refused.get_json())["error"]["fields"]) == {"name"}
    assert (await AutomationRule.get(id=rule_id)).name == "Price lead"


async def test_viewer_token_reads_but_cannot_change_rules(
    client: Any, team: dict[str, Any]
) -> None:
    created = await client.post(
        "/api/v1/rules", json=lead_rule(team["account"].id), headers=_bearer(team["editor"])
    )
    rule_id = (await created.get_json())["id"]
    viewer = _bearer(team["viewer"])
    assert (await client.get("/api/v1/rules", headers=viewer)).status_code == 200
    assert (await client.get(f"/api/v1/rules/{rule_id}", headers=viewer)).status_code == 200
    attempts = [
        client.post("/api/v1/rules", json=lead_rule(team["account"].id), headers=viewer),
        client.put(
            f"/api/v1/rules/{rule_id}",
            json=lead_rule(team["account"].id, name="x"),
            headers=viewer,
        ),
        client.post(f"/api/v1/rules/{rule_id}/deactivate", headers=viewer),
        client.delete(f"/api/v1/rules/{rule_id}", headers=viewer),
    ]
    for attempt in attempts:
        response = await attempt
        assert response.status_code == 403
        assert "needs editor" in (await response.get_json())["error"]["message"]
    rule = await AutomationRule.get(id=rule_id)
    assert rule.name == "Price lead" and rule.active
    assert await AutomationRule.all().count() == 1


async def test_another_workspaces_rules_are_not_found(
    client: Any, team: dict[str, Any], container: Any
) -> None:
    created = await client.post(
        "/api/v1/rules", json=lead_rule(team["account"].id), headers=_bearer(team["editor"])
    )
    rule_id = (await created.get_json())["id"]
    stranger, workspace = await users.create_owner("other@example.com", "long enough pw")
    theirs = await _account(workspace.id, container, ig_id="17841400000000009")
    owner = await Membership.get(user=stranger, workspace=workspace)
    foreign = _bearer((await token_for(owner, Role.OWNER))[1])

    assert (await (await client.get("/api/v1/rules", headers=foreign)).get_json())["items"] == []
    for response in [
        await client.get(f"/api/v1/rules/{rule_id}", headers=foreign),
        await client.put(f"/api/v1/rules/{rule_id}", json=lead_rule(theirs.id), headers=foreign),
        await client.post(f"/api/v1/rules/{rule_id}/deactivate", headers=foreign),
        await client.delete(f"/api/v1/rules/{rule_id}", headers=foreign),
    ]:
        assert response.status_code == 404
        assert (await response.get_json())["error"]["message"]
    rule = await AutomationRule.get(id=rule_id)
    assert rule.active and rule.account_id == team["account"].id
    # A rule of theirs cannot point at our account either.
    mine = await client.post("/api/v1/rules", json=lead_rule(team["account"].id), headers=foreign)
    assert set((await mine.get_json())["error"]["fields"]) == {"account_id"}


async def test_the_lead_webhook_secret_is_write_only(
    client: Any, team: dict[str, Any], container: Any
) -> None:
    editor = _bearer(team["editor"])
    created = await client.post("/api/v1/rules", json=lead_rule(team["account"].id), headers=editor)
    rule = await created.get_json()
    assert rule["lead_settings"] == {
        "webhook_url": "",
        "webhook_secret_set": True,
        "phone_region": "US",
    }
    read = await client.get(f"/api/v1/rules/{rule['id']}", headers=_bearer(team["viewer"]))
    assert "s3cret-value" not in await read.get_data(as_text=True)

    def settings_of(stored: AutomationRule) -> dict[str, Any]:
        return dict(stored.config["lead_capture_settings"])

    body = lead_rule(team["account"].id, lead_settings={"phone_region": "DE"})
    await client.put(f"/api/v1/rules/{rule['id']}", json=body, headers=editor)
    kept = settings_of(await AutomationRule.get(id=rule["id"]))
    assert "s3cret-value" not in str(kept) and kept["phone_region"] == "DE"
    assert open_webhook_secret(container.secrets, kept["webhook_secret"]) == "s3cret-value"

    body["lead_settings"] = {"webhook_secret": ""}
    cleared = await client.put(f"/api/v1/rules/{rule['id']}", json=body, headers=editor)
    assert (await cleared.get_json())["lead_settings"]["webhook_secret_set"] is False
    assert "webhook_secret" not in settings_of(await AutomationRule.get(id=rule["id"]))


def test_rule_endpoints_declare_their_least_role(app: Any) -> None:
    views = app.app.view_functions
    assert views["api_rules.list_rules"].required_role is Role.VIEWER
    assert views["api_rules.get_rule"].required_role is Role.VIEWER
    for name in ("create_rule", "replace_rule", "activate_rule", "deactivate_rule", "delete_rule"):
        assert views[f"api_rules.{name}"].required_role is Role.EDITOR, name


async def test_openapi_documents_the_rule_shapes(client: Any) -> None:
    spec = await (await client.get("/api/v1/openapi.json")).get_json()
    rules = spec["paths"]["/api/v1/rules/{rule_id}"]
    assert set(rules) >= {"get", "put", "delete"}
    assert "204" in rules["delete"]["responses"]
    assert "403" in rules["put"]["responses"] and "422" in rules["put"]["responses"]
    body = rules["put"]["requestBody"]["content"]["application/json"]["schema"]
    assert set(body["required"]) == {"name", "account_id", "trigger"}
    assert body["properties"]["trigger"]["enum"][0] == "comment"
    secret = spec["components"]["schemas"]["LeadSettingsOut"]["properties"]
    assert "webhook_secret_set" in secret and "webhook_secret" not in secret
