"""Meta's Graph API (or the sandbox, which speaks the same wire format) over one aiohttp session.

Every failure becomes a classified ``GraphError``. Only reads (GET) are retried here;
writes such as ``media_publish`` or ``messages`` are never repeated blindly: the caller
decides, knowing what the write does.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import random
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, date, datetime, time as dtime
from typing import Any, Literal, Protocol

import aiohttp
from redis.asyncio import Redis

from core.domain.backoff import backoff_s
from core.domain.graph_errors import (
    ErrorKind,
    GraphError,
    Usage,
    classify,
    parse_usage,
    slowdown_s,
    transport_error,
)
from core.ports.instagram import (
    AccountRef,
    ContainerStatus,
    Page,
    PublishingLimit,
    Recipient,
    SentMessage,
)
from core.settings import Settings

logger = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[None]]
Method = Literal["GET", "POST", "DELETE"]

PROFILE_FIELDS = ("id", "username", "followers_count", "follows_count", "media_count")
# The user-profile API: a person who messaged the account.
USER_PROFILE_FIELDS = (
    "name",
    "username",
    "profile_pic",
    "follower_count",
    "is_user_follow_business",
    "is_verified_user",
)
MEDIA_LIST_FIELDS = (
    "id",
    "caption",
    "media_type",
    "media_product_type",
    "permalink",
    "timestamp",
    "thumbnail_url",
    "media_url",
    "like_count",
    "comments_count",
)
SWEEP_MEDIA_FIELDS = ("id", "timestamp", "comments_count", "media_product_type")
SWEEP_COMMENT_FIELDS = ("id", "text", "timestamp", "from", "username", "parent_id")
# A media's comments list only top-level comments: their replies come expanded in each.
SWEEP_COMMENT_QUERY = (*SWEEP_COMMENT_FIELDS, f"replies{{{','.join(SWEEP_COMMENT_FIELDS)}}}")
# Moderation shows whether a comment is hidden (only the media's owner reads that field).
MODERATION_COMMENT_FIELDS = (*SWEEP_COMMENT_FIELDS, "hidden", "like_count")
MODERATION_COMMENT_QUERY = (
    *MODERATION_COMMENT_FIELDS,
    f"replies{{{','.join(MODERATION_COMMENT_FIELDS)}}}",
)
USAGE_TTL_S = 3600


class UsageStore(Protocol):
    """Where the last usage figures Meta reported are kept, per account."""

    async def get(self, key: str) -> Usage | None: ...

    async def put(self, key: str, usage: Usage) -> None: ...


class MemoryUsageStore:
    """Usage figures in this process only (tests, tools)."""

    def __init__(self) -> None:
        self.values: dict[str, tuple[Usage, float]] = {}

    async def get(self, key: str) -> Usage | None:
        found = self.values.get(key)
        if found is None or found[1] < time.monotonic():
            return None
        return found[0]

    async def put(self, key: str, usage: Usage) -> None:
        self.values[key] = (usage, time.monotonic() + usage_ttl_s(usage))


class RedisUsageStore:
    """Usage figures shared by every process on one Redis (key ``graph:usage:<account>``).

    Every Graph call reads and writes its account's figures, so this process keeps what it
    read or wrote for ``fresh_s`` (another process's report reaches it that much later),
    and writes an unchanged report again only after ``rewrite_s`` (the key lives an hour).
    """

    def __init__(
        self,
        redis: Redis,
        *,
        ttl_s: int = USAGE_TTL_S,
        fresh_s: float = 1.0,
        rewrite_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._redis = redis
        self._ttl_s = ttl_s
        self._fresh_s = fresh_s
        self._rewrite_s = rewrite_s
        self._clock = clock
        self._known: dict[str, tuple[Usage | None, float]] = {}
        self._written: dict[str, tuple[Usage, float]] = {}

    async def get(self, key: str) -> Usage | None:
        now = self._clock()
        known = self._known.get(key)
        if known is not None and known[1] > now:
            return known[0]
        raw = await self._redis.get(f"graph:usage:{key}")
        usage = None if raw is None else Usage.from_json(json.loads(raw))
        self._known[key] = (usage, now + self._fresh_s)
        return usage

    async def put(self, key: str, usage: Usage) -> None:
        now = self._clock()
        self._known[key] = (usage, now + self._fresh_s)
        written = self._written.get(key)
        if written is not None and written[0] == usage and written[1] > now:
            return
        ttl = min(self._ttl_s, usage_ttl_s(usage))
        await self._redis.set(f"graph:usage:{key}", json.dumps(usage.as_json()), ex=ttl)
        self._written[key] = (usage, now + min(self._rewrite_s, ttl / 2))


def usage_ttl_s(usage: Usage) -> int:
    """How long a usage record holds: until access is regained once the budget is used up."""
    if usage.pct >= 100:
        return max(1, math.ceil(usage.regain_after_s or 60))
    return USAGE_TTL_S


def usage_key(account: AccountRef) -> str:
    return str(account.account_id) if account.account_id is not None else f"ig:{account.ig_id}"


def never_left(exc: BaseException) -> bool:
    """Whether a failed call was refused before its request was written: no connection was
    made (refused, DNS, TLS, connect timeout). Anything else may have reached Meta."""
    return isinstance(
        exc, aiohttp.ClientConnectorError | aiohttp.ConnectionTimeoutError | aiohttp.InvalidURL
    )


def _id_of(body: dict[str, Any]) -> str:
    """The id a write answered with; an answer without one leaves the write's outcome unknown."""
    found = body.get("id")
    if isinstance(found, str | int) and not isinstance(found, bool) and str(found):
        return str(found)
    raise transport_error(f"Meta answered without an id: {str(body)[:200]}", sent=True)


def _page(body: dict[str, Any]) -> Page:
    """A Graph list's items and, when Meta names a next page, the cursor to it."""
    items = [item for item in body.get("data") or [] if isinstance(item, dict)]
    paging = body.get("paging")
    after = None
    if isinstance(paging, dict) and paging.get("next"):
        cursors = paging.get("cursors")
        found = cursors.get("after") if isinstance(cursors, dict) else None
        after = str(found) if found else None
    return Page(items=items, after=after)


def _unix(day: date) -> int:
    return int(datetime.combine(day, dtime.min, tzinfo=UTC).timestamp())


class GraphClient:
    """The InstagramClient port over Meta's Graph API.

    ``sleep`` and ``jitter`` are injectable so tests run without waiting.
    """

    def __init__(
        self,
        http: aiohttp.ClientSession,
        settings: Settings,
        *,
        usage: UsageStore | None = None,
        read_attempts: int = 3,
        backoff_s: float = 0.5,
        timeout_s: float = 30.0,
        sleep: Sleep = asyncio.sleep,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self._http = http
        self._settings = settings
        self.usage: UsageStore = usage or MemoryUsageStore()
        self._read_attempts = max(1, read_attempts)
        self._backoff_s = backoff_s
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._sleep = sleep
        self._jitter = jitter

    # ------------------------------------------------------------------ transport

    def url(self, account: AccountRef, path: str) -> str:
        base = self._settings.graph_base_url(account.login_kind)
        return f"{base}/{self._settings.graph_version}/{path.lstrip('/')}"

    async def request(
        self,
        account: AccountRef,
        method: Method,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        data: Mapping[str, str] | None = None,
        json_body: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """One Graph call as ``account``; GETs are retried on transient errors."""
        attempts = self._read_attempts if method == "GET" else 1
        for attempt in range(1, attempts + 1):
            try:
                return await self._once(account, method, path, params, data, json_body)
            except GraphError as exc:
                if exc.kind is not ErrorKind.TRANSIENT or attempt == attempts:
                    raise
                delay = backoff_s(
                    attempt, base_s=self._backoff_s, spread=(0.5, 1.5), rng=self._jitter
                )
                logger.info(
                    "graph %s %s failed (%s), retry %d in %.2fs (account %s)",
                    method,
                    path,
                    exc.title,
                    attempt,
                    delay,
                    usage_key(account),
                )
                await self._sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _once(
        self,
        account: AccountRef,
        method: Method,
        path: str,
        params: Mapping[str, str] | None,
        data: Mapping[str, str] | None,
        json_body: Mapping[str, Any] | None,
    ) -> dict[str, Any]:
        key = usage_key(account)
        usage = await self.usage.get(key)
        wait = slowdown_s(usage)
        if usage is not None and usage.pct >= 100:
            raise GraphError(
                code=None,
                subcode=None,
                message=f"usage at {usage.pct:.0f}%",
                kind=ErrorKind.RATE_LIMITED,
                title="Instagram's call budget is used up; waiting before the next call",
                retry_after_s=wait,
            )
        if wait > 0:
            logger.info(
                "graph usage at %.0f%% for account %s: waiting %.2fs",
                usage.pct if usage else 0,
                key,
                wait,
            )
            await self._sleep(wait)
        headers = {"Authorization": f"Bearer {account.token}"}
        try:
            async with self._http.request(
                method,
                self.url(account, path),
                params=params,
                data=data,
                json=json_body,
                headers=headers,
                timeout=self._timeout,
            ) as response:
                text = await response.text()
                status = response.status
                reply_headers = dict(response.headers)
        except (TimeoutError, aiohttp.ClientError) as exc:
            sent = method != "GET" and not never_left(exc)
            raise transport_error(f"{type(exc).__name__}: {exc}", sent=sent) from exc
        reported = parse_usage(reply_headers)
        if reported is not None:
            await self.usage.put(key, reported)
        try:
            body: Any = json.loads(text) if text else {}
        except ValueError:
            body = None
        if status >= 400 or not isinstance(body, dict) or "error" in body:
            error = classify(body, http_status=status, headers=reply_headers, write=method != "GET")
            logger.warning(
                "graph %s %s for account %s: %s (%s)", method, path, key, error, error.kind
            )
            raise error
        return body

    # ------------------------------------------------------------------ publishing

    async def _create_container(self, account: AccountRef, fields: dict[str, str]) -> str:
        body = await self.request(account, "POST", f"{account.ig_id}/media", data=fields)
        return _id_of(body)

    @staticmethod
    def _common(
        caption: str | None,
        location_id: str | None,
        collaborators: Sequence[str],
        is_carousel_item: bool,
    ) -> dict[str, str]:
        fields: dict[str, str] = {}
        if caption is not None and not is_carousel_item:
            fields["caption"] = caption
        if location_id:
            fields["location_id"] = location_id
        if collaborators:
            fields["collaborators"] = json.dumps(list(collaborators))
        if is_carousel_item:
            fields["is_carousel_item"] = "true"
        return fields

    async def create_image_container(
        self,
        account: AccountRef,
        image_url: str,
        *,
        caption: str | None = None,
        alt_text: str | None = None,
        location_id: str | None = None,
        collaborators: Sequence[str] = (),
        is_carousel_item: bool = False,
    ) -> str:
        fields = {"image_url": image_url}
        fields.update(self._common(caption, location_id, collaborators, is_carousel_item))
        if alt_text:
            fields["alt_text"] = alt_text
        return await self._create_container(account, fields)

    async def create_video_container(
        self,
        account: AccountRef,
        video_url: str,
        *,
        media_type: Literal["REELS", "VIDEO"] = "REELS",
        caption: str | None = None,
        share_to_feed: bool | None = None,
        cover_url: str | None = None,
        thumb_offset_ms: int | None = None,
        location_id: str | None = None,
        collaborators: Sequence[str] = (),
        is_carousel_item: bool = False,
    ) -> str:
        fields = {"media_type": "VIDEO" if is_carousel_item else media_type, "video_url": video_url}
        fields.update(self._common(caption, location_id, collaborators, is_carousel_item))
        if share_to_feed is not None and not is_carousel_item:
            fields["share_to_feed"] = "true" if share_to_feed else "false"
        if cover_url:
            fields["cover_url"] = cover_url
        if thumb_offset_ms is not None:
            fields["thumb_offset"] = str(thumb_offset_ms)
        return await self._create_container(account, fields)

    async def create_story_container(
        self, account: AccountRef, *, image_url: str | None = None, video_url: str | None = None
    ) -> str:
        if (image_url is None) == (video_url is None):
            raise ValueError("a story needs exactly one of image_url or video_url")
        fields = {"media_type": "STORIES"}
        if image_url is not None:
            fields["image_url"] = image_url
        else:
            fields["video_url"] = video_url or ""
        return await self._create_container(account, fields)

    async def create_carousel_container(
        self,
        account: AccountRef,
        children: Sequence[str],
        *,
        caption: str | None = None,
        location_id: str | None = None,
        collaborators: Sequence[str] = (),
    ) -> str:
        fields = {"media_type": "CAROUSEL", "children": ",".join(children)}
        fields.update(self._common(caption, location_id, collaborators, False))
        return await self._create_container(account, fields)

    async def container_status(self, account: AccountRef, container_id: str) -> ContainerStatus:
        body = await self.request(
            account, "GET", container_id, params={"fields": "status_code,status"}
        )
        return ContainerStatus(
            status_code=str(body.get("status_code") or ""), status=str(body.get("status") or "")
        )

    async def publish_container(self, account: AccountRef, container_id: str) -> str:
        # The query string, as Meta documents it: ``media_publish?creation_id=``.
        body = await self.request(
            account, "POST", f"{account.ig_id}/media_publish", params={"creation_id": container_id}
        )
        return _id_of(body)

    async def media_fields(
        self, account: AccountRef, media_id: str, fields: Sequence[str] = ("permalink", "timestamp")
    ) -> dict[str, Any]:
        return await self.request(account, "GET", media_id, params={"fields": ",".join(fields)})

    async def post_comment(self, account: AccountRef, media_id: str, message: str) -> str:
        body = await self.request(
            account, "POST", f"{media_id}/comments", data={"message": message}
        )
        return _id_of(body)

    async def publishing_limit(self, account: AccountRef) -> PublishingLimit:
        body = await self.request(
            account,
            "GET",
            f"{account.ig_id}/content_publishing_limit",
            params={"fields": "quota_usage,config"},
        )
        rows = body.get("data") or [{}]
        row = rows[0] if isinstance(rows, list) and rows else {}
        config = row.get("config") or {}
        return PublishingLimit(
            quota_usage=int(row.get("quota_usage") or 0),
            quota_total=int(config.get("quota_total") or 100),
            quota_duration_s=int(config.get("quota_duration") or 86400),
        )

    # ------------------------------------------------------------------ messaging and comments

    async def send_message(
        self,
        account: AccountRef,
        recipient: Recipient,
        message: dict[str, Any],
        *,
        tag: str | None = None,
    ) -> SentMessage:
        # Facebook Login sends as the Page (Messenger API for Instagram): /me is the Page its
        # token belongs to. Instagram Login sends as the professional account itself.
        node = "me" if account.login_kind == "facebook" else account.ig_id
        payload: dict[str, Any] = {"recipient": recipient.as_json(), "message": message}
        if tag:
            payload |= {"messaging_type": "MESSAGE_TAG", "tag": tag}
        # A write is never retried here (see ``request``): straight to the one call.
        body = await self._once(account, "POST", f"{node}/messages", None, None, payload)
        return SentMessage(
            recipient_id=str(body.get("recipient_id") or ""),
            message_id=str(body.get("message_id") or ""),
        )

    async def reply_to_comment(self, account: AccountRef, comment_id: str, message: str) -> str:
        body = await self.request(
            account, "POST", f"{comment_id}/replies", data={"message": message}
        )
        return _id_of(body)

    async def comment_replies(self, account: AccountRef, comment_id: str) -> list[dict[str, Any]]:
        body = await self.request(
            account,
            "GET",
            f"{comment_id}/replies",
            params={"fields": "id,text,from,username,timestamp"},
        )
        return list(body.get("data") or [])

    async def conversation_messages(self, account: AccountRef, igsid: str) -> list[dict[str, Any]]:
        # Facebook Login reads the inbox of the Page linked to the account.
        node = account.ig_id
        if account.login_kind == "facebook" and account.page_id:
            node = account.page_id
        params = {
            "platform": "instagram",
            "user_id": igsid,
            "fields": "messages{id,message,from,created_time}",
        }
        body = await self.request(account, "GET", f"{node}/conversations", params=params)
        found: list[dict[str, Any]] = []
        for conversation in body.get("data") or []:
            messages = conversation.get("messages") if isinstance(conversation, dict) else None
            if isinstance(messages, dict):
                found.extend(m for m in messages.get("data") or [] if isinstance(m, dict))
        return found

    async def recent_media(
        self, account: AccountRef, *, after: str | None = None, limit: int = 25
    ) -> Page:
        params = {"fields": ",".join(SWEEP_MEDIA_FIELDS), "limit": str(limit)}
        if after:
            params["after"] = after
        return _page(await self.request(account, "GET", f"{account.ig_id}/media", params=params))

    async def media_comments(
        self,
        account: AccountRef,
        media_id: str,
        *,
        after: str | None = None,
        limit: int = 50,
        moderation: bool = False,
    ) -> Page:
        fields = MODERATION_COMMENT_QUERY if moderation else SWEEP_COMMENT_QUERY
        params = {"fields": ",".join(fields), "limit": str(limit)}
        if after:
            params["after"] = after
        return _page(await self.request(account, "GET", f"{media_id}/comments", params=params))

    async def comment(self, account: AccountRef, comment_id: str) -> dict[str, Any]:
        params = {"fields": ",".join((*MODERATION_COMMENT_FIELDS, "media"))}
        return await self.request(account, "GET", comment_id, params=params)

    async def hide_comment(self, account: AccountRef, comment_id: str, hide: bool = True) -> None:
        # The query string, as Meta documents it: ``POST /{comment-id}?hide=true``.
        params = {"hide": "true" if hide else "false"}
        await self.request(account, "POST", comment_id, params=params)

    async def delete_comment(self, account: AccountRef, comment_id: str) -> None:
        await self.request(account, "DELETE", comment_id)

    # ------------------------------------------------------------------ profile and insights

    async def profile(self, account: AccountRef) -> dict[str, Any]:
        fields = (*PROFILE_FIELDS, "profile_picture_url")
        return await self.request(
            account, "GET", account.ig_id, params={"fields": ",".join(fields)}
        )

    async def user_profile(self, account: AccountRef, igsid: str) -> dict[str, Any]:
        # GET /{ig-scoped-id}?fields=… : only after the person messaged the account (consent).
        return await self.request(
            account, "GET", igsid, params={"fields": ",".join(USER_PROFILE_FIELDS)}
        )

    async def media_list(self, account: AccountRef, limit: int = 25) -> list[dict[str, Any]]:
        body = await self.request(
            account,
            "GET",
            f"{account.ig_id}/media",
            params={"fields": ",".join(MEDIA_LIST_FIELDS), "limit": str(limit)},
        )
        return list(body.get("data") or [])

    async def account_insights(
        self,
        account: AccountRef,
        metrics: Sequence[str],
        since: date,
        until: date,
        *,
        period: str = "day",
        metric_type: str | None = "total_value",
    ) -> list[dict[str, Any]]:
        params = {
            "metric": ",".join(metrics),
            "period": period,
            "since": str(_unix(since)),
            "until": str(_unix(until)),
        }
        if metric_type:
            params["metric_type"] = metric_type
        body = await self.request(account, "GET", f"{account.ig_id}/insights", params=params)
        return list(body.get("data") or [])

    async def media_insights(
        self, account: AccountRef, media_id: str, metrics: Sequence[str]
    ) -> list[dict[str, Any]]:
        body = await self.request(
            account, "GET", f"{media_id}/insights", params={"metric": ",".join(metrics)}
        )
        return list(body.get("data") or [])

    @staticmethod
    def _subscription_node(account: AccountRef) -> str:
        # Facebook Login subscribes the Page the Instagram account is linked to.
        if account.login_kind == "facebook" and account.page_id:
            return account.page_id
        return account.ig_id

    def _profile_node(self, account: AccountRef) -> str:
        # Facebook Login sets the profile on the linked Page (``platform=instagram``);
        # Instagram Login on ``me``, the account the token belongs to.
        if account.login_kind == "facebook" and account.page_id:
            return account.page_id
        return "me"

    async def set_messenger_profile(self, account: AccountRef, fields: Mapping[str, Any]) -> bool:
        # Setting the profile replaces the named fields whole (a PUT in all but name), so a
        # call whose answer was lost is safe to repeat: the second one leaves the same state.
        body = await self.request(
            account, "POST", f"{self._profile_node(account)}/messenger_profile", json_body=fields
        )
        return bool(body.get("result") == "success" or body.get("success"))

    async def delete_messenger_profile(self, account: AccountRef, fields: Sequence[str]) -> bool:
        # Deleting a field that is already gone is not an error at Meta: safe to repeat.
        body = await self.request(
            account,
            "DELETE",
            f"{self._profile_node(account)}/messenger_profile",
            json_body={"platform": "instagram", "fields": list(fields)},
        )
        return bool(body.get("result") == "success" or body.get("success"))

    async def subscribe_app(self, account: AccountRef, fields: Sequence[str]) -> bool:
        body = await self.request(
            account,
            "POST",
            f"{self._subscription_node(account)}/subscribed_apps",
            # The query string, as Meta documents it: ``subscribed_apps?subscribed_fields=``.
            params={"subscribed_fields": ",".join(fields)},
        )
        return bool(body.get("success"))

    async def unsubscribe_app(self, account: AccountRef) -> bool:
        body = await self.request(
            account, "DELETE", f"{self._subscription_node(account)}/subscribed_apps"
        )
        return bool(body.get("success"))
