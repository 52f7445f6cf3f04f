"""Ice breakers and the persistent menu: validation, the service's push to Meta, the taps."""

from __future__ import annotations

from typing import Any

import pytest

from core.db.models import AuditLog, EventStatus, InstagramAccount, MatchMode, Role, Trigger
from core.domain.graph_errors import ErrorKind, GraphError
from core.domain.messenger_profile import ProfileError, parse_profile
from core.domain.scope import Actor
from core.domain.webhooks import parse_body
from core.errors import Forbidden, NotFound, ValidationFailed
from core.services.accounts import account_ref
from core.services.inbox import record_events
from core.services.messenger_profiles import MessengerProfiles, MetaRefused
from tests.automation_world import (
    FakeClock,
    FakeMessaging,
    RecordingQueue,
    body_of,
    build_engine,
    make_account,
    make_rule,
    postback_payload,
)

DOCUMENT = {
    "ice_breakers": [
        {"question": "What are your opening hours?", "payload": "HOURS"},
        {"question": "Where do you ship?", "payload": "SHIPPING"},
    ],
    "menu": [
        {"type": "web_url", "title": "Our shop", "url": "https://shop.example"},
        {"type": "postback", "title": "Talk to us", "payload": "HUMAN"},
    ],
}


def test_a_profile_is_sent_to_meta_in_its_messenger_profile_shape() -> None:
    profile = parse_profile(DOCUMENT)
    assert profile.wire_fields() == {
        "platform": "instagram",
        "ice_breakers": [
            {
                "call_to_actions": [
                    {"question": "What are your opening hours?", "payload": "HOURS"},
                    {"question": "Where do you ship?", "payload": "SHIPPING"},
                ],
                "locale": "default",
            }
        ],
        "persistent_menu": [
            {
                "locale": "default",
                "call_to_actions": [
                    {"type": "web_url", "title": "Our shop", "url": "https://shop.example"},
                    {"type": "postback", "title": "Talk to us", "payload": "HUMAN"},
                ],
            }
        ],
    }
    assert profile.payloads() == ["HOURS", "SHIPPING", "HUMAN"]
    assert parse_profile(profile.as_json()) == profile
    assert parse_profile({}).absent_fields() == ["ice_breakers", "persistent_menu"]


def test_every_problem_is_named_at_once() -> None:
    five = [{"question": f"Question {n}?", "payload": f"Q{n}"} for n in range(5)]
    bad = {
        "ice_breakers": [*five[:3], {"question": "Question 0?", "payload": ""}, five[4]],
        "menu": [
            {"type": "web_url", "title": "x" * 81, "url": "javascript:alert(1)"},
            {"type": "phone_number", "title": "Call"},
        ],
    }
    with pytest.raises(ProfileError) as caught:
        parse_profile(bad)
    assert caught.value.problems == [
        "5 ice breakers; Instagram shows at most 4",
        "Ice breaker 4 needs a payload",
        "Ice breaker 4 repeats the question 'Question 0?'",
        "Menu item 1's title is 81 characters; at most 30",
        "Menu item 1 needs an http(s) URL",
        "Menu item 2 must be a web_url or postback button",
    ]


class FakeProfileGraph:
    def __init__(self, error: GraphError | None = None) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.error = error

    async def set_messenger_profile(self, account: Any, fields: Any) -> bool:
        if self.error:
            raise self.error
        self.calls.append(("set", fields))
        return True

    async def delete_messenger_profile(self, account: Any, fields: Any) -> bool:
        self.calls.append(("delete", list(fields)))
        return True


@pytest.fixture
async def account(container: Any) -> InstagramAccount:
    return await make_account(container)


def _actor(account: InstagramAccount, role: Role) -> Actor:
    return Actor(workspace_id=account.workspace_id, role=role, label=f"{role}@shop.example")


def _service(container: Any, graph: Any) -> MessengerProfiles:
    return MessengerProfiles(graph=graph, account_ref=lambda a: account_ref(container, a))


async def test_an_admin_saves_pushes_to_meta_and_a_viewer_reads(
    container: Any, account: InstagramAccount
) -> None:
    graph = FakeProfileGraph()
    service = _service(container, graph)
    saved = await service.save(_actor(account, Role.ADMIN), account.id, DOCUMENT)
    assert graph.calls == [("set", saved.wire_fields())]
    viewer = _actor(account, Role.VIEWER)
    assert await service.get(viewer, account.id) == saved
    with pytest.raises(Forbidden):
        await service.save(viewer, account.id, {})
    entry = await AuditLog.get(action="account.messenger_profile_changed")
    assert entry.details["ice_breakers"] == 2

    graph.calls.clear()
    emptied = await service.save(_actor(account, Role.OWNER), account.id, {"menu": []})
    assert emptied.is_empty
    assert graph.calls == [("delete", ["ice_breakers", "persistent_menu"])]
    other = Actor(workspace_id=account.workspace_id + 1, role=Role.OWNER, label="x")
    with pytest.raises(NotFound):
        await service.get(other, account.id)


async def test_bad_input_and_meta_refusals_store_nothing(
    container: Any, account: InstagramAccount
) -> None:
    refusal = GraphError(
        code=100, subcode=None, message="bad", kind=ErrorKind.PERMANENT, title="Meta refused"
    )
    service = _service(container, FakeProfileGraph(refusal))
    admin = _actor(account, Role.ADMIN)
    with pytest.raises(ValidationFailed) as caught:
        await service.save(admin, account.id, {"ice_breakers": [{"question": "Hi"}]})
    assert "Ice breaker 1 needs a payload" in caught.value.message
    with pytest.raises(MetaRefused) as refused:
        await service.save(admin, account.id, DOCUMENT)
    assert "Instagram did not accept the conversation starters: Meta refused" in str(refused.value)
    lost = GraphError(
        code=None,
        subcode=None,
        message="timeout",
        kind=ErrorKind.TRANSIENT,
        title="No answer",
        maybe_sent=True,
    )
    with pytest.raises(MetaRefused) as unanswered:
        await _service(container, FakeProfileGraph(lost)).save(admin, account.id, DOCUMENT)
    assert "Save again" in str(unanswered.value)
    assert (await service.get(admin, account.id)).is_empty
    assert not await AuditLog.filter(action="account.messenger_profile_changed").exists()


async def test_tapping_an_ice_breaker_fires_the_rule_on_its_payload(
    container: Any, account: InstagramAccount
) -> None:
    graph, queue, clock = FakeMessaging(), RecordingQueue(), FakeClock()
    engine = build_engine(container, graph, queue, clock)
    await make_rule(
        account,
        trigger=Trigger.POSTBACK,
        keywords=["HOURS"],
        match_mode=MatchMode.EXACT,
        config={"message_variations": ["We open at 9."]},
    )
    tap = postback_payload("m1", "What are your opening hours?", "HOURS", sender="p1")
    await record_events(parse_body(body_of(tap)), queue, clock.now())
    (job,) = queue.take("handle_event")
    outcome = await engine.handle_event(*job.args)
    assert outcome.status is EventStatus.DONE
    assert [m.payload for m in graph.messages()] == [{"text": "We open at 9."}]
