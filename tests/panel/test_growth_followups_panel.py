"""Follow-ups, variants, Live and ad comment triggers and the next-post rule from the outside:
the rule editor and the JSON API keep the same rule, the preview says what happens, the
rule's page and the API show its variants, and the rules page makes the next-post rule."""

from __future__ import annotations

from typing import Any

from core.db.models import AutomationRule, OutboundAction, OutboundStatus
from core.domain.rule_checks import review
from core.domain.rule_definition import RuleDefinition
from core.domain.scope import Actor
from core.services import rule_editor
from panel import rule_form, rule_preview
from tests.panel.helpers import CSRF, sign_in_as
from tests.panel.test_api_rules import _account, _bearer, team  # noqa: F401


def _body(account_id: int, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "Live prices",
        "account_id": account_id,
        "trigger": "live_comment",
        "keywords": ["price"],
        "comment_replies": ["Sent you the prices!"],
        "dm_type": "text",
        "dm_variations": ["Here they are.", "Prices inside."],
        "follow_up": {"wait_minutes": 120, "messages": ["Any questions?"]},
    }
    body.update(changes)
    return body


async def test_api_and_editor_keep_the_follow_up_and_the_new_triggers(
    client: Any,
    team: dict[str, Any],  # noqa: F811
    container: Any,
) -> None:
    account = team["account"]
    editor = _bearer(team["editor"])
    made = await client.post("/api/v1/rules", json=_body(account.id), headers=editor)
    assert made.status_code == 201, await made.get_data(as_text=True)
    rule = await made.get_json()
    assert rule["trigger"] == "live_comment"
    assert rule["follow_up"] == {"wait_minutes": 120, "messages": ["Any questions?"]}

    # The editor shows it, reads it back the same, and its preview says when it goes.
    stored = RuleDefinition.from_stored(await AutomationRule.get(id=rule["id"]))
    form = rule_form.form_of_definition(stored)
    assert (form["follow_up_wait"], form["follow_up_unit"]) == (["2"], ["hours"])
    read, problems = rule_form.read_form(form)
    assert problems == {} and review(read)[0].follow_up == stored.follow_up
    notes = [b.text for b in rule_preview.preview(review(read)[0], "price") if b.who == "note"]
    assert any(
        "Sent 2 h later if they haven't answered; never after the 24-h window" in n for n in notes
    )
    await sign_in_as(client, await team["owner"].user)
    page = await (await client.get(f"/rules/{rule['id']}")).get_data(as_text=True)
    assert 'name="follow_up_message"' in page and "Any questions?" in page
    saved = await client.post(
        f"/rules/{rule['id']}", form={**{k: v[0] for k, v in form.items() if v}, "csrf_token": CSRF}
    )
    assert saved.status_code == 302
    again = RuleDefinition.from_stored(await AutomationRule.get(id=rule["id"]))
    assert again.follow_up == stored.follow_up and again.trigger == "live_comment"

    # Ad comments and the next post are options of comment rules.
    ads = _body(account.id, trigger="comment", ad_comments="only", next_post=True)
    made = await client.post("/api/v1/rules", json=ads, headers=editor)
    assert made.status_code == 201
    assert (await made.get_json())["ad_comments"] == "only"

    # A follow-up due after Meta's window is refused where it is written.
    late = _body(account.id, follow_up={"wait_minutes": 25 * 60, "messages": ["Hi"]})
    refused = await client.post("/api/v1/rules", json=late, headers=editor)
    assert refused.status_code == 422
    fields = (await refused.get_json())["error"]["fields"]
    assert "24 hours" in fields["follow_up.wait_minutes"]
    form_errors = rule_form.form_errors({"follow_up.wait_minutes": "x"}, {})
    assert form_errors == {"follow_up_wait": "x"}


async def test_variants_are_shown_served_and_the_winner_is_kept(
    client: Any,
    team: dict[str, Any],  # noqa: F811
    container: Any,
) -> None:
    account = team["account"]
    editor = _bearer(team["editor"])
    made = await client.post(
        "/api/v1/rules",
        json=_body(account.id, trigger="dm", follow_up=None, comment_replies=[]),
        headers=editor,
    )
    rule_id = (await made.get_json())["id"]
    for n in range(12):  # the second DM variation went out more, and only it was answered
        await OutboundAction.create(
            account_id=account.id,
            kind="dm",
            dedupe_key=f"k{n}",
            target=f"p{n}",
            payload={},
            status=OutboundStatus.SENT,
            rule_id=rule_id,
            step="dm",
            variant="v2" if n % 3 else "v1",
        )
    served = await client.get(f"/api/v1/rules/{rule_id}/variants", headers=_bearer(team["viewer"]))
    assert served.status_code == 200
    rows = {(r["step"], r["variant"]): r for r in (await served.get_json())["data"]}
    assert (rows[("dm", "v1")]["sent"], rows[("dm", "v2")]["sent"]) == (4, 8)
    assert rows[("dm", "v2")]["text"] == "Prices inside."

    await sign_in_as(client, await team["owner"].user)
    page = await (await client.get(f"/rules/{rule_id}")).get_data(as_text=True)
    assert 'id="rule-variants"' in page and 'data-variant="dm-v2"' in page
    kept = await client.post(
        f"/rules/{rule_id}/variants/keep",
        form={"step": "dm", "variant": "v2", "csrf_token": CSRF},
    )
    assert kept.status_code == 302
    rule = await rule_editor.get_rule(Actor.system(account.workspace_id), rule_id)
    assert RuleDefinition.from_stored(rule).dm_variations == ["Prices inside."]
    gone = await client.post(
        f"/rules/{rule_id}/variants/keep",
        form={"step": "dm", "variant": "v9", "csrf_token": CSRF},
    )
    assert gone.status_code == 422


async def test_one_click_makes_a_rule_waiting_for_the_next_post(
    client: Any,
    team: dict[str, Any],  # noqa: F811
) -> None:
    account = team["account"]
    await sign_in_as(client, await team["owner"].user)
    index = await (await client.get("/rules")).get_data(as_text=True)
    assert "Any comment on my next post" in index and 'id="next-post-form"' in index
    made = await client.post(
        "/rules/next-post", form={"account_id": str(account.id), "csrf_token": CSRF}
    )
    assert made.status_code == 302
    rule = await AutomationRule.get(workspace_id=account.workspace_id)
    definition = RuleDefinition.from_stored(rule)
    assert definition.waiting_for_post and definition.match_mode == "any"
    index = await (await client.get("/rules")).get_data(as_text=True)
    assert "waiting for your next post" in index
    preview = rule_preview.preview(definition)
    assert preview[0].who == "note" and preview[0].text.startswith("Waiting for your next post")
