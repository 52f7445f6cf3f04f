"""ig.me links with a ref: the rule's shape, Meta's referral webhooks, and the engine."""

from __future__ import annotations

import json
from typing import Any

import pytest

from core.db.models import EventStatus, InstagramAccount, MatchMode, Trigger
from core.domain.rule_checks import review
from core.domain.rule_definition import RuleDefinition
from core.domain.webhooks import EventKind, parse_body
from core.services.inbox import record_events
from tests.automation_world import (
    FakeClock,
    FakeMessaging,
    RecordingQueue,
    build_engine,
    make_account,
    make_rule,
    messaging_payload,
)


def _ref_rule(**changes: Any) -> RuleDefinition:
    body: dict[str, Any] = {
        "name": "Poster",
        "account_id": 1,
        "trigger": "ref_link",
        "ref_code": "Spring-Sale",
        "dm_type": "text",
        "dm_variations": ["Welcome from the poster!"],
    }
    return RuleDefinition.model_validate({**body, **changes})


def test_a_ref_link_rule_is_stored_as_its_exact_ref_and_read_back() -> None:
    tidy, problems = review(_ref_rule(keywords=["ignored"]))
    assert problems == {}
    assert (tidy.ref_code, tidy.keywords, tidy.match_mode) == ("spring-sale", [], "exact")
    columns = tidy.stored_columns()
    assert (columns["keywords"], columns["match_mode"]) == (["spring-sale"], "exact")
    back = RuleDefinition.from_stored({**columns, "account_id": 1})
    assert back.ref_code == "spring-sale" and back.keywords == []
    assert back.ig_me_link("shop") == "https://ig.me/m/shop?ref=spring-sale"
    assert review(_ref_rule(trigger="comment", keywords=["x"]))[0].ig_me_link("shop") == ""


@pytest.mark.parametrize("ref", ["", "-edge", "two words", "x" * 41, "ünïcode"])
def test_a_ref_must_be_short_plain_and_present(ref: str) -> None:
    assert "ref_code" in review(_ref_rule(ref_code=ref))[1]


def _body(item: dict[str, Any]) -> bytes:
    return json.dumps(messaging_payload(item, sender="p1")).encode()


def test_referrals_and_postbacks_carry_the_ref() -> None:
    (referral,) = parse_body(
        _body(
            {
                "referral": {
                    "ref": "spring-sale",
                    "source": "IGME_SOURCE_LINK",
                    "type": "OPEN_THREAD",
                }
            }
        )
    )
    assert (referral.kind, referral.ref, referral.trigger) == (
        EventKind.REFERRAL,
        "spring-sale",
        "ref_link",
    )
    (tap,) = parse_body(
        _body(
            {
                "postback": {
                    "mid": "m1",
                    "title": "Start",
                    "payload": "START",
                    "referral": {"ref": "spring-sale", "source": "IGME_SOURCE_LINK"},
                }
            }
        )
    )
    assert (tap.kind, tap.payload, tap.ref) == (EventKind.POSTBACK, "START", "spring-sale")


@pytest.fixture
async def account(container: Any) -> InstagramAccount:
    return await make_account(container)


async def test_a_referral_or_a_postback_with_its_ref_fires_the_rule(
    container: Any, account: Any
) -> None:
    graph, queue, clock = FakeMessaging(), RecordingQueue(), FakeClock()
    engine = build_engine(container, graph, queue, clock)
    config = RuleDefinition.model_validate(
        {
            "name": "Poster",
            "account_id": account.id,
            "trigger": "ref_link",
            "ref_code": "spring-sale",
            "dm_variations": ["Welcome from the poster!"],
        }
    ).stored_columns()["config"]
    rule = await make_rule(
        account,
        trigger=Trigger.REF_LINK,
        keywords=["spring-sale"],
        match_mode=MatchMode.EXACT,
        config=config,
    )
    await make_rule(
        account,
        trigger=Trigger.POSTBACK,
        keywords=["START"],
        match_mode=MatchMode.EXACT,
        config={"message_variations": ["Plain postback"]},
    )

    async def deliver(item: dict[str, Any], sender: str) -> Any:
        payload = messaging_payload(item, sender=sender)
        await record_events(parse_body(json.dumps(payload).encode()), queue, clock.now())
        (job,) = queue.take("handle_event")
        return await engine.handle_event(*job.args)

    opened = await deliver({"referral": {"ref": "spring-sale", "type": "OPEN_THREAD"}}, "p1")
    assert opened.status is EventStatus.DONE and opened.rule_id == rule.id
    other = await deliver({"referral": {"ref": "winter", "type": "OPEN_THREAD"}}, "p2")
    assert other.status is EventStatus.IGNORED
    tap = {"mid": "m9", "title": "Start", "payload": "START", "referral": {"ref": "spring-sale"}}
    tapped = await deliver({"postback": tap}, "p3")
    assert tapped.rule_id == rule.id
    plain = await deliver({"postback": {**tap, "mid": "m10", "referral": {}}}, "p4")
    assert plain.rule_id != rule.id and plain.status is EventStatus.DONE
    texts = [(c.recipient["id"], c.payload["text"]) for c in graph.messages()]
    assert texts == [
        ("p1", "Welcome from the poster!"),
        ("p3", "Welcome from the poster!"),
        ("p4", "Plain postback"),
    ]


def test_the_sandbox_console_reads_the_ref_from_an_ig_me_link() -> None:
    from aiohttp import web

    from sandbox.console import ig_me_ref

    assert ig_me_ref({"link": "https://ig.me/m/shop?ref=poster"}) == "poster"
    assert ig_me_ref({"ref": "flyer", "link": "https://ig.me/m/shop?ref=poster"}) == "flyer"
    with pytest.raises(web.HTTPBadRequest):
        ig_me_ref({"link": "https://ig.me/m/shop"})
