"""The rule's one shape: stored configs in older shapes load, and a rule round-trips."""

from __future__ import annotations

from typing import Any

from core.domain.rule_checks import review
from core.domain.rule_definition import RuleDefinition


def stored(config: Any, **columns: Any) -> RuleDefinition:
    return RuleDefinition.from_stored(
        {"name": "Old", "account_id": 3, "trigger": "comment", "config": config, **columns}
    )


def test_seed_shaped_configs_load() -> None:
    old = stored(
        {
            "keywords": ["price"],
            "comment_replies": "Check your DMs!",
            "message_variations": ["A", "B"],
            "dmType": "text_button",
            "buttons": [{"text": "Open", "url": "https://shop.example"}],
            "delay_minutes": 2,
        }
    )
    assert old.keywords == ["price"] and old.comment_replies == ["Check your DMs!"]
    assert old.dm_type == "text_button" and old.dm_buttons[0].url == "https://shop.example"
    assert old.delay_s == 120 and old.reply_link == "https://shop.example"
    assert not old.starts_flow
    no_flow = stored({"dm_type": "lead_capture", "message_variations": ["x"]})
    assert no_flow.dm_type == "text" and no_flow.dm_variations == ["x"]
    flow = stored(
        {
            "is_lead_capture": True,
            "lead_capture_flow": [{"type": "ask", "text": "Email?", "field_type": "email"}],
            "lead_capture_settings": {"webhook_url": "https://hooks.example/x"},
        }
    )
    assert flow.starts_flow and flow.webhook_url == "https://hooks.example/x"
    assert flow.flow().steps[0].field == "email"
    quiet = stored({"comment_replies": ["x"], "auto_reply_to_comments": False})
    assert quiet.comment_replies == [] and quiet.dm_type == "none"
    assert stored(None).dm_type == "none"


def test_older_shapes_and_odd_values_load_without_failing() -> None:
    seed = stored(
        {
            "message": "Thanks! Here's your reward: [LINK]",
            "delay_seconds": "90",
            "quick_replies": ["Yes", {"title": "No", "payload": "NO"}, {"payload": "x"}, 7],
            "lead_capture_settings": {"link": "https://reward.example", "phone_region": "de"},
        },
        priority="high",
        cooldown_s=150,
        media_ids=["123", None],
        keywords=None,
    )
    assert seed.dm_variations == ["Thanks! Here's your reward: [LINK]"]
    assert seed.dm_type == "quick_replies" and seed.delay_minutes == 1.5
    assert [(q.title, q.payload) for q in seed.quick_replies] == [("Yes", "Yes"), ("No", "NO")]
    assert seed.reply_link == "https://reward.example"
    assert seed.lead_settings.phone_region == "DE"
    assert seed.priority == 0 and seed.cooldown_minutes == 2 and seed.media_ids == ["123"]
    smart = stored({"dm_type": "smart_ai", "ai_prompt": "Answer about yoga."})
    assert smart.dm_type == "ai" and smart.ai is not None
    assert smart.ai.prompt == "Answer about yoga."
    reply = smart.ai_reply()
    assert reply is not None and reply.prompt == "Answer about yoga."
    held = stored({"ai": {"instructions": "Sell.", "require_approval": True}})
    assert held.ai is not None and held.ai.approval == "approve"
    assert stored({"ai": {"prompt": "p", "enabled": False}}).ai is None


def test_the_ai_settings_and_the_rules_address_are_read_through_the_definition() -> None:
    tuned = stored(
        {
            "ai": {
                "prompt": "Sell candles.",
                "max_sentences": 4,
                "max_chars": "5",
                "history_messages": 99,
                "fallback_reply": "A teammate will answer.",
            },
            "notification_email": "sales@example.com",
        }
    )
    reply = tuned.ai_reply()
    assert reply is not None and reply.fallback_reply == "A teammate will answer."
    assert (reply.max_sentences, reply.max_chars, reply.history_messages) == (4, 20, 40)
    assert tuned.notification_email == "sales@example.com"
    again = RuleDefinition.from_stored(tuned.stored_columns())
    assert again.ai_reply() == reply and again.notification_email == "sales@example.com"
    plain = stored({"ai": {"prompt": "Sell."}, "notification_email": 7})
    assert plain.ai_reply() is not None and plain.ai_reply().max_sentences == 2  # type: ignore[union-attr]
    assert plain.notification_email is None
    assert "max_sentences" not in (plain.stored_columns()["config"]["ai"])


def _body() -> dict[str, Any]:
    return {
        "name": "Price lead",
        "account_id": 3,
        "trigger": "comment",
        "keywords": ["price"],
        "comment_replies": ["Sent you a DM, {username}!"],
        "dm_type": "lead_capture",
        "delay_minutes": 1.5,
        "cooldown_minutes": 30,
        "lead_flow": [
            {
                "type": "branch",
                "id": "kind",
                "text": "Shop or wholesale?",
                "options": [{"title": "Shop", "goto": "mail"}, {"title": "Wholesale"}],
            },
            {"type": "ask", "id": "mail", "text": "Your email?", "field": "email"},
            {"type": "ask", "id": "co", "text": "Company?", "field": "custom", "key": "company"},
            {"type": "send", "id": "bye", "messages": ["Thanks! {link}", "Thank you!"]},
        ],
        "link": "https://shop.example/prices",
        "lead_settings": {"phone_region": "US", "webhook_secret": "s3cret"},
    }


