"""Tracked links from the outside: ``GET /l/<code>``, and the funnel on the rule page and API."""

from __future__ import annotations

from typing import Any

from core.db.models import Conversation, Membership, Role, RuleStats, TrackedLink
from core.services import users
from core.services.tracked_links import Sending
from tests.panel.helpers import sign_in_as, token_for
from tests.panel.test_api_rules import _account, _bearer, team  # noqa: F401

BROWSER = "Mozilla/5.0 (iPhone) Instagram 300.0"


async def _tracked_rule(
    client: Any,
    team: dict[str, Any],  # noqa: F811
    services: Any,
) -> tuple[int, str]:
    body = {
        "name": "Spring sale",
        "account_id": team["account"].id,
        "trigger": "comment",
        "keywords": ["price"],
        "dm_type": "text",
        "dm_variations": ["Prices: https://shop.example/p"],
        "track_links": True,
        "utm_tags": True,
    }
    made = await client.post("/api/v1/rules", json=body, headers=_bearer(team["editor"]))
    assert made.status_code == 201, await made.get_json()
    answer = await made.get_json()
    assert (answer["track_links"], answer["utm_tags"]) == (True, True)
    rule_id = int(answer["id"])
    account = team["account"]
    conversation = await Conversation.create(account=account, igsid="p1", username="ann")
    sent = await services.links.track(
        Sending(
            workspace_id=account.workspace_id,
            account_id=account.id,
            rule_id=rule_id,
            rule_name="Spring sale",
            conversation_id=conversation.id,
            igsid="p1",
            step="dm",
            at=services.container.clock.now(),
        ),
        {"text": "Prices: https://shop.example/p"},
        utm=True,
    )
    code = sent["text"].rsplit("/", 1)[1]
    await RuleStats.filter(rule_id=rule_id).update(total_triggers=3, total_dms_sent=2)
    return rule_id, code


async def test_a_tracked_link_redirects_counts_people_not_bots_and_sets_no_cookie(
    client: Any,
    team: dict[str, Any],  # noqa: F811
    services: Any,
) -> None:
    rule_id, code = await _tracked_rule(client, team, services)
    answer = await client.get(f"/l/{code}", headers={"User-Agent": BROWSER})
    assert answer.status_code == 302
    assert answer.headers["Location"] == (
        "https://shop.example/p?utm_source=instagram&utm_medium=dm&utm_campaign=spring-sale"
    )
    assert "Set-Cookie" not in answer.headers
    preview = await client.get(f"/l/{code}", headers={"User-Agent": "facebookexternalhit/1.1"})
    assert preview.status_code == 302
    assert (await TrackedLink.get(code=code)).clicks == 1
    assert (await client.get("/l/AAAAAAAAAAAAAAAA")).status_code == 404
    assert (await client.get("/l/nope")).status_code == 404

    funnel = await client.get(f"/api/v1/rules/{rule_id}/funnel", headers=_bearer(team["viewer"]))
    assert await funnel.get_json() == {
        "triggered": 3,
        "replied": 2,
        "dm_opened": None,
        "clicked": 1,
        "clicks": 1,
        "leads": 0,
    }
    await sign_in_as(client, await team["owner"].user)
    page = await (await client.get(f"/rules/{rule_id}")).get_data(as_text=True)
    assert 'id="rule-funnel"' in page
    assert '<td data-stage="clicked">1</td>' in page
    assert '<td data-stage="triggered">3</td>' in page
    assert 'name="track_links" checked' in page


async def test_another_workspace_does_not_see_the_funnel(
    client: Any,
    team: dict[str, Any],  # noqa: F811
    services: Any,
) -> None:
    rule_id, _ = await _tracked_rule(client, team, services)
    stranger, _ = await users.create_owner("stranger@example.com", "long enough pw")
    membership = await Membership.get(user=stranger)
    secret = (await token_for(membership, Role.VIEWER))[1]
    answer = await client.get(f"/api/v1/rules/{rule_id}/funnel", headers=_bearer(secret))
    assert answer.status_code == 404


async def test_tracked_links_are_limited_per_address(
    client: Any, services: Any, monkeypatch: Any
) -> None:
    from panel import links

    monkeypatch.setattr(links, "CLICKS_PER_MINUTE", 2)
    monkeypatch.setattr(links, "_minute", lambda: 12345)  # one minute throughout
    redis = services.container.redis
    for key in await redis.keys("reelay:link-hits:*"):  # Redis outlives each test
        await redis.delete(key)
    answers = [(await client.get("/l/AAAAAAAAAAAAAAAA")).status_code for _ in range(3)]
    assert answers == [404, 404, 429]
    monkeypatch.setattr(links, "_minute", lambda: 12346)
    assert (await client.get("/l/AAAAAAAAAAAAAAAA")).status_code == 404  # the next minute
