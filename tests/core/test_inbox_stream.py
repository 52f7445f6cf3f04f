"""The webhook inbox's stream (the default when Redis keeps an append-only file): Meta's
delivery is answered once Redis holds it, the worker's writer stores its events once and
hands them to the engine, and an entry leaves the stream only once its events are stored,
whoever writes it."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, cast

import pytest
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from core.adapters.redis_server import (
    RedisLocation,
    keeps_appends_on_disk,
    start_embedded_redis,
)
from core.db.models import EventStatus, WebhookEvent
from core.services.inbox_stream import GROUP, STREAM_KEY, InboxStream
from core.wiring import Services, inbox_through_stream
from reelay.cli import open_services
from tests.automation_world import ACCOUNT_IG_ID, body_of, dm_payload, sign

URL = "/webhooks/meta"


@pytest.fixture
async def stream_services(
    settings_factory: Any, redis_location: RedisLocation, redis: Redis
) -> Any:
    settings = settings_factory(webhook_inbox="stream")
    built = await open_services(settings, run_migrations=False, redis_location=redis_location)
    built.container.redis_location = RedisLocation(
        url=redis_location.url, unix_socket_path=redis_location.unix_socket_path
    )
    yield settings, built
    await built.close()


async def post(client: Any, body: bytes) -> int:
    headers = {"Content-Type": "application/json", "X-Hub-Signature-256": sign(body)}
    response = await client.post(URL, data=body, headers=headers)
    return int(response.status_code)


def writer_of(services: Services, redis: Redis, engine: Any, **options: Any) -> InboxStream:
    """A writer of its own over ``services``' queue and clock, handing events to ``engine``."""
    queue, clock = services.container.queue, services.container.clock
    return InboxStream(redis, queue, clock.now, engine=engine, consumer="own", **options)


def stream_of(services: Services) -> InboxStream:
    assert services.inbox_stream is not None
    return services.inbox_stream


async def assert_stored_once_unhandled(redis: Redis, message_id: str) -> None:
    """The delivery's one event is stored once and off the stream; the engine found no
    account for its entry (none exists in these tests), which it records as the reason."""
    (row,) = await WebhookEvent.all()
    assert row.dedupe_key == f"{ACCOUNT_IG_ID}:message:{message_id}"
    assert row.status is EventStatus.IGNORED and "no active account" in row.error
    assert await redis.xlen(STREAM_KEY) == 0


async def test_a_delivery_is_answered_from_redis_and_stored_once_by_the_writer(
    stream_services: Any, redis: Redis
) -> None:
    from panel.app import create_app

    settings, services = stream_services
    app = create_app(settings, services=services)
    body = body_of(dm_payload("m1", "price?"))
    async with app.test_app() as test_app:
        client = test_app.test_client()
        for _ in range(3):  # Meta retries
            assert await post(client, body) == 200
        # Answered once Redis holds them; the database has not been touched yet.
        assert await redis.xlen(STREAM_KEY) == 3
        assert await WebhookEvent.all().count() == 0
        stream = stream_of(services)
        assert await stream.drain() == 3
        await stream.handled()
    # Handed to the engine of this process, no job.
    await assert_stored_once_unhandled(redis, "m1")


async def test_entries_a_dead_writer_read_are_written_by_another(
    stream_services: Any, redis: Redis
) -> None:
    _, services = stream_services
    dead = InboxStream(
        redis,
        services.container.queue,
        services.container.clock.now,
        engine=_no_engine,
        consumer="a",
    )
    await stream_of(services).append(body_of(dm_payload("m1", "hi")))
    await dead.reclaim()  # makes the group
    assert len(await dead._read(None)) == 1  # read, then the process died
    other = InboxStream(
        redis,
        services.container.queue,
        services.container.clock.now,
        engine=_no_engine,
        consumer="b",
    )
    assert await other.reclaim() == 0  # not idle long enough: its writer may still be at it
    assert await other.reclaim(idle_ms=0) == 1
    assert await WebhookEvent.filter(dedupe_key=f"{ACCOUNT_IG_ID}:message:m1").count() == 1
    assert await redis.xlen(STREAM_KEY) == 0
    assert (await redis.xpending(STREAM_KEY, GROUP))["pending"] == 0


