"""Idempotency keys and event-webhook planning on SQLite and PostgreSQL: one winner per key,
one delivery per (subscription, event), whatever runs at once."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.fernet import Fernet

from core.adapters.crypto import SecretBox
from core.db.models import DomainEvent, EventWebhookDelivery, Workspace
from core.domain.scope import Actor, Role
from core.services import idempotency
from core.services.event_webhooks import EventWebhooks
from tests.automation_world import FakeClock, RecordingQueue


class NoPoster:
    """A poster nothing is sent through here (planning only)."""

    def refusal(self, url: str) -> str | None:
        return None

    async def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> int:
        raise AssertionError("planning sends nothing")


async def test_one_request_wins_a_key_and_retries_get_its_answer(db: str) -> None:
    workspace = await Workspace.create(name="A")
    other = await Workspace.create(name="B")
    actor = Actor(workspace.id, Role.EDITOR, "api:t")
    now = datetime.now(UTC)
    print_ = idempotency.fingerprint("POST", "/api/v1/posts", b"", b"{}")

    outcomes = await asyncio.gather(
        *(idempotency.begin(actor, "k", print_, now) for _ in range(5)), return_exceptions=True
    )
    assert sum(result is None for result in outcomes) == 1
    assert all(isinstance(r, idempotency.KeyInUse) for r in outcomes if r is not None)

    answer = idempotency.StoredAnswer(201, "application/json", '{"id": 1}')
    await idempotency.finish(actor, "k", answer)
    assert await idempotency.begin(actor, "k", print_, now) == answer
    with pytest.raises(idempotency.KeyReused):
        await idempotency.begin(actor, "k", "another", now)
    # Another workspace's key of the same name is its own.
    assert await idempotency.begin(Actor(other.id, Role.EDITOR, "api:u"), "k", print_, now) is None
    # After a day the key is free again.
    assert await idempotency.begin(actor, "k", print_, now + timedelta(hours=25)) is None


async def test_planning_an_event_twice_at_once_makes_one_delivery(db: str) -> None:
    workspace = await Workspace.create(name="A")
    queue = RecordingQueue()
    service = EventWebhooks(
        queue=queue,
        clock=FakeClock(),
        poster=NoPoster(),
        secrets=SecretBox(Fernet.generate_key().decode()),
    )
    owner = Actor(workspace.id, Role.OWNER, "owner@example.com")
    await service.create(owner, url="https://a.example.com/h", events=["post.published"])
    await service.create(owner, url="https://b.example.com/h", events=["post.failed"])
    event = await DomainEvent.create(
        workspace_id=workspace.id, kind="post.published", payload={"post_id": 1}
    )
    planned = await asyncio.gather(*(service.plan(event.id) for _ in range(3)))
    assert sum(planned) == 1
    assert await EventWebhookDelivery.filter(event_id=event.id).count() == 1
    assert [job.job_id for job in queue.jobs] == [
        f"hook:{(await EventWebhookDelivery.get(event_id=event.id)).id}"
    ]
