"""Test doubles and builders for the automations engine: a recording Instagram, a recording
queue, a movable clock, Meta-shaped payloads and signatures."""

from __future__ import annotations

import asyncio
import functools
import hashlib
import hmac
import itertools
import json
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from core.db.models import (
    AutomationRule,
    InstagramAccount,
    LoginKind,
    MatchMode,
    Trigger,
    Workspace,
)
from core.domain.graph_errors import GraphError
from core.ports.instagram import AccountRef, Recipient, SentMessage
from core.services.automations import Automations
from core.services.leads import Leads
from core.services.outbox import Outbox
from core.services.tracked_links import LinkTracker

ACCOUNT_IG_ID = "17841400000000001"
APP_SECRET = "app-secret"
PUBLIC_BASE_URL = "https://reelay.example"


def sign(body: bytes, secret: str = APP_SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class FakeClock:
    def __init__(self, start: datetime | None = None) -> None:
        self.current = start or datetime.now(UTC).replace(microsecond=0)

    def now(self) -> datetime:
        return self.current

    def advance(self, **delta: float) -> None:
        self.current += timedelta(**delta)


@dataclass
class Call:
    kind: str  # "message" or "comment_reply"
    account: str
    recipient: dict[str, str]
    payload: dict[str, Any]
    tag: str | None = None  # a message tag (HUMAN_AGENT)


@dataclass
class FakeMessaging:
    """The messaging half of the InstagramClient port, recording every call."""

    calls: list[Call] = field(default_factory=list)
    errors: list[GraphError] = field(default_factory=list)  # raised by the next calls, in order
    latency_s: float = 0.0
    following: set[str] = field(default_factory=set)  # IGSIDs that follow the account
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    async def _maybe_fail(self) -> None:
        if self.latency_s:
            await asyncio.sleep(self.latency_s)
        if self.errors:
            raise self.errors.pop(0)

    async def send_message(
        self,
        account: AccountRef,
        recipient: Recipient,
        message: dict[str, Any],
        *,
        tag: str | None = None,
    ) -> SentMessage:
        self.calls.append(Call("message", account.ig_id, recipient.as_json(), message, tag))
        await self._maybe_fail()
        n = next(self._ids)
        return SentMessage(recipient_id=recipient.igsid or f"igsid-{n}", message_id=f"mid.out.{n}")

    async def reply_to_comment(self, account: AccountRef, comment_id: str, message: str) -> str:
        self.calls.append(
            Call("comment_reply", account.ig_id, {"comment_id": comment_id}, {"message": message})
        )
        await self._maybe_fail()
        return f"reply-{next(self._ids)}"

    async def user_profile(self, account: AccountRef, igsid: str) -> dict[str, Any]:
        self.calls.append(Call("follows", account.ig_id, {"id": igsid}, {}))
        await self._maybe_fail()
        return {"id": igsid, "is_user_follow_business": igsid in self.following}

    def messages(self) -> list[Call]:
        return [c for c in self.calls if c.kind == "message"]

    def replies(self) -> list[Call]:
        return [c for c in self.calls if c.kind == "comment_reply"]


@dataclass
class Job:
    function: str
    args: tuple[Any, ...]
    job_id: str | None
    defer_until: datetime | None


class RecordingQueue:
    """Keeps jobs (like arq, refuses a second job with a live id) for tests to run by hand."""

    def __init__(self) -> None:
        self.jobs: list[Job] = []

    async def enqueue(
        self,
        function: str,
        *args: Any,
        job_id: str | None = None,
        defer_until: datetime | None = None,
        defer_by_s: float | None = None,
    ) -> bool:
        if job_id is not None and any(j.job_id == job_id for j in self.jobs):
            return False
        self.jobs.append(Job(function, args, job_id, defer_until))
        return True

    async def job_exists(self, job_id: str) -> bool:
        return any(j.job_id == job_id for j in self.jobs)

    def take(self, function: str) -> list[Job]:
        found = [j for j in self.jobs if j.function == function]
        self.jobs = [j for j in self.jobs if j.function != function]
        return found


def build_engine(
    container: Any,
    graph: Any,
    queue: Any,
    clock: Any,
    *,
    seed: int = 7,
    poster: Any = None,
    profiles_gather_s: float = 0,
) -> Automations:
    from core.adapters.outgoing_webhooks import AiohttpWebhookPoster
    from core.services import followers
    from core.services.accounts import account_ref

    outbox = Outbox(
        graph=graph,
        queue=queue,
        redis=container.redis,
        clock=clock,
        settings=container.settings,
        account_ref=lambda account: account_ref(container, account),
        jitter=lambda: 0.5,
    )
    leads = Leads(
        queue=queue,
        clock=clock,
        poster=poster or AiohttpWebhookPoster(container.http, private_ok=True),
        secret_key=container.secret_key,
        secrets=container.secrets,
        backoff_base_s=1,
        jitter=lambda: 0.5,
    )
    return Automations(
        outbox=outbox,
        leads=leads,
        redis=container.redis,
        clock=clock,
        rng=random.Random(seed),
        links=LinkTracker(base_url=PUBLIC_BASE_URL),
        profiles=functools.partial(followers.queue_refreshes, queue, clock),
        # 0: queued after each batch, so tests read the queue at once.
        profiles_gather_s=profiles_gather_s,
    )


async def make_account(
    container: Any, *, ig_id: str = ACCOUNT_IG_ID, username: str = "reelay_shop", **extra: Any
) -> InstagramAccount:
    workspace = await Workspace.create(name="Shop")
    return await InstagramAccount.create(
        workspace=workspace,
        ig_id=ig_id,
        username=username,
        login_kind=LoginKind.INSTAGRAM,
        token_encrypted=container.secrets.encrypt("token-" + ig_id),
        **extra,
    )


async def make_rule(
    account: InstagramAccount,
    *,
    trigger: Trigger = Trigger.COMMENT,
    keywords: list[str] | None = None,
    match_mode: MatchMode = MatchMode.WHOLE_WORD,
    config: dict[str, Any] | None = None,
    **extra: Any,
) -> AutomationRule:
    return await AutomationRule.create(
        workspace_id=account.workspace_id,  # type: ignore[attr-defined]
        account=account,
        trigger=trigger,
        keywords=keywords if keywords is not None else ["price"],
        match_mode=match_mode,
        config=config if config is not None else {"message_variations": ["Here you go!"]},
        **extra,
    )


# ---------------------------------------------------------------- Meta payloads


def comment_payload(
    comment_id: str,
    text: str,
    *,
    sender: str = "igsid-1",
    username: str = "alice",
    media: str = "media-1",
    account: str = ACCOUNT_IG_ID,
    shape: str = "changes",
    id_field: str = "id",
    time: int | None = None,
) -> dict[str, Any]:
    value = {
        id_field: comment_id,
        "from": {"id": sender, "username": username},
        "text": text,
        "media": {"id": media, "media_product_type": "FEED"},
    }
    entry: dict[str, Any] = {"id": account, "time": time or int(datetime.now(UTC).timestamp())}
    if shape == "changes":
        entry["changes"] = [{"field": "comments", "value": value}]
    else:
        entry["field"] = "comments"
        entry["value"] = value
    return {"object": "instagram", "entry": [entry]}


def messaging_payload(
    item: dict[str, Any],
    *,
    sender: str = "igsid-1",
    account: str = ACCOUNT_IG_ID,
    timestamp_ms: int | None = None,
) -> dict[str, Any]:
    stamp = timestamp_ms or int(datetime.now(UTC).timestamp() * 1000)
    return {
        "object": "instagram",
        "entry": [
            {
                "id": account,
                "time": stamp,
                "messaging": [
                    {
                        "sender": {"id": sender},
                        "recipient": {"id": account},
                        "timestamp": stamp,
                        **item,
                    }
                ],
            }
        ],
    }


def dm_payload(mid: str, text: str, **kwargs: Any) -> dict[str, Any]:
    return messaging_payload({"message": {"mid": mid, "text": text}}, **kwargs)


def quick_reply_payload(mid: str, title: str, payload: str, **kwargs: Any) -> dict[str, Any]:
    message = {"mid": mid, "text": title, "quick_reply": {"payload": payload}}
    return messaging_payload({"message": message}, **kwargs)


def postback_payload(mid: str, title: str, payload: str, **kwargs: Any) -> dict[str, Any]:
    return messaging_payload(
        {"postback": {"mid": mid, "title": title, "payload": payload}}, **kwargs
    )


def story_reply_payload(mid: str, text: str, **kwargs: Any) -> dict[str, Any]:
    message = {
        "mid": mid,
        "text": text,
        "reply_to": {"story": {"id": "story-1", "url": "https://cdn.example/story.jpg"}},
    }
    return messaging_payload({"message": message}, **kwargs)


def story_mention_payload(mid: str, **kwargs: Any) -> dict[str, Any]:
    message = {
        "mid": mid,
        "attachments": [{"type": "story_mention", "payload": {"url": "https://cdn.example/m.jpg"}}],
    }
    return messaging_payload({"message": message}, **kwargs)


def echo_payload(mid: str, text: str, **kwargs: Any) -> dict[str, Any]:
    return messaging_payload({"message": {"mid": mid, "text": text, "is_echo": True}}, **kwargs)


def body_of(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload).encode()
