"""A Meta payload carrying NUL characters is stored without them (PostgreSQL refuses NUL in
text and JSON), on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from core.db.models import WebhookEvent
from core.domain.webhooks import parse_body
from core.services.inbox import InboxWriter


class RecordingQueue:
    def __init__(self) -> None:
        self.jobs: list[tuple[str, tuple[Any, ...]]] = []

    async def enqueue(self, function: str, *args: Any, **_: Any) -> bool:
        self.jobs.append((function, args))
        return True

    async def job_exists(self, job_id: str) -> bool:
        return False


def _body(text: str) -> bytes:
    return json.dumps(
        {
            "object": "instagram",
            "entry": [
                {
                    "id": "1784",
                    "time": 1755779280,
                    "changes": [
                        {
                            "field": "comments",
                            "value": {
                                "id": "c-nul",
                                "from": {"id": "igsid-9", "username": "eve\u0000"},
                                "text": text,
                                "media": {"id": "m-1", "media_product_type": "FEED"},
                            },
                        }
                    ],
                }
            ],
        }
    ).encode()


def test_parser_drops_nul_characters() -> None:
    events = parse_body(_body("price\u0000 please"))
    assert len(events) == 1
    assert "\x00" not in json.dumps(events[0].raw, ensure_ascii=False)
    assert "price please" in json.dumps(events[0].raw)


async def test_event_with_nul_is_stored(db: str) -> None:
    queue = RecordingQueue()
    recorded = await InboxWriter(queue, lambda: datetime.now(UTC)).submit(
        parse_body(_body("price\u0000"))
    )
    assert recorded.new == 1
    stored = await WebhookEvent.get(dedupe_key__contains="c-nul")
    assert "\x00" not in json.dumps(stored.payload, ensure_ascii=False)


def test_a_deeply_nested_body_with_nul_is_recorded_as_malformed() -> None:
    body = ("[" * 700 + '"\\u0000"' + "]" * 700).encode()
    events = parse_body(body)
    assert [event.kind.value for event in events] == ["malformed"]
    assert "nested too deeply" in (events[0].error or "")
