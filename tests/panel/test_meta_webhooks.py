"""The Meta webhook endpoint: handshake, signatures, batches, retries, malformed and random
bodies (hypothesis) through the endpoint and the worker."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from arq.jobs import Job
from hypothesis import HealthCheck, given, settings, strategies as st

from core.adapters.redis_server import RedisLocation
from core.db.models import EventStatus, WebhookEvent
from core.wiring import assemble_services
from panel import webhooks
from panel.webhooks import REFUSALS_LOGGED_EVERY_S
from tests.automation_world import (
    ACCOUNT_IG_ID,
    FakeMessaging,
    body_of,
    comment_payload,
    dm_payload,
    make_account,
    make_rule,
    sign,
)

URL = "/webhooks/meta"


async def post(client: Any, body: bytes, signature: str | None) -> Any:
    headers = {"Content-Type": "application/json"}
    if signature is not None:
        headers["X-Hub-Signature-256"] = signature
    return await client.post(URL, data=body, headers=headers)


async def test_verification_handshake(client: Any) -> None:
    ok = await client.get(
        URL,
        query_string={
            "hub.mode": "subscribe",
            "hub.verify_token": "verify-me",
            "hub.challenge": "1158201444",
        },
    )
    assert ok.status_code == 200 and await ok.get_data(as_text=True) == "1158201444"
    assert ok.content_type.startswith("text/plain")
    wrong = await client.get(
        URL,
        query_string={"hub.mode": "subscribe", "hub.verify_token": "nope", "hub.challenge": "x"},
    )
    missing = await client.get(URL, query_string={"hub.challenge": "x"})
    assert wrong.status_code == 403 and missing.status_code == 403


@pytest.mark.parametrize(
    "case", ["invalid", "missing", "wrong_secret", "altered_byte", "no_prefix", "empty"]
)
async def test_bad_signatures_are_refused_and_nothing_is_recorded(client: Any, case: str) -> None:
    body = body_of(comment_payload("c1", "price"))
    signature: str | None = {
        "invalid": "sha256=" + "0" * 64,
        "missing": None,
        "wrong_secret": sign(body, "another-secret"),
        "altered_byte": sign(body),
        "no_prefix": sign(body).removeprefix("sha256="),
        "empty": "",
    }[case]
    if case == "altered_byte":
        body = body.replace(b"price", b"pricf")
    response = await post(client, body, signature)
    assert response.status_code == 403
    assert await WebhookEvent.all().count() == 0


async def test_valid_signature_records_each_event_of_a_batch_once(
    client: Any, container: Any
) -> None:
    entries = [
        *comment_payload("c1", "price")["entry"],
        *comment_payload("c2", "price", shape="entry")["entry"],
        *dm_payload("m1", "hi")["entry"],
    ]
    body = json.dumps({"object": "instagram", "entry": entries}).encode()
    for _ in range(3):  # Meta retries
        response = await post(client, body, sign(body))
        assert response.status_code == 200
    rows = await WebhookEvent.all().order_by("id")
    assert [r.dedupe_key for r in rows] == [
        f"{ACCOUNT_IG_ID}:comment:c1",
        f"{ACCOUNT_IG_ID}:comment:c2",
        f"{ACCOUNT_IG_ID}:message:m1",
    ]
    assert all(r.status is EventStatus.PENDING for r in rows)
    # One handle_event job for the events recorded together, named after the first.
    job = await Job(f"event:{rows[0].id}", container.queue.pool).info()
    assert job is not None and job.function == "handle_event"
    assert list(job.args) == [r.id for r in rows]


async def test_facebook_app_secret_is_accepted_too(
    settings_factory: Any, redis: Any, redis_location: Any
) -> None:
    from panel.app import create_app
    from reelay.cli import open_services

    settings = settings_factory(facebook_app_secret="fb-secret")
    services = await open_services(settings, run_migrations=False, redis_location=redis_location)
    container = services.container
    try:
        app = create_app(settings, services=services)
        async with app.test_app() as test_app:
            body = body_of(dm_payload("m1", "hi"))
            client = test_app.test_client()
            assert (await post(client, body, sign(body, "fb-secret"))).status_code == 200
            assert (await post(client, body, sign(body, "app-secret"))).status_code == 200
            assert (await post(client, body, sign(body, "other"))).status_code == 403
    finally:
        # The session's Redis outlives this container.
        container.redis_location = RedisLocation(
            url=redis_location.url, unix_socket_path=redis_location.unix_socket_path
        )
        await container.close()


async def test_malformed_but_signed_json_is_recorded_as_failed_and_answered_200(
    client: Any,
) -> None:
    body = b'{"object": "instagram", "entry": [oops'
    for _ in range(2):
        response = await post(client, body, sign(body))
        assert response.status_code == 200
    (row,) = await WebhookEvent.all()
    assert row.status is EventStatus.FAILED and row.kind == "malformed"
    assert "not JSON" in row.error


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=25,
)
meta_keys = st.sampled_from(
    [
        "object",
        "entry",
        "id",
        "time",
        "changes",
        "field",
        "value",
        "messaging",
        "message",
        "postback",
        "sender",
        "recipient",
        "mid",
        "text",
        "from",
        "media",
        "comment_id",
        "username",
        "quick_reply",
        "payload",
        "reply_to",
        "story",
        "attachments",
        "type",
        "is_echo",
        "timestamp",
    ]
)
meta_like = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.sampled_from([ACCOUNT_IG_ID, "price", "comments", "x"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(meta_keys, inner, max_size=6),
    max_leaves=40,
)


def random_documents(count: int) -> list[Any]:
    documents: list[Any] = []

    @settings(
        max_examples=count, deadline=None, database=None, suppress_health_check=list(HealthCheck)
    )
    @given(
        st.one_of(
            json_values,
            meta_like,
            st.builds(
                lambda e: {"object": "instagram", "entry": e}, st.lists(meta_like, max_size=3)
            ),
        )
    )
    def collect(document: Any) -> None:
        documents.append(document)

    collect()
    return documents


async def test_random_signed_json_never_500s_nor_breaks_the_worker(
    client: Any, container: Any, caplog: pytest.LogCaptureFixture
) -> None:
    container.graph = FakeMessaging()
    account = await make_account(container)
    await make_rule(
        account, keywords=["price"], config={"comment_replies": ["r"], "message_variations": ["d"]}
    )
    engine = assemble_services(container).automations
    caplog.set_level(logging.ERROR)
    for document in random_documents(250):
        body = json.dumps(document).encode()
        response = await post(client, body, sign(body))
        assert response.status_code == 200, document
    for row in await WebhookEvent.filter(status=EventStatus.PENDING):
        outcome = await engine.handle_event(row.id)
        assert outcome.status is not EventStatus.FAILED, (row.payload, outcome)
    assert "failed unexpectedly" not in caplog.text


async def asgi_post(app: Any, body: bytes, headers: list[tuple[bytes, bytes]]) -> tuple[int, bytes]:
    """Call the app as uvicorn would (the POST fast path lives at the ASGI level)."""
    chunks = [body[: len(body) // 2], body[len(body) // 2 :]]
    messages = [
        {"type": "http.request", "body": chunk, "more_body": n < len(chunks) - 1}
        for n, chunk in enumerate(chunks)
    ]
    sent = await asgi_call(app, messages, headers)
    return sent[0]["status"], sent[1]["body"]


async def asgi_call(
    app: Any, messages: list[dict[str, Any]], headers: list[tuple[bytes, bytes]]
) -> list[dict[str, Any]]:
    """The messages the app sends for a POST to the webhook whose body comes as ``messages``."""
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return messages.pop(0)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/webhooks/meta",
        "raw_path": b"/webhooks/meta",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"localhost"), *headers],
        "client": ("127.0.0.1", 1234),
        "server": ("127.0.0.1", 8000),
    }
    await app.asgi_app(scope, receive, send)
    return sent


async def test_asgi_fast_path_checks_signatures_and_records(app: Any) -> None:
    quart_app = app.app
    body = body_of(comment_payload("c1", "price"))
    status, _ = await asgi_post(quart_app, body, [(b"x-hub-signature-256", sign(body).encode())])
    assert status == 200
    status, _ = await asgi_post(
        quart_app, body, [(b"x-hub-signature-256", sign(body, "x").encode())]
    )
    assert status == 403
    status, _ = await asgi_post(quart_app, body, [])
    assert status == 403
    assert [e.dedupe_key for e in await WebhookEvent.all()] == [f"{ACCOUNT_IG_ID}:comment:c1"]


async def test_bad_signatures_are_logged_as_one_line_per_interval(
    client: Any, app: Any, caplog: pytest.LogCaptureFixture
) -> None:
    now = [1000.0]
    app.app.extensions["reelay.webhook_refusals"].clock = lambda: now[0]
    caplog.set_level(logging.WARNING, logger="panel.webhooks")
    for _ in range(50):
        assert (await post(client, b"{}", "sha256=" + "0" * 64)).status_code == 403
    assert len(caplog.records) == 1
    now[0] += REFUSALS_LOGGED_EVERY_S
    assert (await post(client, b"{}", None)).status_code == 403
    assert len(caplog.records) == 2
    assert "50 webhook deliveries refused" in caplog.records[1].getMessage()


async def test_a_signed_body_nested_deep_with_nul_is_answered(client: Any) -> None:
    body = ("[" * 700 + '"\\u0000"' + "]" * 700).encode()
    response = await post(client, body, sign(body))
    assert response.status_code == 200


async def test_asgi_fast_path_stops_when_meta_goes_away_mid_body(app: Any) -> None:
    body = body_of(comment_payload("c1", "price"))
    messages = [
        {"type": "http.request", "body": body[:10], "more_body": True},
        {"type": "http.disconnect"},
    ]
    signed = [(b"x-hub-signature-256", sign(body).encode())]
    assert await asgi_call(app.app, messages, signed) == []
    assert await WebhookEvent.all().count() == 0


async def test_asgi_fast_path_refuses_a_body_over_the_limit(
    app: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    body = body_of(comment_payload("c1", "price"))
    monkeypatch.setattr(webhooks, "MAX_BODY", len(body) - 1)
    status, text = await asgi_post(app.app, body, [(b"x-hub-signature-256", sign(body).encode())])
    assert (status, text) == (413, b"too large")
    assert await WebhookEvent.all().count() == 0