async def test_a_failed_write_leaves_the_delivery_in_the_stream(
    stream_services: Any, redis: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, services = stream_services
    stream = stream_of(services)
    await stream.append(body_of(dm_payload("m1", "hi")))

    async def broken(requests: Any) -> Any:
        raise ConnectionError("database unreachable")

    monkeypatch.setattr(stream._writer, "record_batch", broken)
    with pytest.raises(ConnectionError):
        await stream.drain()
    assert await redis.xlen(STREAM_KEY) == 1
    monkeypatch.undo()
    assert await stream.drain() == 1
    await stream.handled()
    assert await WebhookEvent.all().count() == 1
    assert await redis.xlen(STREAM_KEY) == 0


async def test_the_worker_writes_while_it_runs_and_finishes_its_batch_when_stopped(
    stream_services: Any, redis: Redis
) -> None:
    _, services = stream_services
    stream = stream_of(services)
    stream.start()
    try:
        await stream.append(body_of(dm_payload("m1", "hi")))
        for _ in range(200):
            if await WebhookEvent.all().count():
                break
            await asyncio.sleep(0.02)
        await stream.append(body_of(dm_payload("m2", "hi")))
    finally:
        await stream.stop()
    keys = await WebhookEvent.all().order_by("id").values_list("dedupe_key", flat=True)
    assert keys == [f"{ACCOUNT_IG_ID}:message:m1", f"{ACCOUNT_IG_ID}:message:m2"]
    assert await redis.xlen(STREAM_KEY) == 0


@pytest.mark.parametrize(
    ("inbox", "database", "on_disk", "expected"),
    [
        ("auto", "", True, True),  # SQLite and the embedded Redis: the default
        ("auto", "postgres://u@localhost/reelay", True, True),  # e.g. docker-compose's Redis
        ("auto", "", False, False),  # what Redis acknowledged would not outlive a restart
        ("auto", "postgres://u@localhost/reelay", False, False),
        ("stream", "postgres://u@localhost/reelay", False, True),
        ("database", "", True, False),
    ],
)
def test_where_deliveries_go(
    settings_factory: Any, inbox: str, database: str, on_disk: bool, expected: bool
) -> None:
    settings = settings_factory(webhook_inbox=inbox, database_url=database)
    assert inbox_through_stream(settings, redis_on_disk=on_disk) is expected


async def test_redis_says_whether_it_keeps_an_append_only_file(tmp_path: Path) -> None:
    location = start_embedded_redis(tmp_path / "redis")
    client = Redis(**location.connection_kwargs())
    try:
        assert await keeps_appends_on_disk(client)
        await client.config_set("appendonly", "no")
        assert not await keeps_appends_on_disk(client)
    finally:
        await client.aclose()
        location.stop()


async def test_a_redis_that_will_not_say_counts_as_not_keeping_it() -> None:
    class Refusing:
        async def info(self, section: str) -> dict[str, Any]:
            raise ResponseError("unknown command 'INFO'")

    assert not await keeps_appends_on_disk(cast(Redis, Refusing()))


async def _no_engine(event_ids: Any) -> None:
    return None


def test_the_embedded_redis_keeps_a_delivery_across_a_restart(tmp_path: Path) -> None:
    """A delivery answered from Redis survives Redis stopping: its append-only file."""
    import redis as sync_redis

    location = start_embedded_redis(tmp_path / "redis")
    client = sync_redis.Redis(unix_socket_path=location.unix_socket_path)
    client.xadd(STREAM_KEY, {b"body": b"{}"})
    client.close()
    location.stop()
    location = start_embedded_redis(tmp_path / "redis")
    client = sync_redis.Redis(unix_socket_path=location.unix_socket_path)
    try:
        assert client.xlen(STREAM_KEY) == 1
    finally:
        client.close()
        location.stop()


@pytest.mark.parametrize("together", [True, False])
async def test_on_one_connection_the_engine_handles_a_batch_before_the_next_is_read(
    stream_services: Any, redis: Redis, together: bool
) -> None:
    _, services = stream_services
    release = asyncio.Event()
    handled: list[int] = []

    async def engine(event_ids: Any) -> None:
        await release.wait()
        handled.extend(event_ids)

    async def store_and_handle(store: Any) -> None:
        await engine(await store())

    options = {"together": store_and_handle} if together else {}
    stream = writer_of(services, redis, engine, **options)
    await stream.append(body_of(dm_payload("t1", "price?")))
    writing = asyncio.create_task(stream.drain())
    await asyncio.sleep(0.3)
    # Together (SQLite): the writer waits for the engine before it reads on; otherwise it
    # has stored the events and goes on while the engine works.
    assert writing.done() is not together
    release.set()
    assert await writing == 1
    await stream.handled()
    assert len(handled) == 1
    assert await WebhookEvent.filter(id__in=handled).count() == 1


async def test_a_sqlite_install_stores_and_handles_a_batch_in_one_transaction(
    stream_services: Any, redis: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tortoise import connections
    from tortoise.backends.base.client import TransactionalDBClient

    from core.services import automations as automations_module

    settings, services = stream_services
    assert settings.resolved_database_url.startswith("sqlite")
    stream = stream_of(services)
    seen: list[tuple[str, bool]] = []  # (step, inside a transaction)

    def watch(step: str, real: Any) -> Any:
        async def watched(*args: Any) -> Any:
            inside = isinstance(connections.get("default"), TransactionalDBClient)
            seen.append((step, inside))
            return await real(*args)

        return watched

    monkeypatch.setattr(stream._writer, "record_batch", watch("store", stream._writer.record_batch))
    claim = watch("claim", automations_module.claim_events)
    monkeypatch.setattr(automations_module, "claim_events", claim)
    await stream.append(body_of(dm_payload("o1", "price?")))
    await stream.append(body_of(dm_payload("o2", "price?")))
    assert await stream.drain() == 2
    await stream.handled()
    # Stored, then claimed and handled (no account: ignored, with the reason), all inside
    # the engine's one transaction.
    assert seen == [("store", True), ("claim", True)]
    rows = await WebhookEvent.all().order_by("id")
    assert [r.dedupe_key for r in rows] == [
        f"{ACCOUNT_IG_ID}:message:o1",
        f"{ACCOUNT_IG_ID}:message:o2",
    ]
    assert all(r.status is EventStatus.IGNORED and "no active account" in r.error for r in rows)


async def test_a_large_batch_is_stored_and_handled_in_transactions_of_bounded_size(
    stream_services: Any, redis: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    from core.services import inbox_stream

    monkeypatch.setattr(inbox_stream, "TOGETHER", 2)
    _, services = stream_services
    sizes: list[int] = []
    handled: list[int] = []

    async def store_and_handle(store: Any) -> None:
        ids = await store()
        sizes.append(len(ids))
        handled.extend(ids)

    stream = writer_of(services, redis, _no_engine, together=store_and_handle)
    for n in range(5):
        await stream.append(body_of(dm_payload(f"b{n}", "price?")))
    assert await stream.drain() == 5
    # Five deliveries read at once, stored and handled two at a time (the memory a
    # transaction holds stays bounded); each stored once, and only then off the stream.
    assert sizes == [2, 2, 1]
    assert await WebhookEvent.filter(id__in=handled).count() == 5
    assert await redis.xlen(STREAM_KEY) == 0


async def test_when_the_shared_transaction_fails_the_events_are_stored_and_handled_alone(
    stream_services: Any, redis: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    from core.services import automations as automations_module

    _, services = stream_services
    stream = stream_of(services)
    real = automations_module.claim_events
    failures = ["database is locked"]

    async def claim_failing_once(event_ids: Any, now: Any) -> Any:
        if failures:
            raise RuntimeError(failures.pop())
        return await real(event_ids, now)

    monkeypatch.setattr(automations_module, "claim_events", claim_failing_once)
    await stream.append(body_of(dm_payload("f1", "price?")))
    assert await stream.drain() == 1
    await stream.handled()
    assert failures == []
    # The failed transaction kept nothing; the event was stored again on its own, once.
    await assert_stored_once_unhandled(redis, "f1")


async def test_a_slow_send_holds_no_ones_turn_and_handled_waits_for_it(
    stream_services: Any, redis: Redis
) -> None:
    _, services = stream_services
    answered = asyncio.Event()  # Meta's answer to the send, slow to come
    sends_done: list[str] = []

    async def store_and_handle(store: Any) -> None:
        await store()  # handled; its send goes on in the background

    async def sends() -> None:
        await answered.wait()
        sends_done.append("sent")

    stream = writer_of(services, redis, _no_engine, together=store_and_handle, sends=sends)
    await stream.append(body_of(dm_payload("s1", "price?")))
    assert await asyncio.wait_for(stream.drain(), 5) == 1  # the writer reads on
    waiting = asyncio.create_task(stream.handled())
    await asyncio.sleep(0.2)
    assert not waiting.done()
    answered.set()
    await asyncio.wait_for(waiting, 5)
    assert sends_done == ["sent"]


async def test_a_worker_whose_panel_writes_deliveries_still_writes_what_the_stream_kept(
    settings_factory: Any, redis_location: RedisLocation, redis: Redis
) -> None:
    """Deliveries answered from Redis while the stream was on are not lost when the setting
    changes (WEBHOOK_INBOX, or Redis's append-only file turned off): the next worker writes
    them before it takes jobs."""
    from jobs.worker import worker_settings

    settings = settings_factory(webhook_inbox="database")
    services = await open_services(settings, run_migrations=False, redis_location=redis_location)
    services.container.redis_location = RedisLocation(  # the fixture's Redis outlives them
        url=redis_location.url, unix_socket_path=redis_location.unix_socket_path
    )
    try:
        assert services.inbox_stream is None  # the panel writes deliveries now
        await services.stream_writer.append(body_of(dm_payload("m1", "kept")))
        options = worker_settings(settings, services=services)
        ctx: dict[str, Any] = {}
        await options["on_startup"](ctx)
        await assert_stored_once_unhandled(redis, "m1")
        await options["on_startup"](ctx)  # nothing left: nothing written twice
        assert await WebhookEvent.all().count() == 1
        await options["on_shutdown"](ctx)
    finally:
        await services.close()


async def test_metrics_show_the_deliveries_waiting_for_a_worker(
    stream_services: Any, redis: Redis
) -> None:
    from panel.app import create_app

    settings, services = stream_services
    app = create_app(settings, services=services)
    async with app.test_app() as test_app:
        client = test_app.test_client()
        for n in range(2):
            assert await post(client, body_of(dm_payload(f"m{n}", "hi"))) == 200
        text = await (await client.get("/metrics")).get_data(as_text=True)
        assert "reelay_inbox_waiting 2.0" in text
        await stream_of(services).drain()
        await stream_of(services).handled()
        text = await (await client.get("/metrics")).get_data(as_text=True)
        assert "reelay_inbox_waiting 0.0" in text
