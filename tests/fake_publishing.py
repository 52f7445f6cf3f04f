"""In-memory doubles for publishing tests: an Instagram that keeps a feed, a queue, a clock."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from core.domain.graph_errors import ErrorKind, GraphError
from core.ports.instagram import AccountRef, ContainerStatus, PublishingLimit


def graph_error(kind: ErrorKind, title: str = "boom", **extra: Any) -> GraphError:
    return GraphError(code=1, subcode=None, message=title, kind=kind, title=title, **extra)


class FakeClock:
    def __init__(self, start: datetime | None = None) -> None:
        self.current = start or datetime(2030, 1, 1, 9, 0, tzinfo=UTC)

    def now(self) -> datetime:
        return self.current

    def advance(self, seconds: float) -> None:
        self.current += timedelta(seconds=seconds)

    async def sleep(self, seconds: float) -> None:
        self.advance(seconds)


@dataclass
class QueuedJob:
    function: str
    args: tuple[Any, ...]
    job_id: str
    at: datetime | None


class FakeQueue:
    """Keeps queued jobs; like arq, refuses a second live job with the same id."""

    def __init__(self) -> None:
        self.jobs: list[QueuedJob] = []
        self.done: set[str] = set()

    async def enqueue(
        self,
        function: str,
        *args: Any,
        job_id: str | None = None,
        defer_until: datetime | None = None,
        defer_by_s: float | None = None,
    ) -> bool:
        jid = job_id or f"auto-{len(self.jobs)}-{len(self.done)}"
        if await self.job_exists(jid):
            return False
        self.jobs.append(QueuedJob(function, args, jid, defer_until))
        return True

    async def job_exists(self, job_id: str) -> bool:
        return job_id in self.done or any(j.job_id == job_id for j in self.jobs)

    def flush(self) -> None:
        self.jobs.clear()
        self.done.clear()

    def pop_next(self) -> QueuedJob | None:
        if not self.jobs:
            return None
        job = min(self.jobs, key=lambda j: j.at or datetime.min.replace(tzinfo=UTC))
        self.jobs.remove(job)
        return job


@dataclass
class FakeContainer:
    id: str
    kind: str
    url: str
    caption: str | None
    children: Sequence[str] = ()
    polls_left: int = 0  # status reads that still answer IN_PROGRESS
    status_code: str = "FINISHED"
    status: str = ""
    media_id: str | None = None


@dataclass
class FakeInstagram:
    """The InstagramClient port in memory: containers, a feed, comments and scripted faults."""

    video_polls: int = 0
    quota_usage: int = 0
    quota_total: int = 100
    containers: dict[str, FakeContainer] = field(default_factory=dict)
    feed: list[dict[str, Any]] = field(default_factory=list)
    comments: list[tuple[str, str]] = field(default_factory=list)
    calls: list[str] = field(default_factory=list)
    # method name -> errors raised by its next calls, in order
    faults: dict[str, list[BaseException]] = field(default_factory=dict)
    # called with the method name before every call (to inject faults by rule)
    before: Callable[[str], None] | None = None
    # method name -> hook run after the call took effect (a crash before the answer)
    after: dict[str, Callable[[], None]] = field(default_factory=dict)
    error_children: set[int] = field(default_factory=set)  # 1-based carousel items to fail
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1000))

    def _call(self, name: str) -> None:
        self.calls.append(name)
        if self.before is not None:
            self.before(name)
        queued = self.faults.get(name)
        if queued:
            raise queued.pop(0)

    def _after(self, name: str) -> None:
        hook = self.after.pop(name, None)
        if hook is not None:
            hook()

    def _new(self, kind: str, url: str, caption: str | None, **extra: Any) -> str:
        cid = str(next(self._ids))
        video = kind in {"REELS", "VIDEO"} or (kind == "STORIES" and url.endswith(".mp4"))
        self.containers[cid] = FakeContainer(
            cid, kind, url, caption, polls_left=self.video_polls if video else 0, **extra
        )
        return cid

    async def create_image_container(
        self, account: AccountRef, image_url: str, *, is_carousel_item: bool = False, **kw: Any
    ) -> str:
        self._call("create_image_container")
        return self._new(
            "CAROUSEL_ITEM" if is_carousel_item else "IMAGE", image_url, kw.get("caption")
        )

    async def create_video_container(
        self,
        account: AccountRef,
        video_url: str,
        *,
        media_type: str = "REELS",
        is_carousel_item: bool = False,
        **kw: Any,
    ) -> str:
        self._call("create_video_container")
        cid = self._new(media_type, video_url, kw.get("caption"))
        return cid

    async def create_story_container(
        self, account: AccountRef, *, image_url: str | None = None, video_url: str | None = None
    ) -> str:
        self._call("create_story_container")
        return self._new("STORIES", image_url or video_url or "", None)

    async def create_carousel_container(
        self, account: AccountRef, children: Sequence[str], *, caption: str | None = None, **kw: Any
    ) -> str:
        self._call("create_carousel_container")
        return self._new("CAROUSEL", "", caption, children=list(children))

    async def container_status(self, account: AccountRef, container_id: str) -> ContainerStatus:
        self._call("container_status")
        box = self.containers[container_id]
        if box.polls_left > 0:
            box.polls_left -= 1
            return ContainerStatus("IN_PROGRESS", "In progress")
        return ContainerStatus(box.status_code, box.status)

    async def publish_container(self, account: AccountRef, container_id: str) -> str:
        self._call("publish_container")
        box = self.containers[container_id]
        if box.status_code == "PUBLISHED":
            raise graph_error(ErrorKind.PERMANENT, "container already published")
        if box.polls_left > 0 or box.status_code != "FINISHED":
            raise graph_error(ErrorKind.NOT_READY, "not ready")
        media_id = f"m{next(self._ids)}"
        box.status_code, box.media_id = "PUBLISHED", media_id
        self.feed.insert(
            0,
            {
                "id": media_id,
                "caption": box.caption or "",
                "container": container_id,
                "timestamp": "2030-01-01T09:00:00+0000",
            },
        )
        self._after("publish_container")
        return media_id

    async def media_fields(
        self, account: AccountRef, media_id: str, fields: Sequence[str] = ("permalink", "timestamp")
    ) -> dict[str, Any]:
        self._call("media_fields")
        return {"id": media_id, "permalink": f"https://instagram.test/p/{media_id}"}

    async def post_comment(self, account: AccountRef, media_id: str, message: str) -> str:
        self._call("post_comment")
        self.comments.append((media_id, message))
        return f"c{next(self._ids)}"

    async def publishing_limit(self, account: AccountRef) -> PublishingLimit:
        self._call("publishing_limit")
        return PublishingLimit(self.quota_usage, self.quota_total, 86400)

    async def media_list(self, account: AccountRef, limit: int = 25) -> list[dict[str, Any]]:
        self._call("media_list")
        return [dict(item) for item in self.feed[:limit]]

    def published_captions(self) -> list[str]:
        return [item["caption"] for item in self.feed]

    def fail_children(self) -> None:
        """Make carousel items listed in ``error_children`` end in ERROR."""
        items = [c for c in self.containers.values() if c.kind in {"CAROUSEL_ITEM", "VIDEO"}]
        for n, box in enumerate(items, start=1):
            if n in self.error_children:
                box.status_code, box.status, box.polls_left = "ERROR", "Unsupported codec", 0