def test_api_body_and_stored_json_round_trip() -> None:
    body = RuleDefinition.model_validate(_body())
    tidy, problems = review(body)
    assert problems == {}
    columns = tidy.stored_columns()
    assert columns["cooldown_s"] == 1800 and columns["config"]["dmType"] == "lead_capture"
    assert columns["config"]["lead_capture_flow"][2]["key"] == "company"
    again = RuleDefinition.from_stored({**columns, "account_id": 3})
    assert again == tidy
    assert again.stored_columns() == columns
    # What the API answers validates back into the same rule.
    assert RuleDefinition.model_validate(again.model_dump()) == tidy


def test_every_kind_of_dm_round_trips() -> None:
    kinds: list[dict[str, Any]] = [
        {"dm_type": "text", "dm_variations": ["Hi {link}"]},
        {
            "dm_type": "text_button",
            "dm_variations": ["Pick"],
            "buttons": [
                {"title": "Shop", "target": "https://shop.example"},
                {"title": "Talk", "target": "TALK"},
            ],
        },
        {"dm_type": "quick_replies", "dm_variations": ["Pick"], "quick_replies": [{"title": "A"}]},
        {"dm_type": "ai", "ai": {"prompt": "Sell candles.", "approval": "approve"}},
        {"dm_type": "none", "comment_replies": ["Thanks!"]},
    ]
    for kind in kinds:
        body = {"name": "r", "account_id": 1, "trigger": "comment", "keywords": ["x"], **kind}
        tidy, problems = review(RuleDefinition.model_validate(body))
        assert problems == {}, kind
        loaded = RuleDefinition.from_stored({**tidy.stored_columns(), "account_id": 1})
        assert loaded == tidy, kind


def test_problems_are_named_by_path() -> None:
    body = _body()
    body["lead_flow"][1]["goto"] = "nowhere"
    body["buttons"] = [{"title": "", "target": "X"}]
    body.update(name="", keywords=["a, b"], priority=5000, lead_settings={"phone_region": "USA"})
    _, problems = review(RuleDefinition.model_validate(body))
    assert set(problems) == {
        "name",
        "keywords",
        "priority",
        "lead_flow.1.goto",
        "lead_settings.phone_region",
    }
    assert problems["priority"] == "Use a number from -1000 to 1000."


def test_hide_comment_round_trips_and_is_refused_where_there_is_no_comment() -> None:
    body = {
        "name": "Spam",
        "account_id": 1,
        "trigger": "comment",
        "keywords": ["spam.example"],
        "dm_type": "none",
        "hide_comment": True,
    }
    definition = RuleDefinition.model_validate(body)
    columns = definition.stored_columns()
    assert columns["config"]["hide_comment"] is True
    assert RuleDefinition.from_stored({**columns, "account_id": 1}).hide_comment is True
    # A rule that only hides does something: no problem is raised for it.
    tidy, problems = review(definition)
    assert problems == {} and tidy.hide_comment is True
    # A stored config without the field (or an odd value) loads as "do not hide".
    assert stored({"hide_comment": "yes"}).hide_comment is False
    dm_rule = RuleDefinition.model_validate({**body, "trigger": "dm"})
    _, problems = review(dm_rule)
    assert "hide_comment" in problems


def test_follow_up_live_trigger_ads_and_next_post_round_trip_and_read_leniently() -> None:
    body = {
        "name": "Live",
        "account_id": 1,
        "trigger": "live_comment",
        "keywords": ["price"],
        "dm_type": "text",
        "dm_variations": ["Here."],
        "ad_comments": "also",
        "follow_up": {"wait_minutes": 90, "messages": ["Still there?", "Any questions?"]},
    }
    definition = RuleDefinition.model_validate(body)
    columns = definition.stored_columns()
    assert columns["config"]["follow_up"] == body["follow_up"]
    back = RuleDefinition.from_stored({**columns, "account_id": 1})
    assert back.follow_up == definition.follow_up and back.trigger == "live_comment"
    comment = RuleDefinition.model_validate(
        {**body, "trigger": "comment", "ad_comments": "only", "next_post": True}
    )
    stored = comment.stored_columns()
    assert stored["config"]["ad_comments"] == "only" and stored["config"]["next_post"] is True
    again = RuleDefinition.from_stored({**stored, "account_id": 1})
    assert again.waiting_for_post and not again.spec(1).active
    assert again.spec(1).ads == "only"
    odd = {**stored, "config": {**stored["config"], "ad_comments": 3, "follow_up": {"x": 1}}}
    lenient = RuleDefinition.from_stored({**odd, "account_id": 1})
    assert lenient.ad_comments == "also" and lenient.follow_up is None
