"""Exactly once under redelivery and concurrency: Meta's retries, interleaved, two workers."""

from __future__ import annotations

import asyncio
import json
import random
import warnings
from collections import Counter
from typing import Any

import pytest
from arq.worker import Worker

from core.db.models import (
    EventStatus,
    InstagramAccount,
    OutboundAction,
    OutboundStatus,
    RuleStats,
    Trigger,
    WebhookEvent,
)
from core.services.inbox import EVENTS_PER_JOB
from core.wiring import assemble_services
from jobs import events as event_jobs
from jobs.worker import worker_settings
from reelay.queue import arq_settings
from tests.automation_world import (
    FakeMessaging,
    comment_payload,
    dm_payload,
    make_account,
    make_rule,
    sign,
)

COMMENTS = 700
DMS = 300


# Seconds on an idle machine; the bound leaves room for a loaded CI box.
@pytest.mark.timeout(240)
async def test_1000_events_delivered_3_times_with_2_workers_act_once(
    client: Any, container: Any, settings: Any
) -> None:
    graph = FakeMessaging(latency_s=0.001)
    container.graph = graph
    account = await make_account(container)
    await InstagramAccount.filter(id=account.id).update(dm_pace_per_hour=360_000)
    comment_rule = await make_rule(
        account,
        keywords=["price"],
        config={"comment_replies": ["Sent!"], "message_variations": ["Prices: …"]},
    )
    dm_rule = await make_rule(
        account, trigger=Trigger.DM, keywords=["hello"], config={"message_variations": ["Hi!"]}
    )
    entries = [
        comment_payload(
            f"c{n}", "price?", sender=f"p{n}", shape=random.choice(["changes", "entry"])
        )["entry"][0]
        for n in range(COMMENTS)
    ] + [dm_payload(f"m{n}", "hello", sender=f"d{n}")["entry"][0] for n in range(DMS)]
    deliveries = entries * 3
    random.Random(5).shuffle(deliveries)

    def make_worker() -> Worker:
        options = worker_settings(
            settings,
            services=assemble_services(container),
            redis_settings=arq_settings(container.redis_location),
        )
        options.update(functions=event_jobs.FUNCTIONS, cron_jobs=[], poll_delay=0.01)
        return Worker(**options, burst=True)

    async def post_all() -> None:
        for start in range(0, len(deliveries), 50):
            body = json.dumps(
                {"object": "instagram", "entry": deliveries[start : start + 50]}
            ).encode()
            response = await client.post(
                "/webhooks/meta", data=body, headers={"X-Hub-Signature-256": sign(body)}
            )
            assert response.status_code == 200

    await post_all()
    workers = [make_worker(), make_worker()]
    try:
        await asyncio.gather(*(w.main() for w in workers))
    finally:
        with warnings.catch_warnings():
            # arq 0.28 closes its pool with redis' deprecated close().
            warnings.simplefilter("ignore", DeprecationWarning)
            for w in workers:
                await w.close()

    assert await WebhookEvent.all().count() == COMMENTS + DMS
    assert await WebhookEvent.filter(status=EventStatus.DONE).count() == COMMENTS + DMS
    targets = Counter((c.kind, json.dumps(c.recipient, sort_keys=True)) for c in graph.calls)
    assert len(graph.calls) == 2 * COMMENTS + DMS
    assert max(targets.values()) == 1
    assert await OutboundAction.filter(status=OutboundStatus.SENT).count() == 2 * COMMENTS + DMS
    comment_stats = await RuleStats.get(rule_id=comment_rule.id)
    assert (
        comment_stats.total_triggers,
        comment_stats.total_dms_sent,
        comment_stats.total_comments_replied,
    ) == (COMMENTS, COMMENTS, COMMENTS)
    assert (await RuleStats.get(rule_id=dm_rule.id)).total_dms_sent == DMS
    # Events recorded together share a job (at most EVENTS_PER_JOB each).
    assert sum(w.jobs_complete for w in workers) >= (COMMENTS + DMS) / EVENTS_PER_JOB
    assert all(w.jobs_complete > 0 for w in workers)
