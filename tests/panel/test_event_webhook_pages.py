"""Event webhooks in the panel and the API: admins and owners only, the secret shown once,
the delivery log with re-send and a test event; OpenAPI documents what subscribers get."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from core.db.models import EventWebhook, EventWebhookDelivery, Role
from tests.panel.helpers import CSRF, sign_in_as, team_of_four, token_for


def _bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


async def test_an_admin_subscribes_in_the_panel_and_sees_the_secret_once(
    client: Any, sqlite_db: str
) -> None:
    members = await team_of_four()
    await sign_in_as(client, await members[Role.EDITOR].user)
    assert (await client.get("/settings/webhooks")).status_code == 403

    await sign_in_as(client, await members[Role.ADMIN].user)
    made = await client.post(
        "/settings/webhooks",
        data=urlencode(
            [
                ("csrf_token", CSRF),
                ("url", "https://hooks.example.com/reelay"),
                ("events", "lead.captured"),
                ("events", "post.failed"),
            ]
        ),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    page = await made.get_data(as_text=True)
    assert made.status_code == 201
    webhook = await EventWebhook.get(url="https://hooks.example.com/reelay")
    secret = page.split('data-testid="webhook-secret">', 1)[1].split("<", 1)[0]
    assert secret.startswith("whsec_") and secret not in webhook.secret_encrypted
    assert webhook.events == ["post.failed", "lead.captured"]
    listing = await (await client.get("/settings/webhooks")).get_data(as_text=True)
    assert "hooks.example.com/reelay" in listing and secret not in listing

    refused = await client.post(
        "/settings/webhooks",
        form={"csrf_token": CSRF, "url": "http://10.0.0.5/in", "events": ["post.failed"]},
    )
    assert refused.status_code == 422
    assert "private or local" in await refused.get_data(as_text=True)

    sent = await client.post(f"/settings/webhooks/{webhook.id}/test", form={"csrf_token": CSRF})
    assert sent.status_code == 302
    (test,) = await EventWebhookDelivery.filter(webhook_id=webhook.id)
    assert test.kind == "webhook.test"
    admin = await members[Role.ADMIN].user
    admin.timezone = "Asia/Tokyo"
    await admin.save()
    log = await (await client.get(f"/settings/webhooks/{webhook.id}")).get_data(as_text=True)
    assert "webhook.test" in log and "Re-send" in log and "Send a test event" in log
    made_at = test.created_at.astimezone(ZoneInfo("Asia/Tokyo"))
    assert f"{made_at:%Y-%m-%d %H:%M:%S} Asia/Tokyo" in log  # the viewer's own zone, named
    again = await client.post(
        f"/settings/webhooks/{webhook.id}/deliveries/{test.id}/resend", form={"csrf_token": CSRF}
    )
    assert again.status_code == 302
    assert await EventWebhookDelivery.filter(webhook_id=webhook.id).count() == 2

    await client.post(f"/settings/webhooks/{webhook.id}/switch", form={"csrf_token": CSRF})
    assert not (await EventWebhook.get(id=webhook.id)).active


async def test_the_api_manages_webhooks_for_admin_tokens_only(client: Any, sqlite_db: str) -> None:
    members = await team_of_four()
    _, editor = await token_for(members[Role.OWNER], Role.EDITOR)
    _, admin = await token_for(members[Role.OWNER], Role.ADMIN)
    body = {"url": "https://hooks.example.com/a", "events": ["comment.received"]}
    refused = await client.post("/api/v1/webhooks", json=body, headers=_bearer(editor))
    assert refused.status_code == 403
    assert (await client.get("/api/v1/webhooks", headers=_bearer(editor))).status_code == 403

    made = await client.post("/api/v1/webhooks", json=body, headers=_bearer(admin))
    assert made.status_code == 201
    created = await made.get_json()
    assert created["secret"].startswith("whsec_")
    read = await (
        await client.get(f"/api/v1/webhooks/{created['id']}", headers=_bearer(admin))
    ).get_json()
    assert "secret" not in read and read["events"] == ["comment.received"]
    bad = await client.post(
        "/api/v1/webhooks", json={**body, "events": ["nope"]}, headers=_bearer(admin)
    )
    assert bad.status_code == 422 and "events" in (await bad.get_json())["error"]["fields"]

    test = await client.post(f"/api/v1/webhooks/{created['id']}/test", headers=_bearer(admin))
    assert test.status_code == 202 and (await test.get_json())["type"] == "webhook.test"
    log = await (
        await client.get(f"/api/v1/webhooks/{created['id']}/deliveries", headers=_bearer(admin))
    ).get_json()
    assert [d["type"] for d in log["items"]] == ["webhook.test"] and log["next_cursor"] is None

    changed = await client.put(
        f"/api/v1/webhooks/{created['id']}",
        json={**body, "events": ["post.published"], "active": False},
        headers=_bearer(admin),
    )
    assert (await changed.get_json())["active"] is False
    gone = await client.delete(f"/api/v1/webhooks/{created['id']}", headers=_bearer(admin))
    assert gone.status_code == 204 and not await EventWebhook.exists()


async def test_openapi_documents_each_event_as_a_webhook(client: Any, app: Any) -> None:
    spec = await (await client.get("/api/v1/openapi.json")).get_json()
    assert spec["openapi"].startswith("3.1")
    kinds = set(spec["webhooks"])
    assert {
        "post.published",
        "post.failed",
        "lead.captured",
        "draft.approval_needed",
        "draft.decided",
        "post.approval_needed",
        "post.approval_decided",
        "comment.received",
        "account.needs_reconnect",
        "conversation.assigned",
        "conversation.message_received",
        "conversation.message_sent",
        "conversation.taken_over",
        "conversation.handed_back",
        "webhook.test",
    } == kinds
    lead = spec["webhooks"]["lead.captured"]["post"]
    envelope = lead["requestBody"]["content"]["application/json"]["schema"]
    assert envelope["properties"]["type"] == {"const": "lead.captured"}
    assert "email" in envelope["properties"]["data"]["properties"]
    assert lead["parameters"][0]["name"] == "X-Reelay-Signature"
